// The NTK proxies on the population schedule, CUDA backend (SPEC.md 3; the CPU reference is
// engine/cpu_ntk). One grouped forward pass of the population keeps every activation; the
// backward walks the schedule's grouped steps in reverse, each one call for all the members that
// share it: one cuDNN backward-data convolution over every member's gradient rows, one batched
// GEMM for the weight gradients (ntk_fast: strided over (member, image) on a per-image im2col;
// exact: one GEMM per member with N = cotangents x C_out and K = images x positions, strided over
// members), one segmented launch for each
// other step (kernels/gpu_population.cuh). All cotangents of a member run in one pass, gradients
// are written by their first contribution (no zeroing), and Theta is accumulated per layer in
// FP64 (each parameter group's gradients folded in by one batched DGEMM as soon as they exist; G
// is never materialised). The eigenvalues of every member's Theta come from one batched solve
// (cusolverDnXsyevBatched).
#pragma once
#include <cstdint>

#include "engine/cuda_lane.hpp"
#include "engine/population.hpp"

namespace hn::engine {

// Device bytes one member of `plan` needs in gpu_ntk_population at `images` images (forward
// activations kept, the backward's live gradients, im2col and transposes, its Gram): a sizing
// estimate, not a bound.
int64_t gpu_ntk_bytes_per_member(const net::Plan& plan, int images, bool exact);

// For every member m of S (built with ntk_forward_options()), the eigenvalues (ascending, FP64) of
// its Theta over the first `images` images of x (device, images x 3 x 32 x 32; images <= 64) to
// eig + m * eig_pitch (bytes apart, device memory), and cuSOLVER's info to info + m * info_pitch.
// Stream-ordered on lane's stream (no synchronisation). Throws GpuError (cudaErrorMemoryAllocation
// when device memory runs out: the caller splits the population).
void gpu_ntk_population(Lane& lane, const PopulationSchedule& S, const DeviceBank& bank, const float* x, int images,
                        bool exact, double* eig, int64_t eig_pitch, int* info, int64_t info_pitch);

}  // namespace hn::engine
