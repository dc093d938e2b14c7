// The GA's operators (SPEC.md 5) as __host__ __device__ functors over Philox keyed by the search
// seed: the CPU backend runs them through Thrust on the host, the CUDA backend on the device, so
// for the same fitness values both produce the same children in the same order.
//
// A genome is `genes` symbols, each below `ops`: NB201 6 edges x 5 ops, NATS-SSS 5 layers x 8
// widths (GaParams; docs/nats_sss.md "Search").
//
// Draws of generation g, pair j come from counters (j, g, Purpose::kGa, block):
//   block 0: tournament positions a, b, c (distinct, exact uniform), crossover coin
//   block 1: cut l in {1..genes}, cut r in {0..genes} \ {l}, mutation coin
//   block 2: child 0's gene and new op, child 1's gene and new op
#pragma once
#include <cstdint>

#include "kernels/philox.cuh"

namespace hn::engine {

inline constexpr int kGenes = 6;
inline constexpr int kOps = 5;

struct GaParams {
  double crossover = 0.8;
  double mutation = 0.1;
  uint32_t genes = kGenes;  // genome length (NATS-SSS: 5)
  uint32_t ops = kOps;      // symbols per gene (NATS-SSS: 8 widths)
};

// Three distinct positions in [0, n) from three words, uniformly over ordered triples.
HN_HD void ga_distinct3(uint32_t w0, uint32_t w1, uint32_t w2, uint32_t n, uint32_t* out) {
  uint32_t a = philox_below(w0, n);
  uint32_t b = philox_below(w1, n - 1);
  if (b >= a) ++b;
  uint32_t c = philox_below(w2, n - 2);
  const uint32_t lo = a < b ? a : b, hi = a < b ? b : a;
  if (c >= lo) ++c;
  if (c >= hi) ++c;
  out[0] = a;
  out[1] = b;
  out[2] = c;
}

// Changes one uniformly chosen gene to a uniformly chosen different op.
HN_HD void ga_mutate(uint8_t* child, uint32_t w_gene, uint32_t w_op, uint32_t genes = kGenes, uint32_t ops = kOps) {
  const uint32_t gene = philox_below(w_gene, genes);
  uint32_t op = philox_below(w_op, ops - 1);
  if (op >= child[gene]) ++op;
  child[gene] = static_cast<uint8_t>(op);
}

// One pair of children: tournament of 3 -> parents (best, second best; ties: earlier draw
// first), crossover with probability p, then with probability q one mutation per child.
struct GaPairOp {
  const uint8_t* population;  // n x params.genes genes
  const double* fitness;      // n, higher is better
  uint8_t* children;          // n x params.genes genes; pair j writes rows 2j and 2j+1
  uint32_t n;
  uint32_t generation;
  PhiloxKey key;
  GaParams params;

  HN_HD void operator()(uint32_t pair) const {
    const Philox4 r0 = philox_draw(key, pair, generation, Purpose::kGa, 0);
    const Philox4 r1 = philox_draw(key, pair, generation, Purpose::kGa, 1);
    const Philox4 r2 = philox_draw(key, pair, generation, Purpose::kGa, 2);
    uint32_t t[3];
    ga_distinct3(r0.v[0], r0.v[1], r0.v[2], n, t);
    // Stable selection of the two best of (t0, t1, t2) in draw order.
    uint32_t best = t[0], second = t[1];
    if (fitness[second] > fitness[best]) {
      const uint32_t s = best;
      best = second;
      second = s;
    }
    if (fitness[t[2]] > fitness[best]) {
      second = best;
      best = t[2];
    } else if (fitness[t[2]] > fitness[second]) {
      second = t[2];
    }
    const uint32_t G = params.genes;
    const uint8_t* p0 = population + best * G;
    const uint8_t* p1 = population + second * G;
    uint8_t* c0 = children + (2 * pair) * G;
    uint8_t* c1 = children + (2 * pair + 1) * G;
    int a = 0, b = 0;
    if (philox_uniform(r0.v[3]) < params.crossover) {
      const int l = 1 + static_cast<int>(philox_below(r1.v[0], G));
      int r = static_cast<int>(philox_below(r1.v[1], G));  // {0..G} minus {l}
      if (r >= l) ++r;
      a = l < r ? l : r;
      b = l < r ? r : l;
    }
    for (int g = 0; g < static_cast<int>(G); ++g) {
      const bool middle = g >= a && g < b;
      c0[g] = middle ? p1[g] : p0[g];
      c1[g] = middle ? p0[g] : p1[g];
    }
    if (philox_uniform(r1.v[2]) < params.mutation) {
      ga_mutate(c0, r2.v[0], r2.v[1], G, params.ops);
      ga_mutate(c1, r2.v[2], r2.v[3], G, params.ops);
    }
  }
};

}  // namespace hn::engine
