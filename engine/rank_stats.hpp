// Rank statistics: average ranks with ties, Kendall tau-b and Spearman rho (SPEC.md 4, 6).
#pragma once
#include <vector>

namespace hn::engine {

// 1-based ranks of v in ascending order; tied values share the average of their ranks.
std::vector<double> average_ranks(const std::vector<double>& v);

// Kendall tau-b (ties in either variable handled as in scipy.stats.kendalltau). NaN when either
// variable is constant or fewer than 2 values.
double kendall_tau_b(const std::vector<double>& x, const std::vector<double>& y);
// Spearman rho: Pearson correlation of the average ranks.
double spearman_rho(const std::vector<double>& x, const std::vector<double>& y);

}  // namespace hn::engine
