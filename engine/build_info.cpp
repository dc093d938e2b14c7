// engine::backends_description (engine/devices.hpp): the CPU backend's libraries here, the CUDA
// backend's from engine/devices.cpp or engine/no_cuda.cpp.
#include <omp.h>

#include <string>

#include "engine/devices.hpp"
#include "kernels/onednn_conv.hpp"

extern "C" char* openblas_get_config(void);

namespace hn::engine {

std::string cuda_backend_description();  // engine/devices.cpp, engine/no_cuda.cpp

std::string backends_description() {
  const std::string dnnl = kernels::onednn_description();
  return std::string("cpu: OpenBLAS (") + openblas_get_config() + ")" + (dnnl.empty() ? "" : ", " + dnnl + " for 3x3 convolutions") + ", OpenMP " + std::to_string(_OPENMP) +
         ", " + std::to_string(omp_get_max_threads()) + " threads\n" + cuda_backend_description();
}

std::string cpu_isa_problem() {
#if defined(HYBRIDNAS_CPU_ARCH) && (defined(__x86_64__) || defined(_M_X64))
  __builtin_cpu_init();
  const std::string arch = HYBRIDNAS_CPU_ARCH;
  bool ok = true;
  // The levels' defining features (names both GCC and clang know).
  const bool v2 = __builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("popcnt");
  const bool v3 = v2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                  __builtin_cpu_supports("bmi2");
  const bool v4 = v3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                  __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  if (arch == "x86-64-v2") ok = v2;
  else if (arch == "x86-64-v3") ok = v3;
  else if (arch == "x86-64-v4") ok = v4;
  if (!ok)
    return "this CPU lacks the " + arch + " instruction set the CPU kernels were built for; rebuild with "
           "cmake -DHYBRIDNAS_CPU_ARCH=x86-64";
#endif
  return "";
}

}  // namespace hn::engine
