#include "kernels/gpu_resources.hpp"

#include <cublas_v2.h>
#include <cudnn.h>

namespace hn::gpu {

int device_count(std::string* why) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    if (why) {
      *why = e == cudaErrorInsufficientDriver || e == cudaErrorNoDevice
                 ? "no NVIDIA driver or GPU on this machine (" + std::string(cudaGetErrorName(e)) + ")"
                 : std::string("CUDA reports ") + cudaGetErrorName(e) + ": " + cudaGetErrorString(e);
    }
    cudaGetLastError();  // clear the sticky error state
    return 0;
  }
  if (n == 0 && why) *why = "the CUDA driver sees no GPU";
  return n;
}

std::vector<DeviceInfo> list_devices() {
  std::vector<DeviceInfo> out;
  const int n = device_count();
  for (int i = 0; i < n; ++i) {
    cudaDeviceProp p{};
    CUDA_CHECK(cudaGetDeviceProperties(&p, i));
    int clock_khz = 0;
    cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, i);
    // 128 FP32 lanes per SM on sm_80+ consumer/Hopper parts; an estimate, stated as such.
    const double lanes = p.major >= 8 ? 128.0 : 64.0;
    out.push_back(DeviceInfo{i, p.name, p.major, p.minor, p.multiProcessorCount, p.totalGlobalMem,
                             p.multiProcessorCount * lanes * 2.0 * clock_khz * 1e3 / 1e12});
  }
  return out;
}

std::string driver_version() {
  int v = 0;
  if (cudaDriverGetVersion(&v) != cudaSuccess || v == 0) {  // 0: no driver installed
    cudaGetLastError();
    return "none";
  }
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

namespace {
std::string cuda_version_text(int v) { return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10); }
std::string cudnn_version_text(size_t v) {
  // cuDNN 9: major*10000 + minor*100 + patch; cuDNN 8: major*1000 + minor*100 + patch.
  const size_t major = v >= 90000 ? v / 10000 : v / 1000;
  const size_t rest = v >= 90000 ? v % 10000 : v % 1000;
  return std::to_string(major) + "." + std::to_string(rest / 100) + "." + std::to_string(rest % 100);
}
}  // namespace

std::string library_versions() {
  int rt = 0;
  const std::string runtime = cudaRuntimeGetVersion(&rt) == cudaSuccess ? cuda_version_text(rt) : "unknown";
  cudaGetLastError();
  int major = 0, minor = 0, patch = 0;
  cublasGetProperty(MAJOR_VERSION, &major);
  cublasGetProperty(MINOR_VERSION, &minor);
  cublasGetProperty(PATCH_LEVEL, &patch);
  return "CUDA runtime " + runtime + " (built with " + cuda_version_text(CUDART_VERSION) + "), cuBLAS " +
         std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch) + ", cuDNN " +
         cudnn_version_text(cudnnGetVersion()) + " (built with " + cudnn_version_text(CUDNN_VERSION) + ")";
}

}  // namespace hn::gpu
