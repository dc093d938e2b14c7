// The GPUs the CUDA backend can use, for the command line (cli/ never reaches kernels/): count,
// list and driver version. In a build without the CUDA backend (HYBRIDNAS_CUDA=OFF) there are
// none, and `why` says the build is the reason.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace hn::engine {

// Whether this build has the CUDA backend.
bool cuda_built();

struct GpuDevice {
  int index = 0;
  std::string name;
  int cc_major = 0, cc_minor = 0;
  int multiprocessors = 0;
  size_t memory_bytes = 0;
  double peak_fp32_tflops = 0.0;  // SMs x FP32 lanes x 2 x clock (an estimate for FLOP/s reports)
};

// Number of usable GPUs: 0 without the CUDA backend, a driver or a device; `why` says which.
int gpu_count(std::string* why = nullptr);
// Every usable GPU (empty when gpu_count() is 0).
std::vector<GpuDevice> list_gpus();
// "12.4"-style driver version, "none" without a driver or the CUDA backend.
std::string gpu_driver_version();

// What `hybridnas --version` prints after the version line: the backends of this build and the
// libraries each runs on (OpenBLAS's build configuration, OpenMP; CUDA runtime, cuBLAS, cuDNN,
// built-with and loaded versions, and the driver), one backend per line.
std::string backends_description();

// Empty when this CPU has the instruction set the CPU kernels were built for (CMake's
// HYBRIDNAS_CPU_ARCH, x86-64-v3 by default); else what is missing and how to rebuild. Checked by
// the command line before anything runs, so such a CPU gets a message instead of SIGILL.
std::string cpu_isa_problem();

}  // namespace hn::engine
