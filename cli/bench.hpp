// `hybridnas bench`: archs/s of each proxy at SPEC.md's default batch sizes.
#pragma once
#include "cli/common.hpp"

namespace hn::cli {

struct BenchCommand {
  ScoringOptions scoring;
  ArchOptions archs;
  int warmup = 1;
  int runs = 5;
  double max_seconds = 120;
  bool once = false;
  bool presets = false;
  int repeat_archs = 1;
  std::string population_sizes;  // e.g. "1,10,100": also time random populations of these sizes
  std::string json;

  void add_to(CLI::App& app);
  int run();
};

}  // namespace hn::cli
