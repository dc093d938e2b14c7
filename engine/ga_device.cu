// The GA's generation step on the device: GaPairOp (engine/ga_ops.cuh) over every pair with
// Thrust on the GPU. One host round trip per generation (population in, children out), none per
// individual. tests/test_gpu.cpp checks it visits what the host path visits.
#include <thrust/device_vector.h>
#include <thrust/execution_policy.h>
#include <thrust/for_each.h>
#include <thrust/iterator/counting_iterator.h>

#include "engine/cuda_scorer.hpp"

namespace hn::engine {

void ga_generation_device(const std::vector<uint8_t>& population, const std::vector<double>& fitness,
                          uint32_t generation, PhiloxKey key, const GaParams& params,
                          std::vector<uint8_t>& children) {
  const thrust::device_vector<uint8_t> pop(population.begin(), population.end());
  const thrust::device_vector<double> fit(fitness.begin(), fitness.end());
  thrust::device_vector<uint8_t> kids(population.size());
  const uint32_t n = static_cast<uint32_t>(fitness.size());
  const GaPairOp op{thrust::raw_pointer_cast(pop.data()), thrust::raw_pointer_cast(fit.data()),
                    thrust::raw_pointer_cast(kids.data()), n, generation, key, params};
  thrust::for_each(thrust::device, thrust::counting_iterator<uint32_t>(0),
                   thrust::counting_iterator<uint32_t>(n / 2), op);
  children.resize(population.size());
  thrust::copy(kids.begin(), kids.end(), children.begin());
}

}  // namespace hn::engine
