#include "engine/cpu_proxies.hpp"

#include <cmath>

#include "kernels/hamming.hpp"
#include "kernels/linalg.hpp"

namespace hn::engine {

template <typename T>
NaswotKernels<T>::NaswotKernels(const net::Plan& plan, int batch)
    : plan_(plan),
      batch_(batch),
      k_(size_t(batch) * batch, 0),
      k_once_(size_t(batch) * batch, 0),
      agree_(size_t(batch) * batch) {}

template <typename T>
void NaswotKernels<T>::operator()(const SiteView<T>& v) {
  const net::Site& site = plan_.sites[v.site];
  scratch_.resize(size_t(batch_) * kernels::code_words(v.units));
  kernels::pack_relu_codes(v.pre, batch_, v.units, scratch_.data());
  std::fill(agree_.begin(), agree_.end(), 0);
  kernels::hamming_accumulate(scratch_.data(), batch_, v.units, 1, agree_.data());
  for (size_t i = 0; i < agree_.size(); ++i) {
    k_[i] += site.hooked_modules * agree_[i];
    k_once_[i] += site.relu_modules * agree_[i];
  }
  if (keep_codes) {
    codes.resize(plan_.sites.size());
    codes[v.site] = scratch_;
  }
}

ProxyValue naswot_from_kernel(const std::vector<int64_t>& k, int batch) {
  const std::vector<double> kd(k.begin(), k.end());
  const kernels::LogDet ld = kernels::cholesky_logdet(kd.data(), batch);
  if (ld.singular) return worst(Proxy::kNaswot, kFlagSingular);
  return ProxyValue{ld.value, "", 0.0};
}

template <typename T>
double ni_from_logits(const std::vector<T>& clean, const std::vector<T>& noisy) {
  double sum = 0.0;
  for (size_t i = 0; i < clean.size(); ++i) {
    const double d = static_cast<double>(clean[i]) - static_cast<double>(noisy[i]);
    sum += d * d;
  }
  return -sum;
}

ProxyValue entropy_from_blocks(const std::vector<double>& block_std, bool zero_variance) {
  if (zero_variance) return worst(Proxy::kEntropy, kFlagZeroVariance);
  double v = std::log(64.0);
  for (double s : block_std) v += std::log(s);
  return ProxyValue{v, "", 0.0};
}

template <typename T>
void EntropySeedSum<T>::operator()(const SiteView<T>& v) {
  const net::Site& site = plan_.sites[v.site];
  // Per-image partial sums in FP64, added in image order: independent of the thread count.
  std::vector<double> part(v.batch, 0.0);
#pragma omp parallel for schedule(static)
  for (int n = 0; n < v.batch; ++n) {
    const T* p = v.pre + int64_t(n) * v.units;
    double s = 0.0;
    for (int64_t i = 0; i < v.units; ++i) {
      const double x = static_cast<double>(p[i]);
      s += site.inplace ? (x > 0 ? x : 0.0) : std::abs(x);
    }
    part[n] = s;
  }
  double sum = 0.0;
  for (double s : part) sum += s;
  a[v.site] = sum / v.batch;
  seen_[v.site] = 1;
}

template <typename T>
double EntropySeedSum<T>::value() const {
  double value = 0.0;
  for (size_t s = 0; s < a.size(); ++s)
    if (seen_[s]) value += plan_.sites[s].hooked_modules * std::log(1.0 + a[s]);
  return value;
}

template class NaswotKernels<float>;
template class NaswotKernels<double>;
template class EntropySeedSum<float>;
template class EntropySeedSum<double>;
template double ni_from_logits(const std::vector<float>&, const std::vector<float>&);
template double ni_from_logits(const std::vector<double>&, const std::vector<double>&);

}  // namespace hn::engine
