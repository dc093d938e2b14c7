// Every input a user can hand us, and output that is never lost (the robustness issue): each
// test is one of the issue's examples, or the same kind of fault elsewhere.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sstream>

#include "engine/files.hpp"
#include "engine/score_cache.hpp"
#include "engine/score_file.hpp"
#include "engine/search.hpp"
#include "engine/zstats.hpp"
#include "net/arch_input.hpp"
#include "net/text.hpp"
#include "net/cifar.hpp"
#include "test_util.hpp"

using hn::test::run_cli;
namespace engine = hn::engine;
namespace net = hn::net;
using engine::Proxy;

namespace {
const std::string kQuick =
    " --backend cpu --batch 8 --entropy-batch 4 --entropy-repeats 1 --proxies naswot -q ";
std::string data() { return " --data " + hn::test::data_path("cifar10/cifar10_sample.bin") + " "; }
std::string table_path() { return hn::test::data_path("nb201/nb201_cifar10.csv"); }
const net::ArchTable& table() {
  static const net::ArchTable t = net::ArchTable::load(table_path());
  return t;
}

std::vector<nlohmann::json> lines(const std::string& out) {
  std::vector<nlohmann::json> v;
  std::istringstream in(out);
  std::string l;
  while (std::getline(in, l))
    if (!l.empty()) v.push_back(nlohmann::json::parse(l));  // throws on invalid UTF-8 or JSON
  return v;
}

bool has(const std::string& text, const std::string& words) { return text.find(words) != std::string::npos; }

std::vector<net::ArchLine> read_lines(const std::string& bytes) {
  std::istringstream in(bytes);
  std::vector<net::ArchLine> out;
  net::read_arch_lines(in, [&](net::ArchLine&& l) { out.push_back(std::move(l)); });
  return out;
}
}  // namespace

// ---- 1. no value is silently reinterpreted -------------------------------------------------

// NASLib's op indices: edges (1,2) (1,3) (1,4) (2,3) (2,4) (3,4), ops skip_connect, none,
// nor_conv_3x3, nor_conv_1x1, avg_pool_3x3. The expected strings were derived by hand from those
// two lists (edge (i,j) is `op~(i-1)` in node j-1's group of the arch string).
TEST(ArchInput, NaslibOpIndicesMapToHandCheckedCells) {
  const std::pair<const char*, const char*> cases[] = {
      {"[4, 0, 3, 1, 4, 3]",
       "|avg_pool_3x3~0|+|skip_connect~0|none~1|+|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_1x1~2|"},
      {"(0, 1, 2, 3, 4, 0)",
       "|skip_connect~0|+|none~0|nor_conv_1x1~1|+|nor_conv_3x3~0|avg_pool_3x3~1|skip_connect~2|"},
      {"[2,2,2,2,2,2]",
       "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"},
      {"[1 1 1 1 1 1]", "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"},
      // Only edge (1,4) (input -> output) is a conv: NASLib index 2 is arch-string gene 3.
      {"[1, 1, 2, 1, 1, 1]", "|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|"},
      // Only edge (2,3) is a 1x1 conv: NASLib index 3 is arch-string gene 2.
      {"[1, 1, 1, 3, 1, 1]", "|none~0|+|none~0|nor_conv_1x1~1|+|none~0|none~1|none~2|"},
  };
  for (const auto& [in, want] : cases) {
    const auto r = net::parse_arch_input(in, &table());
    EXPECT_EQ(net::arch_string(r.arch), want) << in;
    EXPECT_EQ(r.index, table().index_of(r.arch)) << in;
  }
}

TEST(ArchInput, NaslibOneHotListsMapLikeTheirOpIndices) {
  // [0, 1, 2, 3, 4, 0] one-hot, as Python lists and as numpy prints floats.
  const std::string ints = "[1,0,0,0,0, 0,1,0,0,0, 0,0,1,0,0, 0,0,0,1,0, 0,0,0,0,1, 1,0,0,0,0]";
  const std::string floats =
      "[1. 0. 0. 0. 0. 0. 1. 0. 0. 0. 0. 0. 1. 0. 0. 0. 0. 0. 1. 0. 0. 0. 0. 0. 1. 1. 0. 0. 0. 0.]";
  const auto want = net::parse_arch_input("[0, 1, 2, 3, 4, 0]", nullptr).arch;
  EXPECT_EQ(net::parse_arch_input(ints, nullptr).arch, want);
  EXPECT_EQ(net::parse_arch_input(floats, nullptr).arch, want);
}

TEST(ArchInput, AnythingElseIsRefusedNamingTheFormats) {
  const char* bad[] = {"[5, 0, 0, 0, 0, 0]", "[1, 2]", "[4, 0, 3, 1, 4", "[0.5, 0, 0, 0, 0, 0]",
                       "[4,,,0,3,1,4,3]", "[,4 0 3 1 4 3,]", "[04, 0, 3, 1, 4, 3]", "[4, 0, 3, 1, 4, 3,]",
                       "[4 0, 3 1 4 3]",
                       "[1,1,0,0,0, 0,1,0,0,0, 0,0,1,0,0, 0,0,0,1,0, 0,0,0,0,1, 1,0,0,0,0]",
                       "nor_conv_3x3", "{\"arch\": 1}", "", "   ", "6111.0", "0x10", "1e3"};
  for (const char* b : bad) {
    try {
      net::parse_arch_input(b, &table());
      ADD_FAILURE() << "accepted '" << b << "'";
    } catch (const net::ArchInputError& e) {
      EXPECT_TRUE(has(e.what(), "NASLib op indices") || has(e.what(), "NB201 index")) << e.what();
    }
  }
}

TEST(ArchInput, IndicesSayWhatIsWrongWithTheNumber) {
  auto err = [](const std::string& s, const net::ArchTable* t) {
    try {
      net::parse_arch_input(s, t);
    } catch (const net::ArchInputError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_TRUE(has(err("-1", &table()), "NB201 index -1 is negative")) << err("-1", &table());
  EXPECT_TRUE(has(err("15625", &table()), "out of range")) << err("15625", &table());
  EXPECT_TRUE(has(err("99999999999999999999", &table()), "out of range"));
  EXPECT_TRUE(has(err("17", nullptr), "needs the NB201 table"));
  EXPECT_EQ(net::parse_arch_input("0017", &table()).index, 17);  // decimal, never octal
  EXPECT_TRUE(has(err("+0017", &table()), "without a sign"));
  EXPECT_TRUE(has(err("-0", &table()), "negative"));
}

TEST(Cli, BracketedArchitecturesAreOneArchitectureNeverAList) {
  auto r = run_cli("score --arch '[4, 0, 3, 1, 4, 3]'" + kQuick + data());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto recs = lines(r.out);
  ASSERT_EQ(recs.size(), 1u) << r.out;
  EXPECT_EQ(recs[0]["arch"],
            "|avg_pool_3x3~0|+|skip_connect~0|none~1|+|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_1x1~2|");
  r = run_cli("score --arch '[0,0,0,0,1, 1,0,0,0,0, 0,0,0,1,0, 0,0,1,0,0, 0,1,0,0,0, 1,0,0,0,0]'" + kQuick + data());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(lines(r.out).size(), 1u) << r.out;
  // Through --archs and stdin too, and --index takes only indices.
  r = run_cli("score --archs -" + kQuick + data(), "[4, 0, 3, 1, 4, 3]\n(2,2,2,2,2,2)\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(lines(r.out).size(), 2u);
  r = run_cli("score --index -1 --index '[1,2,3,4,0,1]'" + kQuick + data());
  EXPECT_EQ(r.exit_code, 1);
  recs = lines(r.out);
  ASSERT_EQ(recs.size(), 2u) << r.out;
  EXPECT_TRUE(has(recs[0]["error"], "NB201 index -1 is negative")) << recs[0];
  EXPECT_TRUE(has(recs[1]["error"], "is not an NB201 index")) << recs[1];
}

// ---- 2. bytes that are not clean UTF-8 text --------------------------------------------------

TEST(ArchLines, BomCrlfCommentsAndBadBytes) {
  using namespace std::string_literals;  // the text holds NUL bytes
  const auto l = read_lines("\xEF\xBB\xBF" "6111\r\n# whole-line comment\n\n  17  # why this one\n"
                            "61\xE9" "11\n\x00\x01\x02 binary\n|none~0|\n"s);
  ASSERT_EQ(l.size(), 5u);
  EXPECT_EQ(l[0].text, "6111");
  EXPECT_TRUE(l[0].error.empty());
  EXPECT_EQ(l[1].text, "17");
  EXPECT_EQ(l[1].line, 4);
  EXPECT_TRUE(has(l[2].error, "line 5 is not UTF-8 text"));
  EXPECT_EQ(l[2].text, "61\\xE911");
  EXPECT_TRUE(has(l[3].error, "line 6"));
  EXPECT_EQ(l[4].text, "|none~0|");
  // A line without a newline at the end of the stream is still read.
  EXPECT_EQ(read_lines("6111").at(0).text, "6111");
}

TEST(ArchLines, AnyBytesGiveValidUtf8EntriesAndOverlongLinesAreErrors) {
  std::mt19937 gen(7);
  for (int trial = 0; trial < 200; ++trial) {
    std::string bytes(1 + gen() % 400, '\0');
    for (auto& b : bytes) b = static_cast<char>(gen() % 256);
    for (const auto& l : read_lines(bytes)) {
      EXPECT_TRUE(net::is_valid_utf8(l.text));
      EXPECT_TRUE(net::is_valid_utf8(l.error));
    }
  }
  const auto l = read_lines(std::string(net::kMaxArchLineBytes + 10, 'x') + "\n6111\n");
  ASSERT_EQ(l.size(), 2u);
  EXPECT_TRUE(has(l[0].error, "longer than"));
  EXPECT_EQ(l[1].text, "6111");
  EXPECT_FALSE(net::is_valid_utf8("\xC0\xAF"));          // overlong
  EXPECT_FALSE(net::is_valid_utf8("\xED\xA0\x80"));      // surrogate
  EXPECT_TRUE(net::is_valid_utf8("caf\xC3\xA9 \xE2\x82\xAC"));
}

TEST(Cli, NonUtf8ListsScoreEveryGoodLine) {
  const auto r = run_cli("score --archs -" + kQuick + data(),
                         "\xEF\xBB\xBF" "6111\n61\xE9" "11\n17 # trailing comment\n");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  const auto recs = lines(r.out);  // every line valid UTF-8 JSON
  ASSERT_EQ(recs.size(), 3u) << r.out;
  EXPECT_EQ(recs[0]["index"], 6111);
  EXPECT_EQ(recs[1]["line"], 2);
  EXPECT_EQ(recs[1]["input"], "61\\xE911");
  EXPECT_EQ(recs[2]["index"], 17);
  // A binary file: error records only, no crash, and the message names the line.
  hn::test::TempDir d;
  std::string bin = hn::test::slurp(hn::test::data_path("cifar10/cifar10_sample.bin")).substr(0, 20000);
  const std::string path = d.write("bin.txt", bin + "\n6111\n");
  const auto b = run_cli("score --archs " + path + kQuick + data());
  EXPECT_EQ(b.exit_code, 1) << b.err;
  const auto brecs = lines(b.out);
  ASSERT_GE(brecs.size(), 2u);
  EXPECT_EQ(brecs.back()["index"], 6111);
  for (size_t i = 0; i + 1 < brecs.size(); ++i) EXPECT_TRUE(brecs[i].contains("error"));
}

TEST(Cli, DirectoriesAndEmptyListsAreErrors) {
  hn::test::TempDir d;
  auto r = run_cli("score --archs " + d.path() + kQuick + data());
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_TRUE(has(r.err, "is a directory")) << r.err;
  r = run_cli("score --archs " + d.write("empty", "") + kQuick + data());
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_TRUE(has(r.err, "names no architecture")) << r.err;
  r = run_cli("score --archs -" + kQuick + data(), "# nothing here\n\n");
  EXPECT_EQ(r.exit_code, 3);
}

// ---- 3. work is never done and then lost -----------------------------------------------------

TEST(Cli, OutputPathsAreCheckedBeforeAnyWork) {
  const std::string missing = "/nonexistent-dir-hybridnas/x.json";
  const std::string search = "search --budget 200 --population 20 --reference-sample 4" + kQuick + data();
  const std::pair<std::string, std::string> cases[] = {
      {search + "--out " + missing, "--out"},
      {search + "--checkpoint " + missing, "--checkpoint"},
      {search + "--cache " + missing, "--cache"},
      {"stats --reference-sample 4" + kQuick + data() + "--out " + missing, "--out"},
      {"bench --warmup 0 --runs 1" + kQuick + "--json " + missing, "--json"},
      {"score --index 1" + kQuick + data() + "--out " + missing, "--out"},
      {"score --index 1" + kQuick + data() + "--cache " + missing, "--cache"},
  };
  for (const auto& [args, option] : cases) {
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = run_cli(args);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(r.exit_code, 3) << args << "\n" << r.err;
    EXPECT_TRUE(has(r.err, option + " '" + missing + "'")) << r.err;
    EXPECT_TRUE(has(r.err, "does not exist")) << r.err;
    EXPECT_FALSE(has(r.err, "found")) << "the search ran: " << r.err;
    EXPECT_LT(s, 20.0) << args;
  }
  hn::test::TempDir d;
  auto r = run_cli("eval --scores " + d.write("s.jsonl", "") + " --out " + d.path());
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_TRUE(has(r.err, "is a directory")) << r.err;
}

TEST(Cli, ScoreRefusesToTruncateAnExistingOutput) {
  hn::test::TempDir d;
  const std::string out = d.write("s.jsonl", "{\"arch\":\"hours of work\"}\n");
  auto r = run_cli("score --index 1" + kQuick + data() + "--out " + out);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(has(r.err, "--resume") && has(r.err, "--force")) << r.err;
  EXPECT_EQ(hn::test::slurp(out), "{\"arch\":\"hours of work\"}\n");
  r = run_cli("score --index 1" + kQuick + data() + "--out " + out + " --force");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(lines(hn::test::slurp(out)).at(0)["index"], 1);
}

TEST(Files, AtomicWritesReplaceWholeFilesAndLeaveNoTemporaries) {
  hn::test::TempDir d;
  const std::string p = d.path() + "/r.json";
  engine::write_file_atomic(p, "first\n");
  engine::write_file_atomic(p, "second, longer\n");
  EXPECT_EQ(hn::test::slurp(p), "second, longer\n");
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(d.path())) files += e.is_regular_file();
  EXPECT_EQ(files, 1);
  EXPECT_THROW(engine::write_file_atomic(d.path() + "/no/such/x", "x"), engine::OutputFileError);
  EXPECT_THROW(engine::check_output_path(d.path(), "--out"), engine::OutputFileError);
  EXPECT_NO_THROW(engine::check_output_path(p, "--out"));
}

TEST(Cli, BenchWritesItsJsonAfterEveryCase) {
  hn::test::TempDir d;
  const auto r = run_cli("bench --warmup 0 --runs 1 --proxies naswot,entropy --gaussian-input --arch 17"
                         " --backend cpu --batch 8 --entropy-batch 4 --entropy-repeats 1 --json " +
                         d.path() + "/b.json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(hn::test::slurp(d.path() + "/b.json"));
  EXPECT_TRUE(j["complete"].get<bool>());
  EXPECT_EQ(j["proxies"].size(), 2u);
}

// ---- 4. results with different meanings never end up in one file ----------------------------

TEST(Cli, ResumeRefusesOutputMadeWithOtherSettings) {
  hn::test::TempDir d;
  const std::string out = d.path() + "/s.jsonl";
  const std::string base = "score --index 1 --index 2 --backend cpu --entropy-batch 4 --entropy-repeats 1 -q" +
                           data() + "--out " + out;
  ASSERT_EQ(run_cli(base + " --batch 8 --proxies naswot").exit_code, 0);
  const std::string before = hn::test::slurp(out);
  const std::pair<std::string, std::string> cases[] = {
      {" --batch 16 --proxies naswot", "batch differs"},
      {" --batch 8 --proxies naswot,ni", "proxies differs"},
      {" --batch 8 --proxies naswot --score-seed 3", "score_seed differs"},
      {" --batch 8 --proxies naswot --image-offset 100", "input differs"},
      {" --batch 8 --proxies naswot --precision fp64", "precision differs"},
  };
  for (const auto& [flags, words] : cases) {
    const auto r = run_cli(base + flags + " --resume --index 3");
    EXPECT_EQ(r.exit_code, 2) << flags;
    EXPECT_TRUE(has(r.err, words)) << r.err;
    EXPECT_EQ(hn::test::slurp(out), before) << flags;  // nothing appended
  }
  const auto same = run_cli(base + " --batch 8 --proxies naswot --resume --index 3");
  ASSERT_EQ(same.exit_code, 0) << same.err;
  EXPECT_EQ(lines(hn::test::slurp(out)).size(), 3u);
  // Without its settings file nothing says what made the records: refused.
  std::filesystem::remove(engine::settings_file_path(out));
  const auto bare = run_cli(base + " --batch 8 --proxies naswot --resume --index 4");
  EXPECT_EQ(bare.exit_code, 3);
  EXPECT_TRUE(has(bare.err, "no settings file")) << bare.err;
}

TEST(Cli, CheckpointOfAnotherSearchNamesTheSetting) {
  hn::test::TempDir d;
  const std::string base = "search --population 8 --reference-sample 4 --generations 2 --checkpoint " +
                           d.path() + "/ck.json" + kQuick + data();
  ASSERT_EQ(run_cli(base + "--budget 40").exit_code, 0);
  auto r = run_cli(base + "--budget 41");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_TRUE(has(r.err, "its budget is 40, this search's is 41")) << r.err;
  r = run_cli(base + "--budget 40 --mutation 0.5");
  EXPECT_TRUE(has(r.err, "its mutation is 0.1, this search's is 0.5")) << r.err;
  r = run_cli(base + "--budget 40 --search-seed 9");
  EXPECT_TRUE(has(r.err, "its search_seed is 0, this search's is 9")) << r.err;
}

// ---- 5. a search does what was asked, or says why not ----------------------------------------

TEST(Cli, SearchBudgetsAndRunsAreCheckedAndEarlyEndsReported) {
  const std::string base = "search --population 8 --reference-sample 4" + kQuick + data();
  for (const char* b : {"0", "-1", "15626", "abc", "1e3"}) {
    const auto r = run_cli(base + "--budget " + b);
    EXPECT_EQ(r.exit_code, 2) << b;
    EXPECT_TRUE(has(r.err, "--budget: must be an integer from 1 to 15625")) << r.err;
  }
  auto r = run_cli(base + "--budget 12");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(has(r.err, "must be more than 12")) << r.err;
  r = run_cli(base + "--runs 0");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(has(r.err, "--runs: must be an integer from 1 to 100000")) << r.err;
  EXPECT_LT(r.err.size(), 200u) << r.err;  // no 309-digit range
  r = run_cli(base + "--budget 200 --generations 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out)["runs"][0];
  EXPECT_EQ(j["stopped"], "generations");
  EXPECT_FALSE(j["budget_spent"].get<bool>());
  EXPECT_TRUE(j.contains("stopped_early"));
  EXPECT_TRUE(has(r.err, "ended before its budget")) << r.err;
  r = run_cli(base + "--budget 30 --strategy rea");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["runs"][0]["evaluations"], 30);
  EXPECT_EQ(nlohmann::json::parse(r.out)["runs"][0]["stopped"], "budget");
}

// ---- 6. files we did not write are not trusted -----------------------------------------------

namespace {
void sql(const std::string& path, const std::string& statements) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  EXPECT_EQ(sqlite3_exec(db, statements.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}
}  // namespace

TEST(ScoreCacheTest, ForeignAndNewerDatabasesAreRefusedUnchanged) {
  hn::test::TempDir d;
  const std::string foreign = d.path() + "/app.db";
  sql(foreign, "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users VALUES(1, 'a');");
  const std::string own_scores = d.path() + "/own.db";
  sql(own_scores, "CREATE TABLE scores(x INTEGER); PRAGMA application_id = 42;");
  for (const auto& path : {foreign, own_scores}) {
    const std::string before = hn::test::slurp(path);
    try {
      engine::ScoreCache c(path);
      ADD_FAILURE() << path;
    } catch (const engine::CacheError& e) {
      EXPECT_TRUE(has(e.what(), "another program's SQLite database")) << e.what();
    }
    EXPECT_EQ(hn::test::slurp(path), before);  // no table added, journal mode unchanged
    EXPECT_FALSE(std::filesystem::exists(path + "-wal"));
  }
  const auto r = run_cli("score --index 1" + kQuick + data() + "--cache " + foreign);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_TRUE(has(r.err, "another program's")) << r.err;
  // Ours, but from a newer format: refused too.
  const std::string newer = d.path() + "/newer.db";
  { engine::ScoreCache c(newer); }
  sql(newer, "PRAGMA user_version = 99;");
  try {
    engine::ScoreCache c(newer);
    ADD_FAILURE();
  } catch (const engine::CacheError& e) {
    EXPECT_TRUE(has(e.what(), "newer")) << e.what();
  }
}

// A cache written before caches carried an application id (its two tables, the schema name in
// meta) is ours: it opens, serves its rows and is stamped; the same tables with another schema
// name are another program's.
TEST(ScoreCacheTest, CachesFromBeforeTheApplicationIdStillOpen) {
  hn::test::TempDir d;
  const std::string tables =
      "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL); "
      "CREATE TABLE scores(arch INTEGER NOT NULL, proxy TEXT NOT NULL, settings TEXT NOT NULL, "
      "score_seed INTEGER NOT NULL, value REAL NOT NULL, flag TEXT NOT NULL, seconds REAL NOT NULL, "
      "PRIMARY KEY(arch, proxy, settings, score_seed)) WITHOUT ROWID; ";
  const std::string old = d.path() + "/old.db";
  sql(old, tables + "INSERT INTO meta VALUES('schema', 'hybridnas-score-cache-1'); "
                    "INSERT INTO scores VALUES(15624, 'naswot', 'k', 0, 1.5, '', 0.1);");
  {
    engine::ScoreCache c(old);
    const auto v = c.get({15624, Proxy::kNaswot, "k", 0});
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(v->value, 1.5);
  }
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(old.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* q = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA application_id", -1, &q, nullptr), SQLITE_OK);
    ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
    EXPECT_EQ(sqlite3_column_int64(q, 0), 0x686E6173);  // "hnas"
    sqlite3_finalize(q);
    sqlite3_close(db);
  }
  const std::string other = d.path() + "/other.db";
  sql(other, tables + "INSERT INTO meta VALUES('schema', 'someone-else');");
  EXPECT_THROW(engine::ScoreCache c(other), engine::CacheError);
}

// Processes that open one new cache at the same moment all open it and keep every row they write.
// SQLite answers "database is locked" without waiting when a connection switching the file to WAL
// would deadlock with another (the busy handler is not called then); the cache retries that case.
TEST(ScoreCacheTest, ProcessesOpeningOneNewCacheAtOnceAllSucceed) {
  constexpr int kProcesses = 6, kRounds = 15;
  for (int round = 0; round < kRounds; ++round) {
    hn::test::TempDir d;
    const std::string path = d.path() + "/c.db";
    int gate[2];
    ASSERT_EQ(::pipe(gate), 0);
    std::vector<pid_t> kids;
    for (int k = 0; k < kProcesses; ++k) {
      const pid_t pid = ::fork();
      ASSERT_GE(pid, 0);
      if (pid == 0) {
        ::close(gate[1]);
        char c;
        (void)!::read(gate[0], &c, 1);  // returns when the parent closes the pipe: all start together
        int code = 0;
        try {
          engine::ScoreCache c(path);
          c.put({{{15624 - k, Proxy::kNaswot, "k", 0}, engine::ProxyValue{1.0 + k, "", 0.1}}});
        } catch (const std::exception& e) {
          std::fprintf(stderr, "process %d: %s\n", k, e.what());
          code = 1;
        }
        std::fflush(stderr);
        ::_exit(code);
      }
      kids.push_back(pid);
    }
    ::close(gate[0]);
    ::close(gate[1]);
    for (pid_t pid : kids) {
      int status = 0;
      ASSERT_EQ(::waitpid(pid, &status, 0), pid);
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "round " << round;
    }
    engine::ScoreCache c(path);
    EXPECT_EQ(c.size(), kProcesses) << "round " << round;
    for (int k = 0; k < kProcesses; ++k) {
      const auto v = c.get({15624 - k, Proxy::kNaswot, "k", 0});
      ASSERT_TRUE(v.has_value()) << "round " << round << ", process " << k;
      EXPECT_EQ(v->value, 1.0 + k);
    }
  }
}

TEST(ScoreCacheTest, RowsReadBackAreValidated) {
  hn::test::TempDir d;
  const std::string path = d.path() + "/c.db";
  {
    engine::ScoreCache c(path);
    c.put({{{15624, Proxy::kNaswot, "k", 0}, engine::ProxyValue{1.5, "", 0.1}},
           {{15623, Proxy::kNaswot, "k", 0}, engine::ProxyValue{2.5, "", 0.1}}});
    EXPECT_EQ(c.get({15624, Proxy::kNaswot, "k", 0})->value, 1.5);
  }
  for (const char* edit : {"UPDATE scores SET value = 'abc' WHERE arch = 15623",
                           "UPDATE scores SET flag = 'bogus' WHERE arch = 15623",
                           "UPDATE scores SET seconds = -1 WHERE arch = 15623",
                           "UPDATE scores SET value = 9e999, flag = '' WHERE arch = 15623"}) {
    sql(path, std::string("PRAGMA journal_mode=WAL; ") + edit + ";");
    engine::ScoreCache c(path);
    EXPECT_EQ(c.get({15624, Proxy::kNaswot, "k", 0})->value, 1.5);
    try {
      c.get({15623, Proxy::kNaswot, "k", 0});
      ADD_FAILURE() << edit;
    } catch (const engine::CacheError& e) {
      EXPECT_TRUE(has(e.what(), path) && has(e.what(), "invalid row")) << e.what();
    }
    sql(path, "UPDATE scores SET value = 2.5, flag = '', seconds = 0.1 WHERE arch = 15623;");
  }
}

TEST(StatsFile, EveryValueIsValidated) {
  const std::string good =
      R"({"naswot": {"mean": 1.0, "std": 2.0, "n": 50, "settings": "k", "score_seed": 0}})";
  EXPECT_EQ(engine::parse_stats(good, "s").at(Proxy::kNaswot).n, 50);
  const char* bad[] = {
      R"({"nosuchproxy": {"mean": 1.0, "std": 2.0, "n": 50, "settings": "k", "score_seed": 0}})",
      R"({"naswot": {"mean": "1", "std": 2.0, "n": 50, "settings": "k", "score_seed": 0}})",
      R"({"naswot": {"mean": 1.0, "std": 0.0, "n": 50, "settings": "k", "score_seed": 0}})",
      R"({"naswot": {"mean": 1.0, "std": 2.0, "n": 1, "settings": "k", "score_seed": 0}})",
      R"({"naswot": {"mean": 1.0, "std": 2.0, "n": 50, "settings": "k", "score_seed": -1}})",
      R"({"naswot": {"mean": 1.0, "std": 2.0, "n": 50, "settings": 7, "score_seed": 0}})",
      R"({"naswot": {"mean": 1.0, "std": 2.0, "n": 50, "settings": "k", "score_seed": 0, "transform": "exp"}})",
      R"({"naswot": [1, 2]})", R"([])", R"({})", "", "{\"naswot\":"};
  for (const char* b : bad) {
    try {
      engine::parse_stats(b, "stats.json");
      ADD_FAILURE() << b;
    } catch (const std::runtime_error& e) {
      EXPECT_TRUE(has(e.what(), "stats.json")) << e.what();
    }
  }
  // Through the CLI: an exit code for bad data, never an internal error.
  hn::test::TempDir d;
  const auto r = run_cli("score --index 1 --proxies ninaswot --stats " + d.write("s.json", bad[0]) +
                         " --backend cpu --batch 8 -q" + data());
  EXPECT_EQ(r.exit_code, 3) << r.err;
}

TEST(Checkpoint, EveryValueIsValidated) {
  const std::string head = R"({"format": "hybridnas-search-checkpoint-2", "settings": {}, "generation": 1, "stall": 0,)";
  const std::string good = head + R"( "population": [0,1,2,3,4,0], "stats": {}, "archive": [{"arch": 5, "values": {"naswot": [1.5, "", 0.1]}}]})";
  EXPECT_EQ(engine::parse_checkpoint(good, "ck").archive.size(), 1u);
  const std::string bad[] = {
      head + R"( "population": [0,1,2,3,4,7], "stats": {}, "archive": []})",
      head + R"( "population": [0,1,2,3,4], "stats": {}, "archive": []})",
      head + R"( "population": [0,1,2,3,4,0], "stats": {}, "archive": [{"arch": 99999, "values": {}}]})",
      head + R"( "population": [0,1,2,3,4,0], "stats": {}, "archive": [{"arch": 5, "values": {"naswot": ["nan", "", 0]}}]})",
      head + R"( "population": [0,1,2,3,4,0], "stats": {}, "archive": [{"arch": 5, "values": {"naswot": [1, "bogus", 0]}}]})",
      head + R"( "population": [0,1,2,3,4,0], "stats": {}, "archive": [{"arch": 5, "values": {"naswot": ["+inf", "", 0]}}]})",
      head + R"( "population": [0,1,2,3,4,0], "stats": {}, "archive": [{"arch": 5, "values": {}}, {"arch": 5, "values": {}}]})",
      head + R"( "population": [0,1,2,3,4,0], "stats": {"naswot": [1, 0, 5, "k"]}, "archive": []})",
      R"({"format": "hybridnas-search-checkpoint-1", "fingerprint": "x"})",
      R"({"some": "other program"})", "", good.substr(0, good.size() / 2)};
  for (const auto& b : bad) {
    try {
      engine::parse_checkpoint(b, "checkpoint 'ck'");
      ADD_FAILURE() << b;
    } catch (const engine::CheckpointError& e) {
      EXPECT_TRUE(has(e.what(), "checkpoint 'ck'")) << e.what();
    }
  }
}

TEST(ScoreFileTest, ValuesAreValidatedAndCsvIsRead) {
  const std::string arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|";
  const std::string good = "{\"arch\":\"" + arch + "\",\"index\":6111,\"naswot\":1.5,\"ntk\":\"+inf\","
                           "\"flags\":{\"ntk\":\"singular\"},\"seconds\":{\"naswot\":0.1}}\n"
                           "{\"input\":\"x\",\"line\":2,\"error\":\"bad\"}\n";
  auto f = engine::parse_score_file(good + "{\"arch\":\"|nor_co", "s");
  ASSERT_EQ(f.records.size(), 2u);
  EXPECT_TRUE(f.partial_last_line);
  EXPECT_EQ(f.complete_bytes, good.size());
  EXPECT_EQ(f.records[0].score[Proxy::kNaswot]->value, 1.5);
  EXPECT_TRUE(std::isinf(f.records[0].score[Proxy::kNtk]->value));
  EXPECT_TRUE(f.records[1].error_record);
  const std::string bad[] = {
      "{\"arch\":\"" + arch + "\",\"naswot\":\"nan\"}\n",
      "{\"arch\":\"" + arch + "\",\"naswot\":1,\"flags\":{\"naswot\":\"odd\"}}\n",
      "{\"arch\":\"" + arch + "\",\"index\":15625}\n",
      "{\"arch\":\"|bogus~0|\"}\n",
      "{\"arch\":7}\n",
      "[1,2]\n",
      "{\"arch\":\"" + arch + "\",\"naswot\":1,\"seconds\":{\"naswot\":-2}}\n",
      "not json\n",
      "arch,index,naswot,flags,seconds_naswot,error\n" + arch + ",6111,nan,,0.1,\n",
      "arch,index,naswot,flags,seconds_naswot,error\n" + arch + ",6111,1.5,,0.1\n",
      "arch,index,bogus,flags,seconds_bogus,error\n"};
  for (const auto& b : bad) EXPECT_THROW(engine::parse_score_file(b, "s"), engine::ScoreFileError) << b;
  const auto csv = engine::parse_score_file(
      "arch,index,naswot,ntk,flags,seconds_naswot,seconds_ntk,error\n" + arch +
          ",6111,1.5,inf,ntk:singular,0.1,0.2,\n\"[1, 2]\",,,,,,,\"a, \"\"quoted\"\" error\"\n",
      "s.csv");
  ASSERT_EQ(csv.records.size(), 2u);
  EXPECT_EQ(csv.format, engine::ScoreFormat::kCsv);
  EXPECT_EQ(csv.records[0].score[Proxy::kNtk]->flag, "singular");
  EXPECT_TRUE(csv.records[1].error_record);
}

// ---- 7. numbers at the edges -------------------------------------------------------------------

TEST(Cli, EveryNumericOptionIsRangeCheckedAtBothEnds) {
  const std::string score = "score --index 1 --backend cpu --proxies naswot -q --gaussian-input ";
  const std::string search = "search --backend cpu --proxies naswot -q --gaussian-input --batch 8 ";
  const std::string bench = "bench --backend cpu --proxies naswot --warmup 0 --runs 1 --batch 8 ";
  const std::pair<std::string, std::string> cases[] = {
      {score + "--batch 1", "--batch"}, {score + "--batch 4097", "--batch"},
      {score + "--batch 99999999999999999999", "--batch"}, {score + "--batch -1", "--batch"},
      {score + "--entropy-batch 0", "--entropy-batch"}, {score + "--entropy-repeats 1001", "--entropy-repeats"},
      {score + "--num-classes 0", "--num-classes"}, {score + "--num-classes 1001", "--num-classes"},
      {score + "--score-seed -1", "--score-seed"}, {score + "--score-seed 18446744073709551616", "--score-seed"},
      {score + "--image-offset -1", "--image-offset"}, {score + "--image-offset 9223372036854775807", "--image-offset"},
      {score + "--threads -1", "--threads"}, {score + "--device 1024", "--device"},
      {score + "--gpu-streams 65", "--gpu-streams"}, {score + "--gpu-streams 0", "--gpu-streams"},
      {score + "--reference-sample 1", "--reference-sample"}, {score + "--search-seed -5", "--search-seed"},
      {search + "--population 15626", "--population"}, {search + "--population 3", "--population"},
      {search + "--generations 0", "--generations"}, {search + "--crossover 1.5", "--crossover"},
      {search + "--crossover nan", "--crossover"}, {search + "--mutation -0.1", "--mutation"},
      {search + "--mutation inf", "--mutation"}, {search + "--stall 0", "--stall"},
      {search + "--rea-tournament 0", "--rea-tournament"}, {search + "--reference-sample 15626", "--reference-sample"},
      {search + "--search-seed 18446744073709551615 --runs 2", "--search-seed"},
      {bench + "--repeat-archs 0", "--repeat-archs"}, {bench + "--max-seconds -1", "--max-seconds"},
      {bench + "--runs 0", "--runs"}, {bench + "--warmup -1", "--warmup"},
      {bench + "--repeat-archs 100000 --all", "--repeat-archs"},
  };
  for (const auto& [args, option] : cases) {
    const auto r = run_cli(args);
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.err;
    EXPECT_TRUE(has(r.err, option)) << args << "\n" << r.err;
  }
  // In range for the option, past the data: a data error, computed without overflow.
  const auto r = run_cli("score --index 1 --backend cpu --proxies naswot -q --batch 8 --image-offset "
                         "4611686018427387903" + data());
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_TRUE(has(r.err, "requested but")) << r.err;
  net::CifarReader reader(hn::test::data_path("cifar10/cifar10_sample.bin"), net::DatasetKind::kCifar10);
  EXPECT_THROW(reader.normalized(INT64_MAX, 10), net::DataError);
  EXPECT_THROW(reader.identity(INT64_MAX - 3, 10), net::DataError);
  EXPECT_THROW(reader.normalized(reader.size() - 2, 4), net::DataError);
}

// ---- 8. eval says what it dropped ------------------------------------------------------------

TEST(Cli, EvalReportsMatchedAndDroppedAndRefusesConflicts) {
  hn::test::TempDir d;
  const std::string out = d.path() + "/s.jsonl";
  auto r = run_cli("score --index 1 --index 2 --index 3 --index 6111 --archs -" + kQuick + data() +
                   "--out " + out, "17\nnot-an-arch\n");
  ASSERT_EQ(r.exit_code, 1) << r.err;
  const std::string text = hn::test::slurp(out);
  const auto recs = lines(text);
  // A copy of one record (identical: dropped as a repeat) and a table without index 17's arch.
  std::string csv_table = hn::test::slurp(table_path());
  const std::string arch17 = recs[4]["arch"];
  std::string filtered;
  std::istringstream in(csv_table);
  for (std::string l; std::getline(in, l);)
    if (l.find(arch17) == std::string::npos) filtered += l + "\n";
  const std::string tab = d.write("t.csv", filtered);
  const std::string dup = d.write("dup.jsonl", text + recs[0].dump() + "\n");
  r = run_cli("eval --scores " + dup + " --table " + tab + " --out " + d.path() + "/e.json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(hn::test::slurp(d.path() + "/e.json"));
  EXPECT_EQ(j["architectures"], 4);
  EXPECT_EQ(j["dropped"]["error_records"], 1);
  EXPECT_EQ(j["dropped"]["not_in_table"], 1);
  EXPECT_EQ(j["dropped"]["duplicates"], 1);
  EXPECT_TRUE(has(r.err, "4 architectures matched")) << r.err;
  // Conflicting duplicates: records of different runs mixed in one file.
  nlohmann::json other = recs[0];
  other["naswot"] = other["naswot"].get<double>() + 1.0;
  const std::string mixed = d.write("mixed.jsonl", text + other.dump() + "\n");
  r = run_cli("eval --scores " + mixed);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_TRUE(has(r.err, "different naswot value")) << r.err;
  // CSV output reads the same.
  r = run_cli("score --index 1 --index 2 --index 3 --index 6111" + kQuick + data() + "--format csv --out " +
              d.path() + "/s.csv");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto a = run_cli("eval --scores " + d.path() + "/s.csv");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_TRUE(has(a.out, "naswot")) << a.out;
}

// ---- smaller ones ------------------------------------------------------------------------------

TEST(Cli, AMissingDefaultTableDoesNotBlockArchStrings) {
  const std::string arch = "'|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|'";
  auto r = run_cli("score --arch " + arch + kQuick + data(), "", "HYBRIDNAS_TABLE=/nonexistent.csv");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(lines(r.out).at(0)["index"].is_null());
  r = run_cli("score --index 5" + kQuick + data(), "", "HYBRIDNAS_TABLE=/nonexistent.csv");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(has(lines(r.out).at(0)["error"], "needs the NB201 table")) << r.out;
  // An explicit --table that is missing stays an error.
  r = run_cli("score --arch " + arch + kQuick + data() + "--table /nonexistent.csv");
  EXPECT_EQ(r.exit_code, 3);
}

TEST(Cli, HelpSaysEntropySeedUsesGaussianImages) {
  const auto r = run_cli("score --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(has(r.out, "entropy_seed (always Gaussian")) << r.out;
}

// ---- regressions from a tester's attack on the first version of the above ---------------------

TEST(Cli, EmptyOptionValuesAndUnknownCommandsAreRefused) {
  hn::test::TempDir d;
  auto r = run_cli("score --arch 6111" + kQuick + data() + "--out= --force");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(has(r.err, "--out: an empty value")) << r.err;
  EXPECT_FALSE(std::filesystem::exists("--force"));
  r = run_cli("bogus --arch 1");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(has(r.err, "unknown command 'bogus'")) << r.err;
}

TEST(Cli, LeadingZerosAreDecimalNeverOctal) {
  auto r = run_cli("score --arch 17 --backend cpu --proxies naswot --batch 010 --entropy-batch 4" + data());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.err, "batch 10,")) << r.err;
  r = run_cli("search --population 8 --reference-sample 4 --budget 030" + kQuick + data());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["budget"], 30);
}

TEST(StrictJson, DeepNestingAndDuplicateKeysAreRefused) {
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  EXPECT_THROW(engine::parse_json_strict(deep), std::runtime_error);
  EXPECT_THROW(engine::parse_json_strict(R"({"a": 1, "a": 2})"), std::runtime_error);
  EXPECT_THROW(engine::parse_json_strict(R"({"x": {"a": 1, "b": {"a": 2}, "a": 3}})"), std::runtime_error);
  EXPECT_EQ(engine::parse_json_strict(R"({"x": {"a": 1}, "y": {"a": 2}})")["y"]["a"], 2);
  // A NUL or other control byte is refused, not taken for the end of the text.
  EXPECT_THROW(engine::parse_json_strict(std::string("{\"a\": 1}\0junk", 12)), std::runtime_error);
  EXPECT_THROW(engine::parse_json_strict("{\"a\":\x01 1}"), std::runtime_error);
  EXPECT_EQ(engine::parse_json_strict("{\"a\":\t1}\r\n")["a"], 1);
  // The parser's own message quotes what it last read: half of a UTF-8 sequence must not leak
  // into ours (found by fuzz_score_file).
  try {
    engine::parse_json_strict("{\"s\": 1.5\xEF\xBB\xBF}");
    ADD_FAILURE();
  } catch (const std::runtime_error& e) {
    EXPECT_TRUE(net::is_valid_utf8(e.what())) << e.what();
  }
  const std::string arch = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|avg_pool_3x3~2|";
  const std::string flags = "{\"arch\":\"" + arch + "\",\"naswot\":1,\"flags\":" + std::string(150000, '[') +
                            std::string(150000, ']') + "}\n";
  EXPECT_THROW(engine::parse_score_file(flags, "s"), engine::ScoreFileError);
  EXPECT_THROW(engine::parse_stats("{\"naswot\":" + deep + "}", "s"), std::runtime_error);
  EXPECT_THROW(engine::parse_checkpoint(R"({"format": "hybridnas-search-checkpoint-2", "settings": {"x": )" + deep + "}}",
                                        "ck"),
               engine::CheckpointError);
  EXPECT_THROW(engine::parse_score_file("{\"arch\":\"" + arch + "\",\"naswot\":1,\"naswot\":2}\n", "s"),
               engine::ScoreFileError);
}

TEST(Cli, CheckpointsWithoutTheirArchiveOrStatisticsAreErrorsNotCrashes) {
  hn::test::TempDir d;
  const std::string ck = d.path() + "/ck.json";
  const std::string args = "search --proxies naswot,ni --budget 40 --population 8 --reference-sample 4 "
                           "--generations 2 --backend cpu --batch 8 -q" + data() + "--checkpoint " + ck;
  ASSERT_EQ(run_cli(args).exit_code, 0);
  auto j = nlohmann::json::parse(hn::test::slurp(ck));
  for (const char* what : {"archive", "stats"}) {
    auto k = j;
    k[what] = std::string(what) == "archive" ? nlohmann::json::array() : nlohmann::json::object();
    d.write("ck.json", k.dump());
    const auto r = run_cli(args);
    EXPECT_EQ(r.exit_code, 3) << what << ": " << r.err;
    EXPECT_TRUE(has(r.err, "checkpoint")) << r.err;
  }
}

TEST(Cli, InvalidCacheRowsAreDataErrorsInEveryCommand) {
  hn::test::TempDir d;
  const std::string db = d.path() + "/c.db";
  ASSERT_EQ(run_cli("score --index 17" + kQuick + data() + "--cache " + db).exit_code, 0);
  sql(db, "UPDATE scores SET flag = 'weird';");
  auto r = run_cli("score --index 17" + kQuick + data() + "--cache " + db);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_TRUE(has(r.err, "invalid row")) << r.err;
  // A degenerate flag on a cell that is not degenerate is out of range too.
  sql(db, "UPDATE scores SET flag = 'degenerate', value = 9e999;");
  r = run_cli("score --index 17" + kQuick + data() + "--cache " + db);
  EXPECT_EQ(r.exit_code, 3) << r.err;
}

TEST(ScoreCacheTest, ForeignFilesAreInspectedReadOnly) {
  hn::test::TempDir d;
  // Another program's WAL database with uncheckpointed changes: the WAL must survive.
  const std::string wal = d.path() + "/w.db";
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(wal.c_str(), &db), SQLITE_OK);
    sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0; CREATE TABLE t(x); INSERT INTO t VALUES(1);",
                 nullptr, nullptr, nullptr);
    const std::string main_before = hn::test::slurp(wal), wal_before = hn::test::slurp(wal + "-wal");
    ASSERT_FALSE(wal_before.empty());
    EXPECT_THROW(engine::ScoreCache c(wal), engine::CacheError);
    EXPECT_EQ(hn::test::slurp(wal), main_before);
    EXPECT_EQ(hn::test::slurp(wal + "-wal"), wal_before);
    sqlite3_close(db);
  }
  // No tables but a view, or a user_version of its own: not an empty database to take over.
  sql(d.path() + "/v.db", "CREATE VIEW v AS SELECT 1;");
  sql(d.path() + "/u.db", "PRAGMA user_version = 42; CREATE TABLE x(y); DROP TABLE x;");
  for (const char* f : {"/v.db", "/u.db"}) {
    const std::string before = hn::test::slurp(d.path() + f);
    EXPECT_THROW(engine::ScoreCache c(d.path() + f), engine::CacheError) << f;
    EXPECT_EQ(hn::test::slurp(d.path() + f), before) << f;
  }
  d.write("text.db", "not a database at all, but long enough to have a header.........");
  EXPECT_THROW(engine::ScoreCache c(d.path() + "/text.db"), engine::CacheError);
  // A new, empty file is taken.
  d.write("empty.db", "");
  EXPECT_NO_THROW(engine::ScoreCache c(d.path() + "/empty.db"));
}

// A cache path is a file name, never an SQLite URI or ":memory:" (the system SQLite reads names
// that begin with "file:" as URIs): "file:other.db" is a new file of that name, not another
// program's other.db written into; ":memory:" keeps its rows in a file called that.
TEST(ScoreCacheTest, CachePathsAreFileNamesNeverSqliteUris) {
  hn::test::TempDir d;
  struct Cwd {
    std::filesystem::path was = std::filesystem::current_path();
    ~Cwd() { std::filesystem::current_path(was); }
  } restore;
  std::filesystem::current_path(d.path());
  sql("other.db", "CREATE TABLE users(name TEXT); INSERT INTO users VALUES('alice');");
  const std::string before = hn::test::slurp("other.db");
  const engine::ScoreCache::Key key{15624, Proxy::kNaswot, "k", 0};
  for (const std::string name : {"file:other.db", ":memory:", "file:x.db?mode=memory"}) {
    {
      engine::ScoreCache c(name);
      c.put({{key, engine::ProxyValue{1.5, "", 0.1}}});
    }
    EXPECT_TRUE(std::filesystem::is_regular_file(name)) << name;
    engine::ScoreCache again(name);
    ASSERT_TRUE(again.get(key).has_value()) << name << ": the rows were not kept";
    EXPECT_EQ(again.get(key)->value, 1.5);
  }
  EXPECT_EQ(hn::test::slurp("other.db"), before) << "another program's database was written";
  EXPECT_THROW(engine::ScoreCache c("other.db"), engine::CacheError);
}

TEST(Cli, OutputsThatAreNotRegularFilesAreRefusedAndLinksWrittenThrough) {
  hn::test::TempDir d;
  const std::string fifo = d.path() + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  const std::string search = "search --strategy random --population 8 --reference-sample 4 --budget 12" + kQuick + data();
  const std::string ga = "search --strategy ga --population 8 --reference-sample 4 --budget 30" + kQuick + data();
  for (const std::string& args : {search + "--out " + fifo, search + "--out /dev/null",
                                  ga + "--checkpoint " + fifo,
                                  "score --index 1" + kQuick + data() + "--out " + fifo + " --resume",
                                  "stats --reference-sample 4" + kQuick + data() + "--out " + fifo}) {
    const auto r = run_cli(args);
    EXPECT_EQ(r.exit_code, 3) << args << "\n" << r.err;
    EXPECT_TRUE(has(r.err, "not a regular file")) << r.err;
  }
  std::filesystem::create_directory(d.path() + "/real");
  d.write("real/target.json", "old");
  std::filesystem::create_symlink(d.path() + "/real/target.json", d.path() + "/link.json");
  const auto r = run_cli(search + "--out " + d.path() + "/link.json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::filesystem::is_symlink(d.path() + "/link.json"));
  EXPECT_TRUE(nlohmann::json::parse(hn::test::slurp(d.path() + "/real/target.json")).contains("runs"));
}

TEST(Cli, TwoOptionsNamingOneFileAreRefused) {
  hn::test::TempDir d;
  const std::string scores = d.write("s.jsonl", "");
  auto r = run_cli("eval --scores " + scores + " --out " + scores);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(has(r.err, "--scores and --out name the same file")) << r.err;
  // bench --json over its own architecture list (it used to replace it).
  const std::string list = d.write("list.txt", "6111\n");
  r = run_cli("bench --archs " + list + " --proxies naswot --batch 2 --runs 1 -q --json " + list + data());
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(has(r.err, "name the same file")) << r.err;
  EXPECT_EQ(hn::test::slurp(list), "6111\n");
  r = run_cli("score --index 1" + kQuick + data() + "--cache " + d.path() + "/c.db --out " + d.path() +
              "/./c.db --force");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  r = run_cli("search --population 8 --reference-sample 4 --budget 30" + kQuick + data() + "--checkpoint " +
              d.path() + "/k.json --out " + d.path() + "/k.json");
  EXPECT_EQ(r.exit_code, 2) << r.err;
}

TEST(Cli, EveryOutputNameIsCheckedBeforeWork) {
  hn::test::TempDir d;
  std::filesystem::create_directory(d.path() + "/s.jsonl.settings.json");
  auto r = run_cli("score --index 1" + kQuick + data() + "--out " + d.path() + "/s.jsonl");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_TRUE(has(r.err, "settings file")) << r.err;
  const std::string long_name = d.path() + "/" + std::string(250, 'n');
  r = run_cli("stats --reference-sample 4" + kQuick + data() + "--out " + long_name);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_TRUE(has(r.err, "too long")) << r.err;
  std::filesystem::create_directory(d.path() + "/rr.seed1");
  r = run_cli("search --runs 2 --population 8 --reference-sample 4 --budget 30" + kQuick + data() + "--checkpoint " +
              d.path() + "/rr");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_TRUE(has(r.err, "rr.seed1")) << r.err;
  EXPECT_FALSE(has(r.err, "found")) << r.err;
}

TEST(Cli, ResumeIsRefusedBeforeTheReferenceSampleAndNamesTheOption) {
  hn::test::TempDir d;
  const std::string out = d.path() + "/s.jsonl";
  const std::string base = "score --index 7 --backend cpu --proxies naswot,ni,ninaswot -q --reference-sample 4" + data() +
                           "--out " + out;
  ASSERT_EQ(run_cli(base + " --batch 8").exit_code, 0);
  auto r = run_cli(base + " --batch 8 --score-seed 1 --resume");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(has(r.err, "score_seed differs")) << r.err;
  r = run_cli(base + " --batch 8 --num-classes 5 --resume");
  EXPECT_TRUE(has(r.err, "num_classes differs")) << r.err;
  const auto t0 = std::chrono::steady_clock::now();
  r = run_cli("score --index 7 --backend cpu --proxies naswot,ni,ninaswot -q --reference-sample 2000 --batch 16" +
              data() + "--out " + out + " --resume");
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 20.0);
  EXPECT_TRUE(has(r.err, "batch differs")) << r.err;
}

TEST(Cli, ResumeWritesEachErrorRecordOnce) {
  hn::test::TempDir d;
  const std::string out = d.path() + "/s.jsonl";
  const std::string list = d.write("l.txt", "17\nbogus\n18\n");
  const std::string args = "score --archs " + list + kQuick + data() + "--out " + out;
  EXPECT_EQ(run_cli(args).exit_code, 1);
  EXPECT_EQ(run_cli(args + " --resume").exit_code, 1);
  EXPECT_EQ(run_cli(args + " --resume").exit_code, 1);
  const auto recs = lines(hn::test::slurp(out));
  EXPECT_EQ(recs.size(), 3u);
}

TEST(Cli, AnOutputBeingWrittenIsNotWrittenBySecondProcess) {
  hn::test::TempDir d;
  const std::string out = d.write("s.jsonl", "");
  const int fd = ::open(out.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX), 0);  // as a running `score --out` holds it
  const auto r = run_cli("score --index 1" + kQuick + data() + "--out " + out + " --force");
  ::close(fd);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_TRUE(has(r.err, "being written by another")) << r.err;
}

TEST(Cli, CheckpointRecordsTheStatisticsItWasMadeWith) {
  hn::test::TempDir d;
  const std::string common = kQuick + data();
  ASSERT_EQ(run_cli("stats --reference-sample 4 --search-seed 1 --preset cpu-quick --out " + d.path() + "/a.json" + common).exit_code, 0);
  ASSERT_EQ(run_cli("stats --reference-sample 4 --search-seed 2 --preset cpu-quick --out " + d.path() + "/b.json" + common).exit_code, 0);
  const std::string search = "search --population 8 --budget 30 --generations 2 --preset cpu-quick --checkpoint " +
                             d.path() + "/ck.json" + common;
  ASSERT_EQ(run_cli(search + "--stats " + d.path() + "/a.json").exit_code, 0);
  const auto r = run_cli(search + "--stats " + d.path() + "/b.json");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_TRUE(has(r.err, "its stats is")) << r.err;
}

TEST(Cli, SearchOptionsThatWouldBeIgnoredAreRefused) {
  const std::string base = "search --population 8 --reference-sample 4" + kQuick + data();
  auto r = run_cli(base + "--strategy exhaustive --budget 30");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(has(r.err, "does not apply to --strategy exhaustive")) << r.err;
  r = run_cli(base + "--dedup-isomorphic --budget 10000");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(has(r.err, "6466 isomorphism classes")) << r.err;
  r = run_cli(base + "--fitness rank --stats /nonexistent.json --budget 30");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(has(r.err, "does not use them")) << r.err;
  r = run_cli("bench --proxies ninaswot --backend cpu --warmup 0 --runs 1 --batch 8");
  EXPECT_EQ(r.exit_code, 2);
  r = run_cli("score --index 1 --backend cpu --proxies entropy --entropy-batch 4 --entropy-repeats 1 -q "
              "--data /nonexistent.bin");
  EXPECT_EQ(r.exit_code, 3) << r.err;
  r = run_cli("score --index 1 --backend cpu --proxies naswot --batch 8 -q --gaussian-input --image-offset 5");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  r = run_cli("stats --arch 5 --arch bogus" + kQuick + data());
  EXPECT_EQ(r.exit_code, 2) << r.err;
}

TEST(ValuesReadBack, OutOfRangeValuesAreRefused) {
  const std::string arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|";
  const std::string degenerate = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|";
  const std::string bad[] = {
      "{\"arch\":\"" + arch + "\",\"naswot\":\"+inf\"}\n",
      "{\"arch\":\"" + arch + "\",\"naswot\":\"-inf\",\"flags\":{\"naswot\":\"degenerate\"}}\n",
      "{\"arch\":\"" + degenerate + "\",\"naswot\":1.5}\n",
      "{\"arch\":\"" + arch + "\",\"index\":18446744073709551615}\n",
      "arch,index,naswot,flags,seconds_naswot,error\n" + arch + ",6111,0x1p7,,0.1,\n",
      "arch,index,naswot,naswot,flags,seconds_naswot,seconds_naswot,error\n",
      "arch,index,naswot,flags,seconds_naswot,error\n" + arch + ",6111,-inf,naswot:singular;naswot:singular,0.1,\n"};
  for (const auto& b : bad) {
    try {
      engine::parse_score_file(b, "s");
      ADD_FAILURE() << b;
    } catch (const engine::ScoreFileError& e) {
      EXPECT_TRUE(net::is_valid_utf8(e.what()));
    }
  }
  EXPECT_TRUE(has([&] {
    try { engine::parse_score_file(bad[3], "s"); } catch (const std::exception& e) { return std::string(e.what()); }
    return std::string();
  }(), "18446744073709551615"));
  // A BOM before a CSV header.
  EXPECT_EQ(engine::parse_score_file("\xEF\xBB\xBF" "arch,index,naswot,flags,seconds_naswot,error\n" + arch +
                                         ",6111,1.5,,0.1,\n", "s").format,
            engine::ScoreFormat::kCsv);
  EXPECT_THROW(engine::parse_stats(R"({"naswot": {"mean": 1, "std": 1e-320, "n": 5, "settings": "k", "score_seed": 0}})", "s"),
               std::runtime_error);
  hn::test::TempDir d;
  const std::string t = d.write("t.csv", "arch_index,arch_str,acc\n0," + arch + ",0x5A\n");
  EXPECT_THROW(net::ArchTable::load(t), std::runtime_error);
  const std::string t2 = d.write("t2.csv", "arch_index,arch_str,cifar10_test\n0," + arch + ",-5\n");
  const auto r = run_cli("eval --scores " + d.write("s.jsonl", "") + " --table " + t2);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_TRUE(has(r.err, "not an accuracy")) << r.err;
}

TEST(ArchInput, MessagesAreValidUtf8WhateverTheBytes) {
  try {
    net::parse_arch_input("|none~0|\xc3\xa9", nullptr);
    ADD_FAILURE();
  } catch (const net::ArchInputError& e) {
    EXPECT_TRUE(net::is_valid_utf8(e.what())) << e.what();
  }
  EXPECT_EQ(net::printable("a\xEF\xBB\xBF" "b"), "a\\xEF\\xBB\\xBFb");  // an invisible mid-text BOM
}
