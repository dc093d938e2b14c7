#include "engine/search.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <exception>
#include <set>
#include <sstream>
#include <cctype>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "engine/cluster.hpp"
#include "engine/distributed_scorer.hpp"
#include "engine/files.hpp"
#include "engine/score_file.hpp"
#include "net/arch_input.hpp"
#include "net/sampling.hpp"

namespace hn::engine {

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();
constexpr uint32_t kInitialPopulationStream = 1000;  // apart from the per-generation draws
constexpr const char* kCheckpointFormat = "hybridnas-search-checkpoint-2";

// The archive of distinct evaluated architectures (by isomorphism representative when
// deduplicating), in evaluation order.
class Archive {
 public:
  Archive(Scorer& scorer, const std::vector<int>* reps, int budget, net::Space space)
      : scorer_(scorer), reps_(reps), budget_(budget), space_(space) {}

  int key(const net::Arch& g) const {
    const int c = static_cast<int>(net::arch_code(g));
    return reps_ ? (*reps_)[c] : c;
  }
  int find(const net::Arch& g) const {
    const auto it = index_.find(key(g));
    return it == index_.end() ? -1 : it->second;
  }
  int size() const { return static_cast<int>(entries_.size()); }
  // Entries this search scored (island model: not those other islands sent); the budget counts them.
  int own() const { return size() - foreign_count_; }
  bool full() const { return own() >= budget_; }
  int remaining() const { return budget_ - own(); }
  const std::vector<ArchScore>& entries() const { return entries_; }
  bool foreign(int i) const { return foreign_[static_cast<size_t>(i)]; }

  // Scores the members of `genes` not yet archived, in order, while the budget lasts.
  void evaluate(const std::vector<net::Arch>& genes) {
    std::vector<net::Arch> fresh;
    std::vector<int> keys;
    for (const auto& g : genes) {
      if (own() + static_cast<int>(fresh.size()) >= budget_) break;
      const int k = key(g);
      if (index_.count(k) || std::find(keys.begin(), keys.end(), k) != keys.end()) continue;
      keys.push_back(k);
      fresh.push_back(net::arch_from_code(space_, k));
    }
    if (fresh.empty()) return;
    std::vector<ArchScore> got(fresh.size());
    scorer_.score(fresh, [&](size_t i, ArchScore&& a) { got[i] = std::move(a); });
    for (auto& a : got) add(std::move(a));
  }

  void add(ArchScore a, bool foreign = false) {
    index_[static_cast<int>(net::arch_code(a.arch))] = size();
    entries_.push_back(std::move(a));
    foreign_.push_back(foreign);
    foreign_count_ += foreign;
  }

 private:
  Scorer& scorer_;
  const std::vector<int>* reps_;
  int budget_;
  net::Space space_;
  std::vector<ArchScore> entries_;
  std::vector<bool> foreign_;
  int foreign_count_ = 0;
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

struct GaState {
  int generation = 0;  // the next generation to run
  int round = 0;       // island model: rounds run (generations plus rounds spent waiting)
  int stall = 0;
  std::vector<uint8_t> population;
};

void write_checkpoint(const SearchConfig& c, const Archive& archive, const Fitness& fitness,
                      const GaState& st) {
  nlohmann::json j;
  j["format"] = kCheckpointFormat;
  if (c.space != net::Space::kNb201) j["space"] = net::space_name(c.space);  // NB201's record none
  j["settings"] = c.settings;
  j["generation"] = st.generation;
  j["round"] = st.round;
  j["stall"] = st.stall;
  j["population"] = st.population;
  nlohmann::json stats = nlohmann::json::object();
  for (const auto& [p, s] : fitness.stats())
    stats[proxy_name(p)] = {s.mean, s.std, s.n, s.settings};
  j["stats"] = stats;
  j["archive"] = nlohmann::json::array();
  for (int i = 0; i < archive.size(); ++i) {
    const ArchScore& a = archive.entries()[static_cast<size_t>(i)];
    nlohmann::json v = nlohmann::json::object();
    for (int p = 0; p < kNumProxies; ++p)
      if (a.values[p])
        v[proxy_name(static_cast<Proxy>(p))] = {value_json(a.values[p]->value), a.values[p]->flag,
                                                a.values[p]->seconds};
    j["archive"].push_back({{"arch", net::arch_code(a.arch)}, {"values", v}});
    if (archive.foreign(i)) j["archive"].back()["foreign"] = true;
  }
  try {
    // Islands keep the previous round's checkpoint: a killed job resumes every island from the
    // latest round all of them wrote (at most one behind the newest, as rounds are collective).
    if (c.islands && ::access(c.checkpoint.c_str(), F_OK) == 0 &&
        std::rename(c.checkpoint.c_str(), (c.checkpoint + ".prev").c_str()) != 0)
      throw CheckpointError("checkpoint: cannot keep the previous one as " + c.checkpoint + ".prev");
    write_file_atomic(c.checkpoint, j.dump() + "\n");
  } catch (const OutputFileError& e) {
    throw CheckpointError(std::string("checkpoint: ") + e.what());
  }
}

// Returns false when there is no checkpoint file to resume from.
bool read_checkpoint(const SearchConfig& c, const std::string& path, Archive& archive, Fitness& fitness,
                     GaState& st) {
  std::ifstream probe(path);
  if (!probe) return false;
  probe.close();
  const std::string name = "checkpoint '" + path + "'";
  std::string text;
  try {
    text = read_file(path);
  } catch (const OutputFileError& e) {
    throw CheckpointError(e.what());
  }
  CheckpointData d = parse_checkpoint(text, name, c.space);
  const size_t G = c.ga.genes;
  std::vector<std::string> keys;
  for (const auto& k : c.settings_order)
    if (c.settings.contains(k)) keys.push_back(k);
  for (auto it = c.settings.begin(); it != c.settings.end(); ++it)
    if (std::find(keys.begin(), keys.end(), it.key()) == keys.end()) keys.push_back(it.key());
  for (const auto& k : keys) {
    const auto r = d.settings.find(k);
    if (r == d.settings.end() || *r != c.settings[k])
      throw CheckpointError(name + " belongs to another search: its " + k + " is " +
                            (r == d.settings.end() ? std::string("not recorded") : net::printable(r->dump(), 200)) +
                            ", this search's is " + net::printable(c.settings[k].dump(), 200) +
                            " (give another --checkpoint file, or delete this one to start afresh)");
  }
  if (d.population.size() != static_cast<size_t>(c.population) * G)
    throw CheckpointError(name + ": its population has " + std::to_string(d.population.size() / G) +
                          " members, this search's " + std::to_string(c.population));
  if (d.generation > c.generations)
    throw CheckpointError(name + ": generation " + std::to_string(d.generation) + " is past --generations " +
                          std::to_string(c.generations));
  if (static_cast<int>(d.archive.size() - std::count(d.foreign.begin(), d.foreign.end(), true)) > c.budget)
    throw CheckpointError(name + ": its archive holds more architectures than the budget");
  for (const auto& [p, s] : d.stats)
    if (std::find(c.fitness.proxies.begin(), c.fitness.proxies.end(), p) == c.fitness.proxies.end())
      throw CheckpointError(name + ": it holds statistics of " + proxy_name(p) + ", which this fitness lacks");
  if (c.fitness.mode == FitnessMode::kZ)
    for (Proxy p : c.fitness.proxies)
      if (!d.stats.count(p))
        throw CheckpointError(name + ": it holds no z statistics of " + proxy_name(p) +
                              ", which this fitness needs");
  // The GA checkpoints after evaluating its population: every member is in the archive.
  {
    // ... unless the budget ran out while it was scored (a finished search).
    const bool spent = static_cast<int>(d.archive.size() - std::count(d.foreign.begin(), d.foreign.end(), true)) >= c.budget;
    std::vector<bool> in_archive(static_cast<size_t>(net::space_size(c.space)), spent);
    for (const auto& e : d.archive) in_archive[static_cast<size_t>(net::arch_code(e.arch))] = true;
    for (size_t i = 0; i < d.population.size(); i += G) {
      const net::Arch g = decode_genome(c.space, &d.population[i]);
      if (!in_archive[static_cast<size_t>(net::arch_code(g))] && !c.dedup_isomorphic)
        throw CheckpointError(name + ": a population member is missing from its archive");
    }
    if (d.archive.empty()) throw CheckpointError(name + ": its archive is empty");
  }
  st.generation = d.generation;
  st.round = d.round;
  st.stall = d.stall;
  st.population = std::move(d.population);
  fitness.set_stats(d.stats);
  for (size_t i = 0; i < d.archive.size(); ++i) {
    ArchScore& e = d.archive[i];
    for (Proxy p : c.fitness.proxies)
      if (!e[p]) throw CheckpointError(name + ": an archive entry lacks " + std::string(proxy_name(p)));
    archive.add(std::move(e), d.foreign[i]);
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
  std::string stop;
  int migrations = 0;

  void report() {
    if (!progress) return;
    const auto& f = fitness.all(archive);
    const int b = best_entry(f);
    SearchProgressInfo info;
    info.generation = generation;
    info.evaluations = archive.own();
    info.budget = c.budget;
    if (b >= 0) {
      info.best_fitness = f[b];
      info.best = archive.entries()[b].arch;
    }
    progress(info);
  }
};

// Copies of the `k` fittest archive entries, fittest first (ties: the earlier entry).
std::vector<ArchScore> fittest(const Archive& archive, const std::vector<double>& fit, int k) {
  std::vector<int> order(static_cast<size_t>(archive.size()));
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return fit[a] > fit[b]; });
  std::vector<ArchScore> out;
  for (int i = 0; i < k && i < static_cast<int>(order.size()); ++i) out.push_back(archive.entries()[order[i]]);
  return out;
}

void run_ga(Run& r, const GaGeneration& step, bool resumed, GaState st) {
  const SearchConfig& c = r.c;
  const IslandModel* isl = c.islands ? &*c.islands : nullptr;
  const PhiloxKey key = philox_key(c.search_seed);
  const size_t G = c.ga.genes;
  if (!resumed) {
    const auto init = net::sample_distinct(c.space, c.population, c.search_seed, Purpose::kGa, false,
                                           kInitialPopulationStream);
    st.population.resize(init.size() * G);
    for (size_t i = 0; i < init.size(); ++i) encode_genome(init[i], &st.population[i * G]);
    r.archive.evaluate(init);
    r.report();
  }
  auto genes_at = [&](const std::vector<uint8_t>& pop, int i) {
    return decode_genome(c.space, &pop[static_cast<size_t>(i) * G]);
  };
  auto population_fitness = [&](const std::vector<double>& all) {
    std::vector<double> fit(c.population);
    for (int i = 0; i < c.population; ++i) {
      const int e = r.archive.find(genes_at(st.population, i));
      fit[i] = e >= 0 ? all[e] : kNegInf;
    }
    return fit;
  };
  std::vector<uint8_t> children;
  for (;;) {
    const bool done = !(st.generation < c.generations && !r.archive.full() && st.stall < c.stall_generations);
    if (isl) {
      // One round: every island takes part, done or not, so that the collectives pair up.
      if (isl->all(done)) break;
      if (st.round > 0 && st.round % isl->interval == 0) {
        const auto sent = fittest(r.archive, r.fitness.all(r.archive), isl->migrants);
        const std::vector<ArchScore> got = decode_scores(isl->ring_shift(encode_scores(sent)));
        if (!done) {
          // Migrants join the archive (scored elsewhere: no budget) and replace the worst members.
          std::vector<net::Arch> incoming;
          for (const ArchScore& a : got) {
            if (a.arch.space != c.space) throw std::runtime_error("an island sent an architecture of another space");
            if (r.archive.find(a.arch) < 0) r.archive.add(a, true);
            bool member = false;
            for (int i = 0; i < c.population && !member; ++i)
              member = r.archive.key(genes_at(st.population, i)) == r.archive.key(a.arch);
            if (!member) incoming.push_back(a.arch);
          }
          const std::vector<double> fit = population_fitness(r.fitness.all(r.archive));
          std::vector<int> worst(static_cast<size_t>(c.population));
          for (int i = 0; i < c.population; ++i) worst[static_cast<size_t>(i)] = i;
          std::stable_sort(worst.begin(), worst.end(), [&](int a, int b) { return fit[a] < fit[b]; });
          for (size_t m = 0; m < incoming.size() && m < worst.size(); ++m)
            encode_genome(incoming[m], &st.population[static_cast<size_t>(worst[m]) * G]);
        }
      }
      ++st.round;
      if (done) {
        if (!c.checkpoint.empty()) write_checkpoint(c, r.archive, r.fitness, st);
        continue;
      }
    } else if (done) {
      break;
    }
    const std::vector<double> fit = population_fitness(r.fitness.all(r.archive));
    step(st.population, fit, static_cast<uint32_t>(st.generation), key, c.ga, children);
    std::vector<net::Arch> kids;
    int fresh = 0;
    for (int i = 0; i < c.population; ++i) {
      kids.push_back(genes_at(children, i));
      fresh += r.archive.find(kids.back()) < 0;
    }
    st.stall = fresh ? 0 : st.stall + 1;
    r.archive.evaluate(kids);
    st.population = children;
    ++st.generation;
    if (!isl) st.round = st.generation;
    r.generation = st.generation;
    if (!c.checkpoint.empty()) write_checkpoint(c, r.archive, r.fitness, st);
    r.report();
  }
  r.generation = st.generation;
  if (isl) r.migrations = st.round > 1 ? (st.round - 1) / isl->interval : 0;  // rounds 1..round-1 that migrated
  r.stop = r.archive.full()                    ? "budget"
           : st.generation >= c.generations    ? "generations"
                                               : "stall";
}

void run_random(Run& r) {
  const auto order = net::sample_distinct(r.c.space, static_cast<int>(net::space_size(r.c.space)), r.c.search_seed,
                                          Purpose::kRandomSearch, false);
  for (size_t i = 0; i < order.size() && !r.archive.full(); i += 64) {
    r.archive.evaluate(std::vector<net::Arch>(order.begin() + i, order.begin() + std::min(order.size(), i + 64)));
    r.report();
  }
  r.stop = r.archive.full() ? "budget" : "space";
}

// Regularised evolution (Real et al. 2019): age-ordered population, tournament of k distinct
// members, the winner mutated once, the oldest removed. Draws: cycle t uses Philox counters
// (t, 0, kRea, block) for its tournament (a partial shuffle) and its mutation. With --rea-batch K
// a step runs K cycles' tournaments on the population as it stands, scores the K children as one
// population (one scorer call, the population executor's unit) and then retires the K oldest;
// K = 1 is the sequential algorithm, draw for draw.
void run_rea(Run& r) {
  const SearchConfig& c = r.c;
  const PhiloxKey key = philox_key(c.search_seed);
  const auto init = net::sample_distinct(c.space, c.population, c.search_seed, Purpose::kRea, false,
                                         kInitialPopulationStream);
  r.archive.evaluate(init);
  std::vector<net::Arch> pop(init.begin(), init.end());
  const int G = static_cast<int>(c.ga.genes);
  const int space_size = static_cast<int>(net::space_size(c.space));
  r.report();
  std::vector<int> idx(pop.size());
  int64_t t = 0;  // cycles so far: one child each
  while (!r.archive.full()) {
    const auto& all = r.fitness.all(r.archive);
    const int want = std::min(c.rea_batch, r.archive.remaining());
    std::vector<net::Arch> children;
    std::set<int> pending;  // archive keys of this step's children
    auto taken = [&](const net::Arch& g) { return r.archive.find(g) >= 0 || pending.count(r.archive.key(g)) > 0; };
    bool exhausted = false;
    for (int j = 0; j < want; ++j, ++t) {
      for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int>(i);
      const int k = std::min<int>(c.rea_tournament, static_cast<int>(pop.size()));
      int winner = -1;
      double wfit = kNegInf;
      for (int i = 0; i < k; ++i) {
        const Philox4 w = philox_draw(key, static_cast<uint32_t>(t), static_cast<uint32_t>(i / 4),
                                      Purpose::kRea, 0);
        const uint32_t jj = i + philox_below(w.v[i % 4], static_cast<uint32_t>(idx.size() - i));
        std::swap(idx[i], idx[jj]);
        const int e = r.archive.find(pop[idx[i]]);
        const double f = e >= 0 ? all[e] : kNegInf;
        if (winner < 0 || f > wfit) {
          winner = idx[i];
          wfit = f;
        }
      }
      // The child is the winner with one gene changed (SPEC.md 5). When that architecture was
      // evaluated already (or is another child of this step), the child is instead the
      // unevaluated architecture nearest to the winner (fewest genes changed; ties: the first in
      // code order from a drawn start), so that every cycle spends budget on a new architecture
      // while one exists; SPEC.md 5's budget counts distinct architectures, and an unchanged REA
      // spends most cycles on repeats once its population has converged.
      const Philox4 m = philox_draw(key, static_cast<uint32_t>(t), 0, Purpose::kRea, 1);
      uint8_t winner_genome[kMaxGenes];
      encode_genome(pop[winner], winner_genome);
      net::Arch child;
      {
        uint8_t genes[kMaxGenes];
        std::copy_n(winner_genome, G, genes);
        ga_mutate(genes, m.v[0], m.v[1], c.ga.genes, c.ga.ops);
        child = decode_genome(c.space, genes);
      }
      if (taken(child)) {
        const int start = static_cast<int>(philox_below(m.v[2], static_cast<uint32_t>(space_size)));
        int best = -1, best_d = G + 1;
        for (int kk = 0; kk < space_size && best_d > 1; ++kk) {
          const int code = (start + kk) % space_size;
          const net::Arch g = net::arch_from_code(c.space, code);
          uint8_t genome[kMaxGenes];
          encode_genome(g, genome);
          int d = 0;
          for (int e = 0; e < G; ++e) d += genome[e] != winner_genome[e];
          if (d > 0 && d < best_d && !taken(g)) {
            best = code;
            best_d = d;
          }
        }
        if (best < 0) {  // every architecture (or isomorphism class) is evaluated or pending
          exhausted = true;
          break;
        }
        child = net::arch_from_code(c.space, best);
      }
      pending.insert(r.archive.key(child));
      children.push_back(child);
    }
    if (!children.empty()) {
      r.archive.evaluate(children);
      pop.erase(pop.begin(), pop.begin() + static_cast<std::ptrdiff_t>(children.size()));
      pop.insert(pop.end(), children.begin(), children.end());
    }
    const int64_t before = r.generation;
    r.generation = static_cast<int>(t);
    if (exhausted) {
      r.stop = "space";
      return;
    }
    if (t / 25 != before / 25) r.report();
  }
  r.stop = "budget";
}

void run_exhaustive(Run& r) {
  std::vector<net::Arch> all;
  for (int64_t code = 0; code < net::space_size(r.c.space); ++code) all.push_back(net::arch_from_code(r.c.space, code));
  for (size_t i = 0; i < all.size(); i += 256) {
    r.archive.evaluate(std::vector<net::Arch>(all.begin() + i, all.begin() + std::min(all.size(), i + 256)));
    r.report();
  }
  r.stop = "space";
}

}  // namespace

GaParams genome_params(net::Space space, GaParams p) {
  const bool sss = space == net::Space::kNatsSss;
  p.genes = sss ? net::sss::kLayers : kGenes;
  p.ops = sss ? net::sss::kWidthChoices : kOps;
  return p;
}

void encode_genome(const net::Arch& a, uint8_t* out) {
  if (a.is_nb201())
    for (int e = 0; e < kGenes; ++e) out[e] = static_cast<uint8_t>(a.genes[e]);
  else
    for (int k = 0; k < net::sss::kLayers; ++k) out[k] = static_cast<uint8_t>(a.widths.c[k] / 8 - 1);
}

net::Arch decode_genome(net::Space space, const uint8_t* genes) {
  if (space == net::Space::kNb201) {
    net::Genes g;
    for (int e = 0; e < kGenes; ++e) g[e] = static_cast<net::Op>(genes[e]);
    return g;
  }
  net::sss::Widths w;
  for (int k = 0; k < net::sss::kLayers; ++k) w.c[k] = 8 * (genes[k] + 1);
  return net::Arch(w);
}

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
  const int64_t size = net::space_size(this->space);
  const std::string space = std::to_string(size);
  if (budget < 1 || budget > size)
    bad("--budget must be from 1 to " + space + " (the space's size), got " + std::to_string(budget));
  if (population < 4 || population % 2 || population > size)
    bad("--population must be even, from 4 to " + space + ", got " + std::to_string(population));
  if (generations < 1 || generations > 1000000)
    bad("--generations must be from 1 to 1000000, got " + std::to_string(generations));
  if (!(ga.crossover >= 0 && ga.crossover <= 1)) bad("--crossover must be a probability in [0, 1]");
  if (!(ga.mutation >= 0 && ga.mutation <= 1)) bad("--mutation must be a probability in [0, 1]");
  if (stall_generations < 1 || stall_generations > 1000000)
    bad("--stall must be from 1 to 1000000, got " + std::to_string(stall_generations));
  if (rea_tournament < 1 || rea_tournament > size)  // a tournament takes min(k, population)
    bad("--rea-tournament must be from 1 to " + space + ", got " + std::to_string(rea_tournament));
  if (rea_batch < 1 || rea_batch > population)
    bad("--rea-batch must be from 1 to --population (" + std::to_string(population) + "), got " +
        std::to_string(rea_batch));
  if (fitness.proxies.empty()) bad("the fitness needs at least one proxy");
  const bool sample = fitness.mode == FitnessMode::kZ && !stats;
  if (sample && (reference_sample < 2 || reference_sample > size))
    bad("--reference-sample must be from 2 to " + space + " for a z fitness, got " +
        std::to_string(reference_sample));
  if (!checkpoint.empty() && strategy != Strategy::kGa) bad("--checkpoint is supported for --strategy ga");
  if (strategy == Strategy::kExhaustive) return;  // evaluates the whole space whatever the budget
  // The budget must leave the search something to do after what it evaluates first.
  const int first = (sample ? reference_sample : 0) +
                    (strategy == Strategy::kGa || strategy == Strategy::kRea ? population : 0);
  if (budget <= first) {
    std::string parts = sample ? "the reference sample of " + std::to_string(reference_sample) : "";
    if (strategy == Strategy::kGa || strategy == Strategy::kRea)
      parts += std::string(sample ? " plus " : "") + "the initial population of " + std::to_string(population);
    bad("--budget " + std::to_string(budget) + " is spent before the " + strategy_name(strategy) +
        " starts: " + parts + " come first, so the budget must be more than " + std::to_string(first) +
        " (or lower --population" + std::string(sample ? " / --reference-sample, or give --stats" : "") + ")");
  }
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

CheckpointData parse_checkpoint(std::string_view text, const std::string& name, net::Space space) {
  const GaParams genome = genome_params(space, GaParams{});
  const int64_t size = net::space_size(space);
  auto bad = [&](const std::string& what) -> CheckpointError {
    return CheckpointError(name + " is not a usable checkpoint: " + what);
  };
  nlohmann::json j;
  try {
    j = parse_json_strict(text);
  } catch (const std::exception& e) {
    throw bad(std::string(e.what()) + " (truncated, or another program's file)");
  }
  if (!j.is_object()) throw bad("not a JSON object");
  if (!j.contains("format") || !j["format"].is_string())
    throw bad("no format field (not a hybridnas checkpoint)");
  const std::string fmt = j["format"].get<std::string>();
  if (fmt != kCheckpointFormat)
    throw CheckpointError(name + " has format '" + net::printable(fmt, 60) + "'; this hybridnas reads '" +
                          kCheckpointFormat + "' (delete it to start the search afresh)");
  auto integer = [&](const char* key, int64_t lo, int64_t hi) {
    if (!j.contains(key) || !j[key].is_number_integer()) throw bad(std::string(key) + " is not an integer");
    const auto v = j[key].get<int64_t>();
    if (v < lo || v > hi) throw bad(std::string(key) + " is out of range");
    return static_cast<int>(v);
  };
  auto proxy_named = [&](const std::string& key, const char* where) {
    try {
      return parse_proxy(key);
    } catch (const std::invalid_argument&) {
      throw bad(std::string(where) + " names an unknown proxy");
    }
  };
  CheckpointData d;
  if (!j.contains("settings") || !j["settings"].is_object()) throw bad("settings is not an object");
  d.settings = j["settings"];
  // Its space first (NB201's checkpoints record none): another space's genes mean other networks.
  {
    const auto sp = j.find("space");
    const std::string written = sp == j.end() ? "nb201" : sp->is_string() ? sp->get<std::string>() : "?";
    if (written != net::space_name(space))
      throw CheckpointError(name + " is a search of space " + net::printable(written, 40) + ", this search's is " +
                            net::space_name(space) + " (give another --checkpoint file)");
  }
  d.generation = integer("generation", 0, 1000000000);
  d.round = j.contains("round") ? integer("round", d.generation, 1000000000) : d.generation;
  d.stall = integer("stall", 0, 1000000000);
  if (!j.contains("population") || !j["population"].is_array()) throw bad("population is not an array");
  for (const auto& g : j["population"]) {
    if (!g.is_number_integer() || g.get<int64_t>() < 0 || g.get<int64_t>() >= genome.ops)
      throw bad("population holds a value that is not a gene 0.." + std::to_string(genome.ops - 1));
    d.population.push_back(static_cast<uint8_t>(g.get<int>()));
  }
  if (d.population.empty() || d.population.size() % genome.genes) throw bad("population is not whole architectures");
  if (!j.contains("stats") || !j["stats"].is_object()) throw bad("stats is not an object");
  for (auto it = j["stats"].begin(); it != j["stats"].end(); ++it) {
    const Proxy p = proxy_named(it.key(), "stats");
    const auto& v = it.value();
    if (!v.is_array() || v.size() != 4 || !v[0].is_number() || !v[1].is_number() ||
        !v[2].is_number_integer() || !v[3].is_string())
      throw bad(std::string("stats of ") + proxy_name(p) + " are not [mean, std, n, settings]");
    ZStat z{v[0].get<double>(), v[1].get<double>(), 0, v[3].get<std::string>(), 0};
    const auto n = v[2].get<int64_t>();
    if (!std::isfinite(z.mean) || !(z.std >= std::numeric_limits<double>::min()) || !std::isfinite(z.std) ||
        n < 2 || n > size)
      throw bad(std::string("stats of ") + proxy_name(p) + " are not finite with a positive std");
    z.n = static_cast<int>(n);
    d.stats[p] = z;
  }
  if (!j.contains("archive") || !j["archive"].is_array()) throw bad("archive is not an array");
  std::vector<bool> seen(static_cast<size_t>(size), false);
  for (const auto& e : j["archive"]) {
    if (!e.is_object() || !e.contains("arch") || !e["arch"].is_number_integer() || !e.contains("values") ||
        !e["values"].is_object())
      throw bad("an archive entry is not {arch, values}");
    const auto code = e["arch"].get<int64_t>();
    if (code < 0 || code >= size) throw bad("an archive entry's architecture code is out of range");
    if (seen[code]) throw bad("an architecture appears twice in the archive");
    seen[code] = true;
    ArchScore a;
    a.arch = net::arch_from_code(space, code);
    for (auto it = e["values"].begin(); it != e["values"].end(); ++it) {
      const Proxy p = proxy_named(it.key(), "an archive entry");
      const auto& v = it.value();
      if (!v.is_array() || v.size() != 3 || !v[1].is_string() || !v[2].is_number())
        throw bad("an archive value is not [value, flag, seconds]");
      ProxyValue pv;
      if (v[0].is_number()) pv.value = v[0].get<double>();
      else if (v[0] == "+inf") pv.value = std::numeric_limits<double>::infinity();
      else if (v[0] == "-inf") pv.value = -std::numeric_limits<double>::infinity();
      else throw bad("an archive value is neither a number nor +inf / -inf");
      pv.flag = v[1].get<std::string>();
      pv.seconds = v[2].get<double>();
      if (std::isnan(pv.value) || !std::isfinite(pv.seconds) || pv.seconds < 0)
        throw bad("an archive value or its time is not a valid number");
      if (!pv.flag.empty() && !is_known_flag(pv.flag)) throw bad("an archive value has an unknown flag");
      if (std::isinf(pv.value) && pv.flag.empty()) throw bad("an infinite archive value has no flag");
      a[p] = pv;
    }
    if (e.contains("foreign") && !e["foreign"].is_boolean()) throw bad("an archive entry's foreign flag is not true/false");
    d.foreign.push_back(e.contains("foreign") && e["foreign"].get<bool>());
    d.archive.push_back(std::move(a));
  }
  return d;
}

namespace {

// Island model: which checkpoint round every island resumes from (-1: none has one). Each island
// offers the rounds of its checkpoint and of the previous one; all resume from the latest round
// every island has. Collective; a refusal is thrown at every island.
int agree_resume_round(const SearchConfig& c) {
  const IslandModel& isl = *c.islands;
  // "ROUND ROUND" (this island's files), or "!why" when one of them cannot be read: a damaged
  // checkpoint is refused as the single GA refuses it, never passed over in silence.
  std::string mine;
  for (const std::string& path : {c.checkpoint, c.checkpoint + ".prev"}) {
    if (::access(path.c_str(), F_OK) != 0) continue;
    try {
      mine += std::to_string(parse_checkpoint(read_file(path), "checkpoint '" + path + "'", c.space).round) + " ";
    } catch (const std::exception& e) {
      mine = std::string("!") + e.what();
      break;
    }
  }
  std::string decision;
  const std::vector<std::string> all = isl.gather(mine);
  if (isl.island == 0) {
    std::vector<std::vector<int>> rounds;
    int with = 0;
    std::string damaged;
    for (const auto& a : all) {
      if (!a.empty() && a[0] == '!' && damaged.empty()) damaged = a.substr(1);
      std::istringstream in(a);
      rounds.emplace_back();
      for (int v; in >> v;) rounds.back().push_back(v);
      with += !rounds.back().empty() || a[0] == '!';
    }
    if (!damaged.empty()) {
      decision = damaged + " (delete the islands' checkpoints to start afresh)";
    } else if (with == 0) {
      decision = "-1";
    } else if (with < isl.islands) {
      std::string missing;
      for (int i = 0; i < isl.islands; ++i)
        if (rounds[static_cast<size_t>(i)].empty()) missing += (missing.empty() ? "" : ", ") + std::to_string(i);
      decision = "island(s) " + missing + " have no checkpoint (" + c.checkpoint.substr(0, c.checkpoint.rfind(".island")) +
                 ".islandI) beside islands that have one: the checkpoints are of another run, or of a job with "
                 "another number of islands (mpirun -np); delete them all to start afresh";
    } else {
      int target = std::numeric_limits<int>::max();
      for (const auto& r : rounds) target = std::min(target, *std::max_element(r.begin(), r.end()));
      decision = std::to_string(target);
      for (int i = 0; i < isl.islands; ++i) {
        const auto& r = rounds[static_cast<size_t>(i)];
        if (std::find(r.begin(), r.end(), target) == r.end())
          decision = "island " + std::to_string(i) + " has no checkpoint of round " + std::to_string(target) +
                     ", which every island must resume from (delete the islands' checkpoints to start afresh)";
      }
    }
  }
  decision = isl.broadcast(decision);
  if (decision.empty() || !(std::isdigit(static_cast<unsigned char>(decision[0])) || decision == "-1"))
    throw IslandsError("island checkpoints: " + decision, isl.island != 0);
  return std::stoi(decision);
}

}  // namespace

SearchResult run_search(const SearchConfig& c_in, Scorer& scorer, const net::ArchTable* table,
                        const SearchProgress& progress, const GaGeneration& ga_generation) {
  c_in.validate();
  const auto t0 = std::chrono::steady_clock::now();
  const IslandModel* isl = c_in.islands ? &*c_in.islands : nullptr;
  const bool sample = c_in.fitness.mode == FitnessMode::kZ && !c_in.stats;
  // An island runs the GA with its own seed and its share of the budget.
  SearchConfig c = c_in;
  c.ga = genome_params(c.space, c.ga);
  if (isl) {
    if (c.strategy != Strategy::kGa) throw std::invalid_argument("--islands runs the GA (--strategy ga)");
    if (isl->islands < 1 || isl->island < 0 || isl->island >= isl->islands || isl->interval < 1 ||
        isl->migrants < 1 || isl->migrants > c.population)
      throw std::invalid_argument("island model: --migration-interval must be >= 1 and --migrants from 1 to --population");
    const int reference = sample ? c.reference_sample : 0;
    const int rest = c.budget - reference;
    const int share = rest / isl->islands + (isl->island < rest % isl->islands ? 1 : 0);
    const int least = rest / isl->islands;
    if (least <= c.population)
      throw std::invalid_argument("--budget " + std::to_string(c.budget) + " over " + std::to_string(isl->islands) +
                                  " islands leaves " + std::to_string(least) + " per island" +
                                  (reference ? " after the reference sample" : std::string()) +
                                  ", no more than one initial population of " + std::to_string(c.population) +
                                  ": raise --budget or lower --population");
    c.budget = share + (isl->island == 0 ? reference : 0);
    c.search_seed = c_in.search_seed + (static_cast<uint64_t>(isl->island) << 32);
  }
  std::vector<int> reps;
  const bool dedup = c.dedup_isomorphic && c.space == net::Space::kNb201;  // NATS-SSS has no isomorphic pairs
  if (dedup) reps = isomorphism_representatives(table);
  Archive archive(scorer, dedup ? &reps : nullptr,
                  c.strategy == Strategy::kExhaustive ? static_cast<int>(net::space_size(c.space)) : c.budget, c.space);
  Fitness fitness(c.fitness);
  Run run{c, archive, fitness, progress, 0, {}};
  SearchResult res;

  GaState state;
  if (c.strategy == Strategy::kGa && !c.checkpoint.empty()) {
    if (isl) {
      const int round = agree_resume_round(c);
      if (round >= 0) {
        // The chosen round's file: this island's checkpoint, or the one before it. Every island
        // learns whether all could read theirs, so that none waits for one that cannot.
        std::exception_ptr error;
        try {
          std::string path = c.checkpoint;
          try {
            if (parse_checkpoint(read_file(path), path, c.space).round != round) path = c.checkpoint + ".prev";
          } catch (const std::exception&) {
            path = c.checkpoint + ".prev";
          }
          res.resumed = read_checkpoint(c, path, archive, fitness, state);
          if (state.round != round) throw CheckpointError("checkpoint '" + path + "' changed while it was read");
        } catch (const std::exception&) {
          error = std::current_exception();
        }
        if (!isl->all(!error)) {
          // Island 0 reports the first island's error (islands usually fail alike: a checkpoint
          // of other settings); every island ends on it together.
          std::string mine;
          if (error) {
            try {
              std::rethrow_exception(error);
            } catch (const std::exception& e) {
              mine = e.what();
            }
          }
          const std::vector<std::string> all = isl->gather(mine);
          if (isl->island == 0)
            for (size_t i = 0; i < all.size(); ++i)
              if (!all[i].empty())
                throw IslandsError(all[i] + (isl->islands > 1 ? " (island " + std::to_string(i) + ")" : ""), false);
          throw IslandsError("another island could not resume from its checkpoint", true);
        }
      }
    } else {
      res.resumed = read_checkpoint(c, c.checkpoint, archive, fitness, state);
    }
  }
  res.restored = archive.size();
  const int own_restored = archive.own();  // island model: restored entries this island scored
  if (!res.resumed) {
    if (c.stats) {
      fitness.set_stats(*c.stats);
    } else if (c.fitness.mode == FitnessMode::kZ) {
      // The reference sample: counted against the budget, a possible answer, not the GA's seed.
      // Islands: drawn with the job's seed, scored by island 0, shared with the others.
      const auto ref = net::sample_distinct(c.space, c.reference_sample, c_in.search_seed, Purpose::kReferenceSample, true);
      if (!isl || isl->island == 0) archive.evaluate(ref);
      if (isl) {
        const std::string shared = isl->broadcast(isl->island == 0 ? encode_scores(archive.entries()) : std::string());
        if (isl->island != 0)
          for (auto& a : decode_scores(shared)) archive.add(std::move(a), true);
      }
      fitness.set_stats(fitness_zstats(c.fitness, archive.entries()));
    }
  }
  switch (c.strategy) {
    case Strategy::kGa: run_ga(run, ga_generation, res.resumed, state); break;
    case Strategy::kRandom: run_random(run); break;
    case Strategy::kRea: run_rea(run); break;
    case Strategy::kExhaustive: run_exhaustive(run); break;
  }
  res.generations = run.generation;
  res.stop_reason = run.stop;
  res.migrations = run.migrations;
  if (c.strategy != Strategy::kExhaustive && res.stop_reason != "budget" && archive.full()) res.stop_reason = "budget";
  if (isl) {
    // Every island's own entries at island 0; the answer is the best of their union there, its
    // fitness over the union (z: the shared statistics; rank modes: ranks in the union).
    ByteWriter w;
    w.u32(static_cast<uint32_t>(archive.own()));
    w.u32(static_cast<uint32_t>(own_restored));
    w.u32(static_cast<uint32_t>(res.generations));
    w.str(res.stop_reason);
    std::vector<ArchScore> own;
    for (int i = 0; i < archive.size(); ++i)
      if (!archive.foreign(i)) own.push_back(archive.entries()[static_cast<size_t>(i)]);
    w.str(encode_scores(own));
    const std::vector<std::string> parts = isl->gather(w.bytes());
    if (isl->island == 0) {
      Archive all(scorer, dedup ? &reps : nullptr, static_cast<int>(net::space_size(c.space)), c.space);
      // The job's stop reason: "budget" when every island spent its share, else the first
      // island's reason that is not (so that an early end is reported).
      std::string stop;
      res.restored = 0;
      for (const std::string& part : parts) {
        ByteReader rd(part);
        res.island_evaluations.push_back(static_cast<int>(rd.u32()));
        res.restored += static_cast<int>(rd.u32());
        res.generations = std::max(res.generations, static_cast<int>(rd.u32()));  // the longest island's
        const std::string reason = rd.str();
        if (stop.empty() && reason != "budget") stop = reason;
        for (auto& a : decode_scores(rd.str()))
          if (all.find(a.arch) < 0) all.add(std::move(a));
      }
      res.stop_reason = stop.empty() ? "budget" : stop;
      Fitness union_fitness(c.fitness);
      union_fitness.set_stats(fitness.stats());
      const auto& fit = union_fitness.all(all);
      const int b = best_entry(fit);
      res.best = all.entries()[b].arch;
      res.fitness = fit[b];
      res.evaluations = all.size();
      res.archive = all.entries();
      for (const auto& e : all.entries()) res.visited.push_back(static_cast<int>(net::arch_code(e.arch)));
      res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      return res;
    }
  }
  const auto& fit = fitness.all(archive);
  const int b = best_entry(fit);
  res.best = archive.entries()[b].arch;
  res.fitness = fit[b];
  res.evaluations = archive.size();
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (const auto& e : archive.entries()) res.visited.push_back(static_cast<int>(net::arch_code(e.arch)));
  res.archive = archive.entries();
  return res;
}

}  // namespace hn::engine
