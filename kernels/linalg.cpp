#include "kernels/linalg.hpp"

#include <algorithm>
#include <cmath>

namespace hn::kernels {

LogDet cholesky_logdet(const double* k, int n) {
  LogDet out;
  if (n == 0) return out;
  double max_diag = 0.0;
  for (int i = 0; i < n; ++i) max_diag = std::max(max_diag, k[static_cast<size_t>(i) * n + i]);
  if (!(max_diag > 0.0) || !std::isfinite(max_diag)) {
    out.singular = true;
    return out;
  }
  const double floor = 1e-12 * max_diag;
  std::vector<double> l(static_cast<size_t>(n) * n, 0.0);  // lower triangle, row-major
  for (int j = 0; j < n; ++j) {
    double d = k[static_cast<size_t>(j) * n + j];
    for (int p = 0; p < j; ++p) d -= l[static_cast<size_t>(j) * n + p] * l[static_cast<size_t>(j) * n + p];
    if (!(d > floor) || !std::isfinite(d)) {
      out.singular = true;
      return out;
    }
    const double ljj = std::sqrt(d);
    l[static_cast<size_t>(j) * n + j] = ljj;
    out.value += std::log(d);
    for (int i = j + 1; i < n; ++i) {
      double s = k[static_cast<size_t>(i) * n + j];
      for (int p = 0; p < j; ++p) s -= l[static_cast<size_t>(i) * n + p] * l[static_cast<size_t>(j) * n + p];
      l[static_cast<size_t>(i) * n + j] = s / ljj;
    }
  }
  return out;
}

}  // namespace hn::kernels
