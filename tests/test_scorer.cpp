// The CPU scorer: determinism (bit-identical across runs and thread counts), degenerate cells,
// worst values, ninaswot's z statistics.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "cli/output.hpp"
#include "engine/scorer.hpp"
#include "engine/zstats.hpp"
#include "test_util.hpp"

using namespace hn;
using engine::Proxy;

namespace {

engine::ScoreSettings small_settings(int threads) {
  engine::ScoreSettings s;
  s.proxies = {Proxy::kNaswot, Proxy::kNaswotOnce, Proxy::kNi, Proxy::kEntropy, Proxy::kEntropySeed};
  s.batch = 8;
  s.entropy_batch = 4;
  s.entropy_repeats = 2;
  s.threads = threads;
  s.data_path = test::data_path("cifar10/cifar10_sample.bin");
  return s;
}

const std::vector<net::Genes> kGenes = {
    net::parse_arch("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"),
    net::parse_arch("|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"),
    net::parse_arch("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"),
};

uint64_t bits(double v) {
  uint64_t b;
  std::memcpy(&b, &v, 8);
  return b;
}

}  // namespace

TEST(Scorer, BitIdenticalAcrossRunsAndThreadCounts) {
  std::vector<std::vector<engine::ArchScore>> runs;
  for (int threads : {1, 2, 3, 2}) {
    const auto s = small_settings(threads);
    runs.push_back(engine::make_cpu_scorer(s, engine::load_inputs(s))->score_all(kGenes));
  }
  for (size_t r = 1; r < runs.size(); ++r)
    for (size_t a = 0; a < kGenes.size(); ++a)
      for (Proxy p : small_settings(1).proxies) {
        ASSERT_TRUE(runs[r][a][p].has_value());
        EXPECT_EQ(bits(runs[r][a][p]->value), bits(runs[0][a][p]->value))
            << "run " << r << " arch " << a << " " << engine::proxy_name(p);
      }
}

TEST(Scorer, OrderOfArchitecturesDoesNotChangeScores) {
  const auto s = small_settings(0);
  auto scorer = engine::make_cpu_scorer(s, engine::load_inputs(s));
  const auto fwd = scorer->score_all(kGenes);
  const auto rev = scorer->score_all(std::vector<net::Genes>{kGenes[2], kGenes[1], kGenes[0]});
  for (Proxy p : s.proxies) EXPECT_EQ(bits(fwd[0][p]->value), bits(rev[2][p]->value));
}

TEST(Scorer, DegenerateCellsAreWorstAndFlagged) {
  const auto s = small_settings(0);
  const auto r = engine::make_cpu_scorer(s, engine::load_inputs(s))->score_all(std::vector<net::Genes>{kGenes[2]});
  for (Proxy p : s.proxies) {
    EXPECT_EQ(r[0][p]->value, -INFINITY) << engine::proxy_name(p);
    EXPECT_EQ(r[0][p]->flag, "degenerate");
  }
}

TEST(Scorer, SeedChangesScores) {
  auto s = small_settings(0);
  const auto a = engine::make_cpu_scorer(s, engine::load_inputs(s))->score_all(std::vector<net::Genes>{kGenes[0]});
  s.score_seed = 1;
  const auto b = engine::make_cpu_scorer(s, engine::load_inputs(s))->score_all(std::vector<net::Genes>{kGenes[0]});
  EXPECT_NE(a[0][Proxy::kNaswot]->value, b[0][Proxy::kNaswot]->value);
  EXPECT_NE(a[0][Proxy::kEntropy]->value, b[0][Proxy::kEntropy]->value);
}

TEST(Scorer, MissingImagesNameBothOptions) {
  engine::ScoreSettings s = small_settings(0);
  s.data_path.clear();
  try {
    engine::load_inputs(s);
    ADD_FAILURE();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("--data"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("--gaussian-input"), std::string::npos);
  }
  s.proxies = {Proxy::kEntropy};  // entropy draws its own Gaussian inputs
  EXPECT_NO_THROW(engine::load_inputs(s));
}

TEST(Output, WorstValuesAreStringsInJsonAndNeverNaN) {
  EXPECT_EQ(cli::json_number(-INFINITY), "-inf");
  EXPECT_EQ(cli::json_number(INFINITY), "+inf");
  EXPECT_EQ(cli::json_number(-0.0).dump(), "0.0");
  EXPECT_EQ(cli::csv_number(-INFINITY), "-inf");
  EXPECT_EQ(cli::csv_number(INFINITY), "inf");
  EXPECT_EQ(cli::csv_number(-0.0), "0");
  // CSV numbers are the shortest text that reads back as the same double, as JSON's are.
  EXPECT_EQ(cli::csv_number(0.1), "0.1");
  EXPECT_EQ(cli::csv_number(-1234.5), "-1234.5");
  for (const double x : {1.0 / 3.0, -2.0 / 7.0, 1e-300, 6.02214076e23, 713.674, 0.1 + 0.2}) {
    EXPECT_EQ(std::stod(cli::csv_number(x)), x) << cli::csv_number(x);
    EXPECT_EQ(cli::csv_number(x), nlohmann::json(x).dump()) << "the JSON lines' text";
  }
  EXPECT_THROW(cli::json_number(NAN), std::logic_error);
  // sanitize turns an unflagged NaN or infinity into the worst value, flagged nonfinite.
  const auto v = engine::sanitize(Proxy::kNaswot, {NAN, "", 0.0});
  EXPECT_EQ(v.value, -INFINITY);
  EXPECT_EQ(v.flag, "nonfinite");
  EXPECT_EQ(engine::sanitize(Proxy::kNtk, {INFINITY, "", 0.0}).value, INFINITY);
  EXPECT_EQ(std::signbit(engine::sanitize(Proxy::kNi, {-0.0, "", 0.0}).value), false);

  cli::Record r;
  engine::ArchScore s;
  s.arch = kGenes[2];
  s[Proxy::kNaswot] = engine::worst(Proxy::kNaswot, "degenerate");
  r.score = s;
  const auto j = cli::record_json(r, {Proxy::kNaswot});
  EXPECT_EQ(j["naswot"], "-inf");
  EXPECT_EQ(j["flags"]["naswot"], "degenerate");
  EXPECT_TRUE(j["index"].is_null());
}

TEST(ZStats, PopulationStdOverFiniteValues) {
  const auto z = engine::compute_zstat(Proxy::kNaswot, {1.0, 3.0, -INFINITY, 5.0}, "k", 0);
  EXPECT_EQ(z.n, 3);
  EXPECT_DOUBLE_EQ(z.mean, 3.0);
  EXPECT_DOUBLE_EQ(z.std, std::sqrt(8.0 / 3.0));
  EXPECT_THROW(engine::compute_zstat(Proxy::kNaswot, {1.0, -INFINITY}, "k", 0), std::runtime_error);
  EXPECT_THROW(engine::compute_zstat(Proxy::kNaswot, {2.0, 2.0, 2.0}, "k", 0), std::runtime_error);
}

TEST(ZStats, NinaswotCombinesZScoresAndPropagatesWorst) {
  engine::ZStats st;
  st[Proxy::kNaswot] = {10.0, 2.0, 50, "a", 0};
  st[Proxy::kNi] = {-1.0, 0.5, 50, "b", 0};
  const auto v = engine::ninaswot_value({14.0, "", 0.1}, {-0.5, "", 0.2}, st);
  EXPECT_DOUBLE_EQ(v.value, (2 * 2.0 + 1.0) / std::sqrt(5.0));
  const auto w = engine::ninaswot_value(engine::worst(Proxy::kNaswot, "singular"), {-0.5, "", 0}, st);
  EXPECT_EQ(w.value, -INFINITY);
  EXPECT_EQ(w.flag, "singular");
}

TEST(ZStats, FilesRoundTripAndRejectOtherSettings) {
  test::TempDir d;
  engine::ZStats st;
  st[Proxy::kNaswot] = {10.0, 2.0, 50, "naswot;batch=8", 4};
  engine::write_stats_file(d.path() + "/s.json", st);
  const auto back = engine::read_stats_file(d.path() + "/s.json");
  EXPECT_EQ(back.at(Proxy::kNaswot).settings, "naswot;batch=8");
  EXPECT_NO_THROW(engine::require_stat(back, Proxy::kNaswot, "naswot;batch=8", 4));
  EXPECT_THROW(engine::require_stat(back, Proxy::kNaswot, "naswot;batch=16", 4), std::runtime_error);
  EXPECT_THROW(engine::require_stat(back, Proxy::kNaswot, "naswot;batch=8", 5), std::runtime_error);
  EXPECT_THROW(engine::require_stat(back, Proxy::kNi, "x", 4), std::runtime_error);
  d.write("bad.json", "{\"naswot\": {\"mean\": 1}}");
  EXPECT_THROW(engine::read_stats_file(d.path() + "/bad.json"), std::runtime_error);
  d.write("trunc.json", "{\"naswot\": {\"mean\": 1, \"st");
  EXPECT_THROW(engine::read_stats_file(d.path() + "/trunc.json"), std::runtime_error);
}
