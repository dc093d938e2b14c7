// engine/devices.hpp over kernels/gpu_resources (builds with the CUDA backend; without it,
// engine/no_cuda.cpp).
#include "engine/devices.hpp"

#include "kernels/gpu_resources.hpp"

namespace hn::engine {

bool cuda_built() { return true; }

int gpu_count(std::string* why) { return gpu::device_count(why); }

std::vector<GpuDevice> list_gpus() {
  std::vector<GpuDevice> out;
  for (const auto& d : gpu::list_devices())
    out.push_back(GpuDevice{d.index, d.name, d.cc_major, d.cc_minor, d.multiprocessors, d.memory_bytes,
                            d.peak_fp32_tflops});
  return out;
}

std::string gpu_driver_version() { return gpu::driver_version(); }

std::string cuda_backend_description() {
  return "cuda: " + gpu::library_versions() + ", driver " + gpu::driver_version();
}

}  // namespace hn::engine
