#include "engine/rank_stats.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

namespace hn::engine {

std::vector<double> average_ranks(const std::vector<double>& v) {
  std::vector<size_t> order(v.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
  std::vector<double> rank(v.size());
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j + 1 < order.size() && v[order[j + 1]] == v[order[i]]) ++j;
    const double avg = 0.5 * (static_cast<double>(i) + static_cast<double>(j)) + 1.0;
    for (size_t k = i; k <= j; ++k) rank[order[k]] = avg;
    i = j + 1;
  }
  return rank;
}

namespace {
// Merge sort of y counting inversions (pairs out of order), for Knight's O(n log n) tau.
long long merge_count(std::vector<double>& y, std::vector<double>& tmp, size_t lo, size_t hi) {
  if (hi - lo < 2) return 0;
  const size_t mid = (lo + hi) / 2;
  long long swaps = merge_count(y, tmp, lo, mid) + merge_count(y, tmp, mid, hi);
  size_t i = lo, j = mid, k = lo;
  while (i < mid && j < hi) {
    if (y[j] < y[i]) {
      swaps += static_cast<long long>(mid - i);
      tmp[k++] = y[j++];
    } else {
      tmp[k++] = y[i++];
    }
  }
  while (i < mid) tmp[k++] = y[i++];
  while (j < hi) tmp[k++] = y[j++];
  std::copy(tmp.begin() + lo, tmp.begin() + hi, y.begin() + lo);
  return swaps;
}

// Pairs tied within runs of equal values of a sorted sequence.
template <typename Eq>
long long tied_pairs(size_t n, Eq eq) {
  long long t = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i + 1;
    while (j < n && eq(i, j)) ++j;
    const long long len = static_cast<long long>(j - i);
    t += len * (len - 1) / 2;
    i = j;
  }
  return t;
}
}  // namespace

double kendall_tau_b(const std::vector<double>& x, const std::vector<double>& y) {
  if (x.size() != y.size()) throw std::invalid_argument("kendall_tau_b: sizes differ");
  const size_t n = x.size();
  if (n < 2) return NAN;
  // Knight (1966): sort by (x, y); count ties in x, joint ties; then inversions of y.
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return x[a] < x[b] || (x[a] == x[b] && y[a] < y[b]);
  });
  std::vector<double> xs(n), ys(n);
  for (size_t i = 0; i < n; ++i) {
    xs[i] = x[order[i]];
    ys[i] = y[order[i]];
  }
  const long long tx = tied_pairs(n, [&](size_t i, size_t j) { return xs[j] == xs[i]; });
  const long long txy =
      tied_pairs(n, [&](size_t i, size_t j) { return xs[j] == xs[i] && ys[j] == ys[i]; });
  std::vector<double> tmp(n);
  const long long swaps = merge_count(ys, tmp, 0, n);  // ys is now sorted
  const long long ty = tied_pairs(n, [&](size_t i, size_t j) { return ys[j] == ys[i]; });
  const long long n0 = static_cast<long long>(n) * (static_cast<long long>(n) - 1) / 2;
  // concordant - discordant = n0 - tx - ty + txy - 2 * swaps
  const double num = static_cast<double>(n0 - tx - ty + txy - 2 * swaps);
  const double den = std::sqrt(static_cast<double>(n0 - tx) * static_cast<double>(n0 - ty));
  return den > 0 ? num / den : NAN;
}

double spearman_rho(const std::vector<double>& x, const std::vector<double>& y) {
  if (x.size() != y.size()) throw std::invalid_argument("spearman_rho: sizes differ");
  const size_t n = x.size();
  if (n < 2) return NAN;
  const auto rx = average_ranks(x), ry = average_ranks(y);
  const double mean = (static_cast<double>(n) + 1.0) / 2.0;
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < n; ++i) {
    sxy += (rx[i] - mean) * (ry[i] - mean);
    sxx += (rx[i] - mean) * (rx[i] - mean);
    syy += (ry[i] - mean) * (ry[i] - mean);
  }
  return (sxx > 0 && syy > 0) ? sxy / std::sqrt(sxx * syy) : NAN;
}

}  // namespace hn::engine
