// The hybridnas binary: records, error records, exit codes, formats, resume.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <chrono>
#include <csignal>
#include <fstream>
#include <set>
#include <sstream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "net/space.hpp"
#include "test_util.hpp"

using hn::test::run_cli;

namespace {
const std::string kGood =
    "'|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|'";
const std::string kDegenerate = "'|none~0|+|none~0|none~1|+|none~0|none~1|none~2|'";
const std::string kQuick = " --backend cpu --batch 8 --entropy-batch 4 --entropy-repeats 1 ";
std::string data() { return " --data " + hn::test::data_path("cifar10/cifar10_sample.bin") + " "; }

std::vector<nlohmann::json> lines(const std::string& out) {
  std::vector<nlohmann::json> v;
  std::istringstream in(out);
  std::string l;
  while (std::getline(in, l))
    if (!l.empty()) v.push_back(nlohmann::json::parse(l));
  return v;
}
}  // namespace

TEST(Cli, ScoresGoodLinesAndReportsBadOnesWithNonZeroExit) {
  const auto r = run_cli("score --archs -" + kQuick + data() + "--proxies naswot,ni",
                         "# a comment\n" + kGood.substr(1, kGood.size() - 2) +
                             "\n|nor_conv_3x3~0|+|bogus~0|\n6111\n\n99999\n");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  const auto recs = lines(r.out);
  ASSERT_EQ(recs.size(), 4u) << r.out;
  EXPECT_EQ(recs[0]["index"], 3160);
  EXPECT_TRUE(recs[0]["naswot"].is_number());
  EXPECT_TRUE(recs[0]["ni"].is_number());
  EXPECT_EQ(recs[1]["line"], 3);
  EXPECT_NE(recs[1]["error"].get<std::string>().find("unknown op 'bogus'"), std::string::npos);
  EXPECT_EQ(recs[2]["index"], 6111);
  EXPECT_EQ(recs[3]["line"], 6);
  EXPECT_NE(recs[3]["error"].get<std::string>().find("99999"), std::string::npos);
  EXPECT_NE(r.err.find("2 of 4 inputs could not be scored"), std::string::npos) << r.err;
}

TEST(Cli, DegenerateCellsGetWorstValuesAsStrings) {
  const auto r = run_cli("score --arch " + kDegenerate + kQuick + data() + "--proxies naswot,entropy");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto recs = lines(r.out);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0]["naswot"], "-inf");
  EXPECT_EQ(recs[0]["entropy"], "-inf");
  EXPECT_EQ(recs[0]["flags"]["naswot"], "degenerate");
}

TEST(Cli, CsvHasAHeaderAndOneRowPerArchitecture) {
  const auto r = run_cli("score --arch " + kGood + " --arch " + kDegenerate + kQuick + data() +
                         "--proxies naswot --format csv");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::istringstream in(r.out);
  std::string header, a, b;
  std::getline(in, header);
  std::getline(in, a);
  std::getline(in, b);
  EXPECT_EQ(header, "arch,index,naswot,flags,seconds_naswot,error");
  EXPECT_EQ(a.rfind(kGood.substr(1, kGood.size() - 2) + ",3160,", 0), 0u) << a;
  EXPECT_NE(b.find(",-inf,naswot:degenerate,"), std::string::npos) << b;
}

TEST(Cli, ExitCodes) {
  // No images for proxies that need them: usage error naming both options.
  auto r = run_cli("score --arch " + kGood + kQuick + "--proxies naswot");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--gaussian-input"), std::string::npos) << r.err;
  // Missing data file.
  r = run_cli("score --arch " + kGood + kQuick + "--proxies naswot --data /nonexistent.bin");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("does not exist"), std::string::npos) << r.err;
  // Unavailable backend.
  r = run_cli("score --arch " + kGood + " --backend cuda --gaussian-input --proxies naswot");
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_NE(r.err.find("--backend cpu"), std::string::npos) << r.err;
  // Bad option value.
  r = run_cli("score --arch " + kGood + kQuick + "--gaussian-input --proxies naswot,bogus");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown proxy 'bogus'"), std::string::npos) << r.err;
  r = run_cli("score" + kQuick + "--gaussian-input");
  EXPECT_EQ(r.exit_code, 2);
  r = run_cli("frobnicate");
  EXPECT_EQ(r.exit_code, 2);
  r = run_cli("score --index 5" + kQuick + "--gaussian-input --table /nonexistent.csv");
  EXPECT_EQ(r.exit_code, 3);
  // Device options are the CUDA backend's (the CPU backend's split is its threads).
  r = run_cli("score --arch " + kGood + kQuick + "--gaussian-input --proxies naswot --devices 0,1");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--devices applies to the CUDA backend"), std::string::npos) << r.err;
  // --islands outside mpirun is one island, and it says so; other strategies are refused.
  r = run_cli("search --islands --budget 60 --population 10 --generations 2" + kQuick +
              "--gaussian-input --proxies naswot --reference-sample 10");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("one process, so one island"), std::string::npos) << r.err;
  r = run_cli("search --islands --strategy random --budget 60" + kQuick + "--gaussian-input --proxies naswot");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--islands runs the GA"), std::string::npos) << r.err;
}

TEST(Cli, NinaswotFromAReferenceSampleOrAStatsFile) {
  hn::test::TempDir d;
  const std::string common = kQuick + data() + "--search-seed 2 ";
  auto r = run_cli("stats --proxies ninaswot --reference-sample 4 --out " + d.path() + "/st.json" + common);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto a = run_cli("score --arch " + kGood + " --proxies ninaswot --stats " + d.path() + "/st.json" + common);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  const auto b = run_cli("score --arch " + kGood + " --proxies ninaswot --reference-sample 4" + common);
  ASSERT_EQ(b.exit_code, 0) << b.err;
  const auto ra = lines(a.out), rb = lines(b.out);
  ASSERT_TRUE(ra[0]["ninaswot"].is_number());
  EXPECT_EQ(ra[0]["ninaswot"], rb[0]["ninaswot"]);  // same sample, same statistics
  // Statistics made with other settings are refused.
  r = run_cli("score --arch " + kGood + " --proxies ninaswot --stats " + d.path() + "/st.json" +
              common + "--num-classes 1");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("other settings"), std::string::npos) << r.err;
}

TEST(Cli, ResumeScoresOnlyWhatIsMissing) {
  hn::test::TempDir d;
  const std::string out = d.path() + "/s.jsonl";
  auto r = run_cli("score --index 1 --index 2" + kQuick + data() + "--proxies naswot --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // A kill mid-write leaves a partial last line; resume drops nothing it needs.
  std::ofstream(out, std::ios::app) << "{\"arch\":\"|nor_co";
  r = run_cli("score --index 1 --index 2 --index 3" + kQuick + data() + "--proxies naswot --resume --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string text = hn::test::slurp(out);
  int records = 0, idx3 = 0;
  std::istringstream in(text);
  std::string l;
  while (std::getline(in, l)) {
    try {
      const auto j = nlohmann::json::parse(l);
      ++records;
      idx3 += j["index"] == 3;
    } catch (...) {
    }
  }
  EXPECT_EQ(records, 3);
  EXPECT_EQ(idx3, 1);
}

// A record's index comes from the table: resuming with a table that numbers the architectures
// otherwise (or with none) would leave one file with two index maps, so it is refused.
TEST(Cli, ResumeRefusesAnotherIndexTable) {
  hn::test::TempDir d;
  const std::string out = d.path() + "/s.jsonl", edited = d.path() + "/edited.csv";
  auto r = run_cli("score --index 1 --index 2" + kQuick + data() + "--proxies params --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The shared table with the architectures of indices 1 and 2 swapped.
  std::istringstream in(hn::test::slurp(hn::test::data_path("nb201/nb201_cifar10.csv")));
  std::vector<std::string> rows;
  for (std::string l; std::getline(in, l);) rows.push_back(l);
  ASSERT_GT(rows.size(), 3u);
  const auto field = [](const std::string& row, int k) {
    size_t a = 0;
    for (int i = 0; i < k; ++i) a = row.find(',', a) + 1;
    return row.substr(a, row.find(',', a) - a);
  };
  const std::string s1 = field(rows[2], 1), s2 = field(rows[3], 1);
  rows[2].replace(rows[2].find(s1), s1.size(), s2);
  rows[3].replace(rows[3].find(s2), s2.size(), s1);
  {
    std::ofstream f(edited);
    for (const auto& l : rows) f << l << "\n";
  }
  const std::string before = hn::test::slurp(out);
  r = run_cli("score --index 3" + kQuick + data() + "--proxies params --resume --table " + edited + " --out " + out);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("another table"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("line 1"), std::string::npos) << r.err;
  EXPECT_EQ(hn::test::slurp(out), before) << "nothing appended";
  // The table it was made with resumes as before.
  r = run_cli("score --index 3" + kQuick + data() + "--proxies params --resume --out " + out);
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

// SIGKILL in the middle of a GA search, then the same command again: it resumes from the
// checkpoint and ends with the answer of an uninterrupted run.
TEST(Cli, SearchKilledAndResumedEndsWithTheUninterruptedAnswer) {
  hn::test::TempDir d;
  const std::string args = "search --strategy ga --budget 160 --population 20 --generations 30 "
                           "--proxies naswot,ni --search-seed 4" + kQuick + data();
  auto whole = run_cli(args + "--out " + d.path() + "/whole.json");
  ASSERT_EQ(whole.exit_code, 0) << whole.err;

  const std::string ckpt = d.path() + "/ga.ckpt";
  const std::string cmd = std::string(HYBRIDNAS_BINARY) + " " + args + "--checkpoint " + ckpt +
                          " --out " + d.path() + "/first.json";
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", ("exec " + cmd + " >/dev/null 2>&1").c_str(), (char*)nullptr);
    _exit(127);
  }
  // Wait for a checkpoint past generation 2, then kill without warning.
  // Polls until then or until the child ends on its own (no fixed time: a sanitizer build is slow).
  bool killed = false, exited = false;
  int status = 0;
  while (!killed && !exited) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
      break;
    }
    const std::string text = hn::test::slurp(ckpt);
    if (text.empty()) continue;
    try {
      if (nlohmann::json::parse(text)["generation"].get<int>() >= 2) {
        kill(pid, SIGKILL);
        killed = true;
      }
    } catch (...) {
    }
  }
  if (!exited) waitpid(pid, &status, 0);
  ASSERT_TRUE(killed) << "the search ended before a checkpoint at generation 2 appeared";
  ASSERT_TRUE(WIFSIGNALED(status));
  auto resumed = run_cli(args + "--checkpoint " + ckpt + " --out " + d.path() + "/resumed.json");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  const auto a = nlohmann::json::parse(hn::test::slurp(d.path() + "/whole.json"))["runs"][0];
  const auto b = nlohmann::json::parse(hn::test::slurp(d.path() + "/resumed.json"))["runs"][0];
  EXPECT_TRUE(b["resumed"].get<bool>());
  EXPECT_EQ(a["arch"], b["arch"]);
  EXPECT_EQ(a["fitness"], b["fitness"]);
  EXPECT_EQ(a["evaluations"], b["evaluations"]);
  EXPECT_LT(b["network_evaluations"].get<int>(), a["network_evaluations"].get<int>());
}

TEST(Cli, EvalReportsCorrelationsOfProxiesAndFitnessModes) {
  hn::test::TempDir d;
  auto r = run_cli("score --index 1 --index 2 --index 3 --index 6111 --index 100 --index 2000" + kQuick +
                   data() + "--proxies naswot,ni --out " + d.path() + "/s.jsonl");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_cli("eval --scores " + d.path() + "/s.jsonl --out " + d.path() + "/e.json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(hn::test::slurp(d.path() + "/e.json"));
  std::set<std::string> names;
  for (const auto& x : j["results"]) names.insert(x["name"].get<std::string>());
  EXPECT_TRUE(names.count("naswot"));
  EXPECT_TRUE(names.count("ni"));
  EXPECT_EQ(j["architectures"], 6);
  r = run_cli("eval --scores /nonexistent.jsonl");
  EXPECT_EQ(r.exit_code, 3);
}

// Two processes filling one new cache at once: both succeed, and the cache then serves everything.
TEST(Cli, ConcurrentProcessesShareOneCache) {
  hn::test::TempDir d;
  const std::string cache = d.path() + "/c.db";
  const std::string base = std::string(HYBRIDNAS_BINARY) + " score" + kQuick + data() +
                           "--proxies naswot,ni --cache " + cache;
  const std::string cmd = "(" + base + " --index 1 --index 2 --index 3 --index 4 >/dev/null 2>" + d.path() +
                          "/e1 & p1=$!; " + base + " --index 3 --index 4 --index 5 --index 6 >/dev/null 2>" + d.path() +
                          "/e2 & p2=$!; wait $p1; r1=$?; wait $p2; exit $((r1 | $?)))";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << hn::test::slurp(d.path() + "/e1") << hn::test::slurp(d.path() + "/e2");
  const auto r = run_cli("score --index 1 --index 2 --index 3 --index 4 --index 5 --index 6" + kQuick + data() +
                         "--proxies naswot,ni --cache " + cache);
  ASSERT_EQ(r.exit_code, 0) << r.err << hn::test::slurp(d.path() + "/e1") << hn::test::slurp(d.path() + "/e2");
  EXPECT_NE(r.err.find("6 served, 0 scored"), std::string::npos) << r.err;
  EXPECT_EQ(lines(r.out).size(), 6u);
}

TEST(Cli, AutoPresetIsCpuQuickWithoutAGpuAndSynflowRankOnNatsSss) {
  const auto r = run_cli("score --arch " + kGood + " --backend auto" + data());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto recs = lines(r.out);
  ASSERT_EQ(recs.size(), 1u);
  for (const char* p : {"naswot", "ni", "ntk_fast", "entropy"}) EXPECT_TRUE(recs[0].contains(p)) << p;
  EXPECT_FALSE(recs[0].contains("ntk"));
  EXPECT_NE(r.err.find("batch 32, entropy 16x2"), std::string::npos) << r.err;
  // In the size space auto is its recommended synflow-rank (no images needed), on either backend.
  auto sss = run_cli("score --space nats-sss --arch 8:8:8:8:8 --backend auto");
  ASSERT_EQ(sss.exit_code, 0) << sss.err;
  const auto rec = lines(sss.out).at(0);
  EXPECT_TRUE(rec.contains("synflow"));
  EXPECT_FALSE(rec.contains("naswot"));
  sss = run_cli("search --space nats-sss --budget 40 --population 10 -q --backend auto");
  ASSERT_EQ(sss.exit_code, 0) << sss.err;
  const auto j = nlohmann::json::parse(sss.out);
  EXPECT_EQ(j["preset"], "synflow-rank");
  EXPECT_EQ(j["fitness"], "rank");
  EXPECT_EQ(j["proxies"], "synflow");
}

TEST(Cli, SearchDedupIsomorphicAndStrategies) {
  for (const std::string strat : {"random", "rea", "ga"}) {
    const auto r = run_cli("search --strategy " + strat + " --budget 60 --population 20 --dedup-isomorphic "
                           "--proxies naswot --fitness rank --runs 2 -q" + kQuick + data());
    ASSERT_EQ(r.exit_code, 0) << strat << ": " << r.err;
    const auto j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j["runs"].size(), 2u);
    for (const auto& run : j["runs"]) {
      EXPECT_EQ(run["evaluations"], 60);
      EXPECT_TRUE(run["accuracy"].is_number());
    }
    EXPECT_TRUE(j["accuracy_mean"].is_number());
  }
  const auto bad = run_cli("search --population 7 --proxies naswot -q" + kQuick + data());
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("even"), std::string::npos) << bad.err;
}

// A preset fixes the fitness mode unless --fitness says otherwise.
TEST(Cli, HybridLogrankPresetSearchesOnLogrank) {
  const std::string common =
      " --budget 24 --population 8 --reference-sample 6 --proxies naswot,entropy -q" + kQuick + data();
  auto r = run_cli("search --preset hybrid-logrank" + common);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["fitness"], "logrank") << r.out;
  r = run_cli("search --preset hybrid-logrank --fitness z" + common);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["fitness"], "z") << r.out;
  r = run_cli("search --preset hybrid" + common);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["fitness"], "z") << r.out;
  // The result records each proxy's settings, as `score` does.
  ASSERT_TRUE(j["settings"].contains("proxy_settings")) << r.out;
  EXPECT_EQ(j["settings"]["proxy_settings"].size(), 2u) << r.out;
  EXPECT_NE(j["settings"]["proxy_settings"]["entropy"].get<std::string>().find("entropy_batch="), std::string::npos);
}

// Statistics files carry what they are of (log for ntk under hybrid-type presets); a search uses
// them instead of a reference sample only when they match its fitness.
TEST(Cli, SearchWithAStatisticsFile) {
  hn::test::TempDir d;
  const std::string common = " --batch 8 --entropy-batch 4 --entropy-repeats 1 --backend cpu" + data() +
                             "--proxies naswot,ni,ntk_fast -q ";
  auto r = run_cli("stats --preset cpu-quick --reference-sample 6 --out " + d.path() + "/log.json" + common);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto st = nlohmann::json::parse(hn::test::slurp(d.path() + "/log.json"));
  EXPECT_EQ(st["ntk_fast"]["transform"], "log");
  EXPECT_EQ(st["naswot"]["transform"], "identity");
  r = run_cli("search --preset cpu-quick --budget 30 --population 10 --stats " + d.path() + "/log.json" + common);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["runs"][0]["evaluations"], 30);
  r = run_cli("stats --preset seed --reference-sample 6 --num-classes 10 --out " + d.path() + "/id.json" + common);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_cli("search --preset cpu-quick --budget 30 --population 10 --stats " + d.path() + "/id.json" + common);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("log"), std::string::npos) << r.err;
}

// --space nats-sss through the commands: score (widths, indices, --all's order), resume, eval on
// the NATS-SSS table, stats, search with accuracies, bench; the spaces do not mix.
TEST(Cli, TheSizeSpaceThroughEveryCommand) {
  hn::test::TempDir d;
  const std::string sss = " --space nats-sss" + kQuick + data();
  auto r = run_cli("score --arch 16:32:48:24:56 --index 0 --index 32767 --arch 8:8:8:8:9 --proxies params,naswot,ni" + sss +
                   "--out " + d.path() + "/s.jsonl");
  EXPECT_EQ(r.exit_code, 1) << "one bad input: " << r.err;
  auto recs = lines(hn::test::slurp(d.path() + "/s.jsonl"));
  ASSERT_EQ(recs.size(), 4u);
  EXPECT_EQ(recs[0]["arch"], "16:32:48:24:56");  // the --arch inputs, then the --index ones
  EXPECT_EQ(recs[0]["index"], 5974);
  EXPECT_TRUE(recs[1].contains("error"));
  EXPECT_EQ(recs[2]["arch"], "8:8:8:8:8");
  EXPECT_DOUBLE_EQ(recs[2]["params"].get<double>(), 0.011714);
  EXPECT_EQ(recs[3]["arch"], "64:64:64:64:64");
  const auto settings = nlohmann::json::parse(hn::test::slurp(d.path() + "/s.jsonl.settings.json"));
  EXPECT_EQ(settings["settings"]["space"], "nats-sss");
  // Resume adds only what is missing; an NB201 run cannot resume this file.
  r = run_cli("score --arch 16:32:48:24:56 --arch 24:24:24:24:24 --proxies params,naswot,ni" + sss + "--resume --out " +
              d.path() + "/s.jsonl");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(lines(hn::test::slurp(d.path() + "/s.jsonl")).size(), 5u);
  r = run_cli("score --arch " + kGood + " --proxies params,naswot,ni" + kQuick + data() + "--resume --out " + d.path() +
              "/s.jsonl");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("holds nats-sss scores"), std::string::npos) << r.err;
  // An NB201 string in the size space names the formats.
  r = run_cli("score --arch " + kGood + " --proxies params" + sss);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("c1:c2:c3:c4:c5"), std::string::npos) << r.out;
  // eval takes the space from the file and the NATS-SSS table by default.
  r = run_cli("eval --scores " + d.path() + "/s.jsonl --out " + d.path() + "/e.json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto e = nlohmann::json::parse(hn::test::slurp(d.path() + "/e.json"));
  EXPECT_EQ(e["architectures"], 4);
  r = run_cli("eval --space nb201 --scores " + d.path() + "/s.jsonl");
  EXPECT_EQ(r.exit_code, 3);
  r = run_cli("eval --scores " + d.path() + "/s.jsonl --table " + hn::test::data_path("nb201/nb201_cifar10.csv"));
  EXPECT_EQ(r.exit_code, 3) << "an NB201 table for SSS scores";
  // stats and search.
  r = run_cli("stats --proxies naswot,ni --reference-sample 5 --out " + d.path() + "/z.json -q" + sss);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const std::string strat : {"ga", "rea", "random"}) {
    r = run_cli("search --strategy " + strat + " --budget 40 --population 10 --proxies params,naswot --fitness rank -q" + sss);
    ASSERT_EQ(r.exit_code, 0) << strat << ": " << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["space"], "nats-sss");
    if (strat == "ga") {  // ten generations of 10 may find fewer new networks than the budget
      EXPECT_LE(j["runs"][0]["evaluations"].get<int>(), 40);
      EXPECT_GT(j["runs"][0]["evaluations"].get<int>(), 10);
    } else {
      EXPECT_EQ(j["runs"][0]["evaluations"], 40);
    }
    EXPECT_NE(j["runs"][0]["arch"].get<std::string>().find(':'), std::string::npos);
    EXPECT_TRUE(j["runs"][0]["accuracy"].is_number()) << "the NATS-SSS table gives the answer's accuracy";
  }
  r = run_cli("search --preset synflow-rank --budget 40 --population 10 -q" + sss);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["fitness"], "rank");
  EXPECT_EQ(nlohmann::json::parse(r.out)["proxies"], "synflow");
  r = run_cli("search --dedup-isomorphic --budget 40 --population 10 --proxies params --fitness rank -q" + sss);
  EXPECT_EQ(r.exit_code, 2);
  // The answer's index is the benchmark's formula even where the table lacks the row; the missing
  // accuracy is said, not silently dropped.
  const std::string one_row = d.write("one_row.csv", "arch_index,arch_str,cifar10_test\n0,8:8:8:8:8,50.0\n");
  r = run_cli("search --strategy random --budget 40 --proxies params --fitness rank --table " + one_row + sss);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto found = nlohmann::json::parse(r.out)["runs"][0];
  EXPECT_EQ(found["index"].get<int64_t>(), hn::net::arch_code(hn::net::Arch(hn::net::sss::parse_widths(found["arch"].get<std::string>()))));
  EXPECT_FALSE(found.contains("accuracy"));
  EXPECT_NE(r.err.find("the table has no cifar10_test for " + found["arch"].get<std::string>()), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("(NATS-SSS " + std::to_string(found["index"].get<int64_t>()) + ")"), std::string::npos) << r.err;
  // Over several runs the mean accuracy says how many answers it covers.
  const std::string answer_row = d.write("answer_row.csv", "arch_index,arch_str,cifar10_test\n" +
                                                               std::to_string(found["index"].get<int64_t>()) + "," +
                                                               found["arch"].get<std::string>() + ",77.0\n");
  r = run_cli("search --strategy random --budget 40 --runs 2 --proxies params --fitness rank --table " + answer_row + sss);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto two_runs = nlohmann::json::parse(r.out);
  const bool same = two_runs["runs"][1]["arch"] == found["arch"];
  EXPECT_EQ(two_runs["accuracy_runs"], same ? 2 : 1);
  EXPECT_DOUBLE_EQ(two_runs["accuracy_mean"].get<double>(), 77.0);
  if (!same) {
    EXPECT_NE(r.err.find("over the 1 runs whose answer has one"), std::string::npos) << r.err;
  }
  // bench: population sizes up to the space's size, checked before anything is timed.
  r = run_cli("bench --proxies params --runs 1 --warmup 0 --population-sizes 32769" + sss);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("1..32768"), std::string::npos) << r.err;
  // The CUDA backend runs this space too (GpuSizeSpace.CudaScorerMatchesTheCpuScorer); without a GPU
  // it is unavailable, exit 4.
  r = run_cli("search --backend cuda --space nats-sss --budget 40 --population 10 --proxies params -q");
  if (r.exit_code == 4)
    EXPECT_NE(r.err.find("--backend cpu works"), std::string::npos) << r.err;
  else
    EXPECT_EQ(r.exit_code, 0) << r.err;
  r = run_cli("bench --proxies params,naswot --runs 1 --warmup 0" + sss);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("naswot"), std::string::npos);
  r = run_cli("score --space nats-sss --arch 8:8:8:8:8 --proxies params --backend cpu --table " +
              hn::test::data_path("nb201/nb201_cifar10.csv"));
  EXPECT_EQ(r.exit_code, 3) << "a table of the other space";
  r = run_cli("score --space nas-bench-301 --arch 8:8:8:8:8 --proxies params --backend cpu");
  EXPECT_EQ(r.exit_code, 2);
  // Limits follow the space: a random search may spend more than NB201's 15,625.
  r = run_cli("search --space nats-sss --strategy random --budget 20000 --proxies params --fitness rank -q --backend cpu");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["runs"][0]["evaluations"], 20000);
  r = run_cli("search --strategy random --budget 20000 --proxies params --fitness rank -q --backend cpu");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("15625"), std::string::npos) << r.err;
  // The index is the formula's whatever the table holds; a table that numbers otherwise is refused.
  const std::string csv = hn::test::slurp(hn::test::data_path("nats_sss/nats_sss_cifar10.csv"));
  const std::string head = csv.substr(0, csv.find("\n", csv.find("\n") + 1) + 1);  // header + row 0
  const std::string part = d.write("part.csv", head);
  r = run_cli("score --space nats-sss --table " + part + " --arch 64:64:64:64:64 --proxies params --backend cpu -q");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(lines(r.out)[0]["index"], 32767);
  const std::string wrong = d.write("wrong.csv", "arch_index,arch_str,cifar10_test\n0,8:8:8:8:16,80\n1,8:8:8:8:8,79\n");
  r = run_cli("score --space nats-sss --table " + wrong + " --arch 0 --proxies params --backend cpu -q");
  EXPECT_EQ(r.exit_code, 3) << r.err;
  // Widths are decimal with leading zeros; a width past 64 says so.
  r = run_cli("score --space nats-sss --arch 8:8:8:8:064 --arch 8:8:8:8:100 --proxies params --backend cpu -q");
  EXPECT_EQ(r.exit_code, 1);
  const auto two = lines(r.out);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0]["arch"], "8:8:8:8:64");
  EXPECT_NE(two[1]["error"].get<std::string>().find("is 100"), std::string::npos) << two[1];
  // A checkpoint of one space is refused by a search of the other, naming the spaces.
  r = run_cli("search --space nats-sss --budget 30 --population 10 --proxies params --fitness rank -q --backend cpu "
              "--checkpoint " + d.path() + "/cp.json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_cli("search --budget 30 --population 10 --proxies params --fitness rank -q --backend cpu --checkpoint " +
              d.path() + "/cp.json");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("space nats-sss"), std::string::npos) << r.err;
  // serve: widths and indices of the server's space; the others are error results.
  r = run_cli("serve --proxies params -q" + sss,
              R"({"id":1,"op":"score","archs":["16:32:48:24:56",0,"|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"]})" "\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto answers = lines(r.out);
  ASSERT_EQ(answers.size(), 2u) << r.out;
  EXPECT_EQ(answers[0]["settings"]["space"], "nats-sss");
  const auto& res = answers[1]["results"];
  ASSERT_EQ(res.size(), 3u);
  EXPECT_DOUBLE_EQ(res[0]["params"].get<double>(), 0.246938);
  EXPECT_EQ(res[1]["arch"], "8:8:8:8:8");
  EXPECT_TRUE(res[2].contains("error"));
}
