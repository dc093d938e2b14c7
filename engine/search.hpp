// Searches over the NB201 space (SPEC.md 5): the GA, random search, regularised evolution and
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

struct SearchConfig {
  Strategy strategy = Strategy::kGa;
  int budget = 1000;        // distinct architectures evaluated, reference sample included
  int population = 100;     // GA (even) and REA
  int generations = 10;     // GA
  GaParams ga;
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

  void validate() const;  // throws std::invalid_argument
};

struct SearchProgressInfo {
  int generation = 0;
  int evaluations = 0;
  int budget = 0;
  double best_fitness = 0.0;
  net::Genes best;
};
using SearchProgress = std::function<void(const SearchProgressInfo&)>;

struct SearchResult {
  net::Genes best;
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
  std::vector<int> visited; // genes codes in evaluation order
  std::vector<ArchScore> archive;
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

// A GA checkpoint's content (format "hybridnas-search-checkpoint-2", JSON).
struct CheckpointData {
  nlohmann::json settings;          // SearchConfig::settings of the search that wrote it
  int generation = 0;               // the next generation to run
  int stall = 0;                    // generations without a new architecture so far
  std::vector<uint8_t> population;  // n x 6 op codes
  ZStats stats;                     // the z fitness's statistics
  std::vector<ArchScore> archive;   // distinct evaluated architectures, in evaluation order
};
// Parses a checkpoint and validates every value (types, op codes, architecture codes, flags,
// finite statistics, no duplicate archive entries); throws CheckpointError naming `name`.
CheckpointData parse_checkpoint(std::string_view text, const std::string& name);

SearchResult run_search(const SearchConfig& config, Scorer& scorer, const net::ArchTable* table,
                        const SearchProgress& progress = {},
                        const GaGeneration& ga_generation = ga_generation_host);

}  // namespace hn::engine
