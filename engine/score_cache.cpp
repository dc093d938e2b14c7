#include "engine/score_cache.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <cmath>

#include "engine/score_file.hpp"

namespace hn::engine {

namespace {
constexpr const char* kSchema = "hybridnas-score-cache-1";
// PRAGMA application_id of our databases ("hnas") and their format (PRAGMA user_version).
constexpr int64_t kApplicationId = 0x686E6173;
constexpr int64_t kFormatVersion = 1;

struct Stmt {
  sqlite3_stmt* s = nullptr;
  Stmt(sqlite3* db, const char* sql) {
    if (sqlite3_prepare_v2(db, sql, -1, &s, nullptr) != SQLITE_OK)
      throw CacheError(std::string("score cache: ") + sqlite3_errmsg(db));
  }
  ~Stmt() { sqlite3_finalize(s); }
};
}  // namespace

void ScoreCache::exec(const char* sql) const {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    const std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    throw CacheError("score cache '" + path_ + "': " + msg);
  }
}

ScoreCache::ScoreCache(const std::string& path) : path_(path) {
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK) {
    const std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw CacheError("cannot open score cache '" + path + "': " + msg);
  }
  sqlite3_busy_timeout(db_, 120000);  // other processes may hold the write lock
  try {
    // Identify the file before changing anything in it: only reads until it is known to be ours
    // (or a new, empty database).
    const int64_t app_id = query_int("PRAGMA application_id");  // fails on a file that is not SQLite
    const int64_t version = query_int("PRAGMA user_version");
    std::vector<std::string> tables;
    {
      Stmt t(db_, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name");
      while (sqlite3_step(t.s) == SQLITE_ROW)
        tables.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(t.s, 0)));
    }
    bool legacy = false;
    if (app_id == 0 && tables == std::vector<std::string>{"meta", "scores"}) {
      Stmt m(db_, "SELECT value FROM meta WHERE key = 'schema'");
      legacy = sqlite3_step(m.s) == SQLITE_ROW && sqlite3_column_type(m.s, 0) == SQLITE_TEXT &&
               std::string(reinterpret_cast<const char*>(sqlite3_column_text(m.s, 0))) == kSchema;
    }
    if (app_id != kApplicationId && !(app_id == 0 && (tables.empty() || legacy))) {
      std::string list;
      for (const auto& t : tables) list += (list.empty() ? "" : ", ") + t;
      throw CacheError("'" + path + "' is another program's SQLite database (application_id " +
                       std::to_string(app_id) + (list.empty() ? "" : ", tables " + list) +
                       "), not a hybridnas score cache; it was left unchanged. Give --cache a new file");
    }
    if (app_id == kApplicationId && version > kFormatVersion)
      throw CacheError("score cache '" + path + "' was written by a newer hybridnas (format " +
                       std::to_string(version) + "; this one reads " + std::to_string(kFormatVersion) +
                       "); it was left unchanged");
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=NORMAL");
    {
      Stmt check(db_, "PRAGMA quick_check");
      if (sqlite3_step(check.s) != SQLITE_ROW ||
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
    Stmt s(db_, "SELECT value FROM meta WHERE key = 'schema'");
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
  Stmt q(db_, sql);
  const int rc = sqlite3_step(q.s);
  if (rc != SQLITE_ROW) throw CacheError("score cache '" + path_ + "': " + sqlite3_errmsg(db_));
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
  Stmt s(db_, "SELECT value, flag, seconds FROM scores WHERE arch = ? AND proxy = ? AND "
              "settings = ? AND score_seed = ?");
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
                      (v.flag.empty() || is_known_flag(v.flag)) && (std::isfinite(v.value) || !v.flag.empty()) &&
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
    Stmt s(db_, "INSERT OR REPLACE INTO scores VALUES(?, ?, ?, ?, ?, ?, ?)");
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
  Stmt s(db_, "SELECT COUNT(*) FROM scores");
  sqlite3_step(s.s);
  return sqlite3_column_int64(s.s, 0);
}

CachedScorer::CachedScorer(ScoreCache& cache, Factory backend, const ScoreSettings& s,
                           std::string input_identity)
    : cache_(cache), factory_(std::move(backend)), settings_(s), raw_(raw_proxies(s.proxies)) {
  raw_.erase(std::remove(raw_.begin(), raw_.end(), Proxy::kNinaswot), raw_.end());
  for (Proxy p : raw_) keys_.push_back(settings_key(p, s, input_identity));
}

void CachedScorer::score(const std::vector<net::Genes>& archs,
                         const std::function<void(size_t, ArchScore&&)>& done) {
  std::vector<int> codes;
  for (const auto& g : archs) codes.push_back(net::genes_code(g));
  std::vector<std::map<int, ProxyValue>> found;
  for (size_t k = 0; k < raw_.size(); ++k)
    found.push_back(cache_.get_many(raw_[k], keys_[k], settings_.score_seed, codes));
  std::vector<std::optional<ArchScore>> ready(archs.size());
  std::vector<net::Genes> missing;
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
    a.genes = archs[i];
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
