// Dense FP64 linear algebra on the host: the NASWOT log-determinant and (for the NTK proxies)
// symmetric eigenvalues. CPU twins of the cuSOLVER paths.
#pragma once
#include <vector>

namespace hn::kernels {

struct LogDet {
  double value = 0.0;     // log det K (natural log); meaningful only when !singular
  bool singular = false;  // Cholesky failed, or a pivot^2 <= 1e-12 * max diag K
};

// K is n x n symmetric, row-major. FP64 Cholesky, pivot^2 = the diagonal value before its sqrt.
LogDet cholesky_logdet(const double* k, int n);

}  // namespace hn::kernels

namespace hn::kernels {

// Eigenvalues of a symmetric n x n matrix (row-major, FP64), ascending (LAPACK dsyevd).
// Throws std::runtime_error if LAPACK reports a failure.
std::vector<double> symmetric_eigenvalues(const double* a, int n);

// kappa = lambda_max / lambda_min of a Gram matrix; ill-conditioned (SPEC.md 3) when
// lambda_min <= 1e-10 * lambda_max or anything is non-finite.
struct Condition {
  double kappa = 0.0;
  bool ill_conditioned = false;
  std::vector<double> eigenvalues;  // ascending
};
Condition condition_number(const std::vector<double>& gram, int n);

}  // namespace hn::kernels
