// The CUDA backend of the scorer: the same plans, weight banks and inputs as the CPU backend
// (generated on the host once per run and uploaded), convolutions through cuDNN, everything else
// through kernels/ launchers. A population is scored on several streams ("lanes") at once, one
// host thread per lane; inside a network's forward or backward nothing synchronises the host.
#pragma once
#include <memory>

#include "engine/ga_ops.cuh"
#include "engine/scorer.hpp"

namespace hn::engine {

// Throws BackendUnavailable without a usable GPU, when the GPU setup fails (a GpuError) or in a
// build without the CUDA backend; std::invalid_argument for settings the backend does not take.
std::unique_ptr<Scorer> make_cuda_scorer(const ScoreSettings& settings, const ScoreInputs& inputs);

// The GA generation step on the device (same functor as ga_generation_host); BackendUnavailable
// in a build without the CUDA backend.
void ga_generation_device(const std::vector<uint8_t>& population, const std::vector<double>& fitness,
                          uint32_t generation, PhiloxKey key, const GaParams& params,
                          std::vector<uint8_t>& children);

}  // namespace hn::engine
