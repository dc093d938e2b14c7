// Searches (SPEC.md 5) on fixed score tables: the GA's operators on fixed Philox streams, budget
// and stall stops, determinism, checkpoints, and the score cache.
#include <gtest/gtest.h>

#include <cmath>
#include <csignal>
#include <fstream>
#include <set>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "engine/score_cache.hpp"
#include "engine/search.hpp"
#include "test_util.hpp"

using namespace hn;
using engine::Proxy;

namespace {

// A fixed score table: naswot and ni are smooth functions of the genes plus hashed noise, and
// degenerate cells are worst. Counts the architectures it is asked for.
class TableScorer : public engine::Scorer {
 public:
  const char* backend_name() const override { return "table"; }
  using engine::Scorer::score;
  void score(const std::vector<net::Arch>& all,
             const std::function<void(size_t, engine::ArchScore&&)>& done) override {
    std::vector<net::Genes> archs;
    for (const auto& a : all) archs.push_back(a.genes);
    for (size_t i = 0; i < archs.size(); ++i) {
      if (fail_after >= 0 && calls >= fail_after) throw std::runtime_error("simulated crash");
      ++calls;
      engine::ArchScore a;
      a.arch = archs[i];
      if (net::is_degenerate(archs[i])) {
        a[Proxy::kNaswot] = engine::worst(Proxy::kNaswot, "degenerate");
        a[Proxy::kNi] = engine::worst(Proxy::kNi, "degenerate");
      } else {
        const int c = net::genes_code(archs[i]);
        const double noise = ((c * 2654435761u) % 1000) / 1000.0;
        a[Proxy::kNaswot] = engine::ProxyValue{double(net::conv_edge_count(archs[i])) + noise, "", 0};
        a[Proxy::kNi] = engine::ProxyValue{-double(c % 97) / 10.0, "", 0};
      }
      done(i, std::move(a));
    }
  }
  int calls = 0;
  int fail_after = -1;
};

engine::SearchConfig ga_config(uint64_t seed) {
  engine::SearchConfig c;
  c.strategy = engine::Strategy::kGa;
  c.budget = 600;
  c.population = 40;
  c.generations = 30;
  c.search_seed = seed;
  c.fitness.proxies = {Proxy::kNaswot, Proxy::kNi};
  c.fitness.mode = engine::FitnessMode::kZ;
  c.reference_sample = 20;
  return c;
}

std::vector<uint8_t> population_of(std::initializer_list<int> codes) {
  std::vector<uint8_t> pop;
  for (int c : codes) {
    const auto g = net::genes_from_code(c);
    for (int e = 0; e < 6; ++e) pop.push_back(static_cast<uint8_t>(g[e]));
  }
  return pop;
}

}  // namespace

TEST(GaOps, TournamentDrawsThreeDistinctPositions) {
  for (uint32_t n : {3u, 4u, 100u}) {
    std::set<std::vector<uint32_t>> seen;
    for (uint32_t i = 0; i < 3000; ++i) {
      const Philox4 r = philox_draw(philox_key(9), i, 0, Purpose::kGa, 0);
      uint32_t t[3];
      engine::ga_distinct3(r.v[0], r.v[1], r.v[2], n, t);
      ASSERT_LT(t[0], n);
      ASSERT_LT(t[1], n);
      ASSERT_LT(t[2], n);
      ASSERT_TRUE(t[0] != t[1] && t[0] != t[2] && t[1] != t[2]);
      seen.insert({t[0], t[1], t[2]});
    }
    if (n == 3) {
      EXPECT_EQ(seen.size(), 6u);  // every ordering of 3 positions occurs
    } else if (n == 4) {
      EXPECT_EQ(seen.size(), 24u);
    }
  }
}

TEST(GaOps, ChildrenFollowTheCutPointsAndParentsOfTheDraws) {
  const PhiloxKey key = philox_key(4);
  const auto pop = population_of({1, 777, 5000, 9999, 12345, 15000});
  std::vector<double> fit = {0.5, 3.0, 1.0, 3.0, -INFINITY, 2.0};
  engine::GaParams always_cross{1.0, 0.0};
  std::vector<uint8_t> kids(pop.size());
  for (uint32_t gen = 0; gen < 50; ++gen) {
    const engine::GaPairOp op{pop.data(), fit.data(), kids.data(), 6, gen, key, always_cross};
    for (uint32_t pair = 0; pair < 3; ++pair) {
      op(pair);
      const Philox4 r0 = philox_draw(key, pair, gen, Purpose::kGa, 0);
      const Philox4 r1 = philox_draw(key, pair, gen, Purpose::kGa, 1);
      uint32_t t[3];
      engine::ga_distinct3(r0.v[0], r0.v[1], r0.v[2], 6, t);
      // Parents: best and second best of the three, ties to the earlier draw.
      std::vector<uint32_t> order = {t[0], t[1], t[2]};
      std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return fit[a] > fit[b]; });
      const int l = 1 + philox_below(r1.v[0], 6);
      int r = philox_below(r1.v[1], 6);
      if (r >= l) ++r;
      ASSERT_NE(l, r);
      const int a = std::min(l, r), b = std::max(l, r);
      for (int g = 0; g < 6; ++g) {
        const bool mid = g >= a && g < b;
        ASSERT_EQ(kids[2 * pair * 6 + g], pop[(mid ? order[1] : order[0]) * 6 + g]) << "child 0 gene " << g;
        ASSERT_EQ(kids[(2 * pair + 1) * 6 + g], pop[(mid ? order[0] : order[1]) * 6 + g]) << "child 1 gene " << g;
      }
    }
  }
}

TEST(GaOps, MutationChangesExactlyOneGeneToAnotherOp) {
  const auto pop = population_of({100, 200, 300, 400});
  std::vector<double> fit = {1, 2, 3, 4};
  engine::GaParams copy_and_mutate{0.0, 1.0};
  std::vector<uint8_t> kids(pop.size());
  for (uint32_t gen = 0; gen < 200; ++gen) {
    const engine::GaPairOp op{pop.data(), fit.data(), kids.data(), 4, gen, philox_key(1), copy_and_mutate};
    op(0);
    const Philox4 r0 = philox_draw(philox_key(1), 0, gen, Purpose::kGa, 0);
    uint32_t t[3];
    engine::ga_distinct3(r0.v[0], r0.v[1], r0.v[2], 4, t);
    std::vector<uint32_t> order = {t[0], t[1], t[2]};
    std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return fit[a] > fit[b]; });
    for (int child = 0; child < 2; ++child) {
      int changed = 0;
      for (int g = 0; g < 6; ++g) {
        ASSERT_LT(kids[child * 6 + g], 5);
        changed += kids[child * 6 + g] != pop[order[child] * 6 + g];
      }
      ASSERT_EQ(changed, 1);
    }
  }
}

TEST(GaOps, HostThrustPathEqualsTheFunctorLoop) {
  std::vector<uint8_t> pop;
  std::vector<double> fit;
  for (int i = 0; i < 50; ++i) {
    const auto g = net::genes_from_code(i * 311);
    for (int e = 0; e < 6; ++e) pop.push_back(static_cast<uint8_t>(g[e]));
    fit.push_back(std::sin(i));
  }
  std::vector<uint8_t> a, b(pop.size());
  engine::ga_generation_host(pop, fit, 7, philox_key(3), {}, a);
  const engine::GaPairOp op{pop.data(), fit.data(), b.data(), 50, 7, philox_key(3), {}};
  for (uint32_t j = 0; j < 25; ++j) op(j);
  EXPECT_EQ(a, b);
}

TEST(Search, SameSeedsSameSearchOtherSeedsOtherSearch) {
  TableScorer s1, s2, s3;
  const auto a = engine::run_search(ga_config(5), s1, nullptr);
  const auto b = engine::run_search(ga_config(5), s2, nullptr);
  const auto c = engine::run_search(ga_config(6), s3, nullptr);
  EXPECT_EQ(a.visited, b.visited);
  EXPECT_EQ(a.best, b.best);
  EXPECT_NE(a.visited, c.visited);
}

TEST(Search, BudgetCountsDistinctEvaluationsIncludingTheReferenceSample) {
  for (const auto strat : {engine::Strategy::kGa, engine::Strategy::kRandom, engine::Strategy::kRea}) {
    TableScorer s;
    auto c = ga_config(1);
    c.strategy = strat;
    c.budget = 137;
    const auto r = engine::run_search(c, s, nullptr);
    EXPECT_EQ(r.evaluations, 137) << engine::strategy_name(strat);
    EXPECT_EQ(s.calls, 137);
    EXPECT_EQ(std::set<int>(r.visited.begin(), r.visited.end()).size(), 137u);
    // The first 20 evaluated are the reference sample, all non-degenerate.
    for (int i = 0; i < 20; ++i) EXPECT_FALSE(net::is_degenerate(net::genes_from_code(r.visited[i])));
  }
}

TEST(Search, GaStopsAfterStallGenerationsWithoutNewArchitectures) {
  TableScorer s;
  auto c = ga_config(2);
  c.budget = 15625;
  c.generations = 1000;
  c.ga.mutation = 0.0;  // without mutation the population collapses onto known architectures
  c.stall_generations = 3;
  const auto r = engine::run_search(c, s, nullptr);
  EXPECT_LT(r.generations, 1000);
  EXPECT_LT(r.evaluations, 15625);
  EXPECT_EQ(r.stop_reason, "stall");
}

TEST(Search, GaStopsAfterItsGenerations) {
  TableScorer s;
  auto c = ga_config(3);
  c.budget = 15625;
  c.generations = 2;
  const auto r = engine::run_search(c, s, nullptr);
  EXPECT_EQ(r.generations, 2);
  EXPECT_LE(r.evaluations, 20 + 40 * 3);
  EXPECT_EQ(r.stop_reason, "generations");
}

TEST(Search, AnswerIsTheArchiveBestAndExhaustiveFindsTheOptimum) {
  TableScorer s;
  auto c = ga_config(0);
  c.strategy = engine::Strategy::kExhaustive;
  const auto ex = engine::run_search(c, s, nullptr);
  EXPECT_EQ(ex.evaluations, 15625);
  for (const auto& e : ex.archive) ASSERT_TRUE(e[Proxy::kNaswot].has_value());
  // Under this table the optimum is all-conv with the largest noise term; the GA finds a
  // fitness no better than it.
  TableScorer s2;
  const auto ga = engine::run_search(ga_config(0), s2, nullptr);
  EXPECT_LE(ga.fitness, ex.fitness + 1e-12);
}

TEST(Search, DedupIsomorphicScoresOneRepresentativePerClass) {
  TableScorer s;
  auto c = ga_config(0);
  c.strategy = engine::Strategy::kExhaustive;
  c.dedup_isomorphic = true;
  const auto r = engine::run_search(c, s, nullptr);
  EXPECT_EQ(r.evaluations, 6466);
}

TEST(Search, ResumedAfterACrashGivesTheUninterruptedAnswer) {
  test::TempDir d;
  auto c = ga_config(11);
  c.settings = {{"test", 1}};
  TableScorer full;
  const auto want = engine::run_search(c, full, nullptr);
  c.checkpoint = d.path() + "/ga.ckpt";
  TableScorer crashing;
  crashing.fail_after = 250;
  EXPECT_THROW(engine::run_search(c, crashing, nullptr), std::runtime_error);
  TableScorer rest;
  const auto got = engine::run_search(c, rest, nullptr);
  EXPECT_TRUE(got.resumed);
  EXPECT_EQ(got.best, want.best);
  EXPECT_EQ(got.fitness, want.fitness);
  EXPECT_EQ(got.visited, want.visited);
  EXPECT_LT(rest.calls, full.calls);  // the archive came from the checkpoint
}

TEST(Search, CorruptOrForeignCheckpointsAreClearErrors) {
  test::TempDir d;
  auto c = ga_config(1);
  c.settings = {{"budget", 1000}, {"proxies", "a"}};
  c.checkpoint = d.path() + "/ga.ckpt";
  c.generations = 2;
  TableScorer s;
  engine::run_search(c, s, nullptr);
  const std::string good = test::slurp(c.checkpoint);
  d.write("ga.ckpt", good.substr(0, good.size() / 2));
  try {
    engine::run_search(c, s, nullptr);
    ADD_FAILURE();
  } catch (const engine::CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
  d.write("ga.ckpt", good);
  c.settings["proxies"] = "b";
  try {
    engine::run_search(c, s, nullptr);
    ADD_FAILURE();
  } catch (const engine::CheckpointError& e) {
    // The refusal names the setting that differs and both values, not a fingerprint.
    EXPECT_NE(std::string(e.what()).find("its proxies is \"a\", this search's is \"b\""), std::string::npos)
        << e.what();
  }
}

TEST(ScoreCacheTest, ServesStoredScoresAndRejectsBadFiles) {
  test::TempDir d;
  const std::string path = d.path() + "/c.db";
  engine::ScoreSettings st;
  st.proxies = {Proxy::kNaswot, Proxy::kNi};
  int made = 0;
  TableScorer* inner = nullptr;
  auto factory = [&]() -> std::unique_ptr<engine::Scorer> {
    ++made;
    auto t = std::make_unique<TableScorer>();
    inner = t.get();
    return t;
  };
  std::vector<net::Genes> archs = {net::genes_from_code(10), net::genes_from_code(20),
                                   net::genes_from_code(0)};
  std::vector<engine::ArchScore> first, second;
  {
    engine::ScoreCache cache(path);
    engine::CachedScorer cs(cache, factory, st, "id");
    first = cs.score_all(archs);
    EXPECT_EQ(cs.network_evaluations(), 3);
  }
  {
    engine::ScoreCache cache(path);
    EXPECT_EQ(cache.size(), 6);
    engine::CachedScorer cs(cache, factory, st, "id");
    second = cs.score_all(archs);
    EXPECT_EQ(cs.network_evaluations(), 0);
    EXPECT_EQ(cs.cache_hits(), 3);
    EXPECT_EQ(made, 1);  // no backend was even made for the second run
  }
  for (size_t i = 0; i < archs.size(); ++i)
    for (Proxy p : st.proxies) {
      EXPECT_EQ(first[i][p]->value, second[i][p]->value);
      EXPECT_EQ(first[i][p]->flag, second[i][p]->flag);
    }
  // Other settings are other keys.
  {
    engine::ScoreCache cache(path);
    engine::ScoreSettings other = st;
    other.batch = 64;
    engine::CachedScorer cs(cache, factory, other, "id");
    cs.score_all(archs);
    EXPECT_EQ(cs.network_evaluations(), 3);
  }
  // Not a database, or truncated: a clear error, never a wrong answer.
  d.write("junk.db", std::string(5000, 'x'));
  EXPECT_THROW(engine::ScoreCache(d.path() + "/junk.db"), engine::CacheError);
  const std::string bytes = test::slurp(path);
  d.write("trunc.db", bytes.substr(0, 100));
  EXPECT_THROW(engine::ScoreCache(d.path() + "/trunc.db"), engine::CacheError);
}

TEST(Search, SearchOverCachedScoresRunsNoNetwork) {
  test::TempDir d;
  engine::ScoreCache cache(d.path() + "/c.db");
  engine::ScoreSettings st;
  st.proxies = {Proxy::kNaswot, Proxy::kNi};
  int made = 0;
  auto factory = [&]() -> std::unique_ptr<engine::Scorer> {
    ++made;
    return std::make_unique<TableScorer>();
  };
  engine::CachedScorer warm(cache, factory, st, "id");
  const auto a = engine::run_search(ga_config(8), warm, nullptr);
  engine::CachedScorer again(cache, factory, st, "id");
  const auto b = engine::run_search(ga_config(8), again, nullptr);
  EXPECT_EQ(again.network_evaluations(), 0);
  EXPECT_EQ(made, 1);
  EXPECT_EQ(a.visited, b.visited);
}

// REA spends its whole budget on distinct architectures: a child that repeats an evaluated
// architecture is replaced by the nearest unevaluated one (it used to stop at about half of a
// 1,000 budget once its population had converged).
TEST(Search, ReaSpendsItsBudgetOnDistinctArchitectures) {
  for (uint64_t seed : {0, 1, 2}) {
    TableScorer s;
    auto c = ga_config(seed);
    c.strategy = engine::Strategy::kRea;
    c.budget = 1000;
    c.population = 40;
    c.rea_tournament = 10;
    const auto r = engine::run_search(c, s, nullptr);
    EXPECT_EQ(r.evaluations, 1000);
    EXPECT_EQ(r.stop_reason, "budget");
    EXPECT_EQ(s.calls, 1000);  // every scored architecture is a new one
    std::set<int> distinct(r.visited.begin(), r.visited.end());
    EXPECT_EQ(distinct.size(), 1000u);
  }
}

// --rea-batch K: K children per step, scored as one population; still distinct architectures,
// the whole budget, deterministic, and K = 1 is the sequential REA.
TEST(Search, BatchedReaScoresPopulationsOfChildren) {
  class BatchRecorder : public TableScorer {
   public:
    using TableScorer::score;
    void score(const std::vector<net::Arch>& archs,
               const std::function<void(size_t, engine::ArchScore&&)>& done) override {
      sizes.push_back(archs.size());
      TableScorer::score(archs, done);
    }
    std::vector<size_t> sizes;
  };
  auto run = [](int batch, BatchRecorder& s) {
    auto c = ga_config(3);
    c.strategy = engine::Strategy::kRea;
    c.budget = 500;
    c.population = 40;
    c.rea_tournament = 10;
    c.rea_batch = batch;
    return engine::run_search(c, s, nullptr);
  };
  BatchRecorder one, eight, again;
  const auto r1 = run(1, one), r8 = run(8, eight), r8b = run(8, again);
  EXPECT_EQ(r8.evaluations, 500);
  EXPECT_EQ(r8.stop_reason, "budget");
  EXPECT_EQ(std::set<int>(r8.visited.begin(), r8.visited.end()).size(), 500u);
  EXPECT_EQ(r8.visited, r8b.visited);  // deterministic for a seed
  // After the reference sample (20) and the initial population (40), the children come 8 at a
  // time (the last step takes what the budget leaves); the sequential REA scores them one by one.
  ASSERT_GE(eight.sizes.size(), 4u);
  ASSERT_EQ(eight.sizes[0], 20u);
  ASSERT_EQ(eight.sizes[1], 40u);
  for (size_t i = 2; i + 1 < eight.sizes.size(); ++i) EXPECT_EQ(eight.sizes[i], 8u) << "step " << i;
  for (size_t i = 2; i < one.sizes.size(); ++i) EXPECT_EQ(one.sizes[i], 1u) << "cycle " << i;
  // Both breed from the same draws, so the first child (bred from the same population) is the
  // same; later the populations differ.
  EXPECT_EQ(r1.visited.at(60), r8.visited.at(60));
  EXPECT_NE(r1.visited, r8.visited);
}

TEST(Search, SearchesSayWhyTheyEnded) {
  TableScorer s;
  auto c = ga_config(4);
  c.strategy = engine::Strategy::kRea;
  c.dedup_isomorphic = true;
  c.budget = 15625;  // more than the 6,466 isomorphism classes
  auto r = engine::run_search(c, s, nullptr);
  EXPECT_EQ(r.evaluations, 6466);
  EXPECT_EQ(r.stop_reason, "space");
  c.strategy = engine::Strategy::kRandom;
  r = engine::run_search(c, s, nullptr);
  EXPECT_EQ(r.evaluations, 6466);
  EXPECT_EQ(r.stop_reason, "space");
  c = ga_config(4);
  c.generations = 2;  // 20 + 40 + 2 x 40 < 600
  r = engine::run_search(c, s, nullptr);
  EXPECT_EQ(r.stop_reason, "generations");
  EXPECT_LT(r.evaluations, c.budget);
  c.generations = 1000;
  c.stall_generations = 1000;
  c.budget = 150;  // within what this table's GA reaches before it converges
  r = engine::run_search(c, s, nullptr);
  EXPECT_EQ(r.stop_reason, "budget");
  EXPECT_EQ(r.evaluations, c.budget);
  c.strategy = engine::Strategy::kRandom;
  r = engine::run_search(c, s, nullptr);
  EXPECT_EQ(r.stop_reason, "budget");
  EXPECT_EQ(r.evaluations, c.budget);
}

// Impossible values are refused with plain messages instead of being replaced or ignored.
TEST(Search, ImpossibleConfigurationsAreRefused) {
  auto expect_refused = [](engine::SearchConfig c, const std::string& words) {
    try {
      c.validate();
      ADD_FAILURE() << "accepted; expected: " << words;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
  };
  auto c = ga_config(0);
  c.budget = 0;
  expect_refused(c, "--budget must be from 1 to 15625");
  c.budget = 15626;
  expect_refused(c, "--budget must be from 1 to 15625");
  c = ga_config(0);
  c.budget = 60;  // reference sample 20 + population 40
  expect_refused(c, "must be more than 60");
  c.strategy = engine::Strategy::kRandom;
  c.budget = 20;
  expect_refused(c, "the reference sample of 20");
  c.strategy = engine::Strategy::kRea;
  c.budget = 60;
  expect_refused(c, "the initial population of 40");
  c = ga_config(0);
  c.generations = 0;
  expect_refused(c, "--generations");
  c = ga_config(0);
  c.population = 15626;
  expect_refused(c, "--population");
  c = ga_config(0);
  c.ga.crossover = std::nan("");
  expect_refused(c, "--crossover");
  c = ga_config(0);
  c.budget = 61;
  EXPECT_NO_THROW(c.validate());
  c.strategy = engine::Strategy::kExhaustive;  // the budget does not limit an exhaustive search
  c.budget = 5;
  EXPECT_NO_THROW(c.validate());
}
