// Pieces of the CUDA backend shared by the scorer (engine/cuda_scorer.cpp) and the population
// executor (engine/cuda_population.cpp): a lane (stream, library handles, cuDNN plans) and a weight
// bank on the device.
#pragma once
#include <vector>

#include "kernels/cudnn_conv.hpp"
#include "kernels/gpu_resources.hpp"
#include "net/weight_bank.hpp"

namespace hn::engine {

namespace kg = kernels::gpu;

template <typename T>
gpu::DeviceBuffer<T> upload(const std::vector<T>& v) {
  gpu::DeviceBuffer<T> d(v.size());
  if (!v.empty()) CUDA_CHECK(cudaMemcpy(d.get(), v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}

// The same, stream-ordered on s (a stream-ordered allocation; from pageable memory the copy is
// staged before cudaMemcpyAsync returns, so `v` may go right after).
template <typename T>
gpu::StreamBuffer<T> upload_async(const std::vector<T>& v, cudaStream_t s) {
  gpu::StreamBuffer<T> d(v.size(), s);
  if (!v.empty()) CUDA_CHECK(cudaMemcpyAsync(d.get(), v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice, s));
  return d;
}

// One init scheme's weights on the device, every slot in one allocation.
class DeviceBank {
 public:
  explicit DeviceBank(const net::WeightBank& bank) {
    std::vector<float> all;
    offsets_.resize(net::kNumSlots);
    for (int s = 0; s < net::kNumSlots; ++s) {
      offsets_[s] = all.size();
      all.insert(all.end(), bank.slot(s).begin(), bank.slot(s).end());
    }
    data_ = upload(all);
  }
  const float* slot(int s) const { return data_.get() + offsets_[s]; }

 private:
  std::vector<size_t> offsets_;
  gpu::DeviceBuffer<float> data_;
};

struct Lane {
  explicit Lane(bool tf32) : cublas(stream.get(), tf32), cusolver(stream.get()), conv(stream.get(), tf32) {}
  gpu::Stream stream;
  gpu::CublasHandle cublas;
  gpu::CusolverHandle cusolver;
  kg::ConvRunner conv;
  cudaStream_t s() const { return stream.get(); }
};

}  // namespace hn::engine
