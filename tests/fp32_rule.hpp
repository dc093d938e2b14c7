// SPEC.md 7's FP32 regime as a test helper: whether another FP32 implementation (the GPU) agrees
// with the CPU on one proxy over a test's architectures. Unit-tested on hand-made numbers in
// tests/test_gpu.cpp (Fp32Rule.*, runs without a GPU); used by the GpuEndToEnd tests.
#pragma once
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace hn::test {

// One architecture's value of one proxy: the implementation under test, the CPU in FP32 and the
// CPU in FP64 (the reference). Only architectures that all three leave unflagged belong here.
struct Fp32Case {
  std::string name;  // for messages: the architecture
  double other, cpu32, cpu64;
};

struct Fp32Verdict {
  std::string name;
  double e = 0.0;      // |other - cpu64| / |cpu64|
  double e_cpu = 0.0;  // |cpu32 - cpu64| / |cpu64|
  double bound = 0.0;  // 8 * max(e_cpu, e_rms) + 1e-6
  bool ok = false;
};

// |v - ref| / |ref|; 0 when both are equal (ref = 0 too), +inf when ref = 0 and v differs, NaN
// when either is NaN.
inline double relative_deviation(double v, double ref) {
  if (v == ref) return 0.0;
  return std::abs(v - ref) / std::abs(ref);
}

// e(a) <= 8 * max(e_cpu(a), e_rms) + 1e-6, e_rms the root mean square of e_cpu over `cases`
// (SPEC.md 7: two independent roundings of equal size exceed a 4x ratio about one time in six, so
// a per-architecture 4 * e_cpu bound fails correct code). A non-finite e or e_cpu fails: a NaN
// never passes, and an infinite e_cpu would make the bound meaningless.
inline std::vector<Fp32Verdict> check_fp32_rule(const std::vector<Fp32Case>& cases) {
  std::vector<Fp32Verdict> out;
  double sum_sq = 0.0;
  for (const Fp32Case& c : cases) {
    Fp32Verdict v;
    v.name = c.name;
    v.e = relative_deviation(c.other, c.cpu64);
    v.e_cpu = relative_deviation(c.cpu32, c.cpu64);
    if (std::isfinite(v.e_cpu)) sum_sq += v.e_cpu * v.e_cpu;
    out.push_back(v);
  }
  const double e_rms = cases.empty() ? 0.0 : std::sqrt(sum_sq / static_cast<double>(cases.size()));
  for (Fp32Verdict& v : out) {
    v.bound = 8.0 * std::max(v.e_cpu, e_rms) + 1e-6;
    v.ok = std::isfinite(v.e) && std::isfinite(v.e_cpu) && v.e <= v.bound;
  }
  return out;
}

// naswot and naswot_once (SPEC.md 7): to 1e-6 relative of the CPU's FP32 value. (Its other parts,
// at most 1 flipped code per 10^6 code bits and |dK_ij| <= 1e-5 * N_A, concern codes and K, which
// the scorer does not return; the kernel tests compare codes and K exactly.)
inline bool naswot_within_rule(double other, double cpu32) {
  return std::isfinite(other) && std::isfinite(cpu32) && std::abs(other - cpu32) <= 1e-6 * std::abs(cpu32);
}

}  // namespace hn::test
