// Scoring split across scorers (engine/distributed_scorer: the --devices split, exercised here over
// several CPU scorers, and the MPI messages' encoding) and the island-model GA (engine/search) with
// its collectives run by threads in one process. The MPI jobs themselves: tests/mpi/test_mpi.py.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

#include "engine/distributed_scorer.hpp"
#include "engine/search.hpp"
#include "net/sampling.hpp"
#include "test_util.hpp"

using namespace hn;
using engine::Proxy;

namespace {

uint64_t bits(double v) {
  uint64_t b;
  std::memcpy(&b, &v, 8);
  return b;
}

engine::ScoreSettings cpu_settings() {
  engine::ScoreSettings s;
  s.proxies = {Proxy::kNaswot, Proxy::kNi, Proxy::kEntropy};
  s.batch = 8;
  s.entropy_batch = 4;
  s.entropy_repeats = 2;
  s.threads = 1;
  s.data_path = test::data_path("cifar10/cifar10_sample.bin");
  return s;
}

// A scorer with made-up values (a smooth function of the genes), cheap enough for searches of
// thousands of architectures; counts what it scored and can fail on a chosen architecture.
class SyntheticScorer : public engine::Scorer {
 public:
  explicit SyntheticScorer(int fail_on = -1) : fail_on_(fail_on) {}
  const char* backend_name() const override { return "synthetic"; }
  using engine::Scorer::score;
  void score(const std::vector<net::Arch>& all,
             const std::function<void(size_t, engine::ArchScore&&)>& done) override {
    std::vector<net::Genes> archs;
    for (const auto& a : all) archs.push_back(a.genes);
    for (size_t i = 0; i < archs.size(); ++i) {
      const int code = net::genes_code(archs[i]);
      if (code == fail_on_) throw std::runtime_error("synthetic failure");
      engine::ArchScore a;
      a.arch = archs[i];
      double conv = 0, pool = 0;
      for (int e = 0; e < 6; ++e) {
        conv += (archs[i][e] == net::Op::kConv3x3) * (1.0 + 0.1 * e) + (archs[i][e] == net::Op::kConv1x1) * 0.5;
        pool += archs[i][e] == net::Op::kAvgPool;
      }
      a[Proxy::kNaswot] = engine::ProxyValue{100 + 10 * conv - 3 * pool + 0.01 * (code % 7), "", 0.0};
      a[Proxy::kNi] = engine::ProxyValue{-1.0 / (1 + conv) - 0.001 * (code % 5), "", 0.0};
      ++scored;
      done(i, std::move(a));
    }
  }
  std::atomic<int> scored{0};

 private:
  int fail_on_;
};

}  // namespace

TEST(ShardedScorer, SplitsAcrossScorersWithTheValuesOfOne) {
  const auto s = cpu_settings();
  const auto in = engine::load_inputs(s);
  auto archs = net::sample_distinct(40, 11, Purpose::kReferenceSample, false);
  archs.push_back(net::parse_arch("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"));  // degenerate
  const auto one = engine::make_cpu_scorer(s, in)->score_all(archs);
  std::vector<std::unique_ptr<engine::Scorer>> shards;
  for (int i = 0; i < 3; ++i) shards.push_back(engine::make_cpu_scorer(s, in));
  engine::ShardedScorer sharded(std::move(shards), 4);
  std::vector<size_t> order;
  std::vector<engine::ArchScore> got;
  sharded.score(archs, [&](size_t i, engine::ArchScore&& a) {
    order.push_back(i);
    got.push_back(std::move(a));
  });
  ASSERT_EQ(got.size(), archs.size());
  for (size_t i = 0; i < archs.size(); ++i) {
    EXPECT_EQ(order[i], i) << "results come in input order";
    EXPECT_TRUE(got[i].arch == archs[i]);
    for (Proxy p : s.proxies) {
      ASSERT_TRUE(got[i][p].has_value());
      EXPECT_EQ(bits(got[i][p]->value), bits(one[i][p]->value)) << i << " " << engine::proxy_name(p);
      EXPECT_EQ(got[i][p]->flag, one[i][p]->flag);
    }
  }
  int64_t total = 0;
  for (int64_t c : sharded.per_shard()) {
    EXPECT_GT(c, 0) << "every shard took work";
    total += c;
  }
  EXPECT_EQ(total, static_cast<int64_t>(archs.size()));
}

TEST(ShardedScorer, ErrorsOfAShardOrOfTheCallbackReachTheCaller) {
  const auto archs = net::sample_distinct(200, 3, Purpose::kReferenceSample, false);
  {
    // Whichever shard takes architecture 150 fails on it; the error reaches the caller once every
    // shard has stopped, and the results before it were delivered in order.
    std::vector<std::unique_ptr<engine::Scorer>> shards;
    shards.push_back(std::make_unique<SyntheticScorer>(net::genes_code(archs[150])));
    shards.push_back(std::make_unique<SyntheticScorer>(net::genes_code(archs[150])));
    engine::ShardedScorer sharded(std::move(shards), 8);
    size_t delivered = 0;
    try {
      sharded.score(archs, [&](size_t i, engine::ArchScore&&) {
        EXPECT_EQ(i, delivered);
        ++delivered;
      });
      ADD_FAILURE() << "no error";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "synthetic failure");
    }
    EXPECT_LE(delivered, 150u);
  }
  std::vector<std::unique_ptr<engine::Scorer>> shards;
  shards.push_back(std::make_unique<SyntheticScorer>());
  shards.push_back(std::make_unique<SyntheticScorer>());
  engine::ShardedScorer sharded(std::move(shards), 8);
  size_t seen = 0;
  EXPECT_THROW(sharded.score(archs,
                             [&](size_t i, engine::ArchScore&&) {
                               seen = i + 1;
                               if (i == 20) throw std::logic_error("callback");
                             }),
               std::logic_error);
  EXPECT_EQ(seen, 21u);
  EXPECT_THROW(engine::ShardedScorer({}), std::invalid_argument);
}

TEST(DistributedScorer, ScoresTravelBitForBit) {
  std::vector<engine::ArchScore> v(3);
  v[0].arch = net::genes_from_code(0);
  v[0][Proxy::kNaswot] = engine::ProxyValue{0.1 + 0.2, "", 1.5e-3};
  v[0][Proxy::kNtk] = engine::ProxyValue{std::numeric_limits<double>::infinity(), engine::kFlagDegenerate, 0};
  v[1].arch = net::genes_from_code(net::kNumArchs - 1);
  v[1][Proxy::kNi] = engine::ProxyValue{-0.0, "nonfinite", 2};
  v[2].arch = net::genes_from_code(777);
  const std::string bytes = engine::encode_scores(v);
  const auto back = engine::decode_scores(bytes);
  ASSERT_EQ(back.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(back[i].arch == v[i].arch);
    for (int p = 0; p < engine::kNumProxies; ++p) {
      ASSERT_EQ(back[i].values[p].has_value(), v[i].values[p].has_value());
      if (!v[i].values[p]) continue;
      EXPECT_EQ(bits(back[i].values[p]->value), bits(v[i].values[p]->value));
      EXPECT_EQ(back[i].values[p]->flag, v[i].values[p]->flag);
      EXPECT_EQ(bits(back[i].values[p]->seconds), bits(v[i].values[p]->seconds));
    }
  }
  EXPECT_THROW(engine::decode_scores(bytes.substr(0, bytes.size() - 1)), std::runtime_error);
  EXPECT_THROW(engine::decode_scores(bytes + "x"), std::runtime_error);
  // Without MPI (or in a job of one rank) it is the local scorer.
  engine::DistributedScorer d(std::make_unique<SyntheticScorer>(), "{}");
  const auto archs = net::sample_distinct(10, 1, Purpose::kReferenceSample, false);
  EXPECT_EQ(d.score_all(archs).size(), 10u);
  EXPECT_EQ(d.per_rank().at(0), 10);
}

namespace {

// The island model's collectives for N threads of one process: every call is a rendezvous.
class ThreadHub {
 public:
  explicit ThreadHub(int n) : n_(n), slots_(static_cast<size_t>(n)) {}
  std::vector<std::string> exchange(int i, const std::string& s) {
    std::unique_lock<std::mutex> g(m_);
    slots_[static_cast<size_t>(i)] = s;
    if (++arrived_ == n_) {
      result_ = slots_;
      arrived_ = 0;
      ++generation_;
      cv_.notify_all();
    } else {
      const long gen = generation_;
      cv_.wait(g, [&] { return generation_ != gen; });
    }
    return result_;
  }
  engine::IslandModel model(int island, int interval, int migrants) {
    engine::IslandModel m;
    m.island = island;
    m.islands = n_;
    m.interval = interval;
    m.migrants = migrants;
    m.all = [this, island](bool b) {
      bool all = true;
      for (const auto& s : exchange(island, b ? "1" : "0")) all = all && s == "1";
      return all;
    };
    m.ring_shift = [this, island](const std::string& s) {
      return exchange(island, s)[static_cast<size_t>((island + n_ - 1) % n_)];
    };
    m.broadcast = [this, island](const std::string& s) { return exchange(island, s)[0]; };
    m.gather = [this, island](const std::string& s) {
      auto all = exchange(island, s);
      return island == 0 ? all : std::vector<std::string>{};
    };
    return m;
  }

 private:
  int n_;
  std::mutex m_;
  std::condition_variable cv_;
  int arrived_ = 0;
  long generation_ = 0;
  std::vector<std::string> slots_, result_;
};

engine::SearchConfig island_config(int budget) {
  engine::SearchConfig c;
  c.strategy = engine::Strategy::kGa;
  c.budget = budget;
  c.population = 10;
  c.generations = 100000;
  c.stall_generations = 100000;
  c.search_seed = 4;
  c.reference_sample = 20;
  c.fitness.proxies = {Proxy::kNaswot, Proxy::kNi};
  return c;
}

// Runs `islands` islands on threads; returns island 0's result and what each island scored.
engine::SearchResult run_islands(int islands, int budget, std::vector<int>* scored, const std::string& checkpoint = "") {
  ThreadHub hub(islands);
  std::vector<engine::SearchResult> res(static_cast<size_t>(islands));
  std::vector<std::unique_ptr<SyntheticScorer>> scorers;
  for (int i = 0; i < islands; ++i) scorers.push_back(std::make_unique<SyntheticScorer>());
  std::vector<std::thread> threads;
  std::vector<std::string> errors(static_cast<size_t>(islands));
  for (int i = 0; i < islands; ++i)
    threads.emplace_back([&, i] {
      auto c = island_config(budget);
      c.islands = hub.model(i, 3, 2);
      if (!checkpoint.empty()) c.checkpoint = checkpoint + ".island" + std::to_string(i);
      try {
        res[static_cast<size_t>(i)] = engine::run_search(c, *scorers[static_cast<size_t>(i)], nullptr);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "island %d: %s\n", i, e.what());
        errors[static_cast<size_t>(i)] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  for (const auto& e : errors) EXPECT_EQ(e, "");
  if (scored)
    for (auto& s : scorers) scored->push_back(s->scored);
  return res[0];
}

}  // namespace

TEST(Islands, SplitTheBudgetMigrateAndAreDeterministic) {
  std::vector<int> scored;
  const auto a = run_islands(3, 400, &scored);
  const auto b = run_islands(3, 400, nullptr);
  EXPECT_EQ(a.best, b.best);
  EXPECT_EQ(bits(a.fitness), bits(b.fitness));
  EXPECT_EQ(a.visited, b.visited);
  // The reference sample (20) is island 0's, the rest split evenly: 127, 127, 126 of 380.
  ASSERT_EQ(a.island_evaluations.size(), 3u);
  EXPECT_EQ(a.island_evaluations[0], 20 + 127);
  EXPECT_EQ(a.island_evaluations[1], 127);
  EXPECT_EQ(a.island_evaluations[2], 126);
  EXPECT_EQ(scored, (std::vector<int>{147, 127, 126})) << "each island scored its share only";
  EXPECT_EQ(a.stop_reason, "budget");
  EXPECT_GT(a.migrations, 0);
  // The answer is the best of the union of the islands' archives (islands may meet the same
  // architectures: the union counts each once).
  EXPECT_LE(a.evaluations, 400);
  EXPECT_GE(a.evaluations, 147);
  EXPECT_EQ(std::set<int>(a.visited.begin(), a.visited.end()).size(), a.visited.size());
  // One island is the plain GA with the same seed and budget.
  auto one = island_config(400);
  SyntheticScorer s;
  const auto plain = engine::run_search(one, s, nullptr);
  std::vector<int> one_scored;
  const auto single = run_islands(1, 400, &one_scored);
  EXPECT_EQ(single.best, plain.best);
  EXPECT_EQ(bits(single.fitness), bits(plain.fitness));
  EXPECT_EQ(one_scored[0], 400);
}

TEST(Islands, ResumeFromCheckpointsGivesTheSameAnswer) {
  test::TempDir dir;
  const std::string ck = dir.path() + "/ck.json";
  const auto ref = run_islands(3, 300, nullptr);
  const auto first = run_islands(3, 300, nullptr, ck);
  EXPECT_EQ(first.best, ref.best);
  // A finished search's checkpoints resume to the same answer without scoring anything new.
  std::vector<int> scored;
  const auto again = run_islands(3, 300, &scored, ck);
  EXPECT_TRUE(again.resumed);
  EXPECT_EQ(again.best, ref.best);
  EXPECT_EQ(bits(again.fitness), bits(ref.fitness));
  EXPECT_EQ(scored, (std::vector<int>{0, 0, 0}));
  // One island without its files: refused at every island, never a silent fresh start.
  std::remove((ck + ".island1").c_str());
  std::remove((ck + ".island1.prev").c_str());
  ThreadHub hub(3);
  std::vector<std::string> errors(3);
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i)
    threads.emplace_back([&, i] {
      auto c = island_config(300);
      c.islands = hub.model(i, 3, 2);
      c.checkpoint = ck + ".island" + std::to_string(i);
      SyntheticScorer s;
      try {
        engine::run_search(c, s, nullptr);
      } catch (const engine::CheckpointError& e) {
        errors[static_cast<size_t>(i)] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  for (const auto& e : errors) EXPECT_NE(e.find("island(s) 1 have no checkpoint"), std::string::npos) << e;
}

TEST(Islands, RefuseABudgetTooSmallForTheirPopulations) {
  ThreadHub hub(1);
  auto c = island_config(200);
  c.islands = hub.model(0, 3, 2);
  c.islands->islands = 20;  // 180 / 20 = 9 per island, less than a population of 10
  SyntheticScorer s;
  try {
    engine::run_search(c, s, nullptr);
    FAIL() << "accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("per island"), std::string::npos) << e.what();
  }
}
