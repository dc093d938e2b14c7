// Convolutions through cuDNN (its own translation unit): descriptors and algorithms are chosen
// once per shape from cuDNN's heuristics, deterministic algorithms only, no autotuning; FMA math
// (no TF32) unless tf32 is set. One ConvRunner per stream.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <tuple>

#include "kernels/cpu_ops.hpp"  // ConvShape
#include "kernels/gpu_resources.hpp"

namespace hn::kernels::gpu {

class ConvRunner {
 public:
  ConvRunner(cudaStream_t stream, bool tf32);
  ~ConvRunner();
  ConvRunner(const ConvRunner&) = delete;
  ConvRunner& operator=(const ConvRunner&) = delete;

  // y = conv(x, w) for s.batch images (NCHW, w is [cout, cin, k, k]).
  void forward(const ConvShape& s, const float* x, const float* w, float* y);
  // dx += conv_transpose(dy, w).
  void backward_data_accumulate(const ConvShape& s, const float* dy, const float* w, float* dx) {
    backward_data(s, dy, w, dx, true);
  }
  // dx = conv_transpose(dy, w) (+ dx when `accumulate`; else dx's contents are ignored).
  void backward_data(const ConvShape& s, const float* dy, const float* w, float* dx, bool accumulate);
  // Names of the algorithms chosen so far (for the benchmark's report).
  std::string algorithms() const;

 private:
  struct Plan;
  Plan& plan(const ConvShape& s);
  void* workspace(size_t bytes);

  cudaStream_t stream_;
  bool tf32_;
  hn::gpu::CudnnHandle handle_;
  std::map<std::tuple<int, int, int, int, int, int, int, int>, std::unique_ptr<Plan>> plans_;
  hn::gpu::StreamBuffer<char> workspace_;
};

}  // namespace hn::kernels::gpu
