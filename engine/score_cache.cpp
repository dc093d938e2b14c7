#include "engine/score_cache.hpp"

#include <sqlite3.h>

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <thread>

#include "engine/score_file.hpp"
#include "net/nb201.hpp"

namespace hn::engine {

namespace {
constexpr const char* kSchema = "hybridnas-score-cache-1";
// PRAGMA application_id of our databases ("hnas") and their format (PRAGMA user_version).
constexpr int64_t kApplicationId = 0x686E6173;
constexpr int64_t kFormatVersion = 1;

// SQLITE_BUSY or SQLITE_LOCKED (any extended code): another connection holds a lock. Thrown as
// its own type so that opening the cache can retry it.
struct BusyError : CacheError {
  using CacheError::CacheError;
};

bool busy_code(int rc) { return (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED; }

// Throws the error of a failed SQLite call with result code rc: BusyError or CacheError.
[[noreturn]] void throw_sqlite_error(int rc, const std::string& what) {
  if (busy_code(rc)) throw BusyError(what);
  throw CacheError(what);
}

constexpr int kBusyTimeoutMs = 120000;  // how long any statement waits for other processes' locks

struct Stmt {
  sqlite3_stmt* s = nullptr;
  Stmt(sqlite3* db, const char* sql, const std::string& path) {
    const int rc = sqlite3_prepare_v2(db, sql, -1, &s, nullptr);
    if (rc != SQLITE_OK) throw_sqlite_error(rc, "score cache '" + path + "': " + sqlite3_errmsg(db));
  }
  ~Stmt() { sqlite3_finalize(s); }
};

// The name SQLite opens for a path: always the file of that name. SQLite reads names that begin
// with "file:" as URIs (this library is built with URI names on) and ":memory:" as no file at all;
// "./" before a relative path keeps them plain files.
std::string literal_file_name(const std::string& path) { return path.empty() || path[0] == '/' ? path : "./" + path; }

// Runs f again while it throws BusyError, for up to the busy timeout (then the BusyError goes
// out): for steps where SQLite answers SQLITE_BUSY without calling the busy handler.
template <class F>
auto retry_while_busy(F&& f) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kBusyTimeoutMs);
  for (int attempt = 1;; ++attempt) {
    try {
      return f();
    } catch (const BusyError&) {
      if (std::chrono::steady_clock::now() > deadline) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(attempt, 50)));
    }
  }
}
}  // namespace

void ScoreCache::exec(const char* sql) const {
  char* err = nullptr;
  const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    const std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    throw_sqlite_error(rc, "score cache '" + path_ + "': " + msg);
  }
}

namespace {
// What a file is, found without changing it: a read-only connection never rolls back a hot
// journal, checkpoints or deletes a WAL file, or writes the database.
struct Identity {
  int64_t app_id = 0, version = 0;
  std::vector<std::string> objects;  // every schema object: "type name"
  bool legacy_schema = false;        // meta.schema holds our old schema name
};

Identity inspect(const std::string& path) {
  sqlite3* db = nullptr;
  auto fail = [&](const std::string& why) {  // throws; BusyError where another process holds a lock
    const bool busy = db && busy_code(sqlite3_extended_errcode(db));
    const std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    throw_sqlite_error(busy ? SQLITE_BUSY : SQLITE_ERROR, "'" + path + "' is not a usable hybridnas score cache (" +
                                                            why + ": " + msg + "); it was left unchanged");
  };
  if (sqlite3_open_v2(literal_file_name(path).c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK)
    fail("cannot open it read-only");
  sqlite3_busy_timeout(db, kBusyTimeoutMs);  // another process may be creating or writing it
  Identity id;
  // One read transaction: the identity and the schema from one snapshot, never half of another
  // process's set-up.
  if (sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr) != SQLITE_OK) fail("cannot read it");
  auto one_int = [&](const char* sql) {
    sqlite3_stmt* q = nullptr;
    if (sqlite3_prepare_v2(db, sql, -1, &q, nullptr) != SQLITE_OK || sqlite3_step(q) != SQLITE_ROW) {
      sqlite3_finalize(q);
      fail("not a readable SQLite database");
    }
    const int64_t v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return v;
  };
  id.app_id = one_int("PRAGMA application_id");
  id.version = one_int("PRAGMA user_version");
  sqlite3_stmt* q = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT type || ' ' || name FROM sqlite_master ORDER BY type, name", -1, &q,
                         nullptr) != SQLITE_OK)
    fail("cannot read its schema");
  int rc;
  while ((rc = sqlite3_step(q)) == SQLITE_ROW)
    id.objects.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(q, 0)));
  sqlite3_finalize(q);
  if (rc != SQLITE_DONE) fail("cannot read its schema");
  // A cache written before the application id: our two tables (and meta's primary-key index).
  if (id.objects == std::vector<std::string>{"index sqlite_autoindex_meta_1", "table meta", "table scores"} &&
      id.app_id == 0 && id.version == 0) {
    if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'schema'", -1, &q, nullptr) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW && sqlite3_column_type(q, 0) == SQLITE_TEXT)
      id.legacy_schema = std::string(reinterpret_cast<const char*>(sqlite3_column_text(q, 0))) == kSchema;
    sqlite3_finalize(q);
  }
  sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  return id;
}
}  // namespace

ScoreCache::ScoreCache(const std::string& path) : path_(path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) == 0) {
    if (!S_ISREG(st.st_mode))
      throw CacheError("score cache '" + path + "' is not a regular file");
    if (st.st_size > 0) {
      // Not even SQLite: refused before SQLite opens it.
      char head[16] = {};
      std::FILE* f = std::fopen(path.c_str(), "rb");
      const size_t got = f ? std::fread(head, 1, sizeof head, f) : 0;
      if (f) std::fclose(f);
      if (got < sizeof head || std::memcmp(head, "SQLite format 3", 16) != 0)
        throw CacheError("'" + path + "' is not a SQLite database, so not a hybridnas score cache; it was "
                         "left unchanged. Give --cache a new file");
      const Identity id = retry_while_busy([&] { return inspect(path); });
      const bool ours = id.app_id == kApplicationId;
      const bool empty = id.objects.empty() && id.app_id == 0 && id.version == 0;
      if (!ours && !empty && !id.legacy_schema) {
        std::string list;
        for (const auto& o : id.objects) list += (list.empty() ? "" : ", ") + o;
        throw CacheError("'" + path + "' is another program's SQLite database (application_id " +
                         std::to_string(id.app_id) + ", user_version " + std::to_string(id.version) +
                         (list.empty() ? "" : ", " + list) +
                         "), not a hybridnas score cache; it was left unchanged. Give --cache a new file");
      }
      if (ours && id.version > kFormatVersion)
        throw CacheError("score cache '" + path + "' was written by a newer hybridnas (format " +
                         std::to_string(id.version) + "; this one reads " + std::to_string(kFormatVersion) +
                         "); it was left unchanged");
    }
  }
  if (sqlite3_open_v2(literal_file_name(path).c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    const std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw CacheError("cannot open score cache '" + path + "': " + msg);
  }
  sqlite3_busy_timeout(db_, kBusyTimeoutMs);  // other processes may hold the write lock
  // The set-up is idempotent, and retried while another process holds a lock: where waiting could
  // deadlock (this connection reads, then switches the file to WAL while another one does the
  // same), SQLite answers SQLITE_BUSY at once without calling the busy handler, which happens
  // when several processes open one new cache together.
  auto set_up = [&] {
    const int64_t version = query_int("PRAGMA user_version");
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=NORMAL");
    {
      Stmt check(db_, "PRAGMA quick_check", path);
      const int rc = sqlite3_step(check.s);
      if (busy_code(rc)) throw_sqlite_error(rc, "score cache '" + path + "': " + sqlite3_errmsg(db_));
      if (rc != SQLITE_ROW ||
          std::string(reinterpret_cast<const char*>(sqlite3_column_text(check.s, 0))) != "ok")
        throw CacheError("score cache '" + path + "' is corrupt (SQLite quick_check failed)");
    }
    exec("BEGIN IMMEDIATE");
    exec("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)");
    exec("CREATE TABLE IF NOT EXISTS scores(arch INTEGER NOT NULL, proxy TEXT NOT NULL, "
         "settings TEXT NOT NULL, score_seed INTEGER NOT NULL, value REAL NOT NULL, "
         "flag TEXT NOT NULL, seconds REAL NOT NULL, "
         "PRIMARY KEY(arch, proxy, settings, score_seed)) WITHOUT ROWID");
    exec((std::string("INSERT OR IGNORE INTO meta VALUES('schema', '") + kSchema + "')").c_str());
    exec(("PRAGMA application_id = " + std::to_string(kApplicationId)).c_str());
    if (version < kFormatVersion) exec(("PRAGMA user_version = " + std::to_string(kFormatVersion)).c_str());
    exec("COMMIT");
  };
  try {
    retry_while_busy([&] {
      try {
        set_up();
      } catch (const BusyError&) {
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
      }
    });
    Stmt s(db_, "SELECT value FROM meta WHERE key = 'schema'", path);
    if (sqlite3_step(s.s) != SQLITE_ROW || sqlite3_column_type(s.s, 0) != SQLITE_TEXT ||
        std::string(reinterpret_cast<const char*>(sqlite3_column_text(s.s, 0))) != kSchema)
      throw CacheError("score cache '" + path + "' has another schema (expected " + kSchema + ")");
  } catch (const CacheError& e) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(db_);
    db_ = nullptr;
    const std::string what = e.what();
    if (what.find("not a database") != std::string::npos || what.find("malformed") != std::string::npos)
      throw CacheError("'" + path + "' is not a usable hybridnas score cache (" + what + ")");
    throw;
  }
}

int64_t ScoreCache::query_int(const char* sql) const {
  Stmt q(db_, sql, path_);
  const int rc = sqlite3_step(q.s);
  if (rc != SQLITE_ROW) throw_sqlite_error(rc, "score cache '" + path_ + "': " + sqlite3_errmsg(db_));
  return sqlite3_column_int64(q.s, 0);
}

ScoreCache::~ScoreCache() { sqlite3_close(db_); }

std::optional<ProxyValue> ScoreCache::get(const Key& k) const {
  auto m = get_many(k.proxy, k.settings, k.score_seed, {k.arch});
  if (m.empty()) return std::nullopt;
  return m.begin()->second;
}

std::map<int, ProxyValue> ScoreCache::get_many(Proxy p, const std::string& settings,
                                               uint64_t score_seed, const std::vector<int>& archs) const {
  std::map<int, ProxyValue> out;
  // The settings key names a space other than NB201 (engine::settings_key); only NB201 has
  // degenerate cells.
  const bool nb201 = settings.find(";space=") == std::string::npos;
  Stmt s(db_,
         "SELECT value, flag, seconds FROM scores WHERE arch = ? AND proxy = ? AND settings = ? AND score_seed = ?",
         path_);
  for (int a : archs) {
    sqlite3_reset(s.s);
    sqlite3_bind_int(s.s, 1, a);
    sqlite3_bind_text(s.s, 2, proxy_name(p), -1, SQLITE_STATIC);
    sqlite3_bind_text(s.s, 3, settings.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s.s, 4, static_cast<sqlite3_int64>(score_seed));
    const int rc = sqlite3_step(s.s);
    if (rc == SQLITE_ROW) {
      // Every value read back is checked: a cache edited by hand or by another program must
      // not feed NaN, text or unknown flags into a search.
      const int tv = sqlite3_column_type(s.s, 0), tf = sqlite3_column_type(s.s, 1),
                tsec = sqlite3_column_type(s.s, 2);
      ProxyValue v;
      v.value = sqlite3_column_double(s.s, 0);
      v.flag = tf == SQLITE_TEXT ? reinterpret_cast<const char*>(sqlite3_column_text(s.s, 1)) : "?";
      v.seconds = sqlite3_column_double(s.s, 2);
      const bool ok = (tv == SQLITE_FLOAT || tv == SQLITE_INTEGER) && tf == SQLITE_TEXT &&
                      (tsec == SQLITE_FLOAT || tsec == SQLITE_INTEGER) && !std::isnan(v.value) &&
                      (v.flag.empty() || is_known_flag(v.flag)) &&
                      (std::isfinite(v.value) || (!v.flag.empty() && v.value == worst_value(p))) &&
                      (v.flag == kFlagDegenerate) == (nb201 && net::is_degenerate(net::genes_from_code(a))) &&
                      std::isfinite(v.seconds) && v.seconds >= 0;
      if (!ok)
        throw CacheError("score cache '" + path_ + "' holds an invalid row (architecture code " +
                         std::to_string(a) + ", " + proxy_name(p) +
                         "): a value that is not a number, an unknown flag or a bad time; the file was "
                         "modified by something other than hybridnas");
      out[a] = v;
    } else if (rc != SQLITE_DONE) {
      throw CacheError("score cache '" + path_ + "': " + sqlite3_errmsg(db_));
    }
  }
  return out;
}

void ScoreCache::put(const std::vector<std::pair<Key, ProxyValue>>& rows) {
  if (rows.empty()) return;
  exec("BEGIN IMMEDIATE");
  try {
    Stmt s(db_, "INSERT OR REPLACE INTO scores VALUES(?, ?, ?, ?, ?, ?, ?)", path_);
    for (const auto& [k, v] : rows) {
      sqlite3_reset(s.s);
      sqlite3_bind_int(s.s, 1, k.arch);
      sqlite3_bind_text(s.s, 2, proxy_name(k.proxy), -1, SQLITE_STATIC);
      sqlite3_bind_text(s.s, 3, k.settings.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(s.s, 4, static_cast<sqlite3_int64>(k.score_seed));
      sqlite3_bind_double(s.s, 5, v.value);
      sqlite3_bind_text(s.s, 6, v.flag.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_double(s.s, 7, v.seconds);
      if (sqlite3_step(s.s) != SQLITE_DONE)
        throw CacheError("score cache '" + path_ + "': " + sqlite3_errmsg(db_));
    }
    exec("COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

int64_t ScoreCache::size() const {
  Stmt s(db_, "SELECT COUNT(*) FROM scores", path_);
  sqlite3_step(s.s);
  return sqlite3_column_int64(s.s, 0);
}

CachedScorer::CachedScorer(ScoreCache& cache, Factory backend, const ScoreSettings& s,
                           std::string input_identity)
    : cache_(cache), factory_(std::move(backend)), settings_(s), raw_(raw_proxies(s.proxies)) {
  raw_.erase(std::remove(raw_.begin(), raw_.end(), Proxy::kNinaswot), raw_.end());
  for (Proxy p : raw_) keys_.push_back(settings_key(p, s, input_identity));
}

void CachedScorer::score(const std::vector<net::Arch>& archs,
                         const std::function<void(size_t, ArchScore&&)>& done) {
  std::vector<int> codes;
  require_space(archs, settings_.space);
  for (const auto& g : archs) codes.push_back(static_cast<int>(net::arch_code(g)));
  std::vector<std::map<int, ProxyValue>> found;
  for (size_t k = 0; k < raw_.size(); ++k)
    found.push_back(cache_.get_many(raw_[k], keys_[k], settings_.score_seed, codes));
  std::vector<std::optional<ArchScore>> ready(archs.size());
  std::vector<net::Arch> missing;
  std::vector<size_t> missing_at;
  for (size_t i = 0; i < archs.size(); ++i) {
    bool all = true;
    for (const auto& f : found) all = all && f.count(codes[i]);
    if (!all) {
      missing.push_back(archs[i]);
      missing_at.push_back(i);
      continue;
    }
    ArchScore a;
    a.arch = archs[i];
    for (size_t k = 0; k < raw_.size(); ++k) a[raw_[k]] = found[k].at(codes[i]);
    ready[i] = std::move(a);
    ++hits_;
  }
  // Emit in input order: cached ones as soon as everything before them is out.
  size_t next = 0;
  auto flush = [&] {
    for (; next < archs.size() && ready[next]; ++next) done(next, std::move(*ready[next]));
  };
  flush();
  if (missing.empty()) return;
  if (!backend_) backend_ = factory_();
  backend_->score(missing, [&](size_t j, ArchScore&& a) {
    std::vector<std::pair<ScoreCache::Key, ProxyValue>> rows;
    for (size_t k = 0; k < raw_.size(); ++k)
      if (a[raw_[k]])
        rows.push_back({{codes[missing_at[j]], raw_[k], keys_[k], settings_.score_seed}, *a[raw_[k]]});
    cache_.put(rows);
    ++evaluated_;
    ready[missing_at[j]] = std::move(a);
    flush();
  });
  flush();
}

}  // namespace hn::engine
