// NASWOT on the GPU: ReLU codes packed with warp ballots, the Hamming kernel by popcount (one warp
// per (n, m) pair, exact integers), and the FP64 log-determinant's last step after cuSOLVER's
// Cholesky. CPU twins: kernels/hamming.cpp, kernels/linalg.cpp; tests: tests/test_gpu.cpp.
#include "kernels/cuda_check.hpp"
#include "kernels/elementwise.cuh"
#include "kernels/gpu_device_ops.cuh"
#include "kernels/gpu_kernels.cuh"
#include "kernels/nvtx.hpp"

namespace hn::kernels::gpu {

namespace {

// Thread i reads element i; each warp's ballot is one 32-bit word (bit lane = element 32w+lane),
// the same bit order as the CPU's 64-bit words on a little-endian host.
__global__ void pack_codes_kernel(const float* x, int64_t total, uint32_t* codes) {
  detail::pack_codes_loop(x, total, codes);
}

// Block = 8 warps = 8 pairs at a time; blockIdx.x = row n.
__global__ void hamming_kernel(const uint32_t* codes, int batch, int64_t words, int64_t units,
                               int64_t w1, int64_t w2, int64_t* k, int64_t* k_once) {
  detail::hamming_row(codes, batch, words, units, blockIdx.x, w1, w2, k, k_once);
}

__global__ void int64_to_double_kernel(const int64_t* x, int64_t n, double* y) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = static_cast<double>(x[i]);
}

// One thread: n is at most a few hundred.
__global__ void logdet_finalize_kernel(const double* l, const int64_t* k, int n, const int* info, double* out) {
  detail::logdet_finalize(l, k, n, *info, out);
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
