// The population schedule (engine/population) and its CPU executor: the schedule covers every
// member's steps once in a valid order, grouped by skeleton position, and a member's scores do not
// depend on the population it was scored in (bit for bit, across thread counts).
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <tuple>

#include <nlohmann/json.hpp>

#include "engine/cpu_forward.hpp"
#include "engine/cpu_ntk.hpp"
#include "engine/population.hpp"
#include "engine/scorer.hpp"
#include "net/sampling.hpp"
#include "test_util.hpp"

using namespace hn;
using engine::Proxy;

namespace {

std::vector<net::Genes> runnable_sample(int n, uint64_t seed) {
  std::vector<net::Genes> out;
  for (const auto& g : net::sample_distinct(n, seed, Purpose::kReferenceSample, true))
    if (!net::is_degenerate(g)) out.push_back(g);
  return out;
}

uint64_t bits(double v) {
  uint64_t b;
  std::memcpy(&b, &v, 8);
  return b;
}

engine::ScoreSettings settings(int threads, int population_batch) {
  engine::ScoreSettings s;
  s.proxies = {Proxy::kNaswot, Proxy::kNaswotOnce, Proxy::kNi, Proxy::kEntropy, Proxy::kEntropySeed};
  s.batch = 8;
  s.entropy_batch = 4;
  s.entropy_repeats = 2;
  s.threads = threads;
  s.population_batch = population_batch;
  s.data_path = test::data_path("cifar10/cifar10_sample.bin");
  return s;
}

}  // namespace

TEST(PopulationSchedule, EveryMemberStepOnceInAValidOrder) {
  const auto genes = runnable_sample(40, 3);
  std::vector<net::Plan> plans;
  for (const auto& g : genes) plans.push_back(net::build_plan(g, 10));
  std::vector<const net::Plan*> pp;
  for (const auto& p : plans) pp.push_back(&p);
  for (const engine::ForwardOptions& opt : {engine::ForwardOptions{}, engine::entropy_options()}) {
    const engine::PopulationSchedule s(pp, opt);
    std::vector<size_t> seen(pp.size(), 0);
    std::vector<std::set<int>> produced(pp.size());
    std::tuple<int, int, int> last{-1, -1, -1};
    for (const auto& g : s.steps()) {
      // One group per (position, kind, weight slot): a 1x1 and a 3x3 conv on one edge are two.
      const std::tuple<int, int, int> key{g.pos, static_cast<int>(g.kind), g.slot};
      EXPECT_LT(last, key);
      last = key;
      std::set<int> members;
      for (const auto& ms : g.members) {
        EXPECT_TRUE(members.insert(ms.member).second) << "a member twice in one group";
        const auto& p = s.plan(static_cast<size_t>(ms.member));
        // Inputs exist when the group runs: produced by an earlier group (or aliased to one).
        for (int in : {ms.in0, ms.in1}) {
          if (in >= 0) {
            EXPECT_TRUE(produced[ms.member].count(in)) << "pos " << g.pos << " reads value " << in;
          }
        }
        if (ms.out >= 0) produced[ms.member].insert(ms.out);
        if (ms.in0 >= 0) {
          EXPECT_EQ(p.values[ms.in0].numel(), g.in_shape.numel());
        }
        if (g.kind == net::StepKind::kConv) {
          EXPECT_GE(g.slot, 0);
        }
        ++seen[ms.member];
      }
    }
    for (size_t m = 0; m < pp.size(); ++m) EXPECT_EQ(seen[m], s.lowered(m).steps.size()) << "member " << m;
  }
}

TEST(PopulationSchedule, GroupingCutsLaunchesPerArchitecture) {
  const auto genes = runnable_sample(1000, 11);
  std::vector<net::Plan> plans;
  for (const auto& g : genes) plans.push_back(net::build_plan(g, 10));
  std::vector<const net::Plan*> pp;
  for (const auto& p : plans) pp.push_back(&p);
  engine::ForwardOptions naswot;
  const engine::PopulationSchedule one({pp.front()}, naswot);
  const auto c1 = one.counts(128);
  EXPECT_EQ(c1.launches, c1.per_member_launches);  // a population of one is the per-architecture run
  const engine::PopulationSchedule all(pp, naswot);
  const auto c = all.counts(128);
  const double per_arch = static_cast<double>(c.launches) / static_cast<double>(pp.size());
  // The target: below 20 launches per architecture at population 1,000.
  EXPECT_LT(per_arch, 20.0) << c.launches << " launches for " << pp.size();
  EXPECT_LT(c.launches * 10, c.per_member_launches);
  EXPECT_GT(c.bytes, 0);
}

// The NTK on the population schedule (engine/cuda_ntk.cpp's executor, counted): grouping cuts the
// launches per architecture by an order of magnitude at population 1,000, and a population of one
// is the per-architecture run. Memory traffic per architecture at 64 images: the exact NTK's
// 4,096 gradient rows make each stage-1 gradient tensor 268 MB, so even reading and writing every
// layer's gradient once costs ~30 GB; the count must stay below the 150 GB the issue counted for
// the chunked design (every buffer zeroed, im2col per chunk), ntk_fast's (64 rows) below 10 GB.
TEST(PopulationSchedule, NtkBackwardGroupsLaunchesAndBoundsTraffic) {
  const auto genes = runnable_sample(1000, 11);
  std::vector<net::Plan> plans;
  for (const auto& g : genes) plans.push_back(net::build_plan(g, 10));
  std::vector<const net::Plan*> pp;
  for (const auto& p : plans) pp.push_back(&p);
  const auto opt = engine::ntk_forward_options();
  for (const bool exact : {false, true}) {
    const auto c1 = engine::PopulationSchedule({pp.front()}, opt).ntk_counts(64, exact);
    EXPECT_EQ(c1.launches, c1.per_member_launches);
    EXPECT_GT(c1.library_calls, 0);
    const auto c = engine::PopulationSchedule(pp, opt).ntk_counts(64, exact);
    const double per_arch = static_cast<double>(c.launches) / static_cast<double>(pp.size());
    EXPECT_LT(c.launches * 10, c.per_member_launches) << "exact " << exact;
    EXPECT_LT(per_arch, 10.0) << "exact " << exact;
    const double gb = static_cast<double>(c.bytes) / static_cast<double>(pp.size()) / 1e9;
    EXPECT_GT(gb, 0.0);
    EXPECT_LT(gb, exact ? 150.0 : 10.0) << "GB per architecture, exact " << exact;
    std::printf("  %s: %.2f launches, %.3f library calls, %.2f GB per architecture at P = 1,000 (one at a time: %.0f launches)\n",
                exact ? "ntk" : "ntk_fast", per_arch, double(c.library_calls) / pp.size(), gb,
                double(c.per_member_launches) / pp.size());
  }
}

TEST(Population, ScoresDoNotDependOnThePopulationOrTheThreads) {
  const auto pool = runnable_sample(10, 5);
  const net::Genes target = pool[7];
  // The target alone, inside a population of 10, and inside another population (other members,
  // another place), at 1 and 2 threads.
  std::vector<std::vector<net::Genes>> populations = {{target}, pool};
  auto other = runnable_sample(6, 9);
  other.insert(other.begin() + 5, target);
  other.push_back(net::parse_arch("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"));  // degenerate
  populations.push_back(other);
  // Lockstep with grouped convolutions runs when there are more threads than members: 8 threads
  // (oversubscribed here) on a population of 4 that holds the target.
  auto small = runnable_sample(3, 13);
  small.insert(small.begin() + 2, target);
  populations.push_back(small);
  std::vector<engine::ArchScore> results;
  for (int threads : {1, 2, 8}) {
    for (const auto& pop : populations) {
      const auto s = settings(threads, 0);
      const auto scored = engine::make_cpu_scorer(s, engine::load_inputs(s))->score_all(pop);
      for (const auto& a : scored)
        if (a.arch == target) results.push_back(a);
    }
  }
  ASSERT_EQ(results.size(), 12u);
  for (size_t r = 1; r < results.size(); ++r)
    for (Proxy p : settings(1, 0).proxies) {
      ASSERT_TRUE(results[r][p].has_value());
      EXPECT_EQ(bits(results[r][p]->value), bits(results[0][p]->value))
          << "result " << r << " " << engine::proxy_name(p);
    }
}

TEST(Population, SlicesDoNotChangeScores) {
  auto pool = runnable_sample(9, 2);
  pool.insert(pool.begin() + 3, net::parse_arch("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"));
  std::vector<std::vector<engine::ArchScore>> runs;
  for (int slice : {1, 4, 100}) {
    const auto s = settings(2, slice);
    runs.push_back(engine::make_cpu_scorer(s, engine::load_inputs(s))->score_all(pool));
  }
  for (size_t r = 1; r < runs.size(); ++r)
    for (size_t a = 0; a < pool.size(); ++a) {
      EXPECT_TRUE(runs[r][a].arch == pool[a]);
      for (Proxy p : settings(1, 0).proxies)
        EXPECT_EQ(bits(runs[r][a][p]->value), bits(runs[0][a][p]->value)) << "arch " << a << " " << engine::proxy_name(p);
    }
  EXPECT_EQ(runs[0][3][Proxy::kNaswot]->flag, engine::kFlagDegenerate);
}

TEST(Population, BenchReportsScheduleCountsAndThroughputPerPopulationSize) {
  test::TempDir d;
  const auto r = test::run_cli("bench --warmup 0 --runs 1 --proxies naswot --gaussian-input --arch 17 --backend cpu "
                               "--batch 8 --population-sizes 1,3 --json " + d.path() + "/b.json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(test::slurp(d.path() + "/b.json"));
  EXPECT_TRUE(j["complete"].get<bool>());
  // Counts from the schedule for populations of 1 to 1,000; grouping cuts launches per architecture.
  const auto& sched = j["schedule"]["naswot"];
  EXPECT_EQ(sched["1"]["launches_per_arch"], sched["1"]["per_arch_executor_launches_per_arch"]);
  EXPECT_LT(sched["1000"]["launches_per_arch"].get<double>(), sched["1"]["launches_per_arch"].get<double>() / 50);
  EXPECT_GT(j["proxies"]["naswot"]["population_archs_per_s"]["3"].get<double>(), 0.0);
  // Bad lists are refused before anything is timed (nothing on stdout).
  for (const char* list : {"1,0", "1e2", "1,,2", "15626", "15285", "2,2", "0x10"}) {
    const auto bad = test::run_cli("bench --warmup 0 --runs 1 --proxies naswot --gaussian-input --backend cpu "
                                   "--batch 8 --population-sizes " + std::string(list));
    EXPECT_EQ(bad.exit_code, 2) << list << ": " << bad.err;
    EXPECT_EQ(bad.out, "") << list;
  }
  // --presets without --data: az-meco-zico's zico needs labelled images, refused before timing.
  const auto no_data = test::run_cli("bench --warmup 0 --runs 1 --proxies params --presets --backend cpu --arch 17 "
                                     "--json " + d.path() + "/p.json");
  EXPECT_EQ(no_data.exit_code, 2) << no_data.err;
  EXPECT_EQ(no_data.out, "");
  EXPECT_NE(no_data.err.find("preset:az-meco-zico: zico needs labelled images"), std::string::npos) << no_data.err;
  EXPECT_FALSE(std::filesystem::exists(d.path() + "/p.json")) << "nothing was timed";
}
