// Searches over a space (SPEC.md 5; NB201 or NATS-SSS): the GA, random search, regularised evolution and
// exhaustive search, on any scorer (a backend, or the score cache in front of one). Every
// search keeps an archive of the distinct architectures it evaluated; the budget counts them,
// the reference sample of a z fitness included, and the answer is the archive's best.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/fitness.hpp"
#include "engine/ga_ops.cuh"
#include "engine/scorer.hpp"
#include "net/arch_table.hpp"

namespace hn::engine {

enum class Strategy { kGa, kRandom, kRea, kExhaustive };
const char* strategy_name(Strategy s);
Strategy parse_strategy(const std::string& s);  // throws std::invalid_argument

// The island model (Whitley et al. 1999; the GA of SPEC.md 5 on each island): `islands` GAs, one per
// MPI rank, each with its own search seed (island i: search_seed + i x 2^32, so island 0 is the
// single GA), run in lockstep rounds. Every `interval` rounds each island sends copies of its best
// `migrants` architectures (with their scores) to the next island on a ring and puts those it
// receives in place of its worst population members. The z fitness's reference sample is drawn
// once (search_seed), scored by island 0 and shared, so every island's fitness means the same;
// it counts once against the budget. The budget is global: after the reference sample, it is
// split evenly across islands (the first islands take the remainder). An island that has spent
// its share keeps taking part in migrations (it sends, and ignores what it receives) until every
// island is done. The answer is the best of the union of the islands' archives, at island 0.
// Checkpoints: one file per island (the CLI names them), the previous one kept as FILE.prev, so
// that after a killed job the islands resume together from the latest round all of them wrote.
struct IslandModel {
  int island = 0;
  int islands = 1;
  int interval = 5;   // rounds (generations) between migrations
  int migrants = 5;   // architectures each island sends per migration
  // Collectives over the islands, called by every island in the same order (MPI in the CLI;
  // threads in a test): logical and; ring shift (to island + 1, returns island - 1's);
  // island 0's string everywhere; every island's string at island 0 (by island).
  std::function<bool(bool)> all;
  std::function<std::string(const std::string&)> ring_shift;
  std::function<std::string(const std::string&)> broadcast;
  std::function<std::vector<std::string>(const std::string&)> gather;
};

struct SearchConfig {
  net::Space space = net::Space::kNb201;  // the scorer's space too
  Strategy strategy = Strategy::kGa;
  int budget = 1000;        // distinct architectures evaluated, reference sample included
  int population = 100;     // GA (even) and REA
  int generations = 10;     // GA
  GaParams ga;              // its genome dimensions are set from `space` (genome_params)
  int stall_generations = 20;
  int rea_tournament = 25;
  int rea_batch = 1;  // REA children scored together per step (1: the sequential algorithm)
  uint64_t search_seed = 0;
  bool dedup_isomorphic = false;
  FitnessSpec fitness;
  int reference_sample = 50;       // z fitness without given statistics
  std::optional<ZStats> stats;     // given z statistics (a statistics file): no sample drawn
  std::string checkpoint;          // GA: written atomically each generation, resumed from
  // Named settings that must match for a checkpoint to resume (strategy, budget, proxies, ...):
  // a refusal names the first that differs.
  nlohmann::json settings = nlohmann::json::object();
  std::vector<std::string> settings_order;  // compared first, in this order (the user's options)
  std::optional<IslandModel> islands;        // GA only: one island of an island-model GA

  void validate() const;  // throws std::invalid_argument
};

struct SearchProgressInfo {
  int generation = 0;
  int evaluations = 0;
  int budget = 0;
  double best_fitness = 0.0;
  net::Arch best;
};
using SearchProgress = std::function<void(const SearchProgressInfo&)>;

struct SearchResult {
  net::Arch best;
  double fitness = 0.0;
  int evaluations = 0;      // distinct architectures scored (or served by the cache)
  int generations = 0;      // GA generations run (REA: cycles)
  double seconds = 0.0;
  bool resumed = false;     // continued from a checkpoint
  int restored = 0;         // archive entries loaded from the checkpoint (not scored again)
  // Why the search ended: "budget" (the budget was spent), "generations" (GA: --generations
  // run), "stall" (GA: --stall generations without a new architecture), "space" (every
  // architecture, or isomorphism class, was evaluated).
  std::string stop_reason;
  std::vector<int> visited; // arch codes (net::arch_code) in evaluation order
  std::vector<ArchScore> archive;
  // Island model, at island 0 (the answer, evaluations and archive are then the union of every
  // island's): architectures each island scored, and the migrations run.
  std::vector<int> island_evaluations;
  int migrations = 0;
};

// One GA generation: children from the population and its fitness (GaPairOp over every pair).
// The host version runs the functor through Thrust on the CPU; the CUDA backend supplies a
// device version (engine/ga_device.cu).
using GaGeneration = std::function<void(const std::vector<uint8_t>& population,
                                        const std::vector<double>& fitness, uint32_t generation,
                                        PhiloxKey key, const GaParams& params,
                                        std::vector<uint8_t>& children)>;
void ga_generation_host(const std::vector<uint8_t>& population, const std::vector<double>& fitness,
                        uint32_t generation, PhiloxKey key, const GaParams& params,
                        std::vector<uint8_t>& children);

// The isomorphism-class representative of every architecture (by genes code): the member with
// the lowest NB201 index (lowest genes code without a table).
std::vector<int> isomorphism_representatives(const net::ArchTable* table);

class CheckpointError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
// Island model: an error every island meets together (a refused resume), thrown at every island;
// island 0's message says it all, so the others need not print theirs.
class IslandsError : public CheckpointError {
 public:
  IslandsError(const std::string& what, bool reported_elsewhere)
      : CheckpointError(what), reported_elsewhere(reported_elsewhere) {}
  bool reported_elsewhere;
};

// A GA checkpoint's content (format "hybridnas-search-checkpoint-2", JSON).
struct CheckpointData {
  nlohmann::json settings;          // SearchConfig::settings of the search that wrote it
  int generation = 0;               // the next generation to run
  int round = 0;                    // island model: rounds run (= generation without islands)
  int stall = 0;                    // generations without a new architecture so far
  std::vector<uint8_t> population;  // n x genome (NB201: 6 op codes; NATS-SSS: 5 width indices)
  ZStats stats;                     // the z fitness's statistics
  std::vector<ArchScore> archive;   // distinct evaluated architectures, in evaluation order
  std::vector<bool> foreign;        // island model: archive entries other islands scored
};
// Parses a checkpoint and validates every value (types, op codes, architecture codes, flags,
// finite statistics, no duplicate archive entries); throws CheckpointError naming `name`.
CheckpointData parse_checkpoint(std::string_view text, const std::string& name,
                                net::Space space = net::Space::kNb201);

// The genome of a space: NB201 6 genes (edges) x 5 ops (op codes of net::Op); NATS-SSS 5 genes
// (layers) x 8 (width / 8 - 1). `p`'s probabilities are kept.
GaParams genome_params(net::Space space, GaParams p);
inline constexpr int kMaxGenes = 6;
void encode_genome(const net::Arch& a, uint8_t* out);  // genome_params(a.space).genes values
net::Arch decode_genome(net::Space space, const uint8_t* genes);

SearchResult run_search(const SearchConfig& config, Scorer& scorer, const net::ArchTable* table,
                        const SearchProgress& progress = {},
                        const GaGeneration& ga_generation = ga_generation_host);

}  // namespace hn::engine
