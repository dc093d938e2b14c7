// The CUDA executor of the population schedule (engine/population.hpp): a population's forward
// pass walks the skeleton once on one stream; at each grouped step, one cuDNN call runs the
// convolution for every member's images (batch = members x B, the position's weights) and one
// segmented launch runs each other step for all members (kernels/gpu_population.cuh). BN
// statistics, ReLU codes, block stds and logits stay per member. No host synchronisation inside:
// every allocation is stream-ordered. The CPU executor (engine/cpu_forward) is the reference.
#pragma once
#include <functional>
#include <memory>
#include <vector>

#include "engine/cpu_forward.hpp"
#include "engine/cuda_lane.hpp"
#include "engine/population.hpp"

namespace hn::engine {

// What a forward pass reports while it runs (all optional).
struct GpuPopulationHooks {
  // A grouped ReLU site step: members (schedule indices), their site ids, and their
  // pre-activations (B x units each, device memory valid during the call's stream work).
  std::function<void(const std::vector<int>& members, const std::vector<int>& sites,
                     const std::vector<const float*>& pre, int64_t units)>
      on_sites;
  // rescale_blocks (entropy): where member m's std of block b is written, and its flag (set when
  // a std is 0 or not finite; the member's later blocks are then meaningless).
  std::function<double*(int member, int block)> block_std;
  std::function<int*(int member)> block_flag;
};

struct GpuPopulationForward {
  // need_logits: member m's logits (B x classes) on the device, alive as long as this object.
  std::vector<const float*> logits;
  // keep_values (the NTK's backward): member m's activations by value id (null: never produced;
  // members whose inputs were one tensor share it) and per BN layer its FP64 invstd (c doubles).
  // BN applies are then never fused into node sums (every BN output exists).
  std::vector<std::vector<const float*>> values;
  std::vector<std::vector<const double*>> bn_invstd;
  std::vector<std::shared_ptr<gpu::StreamBuffer<float>>> keep;
  std::vector<std::shared_ptr<gpu::StreamBuffer<double>>> keep_stats;
};

// Runs schedule S on lane's stream for B images x (device, B x 3 x 32 x 32) with `bank`'s weights.
// With keep_values every activation and BN invstd stays alive in the result. Throws GpuError
// (status cudaErrorMemoryAllocation when device memory runs out: the caller splits the
// population and runs the halves).
GpuPopulationForward gpu_forward_population(Lane& lane, const PopulationSchedule& S, const DeviceBank& bank,
                                            const float* x, int batch, const ForwardOptions& opt,
                                            const GpuPopulationHooks& hooks);

}  // namespace hn::engine
