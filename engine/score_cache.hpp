// Persistent score cache (SQLite): one row per (architecture, proxy, settings, score seed), where
// settings (engine::settings_key) carries the proxy's batch sizes, precision and the identity of
// the input data. WAL journal: every write is one transaction, so a process killed at any moment
// leaves the cache consistent, and several processes can share one file.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/proxy.hpp"
#include "engine/scorer.hpp"

struct sqlite3;

namespace hn::engine {

class CacheError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class ScoreCache {
 public:
  // Opens or creates the cache; throws CacheError for a file that is not a hybridnas cache
  // (another program's SQLite database is refused without being modified: ours carry PRAGMA
  // application_id 0x686E6173 and format PRAGMA user_version 1), a corrupt or truncated one, or
  // one written by a newer format. Values read back are validated (get_many throws CacheError).
  explicit ScoreCache(const std::string& path);
  ~ScoreCache();
  ScoreCache(const ScoreCache&) = delete;
  ScoreCache& operator=(const ScoreCache&) = delete;

  struct Key {
    int arch;  // net::arch_code (NB201: genes_code; NATS-SSS: its index; the settings key says the space)
    Proxy proxy;
    std::string settings;
    uint64_t score_seed;
  };
  std::optional<ProxyValue> get(const Key& k) const;
  // Values for many architectures of one (proxy, settings, seed), by arch code.
  std::map<int, ProxyValue> get_many(Proxy p, const std::string& settings, uint64_t score_seed,
                                     const std::vector<int>& archs) const;
  // All rows of one transaction.
  void put(const std::vector<std::pair<Key, ProxyValue>>& rows);
  int64_t size() const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  sqlite3* db_ = nullptr;
  void exec(const char* sql) const;
  int64_t query_int(const char* sql) const;
};

// A scorer that serves what the cache holds and scores only the rest with the backend (made on
// first need), storing new scores as each architecture finishes.
class CachedScorer final : public Scorer {
 public:
  using Factory = std::function<std::unique_ptr<Scorer>()>;
  CachedScorer(ScoreCache& cache, Factory backend, const ScoreSettings& s, std::string input_identity);
  const char* backend_name() const override { return "cache"; }
  using Scorer::score;
  void score(const std::vector<net::Arch>& archs,
             const std::function<void(size_t, ArchScore&&)>& done) override;
  int64_t network_evaluations() const { return evaluated_; }
  int64_t cache_hits() const { return hits_; }

 private:
  ScoreCache& cache_;
  Factory factory_;
  std::unique_ptr<Scorer> backend_;
  ScoreSettings settings_;
  std::vector<Proxy> raw_;
  std::vector<std::string> keys_;
  int64_t evaluated_ = 0, hits_ = 0;
};

}  // namespace hn::engine
