#include "cli/search_cmd.hpp"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include "engine/cluster.hpp"
#include "engine/cuda_scorer.hpp"
#include "engine/rank_stats.hpp"
#include "engine/search.hpp"

namespace hn::cli {

using engine::Proxy;

void SearchCommand::add_to(CLI::App& app) {
  scoring.gpu_auto_preset = "hybrid";
  scoring.add_to(app);
  app.add_option("--strategy", strategy, "ga, random, rea or exhaustive (ga)")
      ->check(CLI::IsMember({"ga", "random", "rea", "exhaustive"}));
  app.add_option("--fitness", fitness, "z, rank or logrank (default: the preset's, z)")
      ->check(CLI::IsMember({"z", "rank", "logrank"}));
  o_budget = app.add_option("--budget", budget,
                            "Distinct architectures to evaluate, reference sample included, 1..the space's size "
                            "(NB201 15625, NATS-SSS 32768; default: the preset's; 1000, cpu-quick 500)")
                 ->transform(space_range(1, &scoring.space));
  app.add_option("--runs", runs, "Independent runs with search seeds S, S+1, ... (1)")->transform(int_range(1, 100000));
  app.add_option("--search-seed", search_seed, "Seed of the search and reference sample (0)")->transform(unsigned64());
  app.add_option("--column", column, "Accuracy column of --table reported for the answer (cifar10_test)");
  app.add_option("--cache", cache, "SQLite score cache shared with `score` (no network runs for cached scores)");
  app.add_flag("--cache-only", cache_only,
               "Never run a network: an architecture missing from --cache is an error (exit 3)");
  app.add_option("--population", population, "GA / REA population (100, even)")->transform(space_range(4, &scoring.space));
  app.add_option("--generations", generations, "GA generations (10)")->transform(int_range(1, 1000000));
  app.add_option("--crossover", crossover, "GA crossover probability (0.8)")->transform(real_range(0, 1));
  app.add_option("--mutation", mutation, "GA mutation probability per pair (0.1)")->transform(real_range(0, 1));
  app.add_option("--stall", stall, "GA: stop after this many generations without a new architecture (20)")
      ->transform(int_range(1, 1000000));
  app.add_option("--rea-tournament", rea_tournament, "REA tournament size (25; one larger than --population takes the whole population)")->transform(space_range(1, &scoring.space));
  app.add_option("--rea-batch", rea_batch,
                 "REA children bred from the same population and scored together per step, then the as many "
                 "oldest retired (1 = sequential REA; more feeds the scorer populations)")
      ->transform(space_range(1, &scoring.space));
  app.add_option("--reference-sample", reference_sample, "z fitness: architectures in the reference sample (50)")
      ->transform(space_range(2, &scoring.space));
  app.add_option("--stats", stats_file, "z statistics from `hybridnas stats` instead of a reference sample");
  app.add_flag("--dedup-isomorphic", dedup, "NB201: score one representative (lowest NB201 index) per isomorphism class");
  app.add_option("--checkpoint", checkpoint,
                 "GA: checkpoint file written each generation; an existing one is resumed (with --runs R, "
                 "one file per run: FILE.seedS)");
  app.add_option("--out", out, "Write the JSON result here, atomically (default: stdout)");
  app.add_flag("--islands", islands,
               "Island-model GA: one island per MPI rank (mpirun -np N), ring migration, the budget "
               "split across islands (docs/scale-out.md)");
  o_migration_interval = app.add_option("--migration-interval", migration_interval, "--islands: generations between migrations (5)")
      ->transform(int_range(1, 1000000));
  o_migrants = app.add_option("--migrants", migrants, "--islands: best architectures each island sends per migration (5)")
      ->transform(space_range(1, &scoring.space));
}

namespace {
constexpr int kIsomorphismClasses = 6466;  // NB201 cells up to isomorphism (tests/test_search.cpp)

std::string stop_explanation(const std::string& reason, const engine::SearchConfig& c) {
  if (reason == "generations")
    return "the GA ran its " + std::to_string(c.generations) +
           " generations (--generations) first; children that repeat evaluated architectures cost "
           "no budget" + std::string(c.generations < 1000000 ? ", so raise --generations to spend more of it" : "");
  if (reason == "stall")
    return "the GA made no new architecture for " + std::to_string(c.stall_generations) +
           " generations (--stall)";
  if (reason == "space")
    return c.dedup_isomorphic ? "every isomorphism class of the space was evaluated"
                              : "every architecture of the space was evaluated";
  return reason;
}

// The benchmark index: NATS-SSS's is a formula (no table needed); NB201's comes from the table.
std::optional<int64_t> arch_index(const net::Arch& g, const net::ArchTable* table) {
  if (!g.is_nb201()) return net::arch_code(g);
  if (table)
    if (const auto idx = table->index_of(g)) return *idx;
  return std::nullopt;
}

std::string arch_label(const net::Arch& g, const net::ArchTable* table) {
  std::string s = net::arch_string(g);
  if (const auto idx = arch_index(g, table))
    s += std::string(g.is_nb201() ? " (NB201 " : " (NATS-SSS ") + std::to_string(*idx) + ")";
  return s;
}
}  // namespace

std::string SearchCommand::checkpoint_path(uint64_t seed) const {
  if (checkpoint.empty()) return "";
  std::string path = runs == 1 ? checkpoint : checkpoint + ".seed" + std::to_string(seed);
  if (islands && engine::cluster().size > 1) path += ".island" + std::to_string(engine::cluster().rank);
  return path;
}

int SearchCommand::run() {
  std::string backend, preset_name;
  engine::ScoreSettings s = scoring.settings(&backend, &preset_name);
  const engine::RunPreset& preset = engine::run_preset(preset_name);
  engine::SearchConfig cfg;
  cfg.space = s.space;
  try {
    cfg.strategy = engine::parse_strategy(strategy);
    cfg.fitness.mode = engine::parse_fitness_mode(fitness.empty() ? preset.fitness : fitness);
  } catch (const std::invalid_argument& e) {
    throw CliError(kExitUsage, e.what());
  }
  s.proxies = engine::raw_proxies(s.proxies);
  s.proxies.erase(std::remove(s.proxies.begin(), s.proxies.end(), Proxy::kNinaswot), s.proxies.end());
  cfg.fitness.proxies = s.proxies;
  cfg.fitness.log_ntk = preset.log_ntk;
  if (cfg.strategy == engine::Strategy::kExhaustive && o_budget->count())
    throw CliError(kExitUsage, "--budget does not apply to --strategy exhaustive, which evaluates the whole space");
  if (!stats_file.empty() && cfg.fitness.mode != engine::FitnessMode::kZ)
    throw CliError(kExitUsage, "--stats gives z statistics; the " + std::string(engine::fitness_mode_name(cfg.fitness.mode)) +
                                   " fitness does not use them");
  cfg.budget = o_budget->count() ? budget : preset.budget;
  if (dedup && s.space != net::Space::kNb201)
    throw CliError(kExitUsage, "--dedup-isomorphic applies to NB201: no two NATS-SSS networks are isomorphic");
  if (dedup && cfg.budget > kIsomorphismClasses)
    throw CliError(kExitUsage, "--budget " + std::to_string(cfg.budget) + " with --dedup-isomorphic: the space has only " +
                                   std::to_string(kIsomorphismClasses) + " isomorphism classes");
  cfg.population = population;
  cfg.generations = generations;
  cfg.ga.crossover = crossover;
  cfg.ga.mutation = mutation;
  cfg.stall_generations = stall;
  cfg.rea_tournament = rea_tournament;
  cfg.rea_batch = rea_batch;
  cfg.reference_sample = reference_sample;
  cfg.dedup_isomorphic = dedup;
  cfg.checkpoint = checkpoint;
  const auto& job = engine::cluster();
  if (!islands && (o_migrants->count() || o_migration_interval->count()))
    throw CliError(kExitUsage, std::string(o_migrants->count() ? "--migrants" : "--migration-interval") +
                                   " applies to the island model: add --islands (under mpirun)");
  if (islands) {
    if (cfg.strategy != engine::Strategy::kGa) throw CliError(kExitUsage, "--islands runs the GA: leave out --strategy " + strategy);
    if (migrants > population) throw CliError(kExitUsage, "--migrants must be at most --population");
    if (job.size == 1 && !scoring.quiet)
      std::cerr << "[search] --islands: one process, so one island (the plain GA); start it with mpirun -np N for N islands\n";
    if (job.size > 1) {
      engine::IslandModel m;
      m.island = job.rank;
      m.islands = job.size;
      m.interval = migration_interval;
      m.migrants = migrants;
      m.all = engine::cluster_all;
      m.ring_shift = engine::cluster_ring_shift;
      m.broadcast = engine::cluster_broadcast;
      m.gather = engine::cluster_gather;
      cfg.islands = m;
      if (job.rank != 0) scoring.quiet = true;  // island 0 reports
    }
  }
  if (runs > 1 && search_seed > UINT64_MAX - static_cast<uint64_t>(runs - 1))
    throw CliError(kExitUsage, "--search-seed " + std::to_string(search_seed) + " with --runs " +
                                   std::to_string(runs) + " runs past the largest seed, 2^64 - 1");
  try {
    cfg.stats = std::nullopt;
    if (!stats_file.empty()) cfg.stats = engine::ZStats{};  // validated with the settings below
    cfg.validate();
  } catch (const std::invalid_argument& e) {
    throw CliError(kExitUsage, e.what());
  }
  cfg.stats = std::nullopt;
  // Every output is checked before any work starts (rank 0 writes --out).
  if (!out.empty() && job.rank == 0) check_output(out, "--out");
  for (int r = 0; r < runs && !checkpoint.empty(); ++r)
    check_output(checkpoint_path(search_seed + static_cast<uint64_t>(r)), "--checkpoint");
  check_distinct({{"--out", out},
                  {"--checkpoint", runs == 1 ? checkpoint : ""},
                  {"--cache", cache},
                  {"--stats", stats_file},
                  {"--data", scoring.data},
                  {"--table", scoring.table}});
  const auto table = load_table(scoring.table, false, scoring.quiet, s.space);
  if (!table && !column.empty() && !scoring.quiet)
    std::cerr << "[search] no " << (s.space == net::Space::kNb201 ? "NB201" : "NATS-SSS")
              << " table: answers are reported without accuracy\n";
  if (table && !table->has_column(column))
    throw CliError(kExitData, "table '" + table->path() + "' has no column '" + column + "'");

  const engine::ScoreInputs inputs = load_inputs_or_fail(s);
  if (!stats_file.empty()) {
    try {
      const auto file = engine::read_stats_file(stats_file);
      engine::ZStats st;
      for (Proxy p : cfg.fitness.proxies)
        st[p] = engine::require_stat(file, p, engine::settings_key(p, s, inputs.identity), s.score_seed,
                                     engine::fitness_transform(cfg.fitness, p));
      cfg.stats = st;
    } catch (const std::runtime_error& e) {
      throw CliError(kExitData, "--stats " + stats_file + ": " + e.what());
    }
  }
  // What a checkpoint must have been written with to be resumed (a refusal names the first
  // setting that differs).
  nlohmann::json named = {{"preset", preset_name},
                          {"strategy", engine::strategy_name(cfg.strategy)},
                          {"budget", cfg.budget},
                          {"population", cfg.population},
                          {"generations", cfg.generations},
                          {"crossover", cfg.ga.crossover},
                          {"mutation", cfg.ga.mutation},
                          {"stall", cfg.stall_generations},
                          {"fitness", engine::fitness_mode_name(cfg.fitness.mode)},
                          {"log_ntk", cfg.fitness.log_ntk},
                          {"dedup_isomorphic", cfg.dedup_isomorphic},
                          {"reference_sample", cfg.stats ? nlohmann::json("--stats") : nlohmann::json(cfg.reference_sample)},
                          {"score_seed", s.score_seed},
                          {"proxies", engine::proxy_list_string(s.proxies)}};
  if (s.space != net::Space::kNb201) named["space"] = net::space_name(s.space);  // NB201's checkpoints predate it
  for (Proxy p : s.proxies) named[std::string("settings_") + engine::proxy_name(p)] = engine::settings_key(p, s, inputs.identity);
  if (cfg.islands) {
    named["islands"] = cfg.islands->islands;
    named["island"] = cfg.islands->island;
    named["migration_interval"] = cfg.islands->interval;
    named["migrants"] = cfg.islands->migrants;
  }
  if (cfg.stats) {  // the statistics' values, not the file's name
    nlohmann::json z = nlohmann::json::object();
    for (const auto& [p, st] : *cfg.stats) z[engine::proxy_name(p)] = {st.mean, st.std};
    named["stats"] = z;
  }
  cfg.settings_order = {"preset", "strategy", "proxies", "fitness", "log_ntk", "budget", "population",
                        "generations", "crossover", "mutation", "stall", "dedup_isomorphic",
                        "reference_sample", "stats", "score_seed", "search_seed"};

  std::unique_ptr<engine::ScoreCache> db;
  if (cfg.islands) {
    // Every island's setup ends here together (an error anywhere ends the job, printed once), and
    // the islands open the shared cache one after another: SQLite refuses a database being
    // set up by another process at that moment ("database is locked").
    islands_agree(nullptr);
    std::exception_ptr error;
    for (int r = 0; r < job.size; ++r) {
      if (r == job.rank && !cache.empty()) {
        try {
          db = open_cache(cache);
        } catch (...) {
          error = std::current_exception();
        }
      }
      engine::cluster_all(true);
    }
    islands_agree(error);
  } else if (!cache.empty()) {
    db = open_cache(cache);
  }

  nlohmann::json result = {{"space", net::space_name(s.space)},
                           {"strategy", engine::strategy_name(cfg.strategy)},
                           {"preset", preset_name},
                           {"fitness", engine::fitness_mode_name(cfg.fitness.mode)},
                           {"proxies", engine::proxy_list_string(s.proxies)},
                           {"backend", backend},
                           {"budget", cfg.strategy == engine::Strategy::kExhaustive ? nlohmann::json(nullptr)
                                                                                    : nlohmann::json(cfg.budget)},
                           {"settings",
                            {{"batch", s.batch},
                             {"entropy_batch", s.entropy_batch},
                             {"entropy_repeats", s.entropy_repeats},
                             {"num_classes", s.num_classes},
                             {"score_seed", s.score_seed},
                             {"precision", engine::precision_name(s.precision)},
                             {"input", inputs.identity}}},
                           {"runs", nlohmann::json::array()}};
  // What else the answer depends on: the NTK's transform where an NTK proxy is in the fitness, and
  // the strategy's own parameters.
  const auto raw = engine::raw_proxies(s.proxies);
  if (std::find(raw.begin(), raw.end(), Proxy::kNtk) != raw.end() ||
      std::find(raw.begin(), raw.end(), Proxy::kNtkFast) != raw.end())
    result["log_ntk"] = cfg.fitness.log_ntk;
  if (cfg.strategy == engine::Strategy::kGa) {
    result["population"] = cfg.population;
    result["generations"] = cfg.generations;
    result["crossover"] = cfg.ga.crossover;
    result["mutation"] = cfg.ga.mutation;
  } else if (cfg.strategy == engine::Strategy::kRea) {
    result["population"] = cfg.population;
    result["rea_tournament"] = std::min(cfg.rea_tournament, cfg.population);
    result["rea_batch"] = cfg.rea_batch;
  }
  // Every setting a proxy's value depends on (the score cache's keys: swap's repeats, swap_reg's
  // mu and sigma, the az_* images, ...), as `score` records them.
  nlohmann::json keys = nlohmann::json::object();
  for (engine::Proxy p : engine::raw_proxies(s.proxies))
    if (p != engine::Proxy::kNinaswot) keys[engine::proxy_name(p)] = engine::settings_key(p, s, inputs.identity);
  result["settings"]["proxy_settings"] = keys;
  if (!scoring.quiet)
    std::cerr << "[search] " << (s.space == net::Space::kNb201 ? "" : "space nats-sss, ") << engine::strategy_name(cfg.strategy)
              << ", preset " << preset_name
              << ", " << engine::fitness_mode_name(cfg.fitness.mode) << " fitness over "
              << engine::proxy_list_string(s.proxies) << ", budget "
              << (cfg.strategy == engine::Strategy::kExhaustive ? std::string("the whole space") : std::to_string(cfg.budget))
              << ", backend "
              << backend << ", batch " << s.batch << ", entropy " << s.entropy_batch << "x"
              << s.entropy_repeats << "\n";
  std::vector<double> accuracies;
  for (int r = 0; r < runs; ++r) {
    cfg.search_seed = search_seed + static_cast<uint64_t>(r);
    cfg.checkpoint = checkpoint_path(cfg.search_seed);
    cfg.settings = named;
    cfg.settings["search_seed"] = cfg.search_seed;
    std::unique_ptr<engine::Scorer> scorer;
    engine::CachedScorer* cached = nullptr;
    if (db) {
      auto c = std::make_unique<engine::CachedScorer>(
          *db,
          [&]() -> std::unique_ptr<engine::Scorer> {
            if (cache_only)
              throw CliError(kExitData, "--cache-only: the cache " + cache +
                                            " lacks scores for these settings (" +
                                            engine::settings_key(s.proxies[0], s, inputs.identity) + ", ...)");
            return make_scorer(backend, s, inputs);
          },
          s, inputs.identity);
      cached = c.get();
      scorer = std::move(c);
    } else {
      if (cache_only) throw CliError(kExitUsage, "--cache-only needs --cache FILE");
      scorer = make_scorer(backend, s, inputs);
    }
    const auto start = std::chrono::steady_clock::now();
    auto last = start - std::chrono::seconds(10);
    const std::string tag = runs > 1 ? "[search run " + std::to_string(r + 1) + "/" + std::to_string(runs) + "]"
                                     : std::string("[search]");
    engine::SearchProgress progress = [&](const engine::SearchProgressInfo& info) {
      if (scoring.quiet) return;
      const auto now = std::chrono::steady_clock::now();
      if (now - last < std::chrono::seconds(2) && info.evaluations < info.budget) return;
      last = now;
      const double el = std::chrono::duration<double>(now - start).count();
      const double rate = info.evaluations / std::max(el, 1e-9);
      const int whole = static_cast<int>(net::space_size(cfg.space));
      const int todo = std::max(0, (cfg.strategy == engine::Strategy::kExhaustive ? whole : info.budget) - info.evaluations);
      std::fprintf(stderr, "%s generation %d, %d/%d evaluated, best %.4f %s, %.1f archs/s, ETA %.0fs\n",
                   tag.c_str(), info.generation, info.evaluations,
                   cfg.strategy == engine::Strategy::kExhaustive ? whole : info.budget,
                   info.best_fitness, arch_label(info.best, table.get()).c_str(), rate, todo / std::max(rate, 1e-9));
    };
    engine::SearchResult res;
    try {
      res = engine::run_search(cfg, *scorer, table.get(), progress,
                               backend == "cuda" ? engine::GaGeneration(engine::ga_generation_device)
                                                 : engine::GaGeneration(engine::ga_generation_host));
    } catch (const engine::IslandsError&) {
      throw;  // every island ends on it together; island 0 prints it
    } catch (const engine::CheckpointError& e) {
      throw CliError(kExitData, e.what());
    } catch (const engine::CacheError& e) {
      throw CliError(kExitData, e.what());
    } catch (const std::invalid_argument& e) {
      throw CliError(kExitUsage, e.what());
    } catch (const std::runtime_error& e) {
      // z statistics over a reference sample without 2 finite values, and similar.
      throw CliError(kExitData, e.what());
    }
    nlohmann::json jr = {{"search_seed", cfg.search_seed},
                         {"arch", net::arch_string(res.best)},
                         {"index", nullptr},
                         {"fitness", json_number(res.fitness)},
                         {"evaluations", res.evaluations},
                         {"network_evaluations", cached ? cached->network_evaluations() : res.evaluations - res.restored},
                         {"generations", res.generations},
                         {"seconds", res.seconds},
                         {"resumed", res.resumed},
                         {"stopped", res.stop_reason},
                         {"budget_spent", res.stop_reason == "budget"}};
    if (cfg.islands) {
      int scored = 0;
      for (int e : res.island_evaluations) scored += e;
      jr["islands"] = cfg.islands->islands;
      jr["island_evaluations"] = res.island_evaluations;
      jr["migrations"] = res.migrations;
      // With a cache, what each island's network scored (the rest its cache served).
      const auto counts = engine::cluster_gather(std::to_string(cached ? cached->network_evaluations() : 0));
      int64_t networks = 0;
      for (const auto& c : counts) networks += std::stoll(c);
      jr["network_evaluations"] = cached ? networks : static_cast<int64_t>(scored - res.restored);
    }
    if (const auto idx = arch_index(res.best, table.get())) jr["index"] = *idx;
    if (table) {
      const auto row = table->index_of(res.best);
      const double acc = row ? table->column(column)[*row] : std::nan("");
      if (std::isfinite(acc)) {
        jr["accuracy"] = acc;
        accuracies.push_back(acc);
      } else if (job.rank == 0) {
        std::fprintf(stderr, "%s note: the table has no %s for %s: no accuracy reported\n", tag.c_str(),
                     column.c_str(), net::arch_string(res.best).c_str());
      }
    }
    if (cfg.strategy != engine::Strategy::kExhaustive && res.stop_reason != "budget" && job.rank == 0) {
      const std::string why = stop_explanation(res.stop_reason, cfg);
      jr["stopped_early"] = why;
      std::fprintf(stderr, "%s ended before its budget: %d of %d evaluations; %s\n", tag.c_str(),
                   res.evaluations, cfg.budget, why.c_str());
    }

    result["runs"].push_back(jr);
    if (!scoring.quiet) {
      std::fprintf(stderr, "%s found %s, fitness %.4f, %d evaluations (%lld scored by the network) in %.1fs",
                   tag.c_str(), arch_label(res.best, table.get()).c_str(), res.fitness, res.evaluations,
                   static_cast<long long>(jr["network_evaluations"].get<int64_t>()), res.seconds);
      if (jr.contains("accuracy")) std::fprintf(stderr, ", %s %.2f", column.c_str(), jr["accuracy"].get<double>());
      std::fprintf(stderr, "\n");
    }
  }
  if (!accuracies.empty()) {
    double m = 0, v = 0;
    for (double a : accuracies) m += a;
    m /= accuracies.size();
    for (double a : accuracies) v += (a - m) * (a - m);
    const double sd = std::sqrt(v / accuracies.size());
    result["accuracy_column"] = column;
    result["accuracy_mean"] = m;
    result["accuracy_std"] = sd;
    result["accuracy_runs"] = accuracies.size();  // the runs whose answer has an accuracy in the table
    if (!scoring.quiet && runs > 1) {
      std::fprintf(stderr, "[search] %d runs: %s %.2f +- %.2f (mean +- std", runs, column.c_str(), m, sd);
      if (static_cast<int>(accuracies.size()) < runs)
        std::fprintf(stderr, " over the %zu runs whose answer has one", accuracies.size());
      std::fprintf(stderr, ")\n");
    }
  }
  if (job.rank != 0) return kExitOk;  // islands: island 0 reports the answer
  if (out.empty()) std::cout << result.dump(1) << "\n";
  else write_output(out, result.dump(1) + "\n");
  return kExitOk;
}

// ---- eval ---------------------------------------------------------------------------------------

void EvalCommand::add_to(CLI::App& app) {
  app.add_option("--scores", scores, "Scores from `hybridnas score` (JSON lines or CSV)")->required();
  app.add_option("--space", space, "nb201 or nats-sss (default: the scores file's; the table must be of it)")
      ->check(CLI::IsMember({"nb201", "nats-sss"}));
  app.add_option("--table", table, "Table of the space with accuracies (default: the build's)");
  app.add_option("--column", column, "Accuracy column (cifar10_test)");
  app.add_option("--out", out, "Also write the JSON result here (stdout gets the text table)");
  app.add_option("--fitness-proxies", fitness_proxies,
                 "Also evaluate z / rank / logrank fitness over this proxy set (repeatable; t = log "
                 "for ntk and synflow)");
}

int EvalCommand::run() {
  std::vector<engine::FitnessSpec> extra_specs;  // --fitness-proxies, checked before any reading
  for (const auto& list : fitness_proxies) {
    engine::FitnessSpec spec;
    try {
      spec.proxies = engine::raw_proxies(engine::parse_proxy_list(list));
    } catch (const std::invalid_argument& e) {
      throw CliError(kExitUsage, std::string("--fitness-proxies: ") + e.what());
    }
    spec.proxies.erase(std::remove(spec.proxies.begin(), spec.proxies.end(), Proxy::kNinaswot), spec.proxies.end());
    extra_specs.push_back(spec);
  }
  if (!out.empty()) check_output(out, "--out");
  check_distinct({{"--scores", scores}, {"--out", out}, {"--table", table}});
  engine::ScoreFile file;
  try {
    file = engine::parse_score_file(engine::read_file(scores), scores);
  } catch (const engine::OutputFileError& e) {
    throw CliError(kExitData, std::string("--scores: ") + e.what());
  } catch (const engine::ScoreFileError& e) {
    throw CliError(kExitData, e.what());
  }
  if (!space.empty() && net::parse_space(space) != file.space)
    throw CliError(kExitData, scores + " holds " + net::space_name(file.space) + " architectures, not --space " + space);
  const auto tab = load_table(table, /*required=*/true, false, file.space);
  if (!tab->has_column(column))
    throw CliError(kExitData, "table '" + tab->path() + "' has no column '" + column + "'");
  for (double a : tab->column(column))
    if (std::isfinite(a) && (a < 0 || a > 100))
      throw CliError(kExitData, "table '" + tab->path() + "': column " + column + " holds " + std::to_string(a) +
                                    ", not an accuracy in percent (0..100)");
  if (file.partial_last_line)
    throw CliError(kExitData, scores + ": the last line is incomplete (a score run still writing, or killed); "
                                       "finish it with score --resume first");
  std::vector<engine::ArchScore> rows;
  std::vector<double> acc;
  std::map<int, size_t> seen;
  size_t error_records = 0, not_in_table = 0, duplicates = 0, no_accuracy = 0;
  const auto& accuracy = tab->column(column);
  for (auto& rec : file.records) {
    if (rec.error_record) {
      ++error_records;
      continue;
    }
    const auto idx = tab->index_of(rec.score.arch);
    if (rec.index && idx && *rec.index != *idx)
      throw CliError(kExitData, scores + ":" + std::to_string(rec.line) + ": index " + std::to_string(*rec.index) +
                                    " is not the table's index of this arch (" + std::to_string(*idx) +
                                    "): scored with another table?");
    if (!idx) {
      ++not_in_table;
      continue;
    }
    const int code = static_cast<int>(net::arch_code(rec.score.arch));
    if (const auto it = seen.find(code); it != seen.end()) {
      const auto& first = rows[it->second];
      for (int p = 0; p < engine::kNumProxies; ++p) {
        const auto& x = first.values[p];
        const auto& y = rec.score.values[p];
        if (x.has_value() != y.has_value() || (x && (x->value != y->value || x->flag != y->flag)))
          throw CliError(kExitData, scores + ":" + std::to_string(rec.line) + ": " + net::arch_string(rec.score.arch) +
                                        " was scored before with a different " +
                                        engine::proxy_name(static_cast<Proxy>(p)) +
                                        " value: records of different runs are mixed in this file; "
                                        "evaluate each run's file on its own");
      }
      ++duplicates;
      continue;
    }
    if (!std::isfinite(accuracy[*idx])) {
      ++no_accuracy;
      continue;
    }
    seen[code] = rows.size();
    rows.push_back(std::move(rec.score));
    acc.push_back(accuracy[*idx]);
  }
  std::fprintf(stderr,
               "[eval] %s: %zu records; %zu architectures matched in the table; dropped: %zu error "
               "records, %zu not in the table, %zu repeated (identical), %zu without %s\n",
               scores.c_str(), file.records.size(), rows.size(), error_records, not_in_table, duplicates,
               no_accuracy, column.c_str());
  if (rows.size() < 3) throw CliError(kExitData, "--scores holds fewer than 3 architectures of the table");

  // What to evaluate: every proxy present, then each fitness mode over each preset whose proxies
  // the file has, and over all of its proxies.
  std::vector<Proxy> present;
  for (int p = 0; p < engine::kNumProxies; ++p) {
    bool all = true;
    for (const auto& r : rows) all = all && r.values[p].has_value();
    if (all) present.push_back(static_cast<Proxy>(p));
  }
  struct Candidate {
    std::string name;
    std::vector<double> value;  // higher is better, -inf for worst
  };
  std::vector<Candidate> cands;
  for (Proxy p : present) {
    Candidate c{engine::proxy_name(p), {}};
    for (const auto& r : rows) {
      const auto& v = *r[p];
      c.value.push_back(!v.flag.empty() || !std::isfinite(v.value) ? -INFINITY
                        : engine::higher_is_better(p)              ? v.value
                                                                   : -v.value);
    }
    cands.push_back(std::move(c));
  }
  std::vector<std::pair<std::string, engine::FitnessSpec>> specs;
  for (const auto& name : engine::run_preset_names()) {
    const auto& pre = engine::run_preset(name);
    // full has no fitness; a preset that only changes the mode repeats another's rows (every mode is listed).
    if (name == "full" || std::string(pre.fitness) != "z") continue;
    engine::FitnessSpec spec;
    spec.proxies = engine::parse_proxy_list(pre.proxies);
    spec.log_ntk = pre.log_ntk;
    bool ok = true;
    for (Proxy p : spec.proxies) ok = ok && std::find(present.begin(), present.end(), p) != present.end();
    if (ok) specs.push_back({name, spec});
  }
  for (auto spec : extra_specs) {
    for (Proxy p : spec.proxies)
      if (std::find(present.begin(), present.end(), p) == present.end())
        throw CliError(kExitData, std::string("--fitness-proxies: the scores have no ") + engine::proxy_name(p));
    specs.push_back({"{" + engine::proxy_list_string(spec.proxies) + "}", spec});
  }
  std::vector<engine::ArchScore> reference;
  for (const auto& r : rows) reference.push_back(r);
  std::vector<const engine::ArchScore*> ptrs;
  for (const auto& r : rows) ptrs.push_back(&r);
  for (auto& [name, spec] : specs)
    for (const auto mode : {engine::FitnessMode::kZ, engine::FitnessMode::kRank, engine::FitnessMode::kLogRank}) {
      spec.mode = mode;
      engine::ZStats stats;
      if (mode == engine::FitnessMode::kZ) {
        try {
          stats = engine::fitness_zstats(spec, reference);
        } catch (const std::runtime_error& e) {
          continue;
        }
      }
      cands.push_back({name + ":" + engine::fitness_mode_name(mode), engine::archive_fitness(spec, stats, ptrs)});
    }

  nlohmann::json res = {{"space", net::space_name(file.space)}, {"table", tab->path()},
                        {"scores", scores}, {"column", column}, {"architectures", rows.size()},
                        {"records", file.records.size()},
                        {"dropped",
                         {{"error_records", error_records},
                          {"not_in_table", not_in_table},
                          {"duplicates", duplicates},
                          {"no_accuracy", no_accuracy}}},
                        {"results", nlohmann::json::array()}};
  std::printf("%-22s %9s %9s %8s %8s %8s\n", "proxy / fitness", "kendall", "spearman", "top1", "top10", "excluded");
  for (const auto& c : cands) {
    std::vector<double> x, y;
    std::vector<size_t> order;
    for (size_t i = 0; i < rows.size(); ++i)
      if (std::isfinite(c.value[i]) && std::isfinite(acc[i])) {
        x.push_back(c.value[i]);
        y.push_back(acc[i]);
      }
    for (size_t i = 0; i < rows.size(); ++i) order.push_back(i);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return c.value[a] > c.value[b]; });
    const double top1 = acc[order[0]];
    double top10 = 0;
    const size_t k = std::min<size_t>(10, order.size());
    for (size_t i = 0; i < k; ++i) top10 += acc[order[i]];
    top10 /= k;
    const double tau = engine::kendall_tau_b(x, y), rho = engine::spearman_rho(x, y);
    const size_t excluded = rows.size() - x.size();
    std::printf("%-22s %9.4f %9.4f %8.2f %8.2f %8zu\n", c.name.c_str(), tau, rho, top1, top10, excluded);
    res["results"].push_back({{"name", c.name},
                              {"kendall_tau", std::isfinite(tau) ? nlohmann::json(tau) : nlohmann::json(nullptr)},
                              {"spearman_rho", std::isfinite(rho) ? nlohmann::json(rho) : nlohmann::json(nullptr)},
                              {"top1_accuracy", top1},
                              {"top10_mean_accuracy", top10},
                              {"excluded_nonfinite", excluded}});
  }
  if (!out.empty()) write_output(out, res.dump(1) + "\n");
  return kExitOk;
}

}  // namespace hn::cli
