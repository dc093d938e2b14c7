// NTK parity with the PyTorch autograd reference (tests/reference/ntk_reference.py: per-image
// backward through train-mode BN, and a variant with detached BN statistics for ntk_fast) in
// SPEC.md 7's FP64 regime: Gram and kappa to max|d| / max|ref| <= 1e-9. Prints (does not assert)
// the engine's own FP32-vs-FP64 deviation of the Gram.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/cpu_ntk.hpp"
#include "kernels/linalg.hpp"
#include "net/cifar.hpp"
#include "test_util.hpp"

using namespace hn;

namespace {
constexpr int kBatch = 8, kClasses = 10;
constexpr uint64_t kSeed = 11;
constexpr int64_t kOffset = 2000;

// Every op, the optimum, a conv-free cell, a dead conv edge, an all-`none` node, a degenerate cell.
const std::vector<std::string> kArchs = {
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|",
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    "|avg_pool_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|avg_pool_3x3~0|skip_connect~1|none~2|",
    "|nor_conv_1x1~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|none~2|",
    "|none~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|",
    "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|nor_conv_1x1~1|none~2|",
    "|nor_conv_1x1~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|none~0|skip_connect~1|avg_pool_3x3~2|",
    "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|avg_pool_3x3~2|",
};

std::vector<double> flat(const nlohmann::json& m) {
  std::vector<double> v;
  for (const auto& row : m)
    for (const auto& x : row) v.push_back(x.get<double>());
  return v;
}

double rel_dev(const std::vector<double>& a, const std::vector<double>& ref) {
  double md = 0, mr = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    md = std::max(md, std::abs(a[i] - ref[i]));
    mr = std::max(mr, std::abs(ref[i]));
  }
  return md / mr;
}
}  // namespace

TEST(NtkReferenceParity, GramAndKappaAgreeInFp64) {
  if (std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "Debian's python3-torch is not installed (/usr/bin/python3 cannot import torch)";
  test::TempDir dir;
  std::string cmd = "/usr/bin/python3 " + std::string(HYBRIDNAS_SOURCE_DIR) +
                    "/tests/reference/ntk_reference.py --threads 1 --precision fp64 --data " +
                    test::data_path("cifar10/cifar10_sample.bin") + " --image-offset " +
                    std::to_string(kOffset) + " --batch " + std::to_string(kBatch) +
                    " --num-classes " + std::to_string(kClasses) + " --score-seed " +
                    std::to_string(kSeed) + " --out " + dir.path() + " --archs";
  for (const auto& a : kArchs) cmd += " '" + a + "'";
  cmd += " > " + dir.path() + "/log.txt 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << test::slurp(dir.path() + "/log.txt");
  std::ifstream in(dir.path() + "/ntk_reference.json");
  const auto ref = nlohmann::json::parse(in);

  const net::CifarReader reader(test::data_path("cifar10/cifar10_sample.bin"), net::DatasetKind::kCifar10);
  const auto x = reader.normalized(kOffset, kBatch);
  const std::vector<float> x32(x.begin(), x.end());
  const auto wb = net::WeightBank::generate(net::InitScheme::kDefault, kSeed, kClasses);
  const engine::TypedBank<double> bank(wb);
  const engine::TypedBank<float> bank32(wb);
  int degenerate = 0;
  for (size_t k = 0; k < kArchs.size(); ++k) {
    SCOPED_TRACE(kArchs[k]);
    const auto& r = ref["archs"][k];
    const net::Genes g = net::parse_arch(kArchs[k]);
    ASSERT_EQ(r["degenerate"].get<bool>(), net::is_degenerate(g));
    if (net::is_degenerate(g)) {
      ++degenerate;
      continue;
    }
    const net::Plan plan = net::build_plan(g, kClasses);
    for (const bool exact : {true, false}) {
      const auto& rr = r[exact ? "ntk" : "ntk_fast"];
      engine::NtkOptions opt;
      opt.exact = exact;
      const auto gram = engine::gram_fp64(engine::cpu_ntk_gradients<double>(plan, bank, x.data(), kBatch, opt));
      const double d = rel_dev(gram, flat(rr["gram"]));
      EXPECT_LE(d, 1e-9) << (exact ? "ntk" : "ntk_fast") << " Gram";
      const auto cond = kernels::condition_number(gram, kBatch);
      if (rr["flag"] == "ill_conditioned") {
        EXPECT_TRUE(cond.ill_conditioned);
      } else {
        const double kref = rr["kappa"].get<double>();
        EXPECT_FALSE(cond.ill_conditioned);
        EXPECT_LE(std::abs(cond.kappa - kref), 1e-9 * kref) << cond.kappa << " vs " << kref;
      }
      const auto gram32 = engine::gram_fp64(engine::cpu_ntk_gradients<float>(plan, bank32, x32.data(), kBatch, opt));
      std::printf("  %-8s Gram fp64 vs reference %.2e, fp32 vs fp64 %.2e  %s\n",
                  exact ? "ntk" : "ntk_fast", d, rel_dev(gram32, gram), kArchs[k].c_str());
    }
  }
  EXPECT_EQ(degenerate, 1);
}
