// `hybridnas search` and `hybridnas eval`.
#pragma once
#include "cli/common.hpp"
#include "engine/files.hpp"
#include "engine/score_file.hpp"

namespace hn::cli {

struct SearchCommand {
  ScoringOptions scoring;
  std::string strategy = "ga";
  std::string fitness;
  int budget = 0;  // the preset's unless --budget is given
  CLI::Option* o_budget = nullptr;
  int runs = 1;
  uint64_t search_seed = 0;
  std::string column = "cifar10_test";
  std::string cache;
  bool cache_only = false;
  int population = 100;
  int generations = 10;
  double crossover = 0.8;
  double mutation = 0.1;
  int stall = 20;
  int rea_tournament = 25;
  int rea_batch = 1;
  int reference_sample = 50;
  std::string stats_file;
  bool dedup = false;
  std::string checkpoint;
  std::string out;
  bool islands = false;        // island-model GA, one island per MPI rank
  int migration_interval = 5;
  int migrants = 5;
  CLI::Option* o_migration_interval = nullptr;
  CLI::Option* o_migrants = nullptr;

  void add_to(CLI::App& app);
  int run();
  // FILE, or FILE.seedS with --runs > 1; then .islandI for island I of several.
  std::string checkpoint_path(uint64_t search_seed) const;
};

struct EvalCommand {
  std::string space;  // empty: the scores file's
  std::vector<std::string> fitness_proxies;
  std::string scores;
  std::string table;
  std::string column = "cifar10_test";
  std::string out;
  void add_to(CLI::App& app);
  int run();
};

}  // namespace hn::cli
