// Parity with the independent PyTorch reference (tests/reference/nb201_reference.py, written
// from SPEC.md, run by Debian's /usr/bin/python3) in SPEC.md 7's FP64 regime: ReLU codes and K
// exactly equal; logits, NI, entropy, entropy_seed and naswot to max|d| / max|ref| <= 1e-9.
// Also prints (does not assert) each architecture's FP32-vs-FP64 deviation of the engine.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/cpu_proxies.hpp"
#include "engine/scorer.hpp"
#include "net/cifar.hpp"
#include "test_util.hpp"

using namespace hn;
using engine::Proxy;

namespace {

constexpr int kBatch = 16, kEntropyBatch = 8, kEntropyRepeats = 2, kClasses = 10;
constexpr uint64_t kSeed = 3;
constexpr int64_t kOffset = 1000;  // the first training images

const std::vector<std::string>& kArchs = test::kCoverageArchs;

double rel_dev(const std::vector<double>& a, const std::vector<double>& ref) {
  double md = 0, mr = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    md = std::max(md, std::abs(a[i] - ref[i]));
    mr = std::max(mr, std::abs(ref[i]));
  }
  return mr > 0 ? md / mr : md;
}

std::vector<double> flat(const nlohmann::json& m) {
  std::vector<double> v;
  for (const auto& row : m)
    for (const auto& x : row) v.push_back(x.get<double>());
  return v;
}

template <typename T>
std::vector<double> as_double(const std::vector<T>& v) {
  return std::vector<double>(v.begin(), v.end());
}

class ReferenceParity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir;
    if (std::system("/usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1") != 0) {
      skip_ = "Debian's python3-torch is not installed (/usr/bin/python3 cannot import torch)";
      return;
    }
    std::string cmd = "/usr/bin/python3 " + std::string(HYBRIDNAS_SOURCE_DIR) +
                      "/tests/reference/nb201_reference.py --threads 1 --precision fp64 --data " +
                      test::data_path("cifar10/cifar10_sample.bin") +
                      " --image-offset " + std::to_string(kOffset) + " --batch " +
                      std::to_string(kBatch) + " --entropy-batch " + std::to_string(kEntropyBatch) +
                      " --entropy-repeats " + std::to_string(kEntropyRepeats) + " --num-classes " +
                      std::to_string(kClasses) + " --score-seed " + std::to_string(kSeed) +
                      " --out " + dir_->path() + " --archs";
    for (const auto& a : kArchs) cmd += " '" + a + "'";
    cmd += " > " + dir_->path() + "/log.txt 2>&1";
    if (std::system(cmd.c_str()) != 0) {
      failed_ = "reference run failed:\n" + test::slurp(dir_->path() + "/log.txt");
      return;
    }
    std::ifstream in(dir_->path() + "/reference.json");
    ref_ = new nlohmann::json(nlohmann::json::parse(in));
  }
  static void TearDownTestSuite() {
    delete ref_;
    delete dir_;
  }
  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    ASSERT_TRUE(failed_.empty()) << failed_;
  }

  static engine::ScoreSettings settings(engine::Precision p) {
    engine::ScoreSettings s;
    s.proxies = {Proxy::kNaswot, Proxy::kNaswotOnce, Proxy::kNi, Proxy::kEntropy, Proxy::kEntropySeed};
    s.batch = kBatch;
    s.entropy_batch = kEntropyBatch;
    s.entropy_repeats = kEntropyRepeats;
    s.num_classes = kClasses;
    s.score_seed = kSeed;
    s.precision = p;
    s.data_path = test::data_path("cifar10/cifar10_sample.bin");
    s.image_offset = kOffset;
    return s;
  }

  static inline test::TempDir* dir_ = nullptr;
  static inline nlohmann::json* ref_ = nullptr;
  static inline std::string skip_, failed_;
};

}  // namespace

TEST_F(ReferenceParity, ProxiesAgreeInFp64) {
  const auto s64 = settings(engine::Precision::kFp64);
  const auto scores = engine::make_cpu_scorer(s64, engine::load_inputs(s64))
                          ->score_all([] {
                            std::vector<net::Genes> g;
                            for (const auto& a : kArchs) g.push_back(net::parse_arch(a));
                            return g;
                          }());
  const auto s32 = settings(engine::Precision::kFp32);
  std::vector<net::Genes> genes;
  for (const auto& a : kArchs) genes.push_back(net::parse_arch(a));
  const auto scores32 = engine::make_cpu_scorer(s32, engine::load_inputs(s32))->score_all(genes);

  int degenerate_seen = 0;
  for (size_t k = 0; k < kArchs.size(); ++k) {
    SCOPED_TRACE(kArchs[k]);
    const auto& r = (*ref_)["archs"][k];
    const auto& sc = scores[k];
    if (r["degenerate"].get<bool>()) {
      ++degenerate_seen;
      for (Proxy p : s64.proxies) {
        EXPECT_EQ(sc[p]->flag, engine::kFlagDegenerate);
        EXPECT_EQ(sc[p]->value, engine::worst_value(p));
      }
      continue;
    }
    auto expect_rel = [&](Proxy p, const char* key) {
      const double ref = r[key].get<double>(), got = sc[p]->value;
      EXPECT_TRUE(sc[p]->flag.empty()) << key;
      EXPECT_LE(std::abs(got - ref), 1e-9 * std::abs(ref)) << key << ": " << got << " vs " << ref;
    };
    expect_rel(Proxy::kNaswot, "naswot");
    expect_rel(Proxy::kNaswotOnce, "naswot_once");
    expect_rel(Proxy::kNi, "ni");
    expect_rel(Proxy::kEntropy, "entropy");
    expect_rel(Proxy::kEntropySeed, "entropy_seed");
    // FP32 vs FP64 of the engine itself, for the record.
    std::printf("  fp32-vs-fp64 %-100s naswot %.2e  ni %.2e  entropy %.2e  entropy_seed %.2e\n",
                kArchs[k].c_str(),
                std::abs(scores32[k][Proxy::kNaswot]->value - sc[Proxy::kNaswot]->value) / std::abs(sc[Proxy::kNaswot]->value),
                std::abs(scores32[k][Proxy::kNi]->value - sc[Proxy::kNi]->value) / std::abs(sc[Proxy::kNi]->value),
                std::abs(scores32[k][Proxy::kEntropy]->value - sc[Proxy::kEntropy]->value) / std::abs(sc[Proxy::kEntropy]->value),
                std::abs(scores32[k][Proxy::kEntropySeed]->value - sc[Proxy::kEntropySeed]->value) / std::abs(sc[Proxy::kEntropySeed]->value));
  }
  EXPECT_EQ(degenerate_seen, 1);
}

// Codes, K and logits straight from the executor, module by module.
TEST_F(ReferenceParity, CodesKernelsAndLogitsAgreeInFp64) {
  const net::CifarReader reader(test::data_path("cifar10/cifar10_sample.bin"), net::DatasetKind::kCifar10);
  const std::vector<double> x = reader.normalized(kOffset, kBatch);
  const engine::TypedBank<double> bank(
      net::WeightBank::generate(net::InitScheme::kDefault, kSeed, kClasses));
  const engine::TypedBank<float> bank32(
      net::WeightBank::generate(net::InitScheme::kDefault, kSeed, kClasses));
  const std::vector<float> x32(x.begin(), x.end());
  for (size_t k = 0; k < kArchs.size(); ++k) {
    SCOPED_TRACE(kArchs[k]);
    const auto& r = (*ref_)["archs"][k];
    const net::Genes g = net::parse_arch(kArchs[k]);
    if (net::is_degenerate(g)) continue;
    const net::Plan plan = net::build_plan(g, kClasses);
    engine::NaswotKernels<double> kern(plan, kBatch);
    kern.keep_codes = true;
    const auto res = engine::cpu_forward<double>(plan, bank, x.data(), kBatch, {}, std::ref(kern));

    // Codes: every nn.ReLU module, in execution order, bit for bit.
    const std::string codes = test::slurp(dir_->path() + "/codes_" + std::to_string(k) + ".bin");
    ASSERT_EQ(r["modules"].size(), plan.relu_modules.size());
    for (size_t m = 0; m < plan.relu_modules.size(); ++m) {
      const auto& rm = r["modules"][m];
      ASSERT_EQ(rm["name"].get<std::string>(), plan.relu_modules[m].name);
      const int site = plan.relu_modules[m].site;
      const int64_t units = rm["units"].get<int64_t>();
      ASSERT_EQ(units, plan.sites[site].units);
      const auto& ours = kern.codes[site];
      ASSERT_EQ(ours.size() * 8, size_t(kBatch) * units / 8);
      const size_t off = rm["offset_bytes"].get<size_t>();
      int64_t differing_bits = 0;
      for (size_t w = 0; w < ours.size(); ++w) {
        uint64_t theirs = 0;
        std::memcpy(&theirs, codes.data() + off + w * 8, 8);  // little-endian bit order
        differing_bits += __builtin_popcountll(theirs ^ ours[w]);
      }
      EXPECT_EQ(differing_bits, 0) << plan.relu_modules[m].name;
    }
    // K exactly.
    const auto kref = flat(r["K"]), k1ref = flat(r["K_once"]);
    EXPECT_EQ(as_double(kern.k()), kref);
    EXPECT_EQ(as_double(kern.k_once()), k1ref);
    // Logits.
    const double dl = rel_dev(res.logits, flat(r["logits"]));
    EXPECT_LE(dl, 1e-9);
    // FP32 logits against FP64, for the record.
    const auto res32 = engine::cpu_forward<float>(plan, bank32, x32.data(), kBatch, {});
    std::printf("  logits fp64 vs reference %.2e, fp32 vs fp64 %.2e  %s\n", dl,
                rel_dev(as_double(res32.logits), as_double(res.logits)), kArchs[k].c_str());
  }
}
