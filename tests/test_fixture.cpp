// The official-code fixture (SPEC.md 7): the engine, fed the weights and images that the
// proxies' official PyTorch codes drew, reproduces their naswot K and value, naswot_once, and
// MAE-DET's per-block entropy stds.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/cpu_proxies.hpp"
#include "fixture.hpp"
#include "net/cifar.hpp"

using namespace hn;

namespace {

struct FixtureRun {
  nlohmann::json ref = test::fixture_scores();
  net::Genes genes = net::parse_arch(ref["settings"]["arch"].get<std::string>());
  net::Plan plan = net::build_plan(genes, 10);
};

// SPEC.md 7, FP32 rule: <= 1 flipped code per 10^6 code bits, |dK_ij| <= 1e-5 * N_A.
void expect_kernel_close(const std::vector<int64_t>& k, const nlohmann::json& ref, int64_t n_a) {
  const int n = static_cast<int>(ref.size());
  int64_t max_d = 0;
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j)
      max_d = std::max<int64_t>(max_d, std::llabs(k[size_t(i) * n + j] - ref[i][j].get<int64_t>()));
  EXPECT_LE(static_cast<double>(max_d), 1e-5 * n_a) << "max |dK| = " << max_d;
  for (int i = 0; i < n; ++i) EXPECT_EQ(k[size_t(i) * n + i], n_a);
  std::cout << "  max |dK| vs official code: " << max_d << " of N_A " << n_a << "\n";
}

}  // namespace

TEST(Fixture, NaswotKernelAndValueMatchTheOfficialCode) {
  FixtureRun f;
  const auto weights = test::load_fixture_blob("weights_default_init_seed0");
  const engine::TypedBank<float> bank(test::bank_from_fixture(weights, f.genes, 10));
  const auto x = test::load_fixture_blob("input_cifar_first16").at("x");
  const int B = 16;
  engine::NaswotKernels<float> kernels(f.plan, B);
  engine::ForwardOptions opt;
  engine::cpu_forward<float>(f.plan, bank, x.data(), B, opt, std::ref(kernels));

  expect_kernel_close(kernels.k(), f.ref["naswot_K"], f.plan.weighted_units());
  expect_kernel_close(kernels.k_once(), f.ref["naswot_K_reluonly"], f.plan.unweighted_units());
  const auto naswot = engine::naswot_from_kernel(kernels.k(), B);
  const auto once = engine::naswot_from_kernel(kernels.k_once(), B);
  const double ref = f.ref["naswot"], ref_once = f.ref["naswot_reluonly"];
  EXPECT_TRUE(naswot.flag.empty());
  EXPECT_NEAR(naswot.value, ref, 1e-6 * std::abs(ref));
  EXPECT_NEAR(once.value, ref_once, 1e-6 * std::abs(ref_once));
}

TEST(Fixture, ReaderNormalisationMatchesTheFixtureInput) {
  // The fixture's x is the first 16 test images, /255 and normalised by the reference code.
  const auto x = test::load_fixture_blob("input_cifar_first16").at("x");
  const net::CifarReader reader(test::data_path("cifar10/cifar10_sample.bin"), net::DatasetKind::kCifar10);
  std::vector<int> labels;
  const auto ours = reader.normalized(0, 16, &labels);
  ASSERT_EQ(ours.size(), x.size());
  double max_d = 0;
  for (size_t i = 0; i < x.size(); ++i) max_d = std::max(max_d, std::abs(ours[i] - x[i]));
  EXPECT_LT(max_d, 1e-6);
  EXPECT_EQ(labels, FixtureRun().ref["labels"].get<std::vector<int>>());
}

TEST(Fixture, EntropyBlockStdsMatchMaeDet) {
  FixtureRun f;
  const auto weights = test::load_fixture_blob("entropy_gauss_weights_seed0");
  const engine::TypedBank<float> bank(test::bank_from_fixture(weights, f.genes, 10));
  const auto x = test::load_fixture_blob("entropy_gauss_input_b16").at("x");
  const auto res = engine::cpu_forward<float>(f.plan, bank, x.data(), 16, engine::entropy_options());
  const auto ref = f.ref["entropy_block_std"].get<std::vector<double>>();
  ASSERT_FALSE(res.zero_variance);
  ASSERT_EQ(res.block_std.size(), ref.size());
  for (size_t i = 0; i < ref.size(); ++i)
    EXPECT_NEAR(res.block_std[i], ref[i], 1e-5 * ref[i]) << "block " << i;
  // The fixture's entropy is float32-rounded; its own stds give 102.1509523.
  const auto v = engine::entropy_from_blocks(res.block_std, false);
  EXPECT_NEAR(v.value, f.ref["entropy"].get<double>(), 2e-7 * 102.15);
}
