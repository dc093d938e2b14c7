// NASWOT on the GPU: ReLU codes packed with warp ballots, the Hamming kernel by popcount (one warp
// per (n, m) pair, exact integers), and the FP64 log-determinant's last step after cuSOLVER's
// Cholesky. CPU twins: kernels/hamming.cpp, kernels/linalg.cpp; tests: tests/test_gpu.cpp.
#include "kernels/cuda_check.hpp"
#include "kernels/elementwise.cuh"
#include "kernels/gpu_kernels.cuh"
#include "kernels/nvtx.hpp"

namespace hn::kernels::gpu {

namespace {

// Thread i reads element i; each warp's ballot is one 32-bit word (bit lane = element 32w+lane),
// the same bit order as the CPU's 64-bit words on a little-endian host.
__global__ void pack_codes_kernel(const float* x, int64_t total, uint32_t* codes) {
  const int64_t words = (total + 31) / 32;
  for (int64_t base = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) & ~int64_t(31);
       base < words * 32; base += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = base + (threadIdx.x & 31);
    const bool bit = i < total && relu_code(x[i]);
    const uint32_t word = __ballot_sync(0xffffffffu, bit);
    if ((threadIdx.x & 31) == 0) codes[base / 32] = word;
  }
}

// Block = 8 warps = 8 pairs at a time; blockIdx.x = row n; warps walk m = n + warp, n + warp + 8...
__global__ void hamming_kernel(const uint32_t* codes, int batch, int64_t words, int64_t units,
                               int64_t w1, int64_t w2, int64_t* k, int64_t* k_once) {
  const int n = blockIdx.x;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const uint32_t* a = codes + static_cast<int64_t>(n) * words;
  for (int m = n + warp; m < batch; m += blockDim.x / 32) {
    const uint32_t* b = codes + static_cast<int64_t>(m) * words;
    int64_t diff = 0;
    for (int64_t i = lane; i < words; i += 32) diff += __popc(a[i] ^ b[i]);
    for (int off = 16; off > 0; off >>= 1) diff += __shfl_down_sync(0xffffffffu, diff, off);
    if (lane == 0) {
      const int64_t agree = units - diff;
      k[int64_t(n) * batch + m] += w1 * agree;
      k_once[int64_t(n) * batch + m] += w2 * agree;
      if (m != n) {
        k[int64_t(m) * batch + n] += w1 * agree;
        k_once[int64_t(m) * batch + n] += w2 * agree;
      }
    }
  }
}

__global__ void int64_to_double_kernel(const int64_t* x, int64_t n, double* y) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = static_cast<double>(x[i]);
}

// One thread: n is at most a few hundred.
__global__ void logdet_finalize_kernel(const double* l, const int64_t* k, int n, const int* info, double* out) {
  double max_diag = 0.0;
  for (int i = 0; i < n; ++i) max_diag = fmax(max_diag, static_cast<double>(k[int64_t(i) * n + i]));
  bool singular = *info != 0 || !(max_diag > 0.0);
  double sum = 0.0;
  for (int j = 0; j < n && !singular; ++j) {
    const double ljj = l[int64_t(j) * n + j];
    const double pivot2 = ljj * ljj;
    if (!(pivot2 > 1e-12 * max_diag) || !isfinite(pivot2)) singular = true;
    else sum += log(pivot2);
  }
  out[0] = sum;
  out[1] = singular ? 1.0 : 0.0;
}

}  // namespace

void launch_pack_codes(const float* x, int batch, int64_t units, uint32_t* codes, cudaStream_t s) {
  HN_NVTX_RANGE("pack_codes");
  const int64_t total = static_cast<int64_t>(batch) * units;
  const int64_t blocks = std::min<int64_t>((total + 255) / 256, 65535 * 8);
  pack_codes_kernel<<<static_cast<int>(blocks), 256, 0, s>>>(x, total, codes);
  HN_CHECK_LAUNCH(s, "launch_pack_codes");
}

void launch_hamming_accumulate(const uint32_t* codes, int batch, int64_t units, int64_t w1,
                               int64_t w2, int64_t* k, int64_t* k_once, cudaStream_t s) {
  HN_NVTX_RANGE("hamming_accumulate");
  hamming_kernel<<<batch, 256, 0, s>>>(codes, batch, (units + 31) / 32, units, w1, w2, k, k_once);
  HN_CHECK_LAUNCH(s, "launch_hamming_accumulate");
}

void launch_int64_to_double(const int64_t* x, int64_t n, double* y, cudaStream_t s) {
  int64_to_double_kernel<<<static_cast<int>(std::min<int64_t>((n + 255) / 256, 65535)), 256, 0, s>>>(x, n, y);
  HN_CHECK_LAUNCH(s, "launch_int64_to_double");
}

void launch_logdet_finalize(const double* l, const int64_t* k_original, int n, const int* info,
                            double* out, cudaStream_t s) {
  logdet_finalize_kernel<<<1, 1, 0, s>>>(l, k_original, n, info, out);
  HN_CHECK_LAUNCH(s, "launch_logdet_finalize");
}

}  // namespace hn::kernels::gpu
