// Pieces of the segmented kernels (kernels/gpu_population.cu, gpu_population_backward.cu): a
// launch runs one grouped step for up to kSegMax members, segment j's pointers in a by-value table
// (no pointer array copied to the device), blockIdx.y = segment.
#pragma once
#include <algorithm>
#include <cstdint>

#include "kernels/gpu_common.cuh"

namespace hn::kernels::gpu::detail {

constexpr int kSegMax = 512;  // segments per launch: 4 x 512 pointers = 16 KiB of parameters (CUDA 12.1+ allows 32 KiB)

struct Table {
  const void* a[kSegMax];
  const void* b[kSegMax];
  void* c[kSegMax];
  void* d[kSegMax];
  int count;
};

// Grid-stride over (segment, element): blockIdx.y = segment.
#define HN_SEG_LOOP(i, per) \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (per); i += int64_t(gridDim.x) * blockDim.x)

inline dim3 seg_grid(int64_t per, int count) {
  const int64_t b = (per + kThreads - 1) / kThreads;
  return dim3(static_cast<unsigned>(std::clamp<int64_t>(b, 1, 4096)), static_cast<unsigned>(count));
}

// Calls launch(table, first segment) for each chunk of at most kSegMax segments; fill(table, j, g)
// puts segment g into the table's slot j.
template <typename Fill, typename Launch>
void chunked(int count, Fill fill, Launch launch) {
  for (int start = 0; start < count; start += kSegMax) {
    Table t{};
    t.count = std::min(kSegMax, count - start);
    for (int j = 0; j < t.count; ++j) fill(t, j, start + j);
    launch(t, start);
  }
}

}  // namespace hn::kernels::gpu::detail
