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

#include <stdexcept>
#include <string>

extern "C" void dsyevd_(const char* jobz, const char* uplo, const int* n, double* a, const int* lda,
                        double* w, double* work, const int* lwork, int* iwork, const int* liwork,
                        int* info);

namespace hn::kernels {

std::vector<double> symmetric_eigenvalues(const double* a, int n) {
  std::vector<double> m(a, a + static_cast<size_t>(n) * n), w(n);
  if (n == 0) return w;
  // Row-major symmetric = column-major symmetric: no transpose needed.
  const char jobz = 'N', uplo = 'U';
  int info = 0, lwork = -1, liwork = -1, iwork_query = 0;
  double work_query = 0;
  dsyevd_(&jobz, &uplo, &n, m.data(), &n, w.data(), &work_query, &lwork, &iwork_query, &liwork, &info);
  lwork = static_cast<int>(work_query);
  liwork = std::max(1, iwork_query);
  std::vector<double> work(std::max(1, lwork));
  std::vector<int> iwork(liwork);
  dsyevd_(&jobz, &uplo, &n, m.data(), &n, w.data(), work.data(), &lwork, iwork.data(), &liwork, &info);
  if (info != 0) throw std::runtime_error("dsyevd failed (info " + std::to_string(info) + ")");
  return w;
}

Condition condition_number(const std::vector<double>& gram, int n) {
  Condition c;
  for (double v : gram)
    if (!std::isfinite(v)) {
      c.ill_conditioned = true;
      return c;
    }
  c.eigenvalues = symmetric_eigenvalues(gram.data(), n);
  const double lo = c.eigenvalues.front(), hi = c.eigenvalues.back();
  if (!(hi > 0.0) || !(lo > 1e-10 * hi) || !std::isfinite(lo) || !std::isfinite(hi)) {
    c.ill_conditioned = true;
    return c;
  }
  c.kappa = hi / lo;
  return c;
}

}  // namespace hn::kernels
