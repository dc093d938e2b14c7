// The NASWOT Hamming kernel on the CPU: ReLU codes bit-packed per image, K accumulated with
// popcount as exact integers (SPEC.md 3). CPU twin of kernels/hamming.cu.
#pragma once
#include <cstdint>

namespace hn::kernels {

inline int64_t code_words(int64_t units) { return (units + 63) / 64; }

// codes[n * words + u / 64] bit (u % 64) = x[n * units + u] > 0; padding bits are 0.
template <typename T>
void pack_relu_codes(const T* x, int batch, int64_t units, uint64_t* codes);

// K[n][m] += weight * (units - popcount(c_n XOR c_m)) for all n, m (K is batch x batch, row-major).
void hamming_accumulate(const uint64_t* codes, int batch, int64_t units, int64_t weight, int64_t* k);

}  // namespace hn::kernels
