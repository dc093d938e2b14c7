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
