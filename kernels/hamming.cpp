#include "kernels/hamming.hpp"

#include <algorithm>
#include <type_traits>
#ifdef __AVX__
#include <immintrin.h>
#endif

#include "kernels/elementwise.cuh"

namespace hn::kernels {

template <typename T>
void pack_relu_codes(const T* x, int batch, int64_t units, uint64_t* codes) {
  const int64_t words = code_words(units);
#pragma omp parallel for schedule(static)
  for (int n = 0; n < batch; ++n) {
    const T* src = x + static_cast<int64_t>(n) * units;
    uint64_t* dst = codes + static_cast<int64_t>(n) * words;
    for (int64_t wd = 0; wd < words; ++wd) {
      uint64_t bits = 0;
      const int64_t base = wd * 64, end = std::min<int64_t>(64, units - base);
      int64_t b = 0;
#ifdef __AVX__
      if constexpr (std::is_same_v<T, float>) {
        // 8 codes per compare: x > 0 (ordered, so NaN gives 0, as relu_code does).
        const __m256 zero = _mm256_setzero_ps();
        for (; b + 8 <= end; b += 8) {
          const __m256 v = _mm256_loadu_ps(src + base + b);
          bits |= static_cast<uint64_t>(_mm256_movemask_ps(_mm256_cmp_ps(v, zero, _CMP_GT_OQ))) << b;
        }
      }
#endif
      for (; b < end; ++b) bits |= static_cast<uint64_t>(relu_code(src[base + b])) << b;
      dst[wd] = bits;
    }
  }
}

namespace {
// Runtime dispatch to the POPCNT instruction where the CPU has it (no -march=native needed).
__attribute__((target_clones("popcnt", "default"))) int64_t xor_popcount(const uint64_t* a,
                                                                          const uint64_t* b,
                                                                          int64_t words) {
  int64_t c0 = 0, c1 = 0, c2 = 0, c3 = 0;
  int64_t i = 0;
  for (; i + 4 <= words; i += 4) {
    c0 += __builtin_popcountll(a[i] ^ b[i]);
    c1 += __builtin_popcountll(a[i + 1] ^ b[i + 1]);
    c2 += __builtin_popcountll(a[i + 2] ^ b[i + 2]);
    c3 += __builtin_popcountll(a[i + 3] ^ b[i + 3]);
  }
  for (; i < words; ++i) c0 += __builtin_popcountll(a[i] ^ b[i]);
  return c0 + c1 + c2 + c3;
}
}  // namespace

void hamming_accumulate(const uint64_t* codes, int batch, int64_t units, int64_t weight, int64_t* k) {
  const int64_t words = code_words(units);
  // Each (n, m) pair with n <= m is owned by row n's iteration; rows are dealt round-robin so the
  // triangle's work is balanced. Integer sums: the result is exact whatever the split.
#pragma omp parallel for schedule(static, 1)
  for (int n = 0; n < batch; ++n)
    for (int m = n; m < batch; ++m) {
      const int64_t agree =
          units - xor_popcount(codes + static_cast<int64_t>(n) * words,
                               codes + static_cast<int64_t>(m) * words, words);
      k[static_cast<int64_t>(n) * batch + m] += weight * agree;
      if (m != n) k[static_cast<int64_t>(m) * batch + n] += weight * agree;
    }
}

template void pack_relu_codes<float>(const float*, int, int64_t, uint64_t*);
template void pack_relu_codes<double>(const double*, int, int64_t, uint64_t*);

}  // namespace hn::kernels
