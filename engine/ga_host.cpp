// The GA's generation step on the host: GaPairOp over every pair through Thrust's host backend
// (the CUDA backend runs the same functor on the device, engine/ga_device.cu).
#include <thrust/execution_policy.h>
#include <thrust/for_each.h>
#include <thrust/iterator/counting_iterator.h>

#include "engine/search.hpp"

namespace hn::engine {

void ga_generation_host(const std::vector<uint8_t>& population, const std::vector<double>& fitness,
                        uint32_t generation, PhiloxKey key, const GaParams& params,
                        std::vector<uint8_t>& children) {
  const uint32_t n = static_cast<uint32_t>(fitness.size());
  children.assign(population.size(), 0);
  const GaPairOp op{population.data(), fitness.data(), children.data(), n, generation, key, params};
  thrust::for_each(thrust::host, thrust::counting_iterator<uint32_t>(0),
                   thrust::counting_iterator<uint32_t>(n / 2), op);
}

}  // namespace hn::engine
