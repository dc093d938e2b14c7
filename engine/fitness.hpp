// Fitness over proxy values (SPEC.md 4): z (the seed paper's), rank and logrank (AZ-NAS); worst
// values last, never NaN. Higher fitness is better in every mode (rank fitness is the negated
// rank sum).
#pragma once
#include <string>
#include <vector>

#include "engine/proxy.hpp"
#include "engine/scorer.hpp"
#include "engine/zstats.hpp"

namespace hn::engine {

enum class FitnessMode { kZ, kRank, kLogRank };
const char* fitness_mode_name(FitnessMode m);
FitnessMode parse_fitness_mode(const std::string& s);  // throws std::invalid_argument

struct FitnessSpec {
  FitnessMode mode = FitnessMode::kZ;
  std::vector<Proxy> proxies;  // raw proxies (no ninaswot: naswot and ni combine as it in z)
  bool log_ntk = true;         // z: t = log for ntk / ntk_fast (hybrid); identity (seed)
};

// "log" for ntk / ntk_fast under log_ntk and for synflow, else "identity": what a z statistic
// must be of.
std::string fitness_transform(const FitnessSpec& spec, Proxy p);
// t(value) of SPEC.md 4; false when the value is worst, flagged or not finite (log of <= 0 too).
bool fitness_transformed(const FitnessSpec& spec, Proxy p, const ArchScore& s, double* out);

// z statistics of every proxy a z fitness needs, over the finite values of t(value) of the
// reference architectures (degenerate cells excluded).
ZStats fitness_zstats(const FitnessSpec& spec, const std::vector<ArchScore>& reference);

// z fitness of one architecture: ninaswot(naswot, ni) when both are present, minus z(t(ntk)),
// plus z of every other proxy (sign by direction). -inf when any proxy is worst or not finite.
double z_fitness(const FitnessSpec& spec, const ZStats& stats, const ArchScore& s);

// Fitness of every archived architecture; rank and logrank depend on the whole archive.
// rank: -(sum over proxies of the average rank, 1 = best); logrank: sum of log(rank / m) with
// rank m = best. Worst values share the last ranks; any worst proxy gives -inf under z.
std::vector<double> archive_fitness(const FitnessSpec& spec, const ZStats& stats,
                                    const std::vector<const ArchScore*>& archive);

}  // namespace hn::engine
