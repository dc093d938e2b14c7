// Fuzzes the values a valid score cache serves: rows of any SQLite type and content (what a
// cache edited by hand or by another program may hold) are inserted with raw SQLite into a
// fresh hybridnas cache, which engine::ScoreCache then opens and reads with get_many.
// Expected failure: CacheError. Values served must be valid (as in fuzz_cache.cpp).
#include <fuzzer/FuzzedDataProvider.h>
#include <sqlite3.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "engine/score_cache.hpp"
#include "engine/score_file.hpp"
#include "tests/fuzz/fuzz_util.hpp"

using namespace hn;

namespace {

// Binds parameter i to a fuzzed value of a fuzzed SQLite type.
void bind_any(sqlite3_stmt* s, int i, FuzzedDataProvider& in) {
  switch (in.ConsumeIntegralInRange<int>(0, 5)) {
    case 0: sqlite3_bind_double(s, i, in.ConsumeFloatingPoint<double>()); break;
    case 1: sqlite3_bind_int64(s, i, in.ConsumeIntegral<int64_t>()); break;
    case 2: {
      const std::string t = in.ConsumeRandomLengthString(32);
      sqlite3_bind_text(s, i, t.data(), static_cast<int>(t.size()), SQLITE_TRANSIENT);
      break;
    }
    case 3: {
      const std::string b = in.ConsumeRandomLengthString(16);
      sqlite3_bind_blob(s, i, b.data(), static_cast<int>(b.size()), SQLITE_TRANSIENT);
      break;
    }
    case 4: sqlite3_bind_null(s, i); break;
    default: {
      // A known flag, or none: lets values get past the flag check.
      static const char* const kFlags[] = {"", "degenerate", "singular", "ill_conditioned",
                                           "zero_variance", "nonfinite"};
      sqlite3_bind_text(s, i, kFlags[in.ConsumeIntegralInRange<int>(0, 5)], -1, SQLITE_STATIC);
    }
  }
}

// The bytes of a valid, empty hybridnas cache, made once.
const std::string& empty_cache() {
  static const std::string bytes = [] {
    const std::string path = fuzz::scratch_dir() + "/empty.db";
    try {
      engine::ScoreCache fresh(path);
    } catch (const std::exception& e) {
      fuzz::finding(std::string("cannot create a cache: ") + e.what());
    }
    std::ifstream f(path, std::ios::binary);  // closed: the WAL is checkpointed into the file
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }();
  return bytes;
}

const engine::Proxy kProxies[] = {engine::Proxy::kNaswot, engine::Proxy::kNtk};
const char* const kSettings[] = {"s0", "s1"};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const std::string path = fuzz::scratch_dir() + "/rows.db";
  std::error_code ec;
  for (const char* suffix : {"-wal", "-shm"}) std::filesystem::remove(path + suffix, ec);
  fuzz::write_scratch("rows.db", empty_cache());
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) fuzz::finding("raw sqlite3_open failed");
  sqlite3_stmt* ins = nullptr;
  // No type checks beyond the schema's NOT NULL: a row is whatever SQLite stores.
  sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO scores VALUES(?, ?, ?, ?, ?, ?, ?)", -1, &ins, nullptr);
  std::vector<int> archs;
  const int rows = in.ConsumeIntegralInRange<int>(1, 8);
  for (int r = 0; r < rows && ins; ++r) {
    const int arch = in.ConsumeIntegralInRange<int>(0, 3);
    archs.push_back(arch);
    sqlite3_reset(ins);
    sqlite3_bind_int(ins, 1, arch);
    sqlite3_bind_text(ins, 2, engine::proxy_name(kProxies[in.ConsumeIntegralInRange<int>(0, 1)]), -1, SQLITE_STATIC);
    sqlite3_bind_text(ins, 3, kSettings[in.ConsumeIntegralInRange<int>(0, 1)], -1, SQLITE_STATIC);
    sqlite3_bind_int64(ins, 4, in.ConsumeIntegralInRange<int>(0, 1));
    for (int col = 5; col <= 7; ++col) bind_any(ins, col, in);
    sqlite3_step(ins);  // a NOT NULL violation just skips the row
  }
  sqlite3_finalize(ins);
  sqlite3_close(db);
  try {
    engine::ScoreCache cache(path);
    for (const engine::Proxy p : kProxies)
      for (const char* settings : kSettings)
        for (uint64_t seed : {0, 1}) {
          try {
            for (const auto& [arch, v] : cache.get_many(p, settings, seed, {0, 1, 2, 3})) {
              if (std::isnan(v.value)) fuzz::finding("ScoreCache served NaN");
              if (!v.flag.empty() && !engine::is_known_flag(v.flag)) fuzz::finding("ScoreCache served an unknown flag");
              if (!std::isfinite(v.value) && v.flag.empty()) fuzz::finding("ScoreCache served an unflagged infinity");
              if (!std::isfinite(v.seconds) || v.seconds < 0) fuzz::finding("ScoreCache served bad seconds");
            }
          } catch (const engine::CacheError&) {
          }
        }
  } catch (const engine::CacheError&) {
  } catch (const std::exception& e) {
    fuzz::unexpected_exception("ScoreCache", e);
  }
  return 0;
}
