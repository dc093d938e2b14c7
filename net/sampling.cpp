#include "net/sampling.hpp"

#include <stdexcept>
#include <string>
#include <utility>

namespace hn::net {

std::vector<Genes> sample_distinct(int count, uint64_t search_seed, Purpose purpose,
                                   bool exclude_degenerate, uint32_t stream) {
  std::vector<Genes> pool;
  pool.reserve(kNumArchs);
  for (int c = 0; c < kNumArchs; ++c) {
    const Genes g = genes_from_code(c);
    if (!exclude_degenerate || !is_degenerate(g)) pool.push_back(g);
  }
  if (count < 0 || count > static_cast<int>(pool.size()))
    throw std::invalid_argument("cannot draw " + std::to_string(count) + " distinct architectures from " +
                                std::to_string(pool.size()));
  const PhiloxKey key = philox_key(search_seed);
  for (int i = 0; i < count; ++i) {
    const Philox4 r = philox_draw(key, static_cast<uint32_t>(i), 0, purpose, stream);
    const uint32_t j = i + philox_below(r.v[0], static_cast<uint32_t>(pool.size() - i));
    std::swap(pool[i], pool[j]);
  }
  pool.resize(count);
  return pool;
}

}  // namespace hn::net
