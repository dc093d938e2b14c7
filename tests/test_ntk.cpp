// The NTK proxies on the CPU: the official TE-NAS fixture, finite differences of gradient
// entries in FP64, and the exact path with frozen BN statistics equal to ntk_fast.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "engine/cpu_ntk.hpp"
#include "fixture.hpp"
#include "kernels/linalg.hpp"
#include "net/cifar.hpp"

using namespace hn;

namespace {
const char* kArch6111 =
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|";

template <typename T>
std::vector<T> images(int n, int64_t offset = 0) {
  const net::CifarReader r(test::data_path("cifar10/cifar10_sample.bin"), net::DatasetKind::kCifar10);
  const auto x = r.normalized(offset, n);
  return std::vector<T>(x.begin(), x.end());
}
}  // namespace

TEST(Ntk, ExactMatchesTheOfficialTeNasFixture) {
  const auto ref = test::fixture_scores();
  const net::Genes g = net::parse_arch(ref["settings"]["arch"].get<std::string>());
  const net::Plan plan = net::build_plan(g, 10);
  const engine::TypedBank<float> bank(
      test::bank_from_fixture(test::load_fixture_blob("weights_default_init_seed0"), g, 10));
  const auto x = test::load_fixture_blob("input_cifar_first16").at("x");
  const auto grads = engine::cpu_ntk_gradients<float>(plan, bank, x.data(), 16, {});
  const auto theta = engine::gram_fp64(grads);
  const auto cond = kernels::condition_number(theta, 16);
  const auto eig = ref["ntk_eigenvalues"].get<std::vector<double>>();
  ASSERT_FALSE(cond.ill_conditioned);
  for (int i = 0; i < 16; ++i) EXPECT_NEAR(cond.eigenvalues[i], eig[i], 1e-2 * eig[i]) << i;
  EXPECT_NEAR(cond.kappa, ref["ntk_cond"].get<double>(), 1e-2 * ref["ntk_cond"].get<double>());
  std::printf("  kappa %.6f vs official %.6f\n", cond.kappa, ref["ntk_cond"].get<double>());
}

// Central differences of sum_c logit_c(x_i) (a train-mode forward of the whole batch) against the
// backward's gradient entries, in FP64.
TEST(Ntk, GradientEntriesMatchFiniteDifferences) {
  const int n = 4;
  // Every op; cheap enough for ~60 forwards.
  const net::Plan plan = net::build_plan(
      net::parse_arch("|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"), 10);
  engine::TypedBank<double> bank(net::WeightBank::generate(net::InitScheme::kDefault, 5, 10));
  const auto x = images<double>(n, 1000);
  const auto grads = engine::cpu_ntk_gradients<double>(plan, bank, x.data(), n, {});

  auto summed_logit = [&](int img, const std::vector<std::vector<double>>* gamma) {
    engine::ForwardOptions o;
    o.report_sites = false;
    o.bn_gamma = gamma;
    const auto r = engine::cpu_forward<double>(plan, bank, x.data(), n, o);
    double s = 0;
    for (int c = 0; c < 10; ++c) s += r.logits[img * 10 + c];
    return s;
  };
  int checked = 0;
  for (const auto& b : grads.layout) {
    // A few blocks of each kind: stem, a stage-2 cell conv, a reduction conv, BN gammas, linear.
    const bool pick = (b.kind == engine::ParamBlock::kConv &&
                       (b.slot == net::kSlotStem || b.slot == net::slot_edge_conv(7, 0, net::Op::kConv3x3) ||
                        b.slot == net::slot_reduction(1, 2))) ||
                      (b.kind == engine::ParamBlock::kGamma && (b.bn == 0 || b.bn == 20 ||
                                                                 b.bn == int(plan.bn_channels.size()) - 1)) ||
                      b.kind == engine::ParamBlock::kLinear;
    if (!pick) continue;
    for (const int64_t e : {int64_t(0), b.size - 1})
      for (const int img : {0, 3}) {
        const double analytic = grads.g[size_t(img) * grads.params + b.offset + e];
        double fd;
        // Small steps: BN outputs put many ReLU inputs near 0, and a step that flips codes
        // measures the kinks, not the derivative (1e-5 visibly does).
        const double h = 1e-7;
        if (b.kind == engine::ParamBlock::kGamma) {
          std::vector<std::vector<double>> gamma;
          for (int c : plan.bn_channels) gamma.emplace_back(c, 1.0);
          gamma[b.bn][e] = 1 + h;
          const double up = summed_logit(img, &gamma);
          gamma[b.bn][e] = 1 - h;
          fd = (up - summed_logit(img, &gamma)) / (2 * h);
        } else {
          double* w = bank.mutable_slot(b.slot) + e;
          const double w0 = *w;
          *w = w0 + h;
          const double up = summed_logit(img, nullptr);
          *w = w0 - h;
          const double down = summed_logit(img, nullptr);
          *w = w0;
          fd = (up - down) / (2 * h);
        }
        EXPECT_NEAR(analytic, fd, 1e-6 + 1e-5 * std::abs(fd))
            << "block kind " << b.kind << " slot " << b.slot << " bn " << b.bn << " element " << e
            << " image " << img;
        ++checked;
      }
  }
  EXPECT_GE(checked, 28);
}

// With BN statistics frozen, the exact path (cotangent x image rows, BN mean terms off) must give
// ntk_fast's gradients: two different code paths for one function.
TEST(Ntk, ExactPathWithFrozenStatisticsEqualsNtkFast) {
  const int n = 6;
  const net::Plan plan = net::build_plan(
      net::parse_arch("|nor_conv_1x1~0|+|avg_pool_3x3~0|nor_conv_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"), 10);
  const engine::TypedBank<double> bank(net::WeightBank::generate(net::InitScheme::kDefault, 0, 10));
  const auto x = images<double>(n);
  engine::NtkOptions frozen;
  frozen.frozen_bn = true;
  frozen.max_rows = 2 * n;  // several chunks
  engine::NtkOptions fast;
  fast.exact = false;
  const auto a = engine::cpu_ntk_gradients<double>(plan, bank, x.data(), n, frozen);
  const auto b = engine::cpu_ntk_gradients<double>(plan, bank, x.data(), n, fast);
  const auto c = engine::cpu_ntk_gradients<double>(plan, bank, x.data(), n, {});
  ASSERT_EQ(a.params, b.params);
  double max_d = 0, max_v = 0, max_exact_d = 0;
  for (size_t i = 0; i < a.g.size(); ++i) {
    max_d = std::max(max_d, std::abs(a.g[i] - b.g[i]));
    max_v = std::max(max_v, std::abs(b.g[i]));
    max_exact_d = std::max(max_exact_d, std::abs(c.g[i] - b.g[i]));
  }
  EXPECT_LE(max_d, 1e-12 * max_v);
  EXPECT_GT(max_exact_d, 1e-3 * max_v);  // the BN coupling is real: exact differs from fast
}

TEST(Ntk, ChunkingDoesNotChangeTheExactGram) {
  const int n = 5;
  const net::Plan plan = net::build_plan(net::parse_arch(kArch6111), 10);
  const engine::TypedBank<float> bank(net::WeightBank::generate(net::InitScheme::kDefault, 0, 10));
  const auto x = images<float>(n);
  engine::NtkOptions one, many;
  many.max_rows = n;  // one cotangent per chunk
  const auto a = engine::gram_fp64(engine::cpu_ntk_gradients<float>(plan, bank, x.data(), n, one));
  const auto b = engine::gram_fp64(engine::cpu_ntk_gradients<float>(plan, bank, x.data(), n, many));
  EXPECT_EQ(a, b);
}

// The scorer reuses one gradient buffer per thread from architecture to architecture: what a
// larger architecture left in it must not reach a smaller one's gradients or Gram.
TEST(Ntk, AReusedGradientBufferGivesTheFreshResult) {
  const int n = 6;
  const engine::TypedBank<float> bank(net::WeightBank::generate(net::InitScheme::kDefault, 0, 10));
  const auto x = images<float>(n);
  const net::Plan big = net::build_plan(net::parse_arch(kArch6111), 10);
  const net::Plan small = net::build_plan(
      net::parse_arch("|nor_conv_1x1~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|nor_conv_1x1~1|skip_connect~2|"), 10);
  for (bool exact : {true, false}) {
    engine::NtkOptions opt;
    opt.exact = exact;
    const auto fresh = engine::cpu_ntk_gradients<float>(small, bank, x.data(), n, opt);
    engine::NtkGradients<float> reused;
    engine::cpu_ntk_gradients_into<float>(big, bank, x.data(), n, opt, reused);
    const size_t big_size = reused.g.size();
    engine::cpu_ntk_gradients_into<float>(small, bank, x.data(), n, opt, reused);
    EXPECT_EQ(reused.g.size(), big_size) << "the buffer is kept";
    ASSERT_EQ(reused.params, fresh.params);
    EXPECT_TRUE(std::equal(fresh.g.begin(), fresh.g.end(), reused.g.begin())) << "exact " << exact;
    EXPECT_EQ(engine::gram_fp64(reused), engine::gram_fp64(fresh));
  }
}

// The per-layer Gram (each block folded into Theta as soon as the backward has produced it, G
// never materialised) is the Gram of G: the same FP64 products summed in another order.
TEST(Ntk, PerLayerGramEqualsTheGramOfTheGradients) {
  const int n = 5;
  const net::Plan plan = net::build_plan(net::parse_arch(kArch6111), 10);
  const engine::TypedBank<float> bank(net::WeightBank::generate(net::InitScheme::kDefault, 0, 10));
  const auto x = images<float>(n);
  engine::NtkOptions fast, one_pass, chunked;
  fast.exact = false;
  one_pass.max_rows = n * n;  // every cotangent in one pass: per layer
  chunked.max_rows = 2 * n;   // several passes: G materialised
  ASSERT_EQ(engine::ntk_cotangents_per_pass(n, one_pass), n);
  ASSERT_LT(engine::ntk_cotangents_per_pass(n, chunked), n);
  for (const auto& opt : {fast, one_pass, chunked}) {
    const auto want = engine::gram_fp64(engine::cpu_ntk_gradients<float>(plan, bank, x.data(), n, opt));
    const auto got = engine::cpu_ntk_gram<float>(plan, bank, x.data(), n, opt);
    ASSERT_EQ(got.size(), want.size());
    double scale = 0;
    for (double v : want) scale = std::max(scale, std::abs(v));
    ASSERT_GT(scale, 0.0);
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_NEAR(got[i], want[i], 1e-12 * scale) << "entry " << i << " exact " << opt.exact << " rows " << opt.max_rows;
      EXPECT_EQ(got[i], got[(i % n) * n + i / n]) << "symmetric";
    }
  }
}

// A member's kappa is its own: the same bits alone, first or last in a population, whether the
// population runs a member per thread or one member after another.
TEST(Ntk, PopulationKappaDoesNotDependOnThePopulation) {
  const int n = 4;
  const std::vector<std::string> archs = {
      kArch6111, "|nor_conv_1x1~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|nor_conv_1x1~1|skip_connect~2|",
      "|avg_pool_3x3~0|+|nor_conv_3x3~0|none~1|+|nor_conv_1x1~0|skip_connect~1|nor_conv_3x3~2|"};
  std::vector<net::Plan> plans;
  for (const auto& a : archs) plans.push_back(net::build_plan(net::parse_arch(a), 10));
  const engine::TypedBank<float> bank(net::WeightBank::generate(net::InitScheme::kDefault, 0, 10));
  const auto x = images<float>(n);
  for (const bool exact : {false, true}) {
    engine::NtkOptions opt;
    opt.exact = exact;
    opt.max_rows = 2 * n;  // exact in several passes
    std::vector<const net::Plan*> all, reversed;
    for (const auto& p : plans) all.push_back(&p);
    reversed.assign(all.rbegin(), all.rend());
    const auto together = engine::cpu_ntk_population<float>(all, bank, x.data(), n, opt);
    const auto backwards = engine::cpu_ntk_population<float>(reversed, bank, x.data(), n, opt);
    ASSERT_EQ(together.size(), plans.size());
    for (size_t m = 0; m < plans.size(); ++m) {
      const auto alone = engine::cpu_ntk_population<float>({all[m]}, bank, x.data(), n, opt);
      ASSERT_FALSE(alone[0].ill_conditioned);
      EXPECT_GT(alone[0].kappa, 1.0);
      EXPECT_EQ(together[m].kappa, alone[0].kappa) << archs[m] << " exact " << exact;
      EXPECT_EQ(together[m].eigenvalues, alone[0].eigenvalues);
      EXPECT_EQ(backwards[plans.size() - 1 - m].kappa, alone[0].kappa);
      // and it is the kappa of the Gram of G
      const auto want = kernels::condition_number(
          engine::gram_fp64(engine::cpu_ntk_gradients<float>(plans[m], bank, x.data(), n, opt)), n);
      EXPECT_NEAR(alone[0].kappa, want.kappa, 1e-9 * want.kappa);
    }
  }
}
