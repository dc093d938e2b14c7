// engine::backends_description (engine/devices.hpp): the CPU backend's libraries here, the CUDA
// backend's from engine/devices.cpp or engine/no_cuda.cpp.
#include <omp.h>

#include <string>

#include "engine/devices.hpp"

extern "C" char* openblas_get_config(void);

namespace hn::engine {

std::string cuda_backend_description();  // engine/devices.cpp, engine/no_cuda.cpp

std::string backends_description() {
  return std::string("cpu: OpenBLAS (") + openblas_get_config() + "), OpenMP " + std::to_string(_OPENMP) +
         ", " + std::to_string(omp_get_max_threads()) + " threads\n" + cuda_backend_description();
}

}  // namespace hn::engine
