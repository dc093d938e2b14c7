// A build without the CUDA backend (HYBRIDNAS_CUDA=OFF): no GPUs, and the CUDA backend's entry
// points throw BackendUnavailable, which the command line reports with exit code 4.
#include <string>

#include "engine/cuda_scorer.hpp"
#include "engine/devices.hpp"

namespace hn::engine {

namespace {
const char* const kNoCuda = "this build has no CUDA backend (built with HYBRIDNAS_CUDA=OFF)";
}

bool cuda_built() { return false; }

int gpu_count(std::string* why) {
  if (why) *why = kNoCuda;
  return 0;
}

std::vector<GpuDevice> list_gpus() { return {}; }

std::string gpu_driver_version() { return "none"; }

std::string cuda_backend_description() { return std::string("cuda: not built (HYBRIDNAS_CUDA=OFF)"); }

std::unique_ptr<Scorer> make_cuda_scorer(const ScoreSettings&, const ScoreInputs&) {
  throw BackendUnavailable(std::string(kNoCuda) + "; --backend cpu works here");
}

void ga_generation_device(const std::vector<uint8_t>&, const std::vector<double>&, uint32_t, PhiloxKey,
                          const GaParams&, std::vector<uint8_t>&) {
  throw BackendUnavailable(kNoCuda);
}

}  // namespace hn::engine
