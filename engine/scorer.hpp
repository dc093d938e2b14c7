// The scorer seam: a list of architectures, a backend and settings in; per-architecture proxy
// values out. Backends compute the raw proxies (everything but ninaswot, which needs statistics
// over many architectures: engine/zstats.hpp).
#pragma once
#include <array>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/proxy.hpp"
#include "engine/settings.hpp"
#include "net/nb201.hpp"
#include "net/plan.hpp"
#include "net/space.hpp"

namespace hn::engine {

struct ArchScore {
  net::Arch arch;
  std::array<std::optional<ProxyValue>, kNumProxies> values;
  const std::optional<ProxyValue>& operator[](Proxy p) const { return values[static_cast<int>(p)]; }
  std::optional<ProxyValue>& operator[](Proxy p) { return values[static_cast<int>(p)]; }
};

class Scorer {
 public:
  virtual ~Scorer() = default;
  virtual const char* backend_name() const = 0;
  // Scores `archs` in order, calling `done` after each (results stream out as they finish).
  // Degenerate cells get every proxy's worst value with flag `degenerate`, without running.
  virtual void score(const std::vector<net::Arch>& archs,
                     const std::function<void(size_t i, ArchScore&&)>& done) = 0;
  std::vector<ArchScore> score_all(const std::vector<net::Arch>& archs);
  // NB201 cells (the default space).
  void score(const std::vector<net::Genes>& genes, const std::function<void(size_t i, ArchScore&&)>& done) {
    score(std::vector<net::Arch>(genes.begin(), genes.end()), done);
  }
  std::vector<ArchScore> score_all(const std::vector<net::Genes>& genes) {
    return score_all(std::vector<net::Arch>(genes.begin(), genes.end()));
  }
};

// Throws std::invalid_argument when an architecture is not of the scorer's `space`.
void require_space(const std::vector<net::Arch>& archs, net::Space space);

// Every proxy of `raw` at its worst value, flagged degenerate (SPEC.md 1: never run).
ArchScore degenerate_score(const net::Arch& a, const std::vector<Proxy>& raw);

// What a backend runs of a population: degenerate members get their fixed scores in `out` (sized
// to archs; the others get their genes) and are left out; the rest become plans. index[m] is
// member m's position in archs; plans outlive `members` (pointers into plans).
struct RunnableMembers {
  std::vector<size_t> index;
  std::vector<net::Plan> plans;
  std::vector<const net::Plan*> members;
};
RunnableMembers runnable_members(const std::vector<net::Arch>& archs, int num_classes, const std::vector<Proxy>& raw,
                                 std::vector<ArchScore>& out);

// Raw proxies of settings.proxies on the CPU (ninaswot is expanded to naswot and ni and left out).
std::unique_ptr<Scorer> make_cpu_scorer(const ScoreSettings& settings, const ScoreInputs& inputs);

// Which backends exist in this build, and the thrown error for an unavailable one.
class BackendUnavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace hn::engine
