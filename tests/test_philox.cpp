// Philox4x32-10 (SPEC.md 2): the known-answer vector, cuRAND's host generator as an independent
// implementation, and the transforms to uniforms and normals.
#include <gtest/gtest.h>
#if HYBRIDNAS_WITH_CUDA
#include <curand.h>
#endif

#include <cmath>

#include "kernels/philox.cuh"
#include "net/weight_bank.hpp"

using namespace hn;

TEST(Philox, KnownAnswer) {
  const Philox4 r = philox4x32_10(Philox4{{0, 0, 0, 0}}, 0, 0);
  EXPECT_EQ(r.v[0], 0x6627e8d5u);
  EXPECT_EQ(r.v[1], 0xe169c58du);
  EXPECT_EQ(r.v[2], 0xbc57ac4cu);
  EXPECT_EQ(r.v[3], 0x9b00dbd8u);
}

#if HYBRIDNAS_WITH_CUDA  // cuRAND ships with the CUDA toolkit: not in a HYBRIDNAS_CUDA=OFF build
// cuRAND's host generator (runs without a GPU): output i for seed s is word (i mod 4) of the
// block for counter (floor(b / 65536), 0, b mod 65536, 0), key (s low, s high), b = floor(i / 4).
TEST(Philox, MatchesCurandHostGenerator) {
  for (const unsigned long long seed : {0ULL, 1ULL, 0x123456789abcdefULL}) {
    curandGenerator_t gen;
    ASSERT_EQ(curandCreateGeneratorHost(&gen, CURAND_RNG_PSEUDO_PHILOX4_32_10), CURAND_STATUS_SUCCESS);
    ASSERT_EQ(curandSetPseudoRandomGeneratorSeed(gen, seed), CURAND_STATUS_SUCCESS);
    const size_t n = 4 * 70000;  // crosses the 65536-block boundary of the counter layout
    std::vector<unsigned int> words(n);
    ASSERT_EQ(curandGenerate(gen, words.data(), n), CURAND_STATUS_SUCCESS);
    curandDestroyGenerator(gen);
    const PhiloxKey key = philox_key(seed);
    for (size_t i = 0; i < n; i += 997) {
      const uint32_t b = static_cast<uint32_t>(i / 4);
      const Philox4 r = philox4x32_10(Philox4{{b / 65536, 0, b % 65536, 0}}, key.k0, key.k1);
      ASSERT_EQ(r.v[i % 4], words[i]) << "seed " << seed << " output " << i;
    }
  }
}
#endif

TEST(Philox, UniformIsStrictlyInsideTheUnitInterval) {
  EXPECT_EQ(philox_uniform(0), 0.5 / 16777216.0);
  EXPECT_EQ(philox_uniform(0xffffffffu), 1.0 - 0.5 / 16777216.0);
  EXPECT_EQ(philox_uniform(0x80000000u), 0.5 + 0.5 / 16777216.0);
}

TEST(Philox, NormalDrawsHaveUnitMoments) {
  const PhiloxKey key = philox_key(7);
  double s = 0, s2 = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const double z = philox_normal(philox_draw(key, i, 0, Purpose::kGaussianInput, 0));
    ASSERT_TRUE(std::isfinite(z));
    s += z;
    s2 += z * z;
  }
  EXPECT_NEAR(s / n, 0.0, 0.01);
  EXPECT_NEAR(s2 / n, 1.0, 0.01);
}

TEST(Philox, BelowCoversTheRange) {
  EXPECT_EQ(philox_below(0, 10), 0u);
  EXPECT_EQ(philox_below(0xffffffffu, 10), 9u);
}

TEST(WeightBank, KeyedBySlotSeedAndPurpose) {
  using namespace hn::net;
  const WeightBank a = WeightBank::generate(InitScheme::kDefault, 0, 10);
  const WeightBank b = WeightBank::generate(InitScheme::kDefault, 0, 10);
  const WeightBank c = WeightBank::generate(InitScheme::kDefault, 1, 10);
  EXPECT_GT(a.total_floats(), 1600000);
  EXPECT_LT(a.total_floats(), 1800000);
  EXPECT_EQ(a.slot(5), b.slot(5));
  EXPECT_NE(a.slot(5), c.slot(5));
  // Element i of slot s is Philox counter (i, s, purpose, repeat): recompute one by hand.
  const SlotInfo info = slot_info(42, 10);
  const Philox4 r = philox_draw(philox_key(0), 17, 42, Purpose::kDefaultInit, 0);
  EXPECT_EQ(a.slot(42)[17], philox_uniform_pm(r, 1.0 / std::sqrt(double(info.fan_in()))));
  // Default init bounds.
  for (float w : a.slot(kSlotStem)) EXPECT_LE(std::abs(w), 1.0 / std::sqrt(27.0));
  for (float w : a.slot(kSlotLinearBias)) EXPECT_LE(std::abs(w), 0.125f);
  // Entropy weights: fresh per repeat.
  const WeightBank e0 = WeightBank::generate(InitScheme::kEntropy, 0, 10, 0);
  const WeightBank e1 = WeightBank::generate(InitScheme::kEntropy, 0, 10, 1);
  EXPECT_NE(e0.slot(3), e1.slot(3));
}
