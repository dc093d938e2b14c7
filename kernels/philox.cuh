// Philox4x32-10 counter-based generator (Salmon et al., SC'11), usable from host and device code.
//
// SPEC.md 2: key = (seed low 32 bits, seed high 32 bits); counter = (element index, slot id,
// purpose id, repeat index). Each call yields 4 words: word 0 makes a uniform, words 0 and 1 a
// normal (Box-Muller in double). The same function is cuRAND's PHILOX4_32_10 generator, which the
// tests use as an independent cross-check. Host callers compile this with -ffp-contract=off so the
// double-precision transforms round the same way everywhere.
#pragma once
#include <cstdint>
#include <cmath>

#if defined(__CUDACC__)
#define HN_HD __host__ __device__ __forceinline__
#else
#define HN_HD inline
#endif

namespace hn {

struct Philox4 {
  uint32_t v[4];
};

HN_HD void philox_mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  const uint64_t p = static_cast<uint64_t>(a) * static_cast<uint64_t>(b);
  hi = static_cast<uint32_t>(p >> 32);
  lo = static_cast<uint32_t>(p);
}

// Ten rounds of Philox4x32 on counter c with key (k0, k1).
HN_HD Philox4 philox4x32_10(Philox4 c, uint32_t k0, uint32_t k1) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    philox_mulhilo(kM0, c.v[0], hi0, lo0);
    philox_mulhilo(kM1, c.v[2], hi1, lo1);
    c = Philox4{{hi1 ^ c.v[1] ^ k0, lo1, hi0 ^ c.v[3] ^ k1, lo0}};
    k0 += kW0;
    k1 += kW1;
  }
  return c;
}

// What every random tensor is keyed by (SPEC.md 2); the numbers are part of the file formats of
// the score cache and must never change.
enum class Purpose : uint32_t {
  kDefaultInit = 0,        // conv / linear weights U(-1/sqrt(fan_in), +), linear bias U(-1/8, 1/8)
  kEntropyWeights = 1,     // MAE-DET entropy: N(0,1) conv weights, repeat index = repeat
  kEntropySeedWeights = 2, // entropy_seed: N(0,1)/sqrt(k*k*Cout) conv weights
  kGaussianInput = 3,      // --gaussian-input images, N(0,1)
  kNiNoise = 4,            // ni: input noise N(0, 0.05^2)
  kEntropyInput = 5,       // entropy: N(0,1) images, repeat index = repeat
  kEntropySeedInput = 6,   // entropy_seed: N(0,1) images
  kKaimingWeights = 7,     // AZ-NAS: conv / linear weights N(0,1) * sqrt(2 / fan_in)
  kAzInput = 8,            // AZ-NAS: N(0,1) images
  kAzCotangent = 9,        // AZ-NAS trainability: Rademacher cotangents, repeat index = block
  // Keyed by the search seed instead of the score seed:
  kReferenceSample = 16,   // the z-statistics reference sample
  kGa = 17,                // the GA's initial population and operators
  kRandomSearch = 18,
  kRea = 19,
};

struct PhiloxKey {
  uint32_t k0, k1;
};

HN_HD PhiloxKey philox_key(uint64_t seed) {
  return PhiloxKey{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)};
}

HN_HD Philox4 philox_draw(PhiloxKey key, uint32_t element, uint32_t slot, Purpose purpose,
                          uint32_t repeat) {
  return philox4x32_10(Philox4{{element, slot, static_cast<uint32_t>(purpose), repeat}}, key.k0,
                       key.k1);
}

// u = ((w >> 8) + 0.5) * 2^-24, in (0, 1): exact in float and double.
HN_HD double philox_uniform(uint32_t w) {
  return (static_cast<double>(w >> 8) + 0.5) * (1.0 / 16777216.0);
}

// Box-Muller on words 0 and 1, in double.
HN_HD double philox_normal(const Philox4& r) {
  const double u0 = philox_uniform(r.v[0]);
  const double u1 = philox_uniform(r.v[1]);
  return std::sqrt(-2.0 * std::log(u0)) * std::cos(6.283185307179586476925286766559 * u1);
}

// U(-bound, bound) from word 0, rounded once to float.
HN_HD float philox_uniform_pm(const Philox4& r, double bound) {
  return static_cast<float>(bound * (2.0 * philox_uniform(r.v[0]) - 1.0));
}

// scale * N(0,1), rounded once to float.
HN_HD float philox_normal_scaled(const Philox4& r, double scale) {
  return static_cast<float>(scale * philox_normal(r));
}

// Uniform integer in [0, n) from one word (multiply-shift; bias < n / 2^32, irrelevant here).
HN_HD uint32_t philox_below(uint32_t w, uint32_t n) {
  return static_cast<uint32_t>((static_cast<uint64_t>(w) * n) >> 32);
}

}  // namespace hn
