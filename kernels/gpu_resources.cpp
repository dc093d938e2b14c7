#include "kernels/gpu_resources.hpp"

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
  if (cudaDriverGetVersion(&v) != cudaSuccess) {
    cudaGetLastError();
    return "none";
  }
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

}  // namespace hn::gpu
