#include "net/sampling.hpp"

#include <stdexcept>
#include <string>
#include <utility>

namespace hn::net {

std::vector<Genes> sample_distinct(int count, uint64_t search_seed, Purpose purpose,
                                   bool exclude_degenerate, uint32_t stream) {
  std::vector<Genes> out;
  for (const Arch& a : sample_distinct(Space::kNb201, count, search_seed, purpose, exclude_degenerate, stream))
    out.push_back(a.genes);
  return out;
}

std::vector<Arch> runnable_archs(Space space) {
  std::vector<Arch> out;
  out.reserve(static_cast<size_t>(space_size(space)));
  for (int64_t c = 0; c < space_size(space); ++c)
    if (Arch g = arch_from_code(space, c); !is_degenerate(g)) out.push_back(g);
  return out;
}

std::vector<Arch> sample_distinct(Space space, int count, uint64_t search_seed, Purpose purpose,
                                  bool exclude_degenerate, uint32_t stream) {
  std::vector<Arch> pool;
  if (exclude_degenerate) {
    pool = runnable_archs(space);
  } else {
    pool.reserve(static_cast<size_t>(space_size(space)));
    for (int64_t c = 0; c < space_size(space); ++c) pool.push_back(arch_from_code(space, c));
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
