// Seeded draws of architectures (keyed by the search seed, SPEC.md 2).
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/philox.cuh"
#include "net/nb201.hpp"
#include "net/space.hpp"

namespace hn::net {

// Every architecture of the space a network is run for (NB201: all but the degenerate cells), in
// code order.
std::vector<Arch> runnable_archs(Space space);

// `count` distinct architectures uniformly without replacement, optionally excluding degenerate
// cells: a partial Fisher-Yates shuffle of the candidates in genes-code order, draw i from Philox
// counter (i, 0, purpose, stream). Throws std::invalid_argument if count exceeds the candidates.
std::vector<Genes> sample_distinct(int count, uint64_t search_seed, Purpose purpose,
                                   bool exclude_degenerate, uint32_t stream = 0);
// The same over any space's codes (NB201: the draws above, exactly).
std::vector<Arch> sample_distinct(Space space, int count, uint64_t search_seed, Purpose purpose,
                                  bool exclude_degenerate, uint32_t stream = 0);

}  // namespace hn::net
