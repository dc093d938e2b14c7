// The population schedule (the population-executor design): a population of architectures run in
// lockstep through the network skeleton. At each skeleton position (net::Step::pos) every member
// that has a step there joins one grouped step: one convolution call over all their images with
// the position's weights, one segmented BN, one ReLU pass, and so on. Train-mode BN statistics,
// ReLU codes, logits and every proxy stay per member. Backend-independent: the CPU executor
// (engine/cpu_forward) runs it, and its counts say what a GPU executor would launch.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/cpu_forward.hpp"
#include "engine/settings.hpp"
#include "net/plan.hpp"

namespace hn::engine {

// One member's part in a grouped step: the value ids of its own plan.
struct MemberStep {
  int member = -1;  // index into the schedule's members
  int in0 = -1, in1 = -1, out = -1;
  int bn = -1, site = -1, block = -1;  // as in net::Step
  bool materialize = true;             // its output is needed (a ReLU reporting a site may not be)
};

struct GroupStep {
  net::StepKind kind;
  int pos = -1;
  int slot = -1, k = 1, stride = 1, pad = 0;  // kConv (one weight tensor for the whole group)
  net::Shape in_shape, out_shape;             // per image, the same for every member
  std::vector<MemberStep> members;
};

// What one population step costs on a device executor, from the schedule alone (docs: the
// population-executor issue). Counts per population; divide by members for per-architecture.
struct ScheduleCounts {
  int64_t groups = 0;          // grouped steps
  int64_t launches = 0;        // kernel launches + library calls of a grouped executor (below)
  int64_t library_calls = 0;   // cuDNN convolutions + cuBLAS GEMMs
  int64_t bytes = 0;           // activation bytes read + written (FP32), weights once per group
  int64_t per_member_launches = 0;  // the same work run one member at a time (today's design)
  int64_t per_member_library_calls = 0;
};

class PopulationSchedule {
 public:
  // Lowers each member's plan for `opt` (engine::lower_plan) and merges their steps by position.
  // `plans` must outlive the schedule; none may be degenerate (degenerate members never run).
  PopulationSchedule(const std::vector<const net::Plan*>& plans, const ForwardOptions& opt);

  size_t size() const { return plans_.size(); }
  const net::Plan& plan(size_t m) const { return *plans_[m]; }
  const LoweredPlan& lowered(size_t m) const { return lowered_[m]; }
  const std::vector<GroupStep>& steps() const { return steps_; }
  // For member m and value id v: the index of the last grouped step that reads v (-1: none).
  int last_use(size_t m, int v) const { return last_use_[m][v]; }
  // Whether member m's value v (a BN output) is read by exactly one grouped step and that step
  // is an add (a node sum): a device executor may then fuse the BN apply into the add.
  bool feeds_only_an_add(size_t m, int v) const {
    return readers_[m][v] == 1 && last_use_[m][v] >= 0 && steps_[last_use_[m][v]].kind == net::StepKind::kAdd;
  }

  // Counts for images per member `batch`, of the CUDA executor of this schedule
  // (engine/cuda_population.cpp), simulated step by step: a conv group is one cuDNN call, plus a
  // gather launch when its members' inputs are not one contiguous tensor in group order; every
  // other group one segmented launch per 512 members (a BN group two: statistics, apply; a ReLU
  // site `site_launches` more: code packing and popcount for naswot, one |x| sum for
  // entropy_seed; an entropy block end five); the input costs nothing; a step whose members all
  // read one tensor runs once. per_member_* are the same executor run one member at a time.
  // The per-population extras (batched log-determinants, ni's sums) are in schedule_counts.
  ScheduleCounts counts(int batch, int site_launches = 2) const;

  // Counts of the NTK proxies on this schedule (built with ntk_forward_options()) at `images`
  // images, of engine/cuda_ntk.cpp's executor simulated step by step: the forward pass keeping
  // every value (no fused BN applies), then per grouped backward step one segmented launch for the
  // members whose gradient is fresh and one for those adding to theirs, a conv group one cuDNN
  // backward-data call (plus a gather when the members' dY are not one tensor, an add for members
  // whose dX exists), one im2col, the exact NTK's transpose, one strided-batched GEMM, and for each
  // parameter group the per-layer Gram (FP64 conversion, two pointer uploads, one batched DGEMM);
  // the seed, Theta's zeroing and the batched eigensolve with its two copies once per population.
  // Bytes: FP32 activations and gradients, FP64 Gram operands, every GEMM operand read once.
  ScheduleCounts ntk_counts(int images, bool exact) const;

 private:
  std::vector<const net::Plan*> plans_;
  std::vector<LoweredPlan> lowered_;
  std::vector<GroupStep> steps_;
  std::vector<std::vector<int>> last_use_, readers_;
  bool report_sites_ = false, rescale_ = false, keep_values_ = false;
  ScheduleCounts simulate(const std::vector<char>& active, int batch, int site_launches) const;
  ScheduleCounts simulate_ntk(const std::vector<char>& active, int images, bool exact) const;
};

// The counts of every pass the raw proxies of `s` need for population `genes` (degenerate members
// left out): naswot / naswot_once / ni's clean pass with codes, ni's noisy pass, entropy's passes
// (one per repeat, at entropy_batch), entropy_seed's pass, and the NTK proxies' forward and
// backward passes (ntk_counts, at min(64, batch) images).
ScheduleCounts schedule_counts(const std::vector<net::Arch>& genes, const ScoreSettings& s);

}  // namespace hn::engine
