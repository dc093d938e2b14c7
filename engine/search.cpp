#include "engine/search.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "net/sampling.hpp"

namespace hn::engine {

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();
constexpr uint32_t kInitialPopulationStream = 1000;  // apart from the per-generation draws
constexpr const char* kCheckpointFormat = "hybridnas-search-checkpoint-1";

// The archive of distinct evaluated architectures (by isomorphism representative when
// deduplicating), in evaluation order.
class Archive {
 public:
  Archive(Scorer& scorer, const std::vector<int>* reps, int budget)
      : scorer_(scorer), reps_(reps), budget_(budget) {}

  int key(const net::Genes& g) const {
    const int c = net::genes_code(g);
    return reps_ ? (*reps_)[c] : c;
  }
  int find(const net::Genes& g) const {
    const auto it = index_.find(key(g));
    return it == index_.end() ? -1 : it->second;
  }
  int size() const { return static_cast<int>(entries_.size()); }
  bool full() const { return size() >= budget_; }
  const std::vector<ArchScore>& entries() const { return entries_; }

  // Scores the members of `genes` not yet archived, in order, while the budget lasts.
  void evaluate(const std::vector<net::Genes>& genes) {
    std::vector<net::Genes> fresh;
    std::vector<int> keys;
    for (const auto& g : genes) {
      if (size() + static_cast<int>(fresh.size()) >= budget_) break;
      const int k = key(g);
      if (index_.count(k) || std::find(keys.begin(), keys.end(), k) != keys.end()) continue;
      keys.push_back(k);
      fresh.push_back(net::genes_from_code(k));
    }
    if (fresh.empty()) return;
    std::vector<ArchScore> got(fresh.size());
    scorer_.score(fresh, [&](size_t i, ArchScore&& a) { got[i] = std::move(a); });
    for (auto& a : got) add(std::move(a));
  }

  void add(ArchScore a) {
    index_[net::genes_code(a.genes)] = size();
    entries_.push_back(std::move(a));
  }

 private:
  Scorer& scorer_;
  const std::vector<int>* reps_;
  int budget_;
  std::vector<ArchScore> entries_;
  std::map<int, int> index_;
};

// Fitness of every archive entry (z: per entry, cached; rank modes: recomputed from the whole
// archive on each call, as SPEC.md 4 asks at each selection).
class Fitness {
 public:
  Fitness(const FitnessSpec& spec) : spec_(spec) {}
  void set_stats(const ZStats& s) { stats_ = s; }
  const ZStats& stats() const { return stats_; }
  const std::vector<double>& all(const Archive& a) {
    if (spec_.mode == FitnessMode::kZ) {
      for (int i = static_cast<int>(cache_.size()); i < a.size(); ++i)
        cache_.push_back(z_fitness(spec_, stats_, a.entries()[i]));
      return cache_;
    }
    std::vector<const ArchScore*> ptrs;
    for (const auto& e : a.entries()) ptrs.push_back(&e);
    cache_ = archive_fitness(spec_, stats_, ptrs);
    return cache_;
  }

 private:
  FitnessSpec spec_;
  ZStats stats_;
  std::vector<double> cache_;
};

int best_entry(const std::vector<double>& fit) {
  int best = -1;
  for (int i = 0; i < static_cast<int>(fit.size()); ++i)
    if (best < 0 || fit[i] > fit[best]) best = i;
  return best;
}

// ---- checkpoints ------------------------------------------------------------------------------

nlohmann::json value_json(double v) {
  if (std::isinf(v)) return v > 0 ? "+inf" : "-inf";
  return v;
}
double json_value(const nlohmann::json& j) {
  if (j.is_string()) {
    if (j == "+inf") return std::numeric_limits<double>::infinity();
    if (j == "-inf") return -std::numeric_limits<double>::infinity();
    throw CheckpointError("bad value " + j.dump());
  }
  return j.get<double>();
}

nlohmann::json score_json(const ArchScore& a) {
  nlohmann::json v = nlohmann::json::object();
  for (int p = 0; p < kNumProxies; ++p)
    if (a.values[p])
      v[proxy_name(static_cast<Proxy>(p))] = {value_json(a.values[p]->value), a.values[p]->flag,
                                              a.values[p]->seconds};
  return {{"arch", net::genes_code(a.genes)}, {"values", v}};
}

ArchScore json_score(const nlohmann::json& j) {
  ArchScore a;
  a.genes = net::genes_from_code(j.at("arch").get<int>());
  for (auto it = j.at("values").begin(); it != j.at("values").end(); ++it)
    a[parse_proxy(it.key())] = ProxyValue{json_value(it.value().at(0)), it.value().at(1).get<std::string>(),
                                          it.value().at(2).get<double>()};
  return a;
}

struct GaState {
  int generation = 0;  // the next generation to run
  int stall = 0;
  std::vector<uint8_t> population;
};

void write_checkpoint(const SearchConfig& c, const Archive& archive, const Fitness& fitness,
                      const GaState& st) {
  nlohmann::json j;
  j["format"] = kCheckpointFormat;
  j["fingerprint"] = c.fingerprint;
  j["generation"] = st.generation;
  j["stall"] = st.stall;
  j["population"] = st.population;
  nlohmann::json stats = nlohmann::json::object();
  for (const auto& [p, s] : fitness.stats())
    stats[proxy_name(p)] = {s.mean, s.std, s.n, s.settings};
  j["stats"] = stats;
  j["archive"] = nlohmann::json::array();
  for (const auto& e : archive.entries()) j["archive"].push_back(score_json(e));
  // Atomic: write a temporary file, flush it to disk, rename over the old checkpoint.
  const std::string tmp = c.checkpoint + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << j.dump() << "\n";
    out.flush();
    if (!out) throw CheckpointError("cannot write checkpoint '" + tmp + "'");
  }
  if (FILE* f = std::fopen(tmp.c_str(), "r")) {
    fsync(fileno(f));
    std::fclose(f);
  }
  if (std::rename(tmp.c_str(), c.checkpoint.c_str()) != 0)
    throw CheckpointError("cannot replace checkpoint '" + c.checkpoint + "'");
}

// Returns false when there is no checkpoint file to resume from.
bool read_checkpoint(const SearchConfig& c, Archive& archive, Fitness& fitness, GaState& st) {
  std::ifstream in(c.checkpoint);
  if (!in) return false;
  nlohmann::json j;
  try {
    in >> j;
    if (j.at("format") != kCheckpointFormat) throw CheckpointError("unknown format");
    if (j.at("fingerprint") != c.fingerprint)
      throw CheckpointError("it belongs to a search with other settings (" +
                            j.at("fingerprint").get<std::string>() + ")");
    st.generation = j.at("generation").get<int>();
    st.stall = j.at("stall").get<int>();
    st.population = j.at("population").get<std::vector<uint8_t>>();
    if (st.population.size() != static_cast<size_t>(c.population) * kGenes)
      throw CheckpointError("population size does not match");
    for (uint8_t g : st.population)
      if (g >= kOps) throw CheckpointError("population holds an invalid op");
    ZStats stats;
    for (auto it = j.at("stats").begin(); it != j.at("stats").end(); ++it)
      stats[parse_proxy(it.key())] = ZStat{it.value().at(0).get<double>(), it.value().at(1).get<double>(),
                                           it.value().at(2).get<int>(), it.value().at(3).get<std::string>(), 0};
    fitness.set_stats(stats);
    for (const auto& e : j.at("archive")) archive.add(json_score(e));
  } catch (const CheckpointError& e) {
    throw CheckpointError("checkpoint '" + c.checkpoint + "': " + e.what());
  } catch (const std::exception& e) {
    throw CheckpointError("checkpoint '" + c.checkpoint + "' is corrupt or truncated (" + e.what() + ")");
  }
  return true;
}

// ---- the searches -----------------------------------------------------------------------------

struct Run {
  const SearchConfig& c;
  Archive& archive;
  Fitness& fitness;
  const SearchProgress& progress;
  int generation = 0;

  void report() {
    if (!progress) return;
    const auto& f = fitness.all(archive);
    const int b = best_entry(f);
    SearchProgressInfo info;
    info.generation = generation;
    info.evaluations = archive.size();
    info.budget = c.budget;
    if (b >= 0) {
      info.best_fitness = f[b];
      info.best = archive.entries()[b].genes;
    }
    progress(info);
  }
};

void run_ga(Run& r, const GaGeneration& step, bool resumed, GaState st) {
  const SearchConfig& c = r.c;
  const PhiloxKey key = philox_key(c.search_seed);
  if (!resumed) {
    const auto init = net::sample_distinct(c.population, c.search_seed, Purpose::kGa, false,
                                           kInitialPopulationStream);
    for (const auto& g : init)
      for (int e = 0; e < kGenes; ++e) st.population.push_back(static_cast<uint8_t>(g[e]));
    r.archive.evaluate(init);
    r.report();
  }
  auto genes_at = [&](const std::vector<uint8_t>& pop, int i) {
    net::Genes g;
    for (int e = 0; e < kGenes; ++e) g[e] = static_cast<net::Op>(pop[i * kGenes + e]);
    return g;
  };
  std::vector<uint8_t> children;
  while (st.generation < c.generations && !r.archive.full() && st.stall < c.stall_generations) {
    const auto& all = r.fitness.all(r.archive);
    std::vector<double> fit(c.population);
    for (int i = 0; i < c.population; ++i) {
      const int e = r.archive.find(genes_at(st.population, i));
      fit[i] = e >= 0 ? all[e] : kNegInf;
    }
    step(st.population, fit, static_cast<uint32_t>(st.generation), key, c.ga, children);
    std::vector<net::Genes> kids;
    int fresh = 0;
    for (int i = 0; i < c.population; ++i) {
      kids.push_back(genes_at(children, i));
      fresh += r.archive.find(kids.back()) < 0;
    }
    st.stall = fresh ? 0 : st.stall + 1;
    r.archive.evaluate(kids);
    st.population = children;
    ++st.generation;
    r.generation = st.generation;
    if (!c.checkpoint.empty()) write_checkpoint(c, r.archive, r.fitness, st);
    r.report();
  }
  r.generation = st.generation;
}

void run_random(Run& r) {
  const auto order = net::sample_distinct(net::kNumArchs, r.c.search_seed, Purpose::kRandomSearch, false);
  for (size_t i = 0; i < order.size() && !r.archive.full(); i += 64) {
    r.archive.evaluate(std::vector<net::Genes>(order.begin() + i, order.begin() + std::min(order.size(), i + 64)));
    r.report();
  }
}

// Regularised evolution (Real et al. 2019): age-ordered population, tournament of k distinct
// members, the winner mutated once, the oldest removed. Draws: cycle t uses Philox counters
// (t, 0, kRea, block) for its tournament (a partial shuffle) and its mutation.
void run_rea(Run& r) {
  const SearchConfig& c = r.c;
  const PhiloxKey key = philox_key(c.search_seed);
  const auto init = net::sample_distinct(c.population, c.search_seed, Purpose::kRea, false,
                                         kInitialPopulationStream);
  r.archive.evaluate(init);
  std::vector<net::Genes> pop(init.begin(), init.end());
  r.report();
  const int64_t max_cycles = 50LL * c.budget + 1000;  // a space without new architectures ends
  std::vector<int> idx(pop.size());
  for (int64_t t = 0; t < max_cycles && !r.archive.full(); ++t) {
    const auto& all = r.fitness.all(r.archive);
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int>(i);
    const int k = std::min<int>(c.rea_tournament, static_cast<int>(pop.size()));
    int winner = -1;
    double wfit = kNegInf;
    for (int i = 0; i < k; ++i) {
      const Philox4 w = philox_draw(key, static_cast<uint32_t>(t), static_cast<uint32_t>(i / 4),
                                    Purpose::kRea, 0);
      const uint32_t j = i + philox_below(w.v[i % 4], static_cast<uint32_t>(idx.size() - i));
      std::swap(idx[i], idx[j]);
      const int e = r.archive.find(pop[idx[i]]);
      const double f = e >= 0 ? all[e] : kNegInf;
      if (winner < 0 || f > wfit) {
        winner = idx[i];
        wfit = f;
      }
    }
    net::Genes child = pop[winner];
    const Philox4 m = philox_draw(key, static_cast<uint32_t>(t), 0, Purpose::kRea, 1);
    uint8_t genes[kGenes];
    for (int e = 0; e < kGenes; ++e) genes[e] = static_cast<uint8_t>(child[e]);
    ga_mutate(genes, m.v[0], m.v[1]);
    for (int e = 0; e < kGenes; ++e) child[e] = static_cast<net::Op>(genes[e]);
    r.archive.evaluate({child});
    pop.erase(pop.begin());
    pop.push_back(child);
    r.generation = static_cast<int>(t + 1);
    if ((t + 1) % 25 == 0) r.report();
  }
}

void run_exhaustive(Run& r) {
  std::vector<net::Genes> all;
  for (int code = 0; code < net::kNumArchs; ++code) all.push_back(net::genes_from_code(code));
  for (size_t i = 0; i < all.size(); i += 256) {
    r.archive.evaluate(std::vector<net::Genes>(all.begin() + i, all.begin() + std::min(all.size(), i + 256)));
    r.report();
  }
}

}  // namespace

const char* strategy_name(Strategy s) {
  switch (s) {
    case Strategy::kGa: return "ga";
    case Strategy::kRandom: return "random";
    case Strategy::kRea: return "rea";
    case Strategy::kExhaustive: return "exhaustive";
  }
  return "?";
}

Strategy parse_strategy(const std::string& s) {
  if (s == "ga") return Strategy::kGa;
  if (s == "random") return Strategy::kRandom;
  if (s == "rea") return Strategy::kRea;
  if (s == "exhaustive") return Strategy::kExhaustive;
  throw std::invalid_argument("unknown strategy '" + s + "' (known: ga, random, rea, exhaustive)");
}

void SearchConfig::validate() const {
  auto bad = [](const std::string& m) { throw std::invalid_argument(m); };
  if (budget < 1) bad("--budget must be at least 1");
  if (population < 4 || population % 2) bad("--population must be even and at least 4");
  if (population > net::kNumArchs) bad("--population is larger than the space");
  if (generations < 0) bad("--generations must be >= 0");
  if (!(ga.crossover >= 0 && ga.crossover <= 1)) bad("--crossover must be in [0, 1]");
  if (!(ga.mutation >= 0 && ga.mutation <= 1)) bad("--mutation must be in [0, 1]");
  if (stall_generations < 1) bad("--stall must be at least 1");
  if (rea_tournament < 1) bad("--rea-tournament must be at least 1");
  if (fitness.proxies.empty()) bad("the fitness needs at least one proxy");
  if (fitness.mode == FitnessMode::kZ && !stats && reference_sample < 2)
    bad("--reference-sample must be at least 2 for a z fitness");
  if (!checkpoint.empty() && strategy != Strategy::kGa) bad("--checkpoint is supported for --strategy ga");
}

std::vector<int> isomorphism_representatives(const net::ArchTable* table) {
  std::map<std::string, int> best;  // key -> representative code
  auto order = [&](int code) {
    if (!table) return code;
    const auto idx = table->index_of(net::genes_from_code(code));
    return idx ? *idx : net::kNumArchs + code;
  };
  for (int code = 0; code < net::kNumArchs; ++code) {
    const std::string k = net::isomorphism_key(net::genes_from_code(code));
    const auto it = best.find(k);
    if (it == best.end() || order(code) < order(it->second)) best[k] = code;
  }
  std::vector<int> rep(net::kNumArchs);
  for (int code = 0; code < net::kNumArchs; ++code)
    rep[code] = best.at(net::isomorphism_key(net::genes_from_code(code)));
  return rep;
}

SearchResult run_search(const SearchConfig& c, Scorer& scorer, const net::ArchTable* table,
                        const SearchProgress& progress, const GaGeneration& ga_generation) {
  c.validate();
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<int> reps;
  if (c.dedup_isomorphic) reps = isomorphism_representatives(table);
  Archive archive(scorer, c.dedup_isomorphic ? &reps : nullptr,
                  c.strategy == Strategy::kExhaustive ? net::kNumArchs : c.budget);
  Fitness fitness(c.fitness);
  Run run{c, archive, fitness, progress};
  SearchResult res;

  GaState state;
  if (c.strategy == Strategy::kGa && !c.checkpoint.empty())
    res.resumed = read_checkpoint(c, archive, fitness, state);
  res.restored = archive.size();
  if (!res.resumed) {
    if (c.stats) {
      fitness.set_stats(*c.stats);
    } else if (c.fitness.mode == FitnessMode::kZ) {
      // The reference sample: counted against the budget, a possible answer, not the GA's seed.
      archive.evaluate(net::sample_distinct(c.reference_sample, c.search_seed,
                                            Purpose::kReferenceSample, true));
      fitness.set_stats(fitness_zstats(c.fitness, archive.entries()));
    }
  }
  switch (c.strategy) {
    case Strategy::kGa: run_ga(run, ga_generation, res.resumed, state); break;
    case Strategy::kRandom: run_random(run); break;
    case Strategy::kRea: run_rea(run); break;
    case Strategy::kExhaustive: run_exhaustive(run); break;
  }
  const auto& fit = fitness.all(archive);
  const int b = best_entry(fit);
  res.best = archive.entries()[b].genes;
  res.fitness = fit[b];
  res.evaluations = archive.size();
  res.generations = run.generation;
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (const auto& e : archive.entries()) res.visited.push_back(net::genes_code(e.genes));
  res.archive = archive.entries();
  return res;
}

}  // namespace hn::engine
