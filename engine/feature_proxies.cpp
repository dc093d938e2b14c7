#include "engine/feature_proxies.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "engine/cpu_ntk.hpp"
#include "engine/population.hpp"
#include "kernels/cpu_backward.hpp"
#include "kernels/cpu_ops.hpp"
#include "kernels/linalg.hpp"
#include "kernels/philox.cuh"
#include "net/weight_bank.hpp"

namespace hn::engine {

// ---- SWAP ------------------------------------------------------------------------------------

namespace {
constexpr int kBitmapMaxSamples = 20;
}

SwapPatterns::SwapPatterns(int samples) : samples_(samples) {
  if (samples < 1 || samples > 64) throw std::invalid_argument("swap: samples must be in 1..64");
  if (samples <= kBitmapMaxSamples) bitmap_.assign((size_t(1) << samples) / 64 + 1, 0);
}

template <typename T>
void SwapPatterns::operator()(const SiteView<T>& v) {
  if (v.batch != samples_) throw std::invalid_argument("swap: a site of another batch size");
  std::vector<uint64_t> key(static_cast<size_t>(v.units), 0);
  for (int n = 0; n < v.batch; ++n) {
    const T* pre = v.pre + static_cast<int64_t>(n) * v.units;
    const uint64_t bit = uint64_t(1) << n;
    for (int64_t u = 0; u < v.units; ++u) key[u] |= pre[u] > T(0) ? bit : 0;
  }
  if (!bitmap_.empty()) {
    for (uint64_t k : key) bitmap_[k >> 6] |= uint64_t(1) << (k & 63);
  } else {
    keys_.insert(keys_.end(), key.begin(), key.end());  // sorted and made unique once, by count()
  }
}

int64_t SwapPatterns::count() const {
  if (bitmap_.empty()) {
    std::sort(keys_.begin(), keys_.end());
    keys_.erase(std::unique(keys_.begin(), keys_.end()), keys_.end());
    return static_cast<int64_t>(keys_.size());
  }
  int64_t n = 0;
  for (uint64_t w : bitmap_) n += __builtin_popcountll(w);
  return n;
}

template void SwapPatterns::operator()(const SiteView<float>&);
template void SwapPatterns::operator()(const SiteView<double>&);

double swap_regulariser(int64_t params, double mu, double sigma) {
  const double d = static_cast<double>(params) / 1e3 - mu;
  return std::exp(-(d * d) / sigma);
}

// ---- MeCo ------------------------------------------------------------------------------------

namespace {
// sum over (image, position) of (f_i - mean_i)(f_j - mean_j) for the C channels of `images` maps
// (images x C x hw, NCHW), means over (image, position); FP64, both triangles.
template <typename T>
std::vector<double> centred_channel_gram(const T* f, int images, int c, int64_t hw) {
  const int64_t rows = hw * images;
  static thread_local std::vector<double> a;  // kept: no page faults per tensor
  a.resize(static_cast<size_t>(c) * rows);
  for (int ch = 0; ch < c; ++ch) {
    double mean = 0.0;
    for (int n = 0; n < images; ++n)
      for (int64_t p = 0; p < hw; ++p) mean += f[(int64_t(n) * c + ch) * hw + p];
    mean /= static_cast<double>(rows);
    for (int n = 0; n < images; ++n)
      for (int64_t p = 0; p < hw; ++p) a[ch * rows + n * hw + p] = f[(int64_t(n) * c + ch) * hw + p] - mean;
  }
  std::vector<double> g(static_cast<size_t>(c) * c, 0.0);
  kernels::syrk_lower<double>(c, static_cast<int>(rows), 1.0, a.data(), static_cast<int>(rows), 0.0, g.data(), c);
  for (int i = 0; i < c; ++i)
    for (int j = 0; j < i; ++j) g[j * c + i] = g[i * c + j];
  return g;
}
}  // namespace

template <typename T>
double meco_min_eigenvalue(const T* fea, int c, int64_t hw) {
  if (hw < 2) return 0.0;  // one observation: every entry NaN, set to 0
  const std::vector<double> cov = centred_channel_gram(fea, 1, c, hw);
  std::vector<double> corr(cov.size(), 0.0);
  for (int i = 0; i < c; ++i)
    for (int j = 0; j <= i; ++j) {
      const double d = std::sqrt(cov[i * c + i]) * std::sqrt(cov[j * c + j]);
      double r = cov[i * c + j] / d;  // the covariance's normalisation cancels
      if (!std::isfinite(r)) r = 0.0;
      r = std::clamp(r, -1.0, 1.0);
      corr[i * c + j] = corr[j * c + i] = r;
    }
  return kernels::symmetric_eigenvalues(corr.data(), c).front();
}

template <typename T>
double cpu_meco(const net::Plan& plan, const TypedBank<T>& bank, const T* x) {
  ForwardOptions opt;
  opt.report_sites = false;
  opt.keep_values = true;
  opt.all_steps = true;  // MeCo's hooks see every module a forward calls, dead edges too
  const ForwardResult<T> fwd = cpu_forward<T>(plan, bank, x, 1, opt);
  const LoweredPlan L = lower_plan(plan, opt);
  double sum = 0.0;
  for (const net::ModuleTap& t : plan.meco_taps) {
    const net::Shape sh = plan.values[t.value];
    const T* v = fwd.values[L.rep[t.value]].get();
    if (!v) throw std::logic_error("meco: a tapped value was not produced");
    sum += t.modules * meco_min_eigenvalue(v, sh.c, sh.hw());
  }
  return sum;
}

// ---- AZ-NAS ----------------------------------------------------------------------------------

namespace {

// The cotangent shape of block b: NB201's block output (the same in every architecture); in
// NATS-SSS the widest one (64 channels), of which a network uses the first channels.
net::Shape cotangent_shape(net::Space space, int b) {
  if (space == net::Space::kNatsSss) {
    const int down = b < 2 ? 0 : b < 4 ? 1 : 2;
    return net::Shape{64, net::kImageSize >> down, net::kImageSize >> down};
  }
  const int stage = b <= net::kCellsPerStage ? 0 : b <= 2 * net::kCellsPerStage + 1 ? 1 : 2;
  return net::Shape{net::kStemChannels << stage, net::kImageSize >> stage, net::kImageSize >> stage};
}
int space_blocks(net::Space space) { return space == net::Space::kNatsSss ? 1 + net::sss::kLayers : net::kBlockOutputs; }

// E_b: entropy of the normalised eigenvalues of F's channel covariance (rows image x position).
template <typename T>
double az_block_expressivity(const T* f, int images, const net::Shape& sh) {
  std::vector<double> cov = centred_channel_gram(f, images, sh.c, sh.hw());
  for (double& v : cov) v /= static_cast<double>(sh.hw() * images);
  const std::vector<double> s = kernels::symmetric_eigenvalues(cov.data(), sh.c);
  double total = 0.0;
  for (double v : s) total += v;
  double e = 0.0;
  for (double v : s) {
    const double p = v / total;
    e -= p * std::log(p + 1e-8);
  }
  return e;  // NaN when total is 0 (or a p + 1e-8 <= 0)
}

}  // namespace

std::vector<std::vector<float>> az_cotangents(uint64_t score_seed, int images, net::Space space) {
  const PhiloxKey key = philox_key(score_seed);
  std::vector<std::vector<float>> out(space_blocks(space));
  for (int b = 1; b < space_blocks(space); ++b) {
    out[b].resize(static_cast<size_t>(images) * cotangent_shape(space, b).numel());
    for (size_t i = 0; i < out[b].size(); ++i)
      out[b][i] = (philox_draw(key, static_cast<uint32_t>(i), 0, Purpose::kAzCotangent, b).v[0] & 1u) ? 1.0f : -1.0f;
  }
  return out;
}

template <typename T>
AzNasValues cpu_az_nas(const net::Plan& plan, const TypedBank<T>& bank, const T* x, int n,
                       const std::vector<std::vector<T>>& cot) {
  if (n < 1) throw std::invalid_argument("az_nas: need at least one image");
  const ForwardOptions fopt = ntk_forward_options(true);
  const LoweredPlan L = lower_plan(plan, fopt);
  const ForwardResult<T> fwd = cpu_forward<T>(plan, bank, x, n, fopt);
  const int nb = plan.num_blocks;
  std::vector<int> block(nb, -1);
  for (const net::Step& st : plan.steps)
    if (st.kind == net::StepKind::kBlockEnd) block[st.block] = L.rep[st.in0];
  AzNasValues out;

  // Expressivity and progressivity.
  std::vector<double> e(nb);
  for (int b = 0; b < nb; ++b) {
    e[b] = az_block_expressivity(fwd.values[block[b]].get(), n, plan.values[block[b]]);
    if (!std::isfinite(e[b])) out.zero_variance = true;
  }
  out.progressivity = std::numeric_limits<double>::infinity();
  for (int b = 0; b < nb; ++b) {
    out.expressivity += e[b];
    if (b > 0) out.progressivity = std::min(out.progressivity, e[b] - e[b - 1]);
  }

  // Trainability: one vector-Jacobian product per block, through the block's steps only.
  const kernels::RowMap map{n, n, false};  // one cotangent, a row per image
  static thread_local std::vector<std::vector<T>> pool;
  static thread_local std::vector<double> A, B;
  const int classes = plan.num_classes;
  double total = 0.0;
  if (cot.size() != static_cast<size_t>(nb)) throw std::invalid_argument("az_nas: cotangents for another space");
  std::vector<T> narrowed;
  for (int b = 1; b < nb; ++b) {
    const int vout = block[b], vin = block[b - 1];
    const net::Shape so = plan.values[vout], si_blk = plan.values[vin];
    // Cotangents as wide as the block or wider (NATS-SSS): each image's first so.c channels.
    const size_t wide = cot[b].size() / (static_cast<size_t>(n) * so.hw());
    if (cot[b].size() != wide * n * so.hw() || wide < static_cast<size_t>(so.c))
      throw std::invalid_argument("az_nas: cotangents of another size");
    const T* cot_b = cot[b].data();
    if (wide != static_cast<size_t>(so.c)) {
      narrowed.resize(static_cast<size_t>(n) * so.numel());
      for (int img = 0; img < n; ++img)
        std::copy_n(cot[b].data() + static_cast<size_t>(img) * wide * so.hw(), so.numel(), narrowed.data() + static_cast<size_t>(img) * so.numel());
      cot_b = narrowed.data();
    }
    if (vout == vin) {  // the block is the identity: G_in = G_out
      out.identity_block = true;
      continue;
    }
    // Gradient buffers from a per-thread pool kept across blocks and architectures (fresh
    // allocations would be page-faulted in on every block).
    std::vector<std::vector<T>> grad(plan.values.size());
    auto take = [&](size_t sz) {
      std::vector<T> buf;
      for (size_t i = 0; i < pool.size(); ++i)
        if (pool[i].capacity() >= sz) {
          buf = std::move(pool[i]);
          pool.erase(pool.begin() + static_cast<std::ptrdiff_t>(i));
          break;
        }
      buf.assign(sz, T(0));
      return buf;
    };
    auto grad_of = [&](int v) -> T* {
      if (grad[v].empty()) grad[v] = take(static_cast<size_t>(n) * plan.values[v].numel());
      return grad[v].data();
    };
    auto release = [&] {  // every buffer back to the pool
      for (auto& g : grad)
        if (!g.empty()) pool.push_back(std::move(g));
    };
    grad[vout] = take(static_cast<size_t>(n) * so.numel());
    std::copy_n(cot_b, static_cast<size_t>(n) * so.numel(), grad[vout].begin());
    std::vector<double> dgamma;
    for (int i = static_cast<int>(L.steps.size()) - 1; i >= 0; --i) {
      const net::Step& st = L.steps[i];
      if (net::pos_section(st.pos) != b || st.out < 0 || grad[st.out].empty()) continue;
      const T* dy = grad[st.out].data();
      const net::Shape si = st.in0 >= 0 ? plan.values[st.in0] : net::Shape{};
      switch (st.kind) {
        case net::StepKind::kRelu:
          kernels::relu_backward(map, dy, fwd.values[st.in0].get(), si.numel(), grad_of(st.in0));
          break;
        case net::StepKind::kBatchNorm:
          dgamma.assign(static_cast<size_t>(si.c), 0.0);
          kernels::batchnorm_backward(map, dy, fwd.values[st.out].get(), si.c, si.hw(), fwd.bn_invstd[st.bn].data(),
                                      false, grad_of(st.in0), dgamma.data());
          break;
        case net::StepKind::kConv: {
          const net::SlotInfo info = net::slot_info(st.slot, classes);
          const kernels::ConvShape cs{n, si.c, si.h, si.w, info.cout, st.k, st.stride, st.pad};
          kernels::conv2d_backward_data(cs, dy, bank.slot(st.slot), grad_of(st.in0));
          break;
        }
        case net::StepKind::kAdd: {
          const int64_t len = static_cast<int64_t>(n) * plan.values[st.out].numel();
          kernels::accumulate(dy, len, grad_of(st.in0));
          kernels::accumulate(dy, len, grad_of(st.in1));
          break;
        }
        case net::StepKind::kAvgPool3:
          kernels::avgpool3_backward(dy, n, si.c, si.h, si.w, grad_of(st.in0));
          break;
        case net::StepKind::kAvgPool2:
          kernels::avgpool2_backward(dy, n, si.c, si.h, si.w, grad_of(st.in0));
          break;
        default:
          break;  // input, zero, block ends: no inputs to pass a gradient to
      }
      if (st.out != vout) {
        pool.push_back(std::move(grad[st.out]));
        grad[st.out] = {};
      }
    }
    const T* gin = grad_of(vin);
    const T* gout = cot_b;
    if (si_blk.c == so.c && si_blk.hw() == so.hw() &&
        std::equal(gin, gin + static_cast<int64_t>(n) * so.numel(), gout)) {
      out.identity_block = true;
      release();
      continue;
    }
    // M = G_in'^T G_out / rows, G_in' space-to-depth'd: row (ci, dy, dx) of input channel ci at
    // offset (dy, dx) of each stride x stride patch (PixelUnshuffle's order; the singular values
    // do not depend on the order of M's rows).
    const int s = si_blk.h / so.h;
    const int ci = si_blk.c * s * s, co = so.c;
    const int64_t ohw = so.hw(), rows = ohw * n;
    A.resize(static_cast<size_t>(rows) * ci);
    B.resize(static_cast<size_t>(rows) * co);
    for (int img = 0; img < n; ++img)
      for (int y = 0; y < so.h; ++y)
        for (int xx = 0; xx < so.w; ++xx) {
          const int64_t r = (int64_t(img) * so.h + y) * so.w + xx;
          for (int c = 0; c < co; ++c) B[r * co + c] = gout[((int64_t(img) * co + c) * so.h + y) * so.w + xx];
          for (int c = 0; c < si_blk.c; ++c)
            for (int dy = 0; dy < s; ++dy)
              for (int dx = 0; dx < s; ++dx)
                A[r * ci + (c * s + dy) * s + dx] =
                    gin[((int64_t(img) * si_blk.c + c) * si_blk.h + y * s + dy) * si_blk.w + xx * s + dx];
        }
    std::vector<double> M(static_cast<size_t>(ci) * co);
    kernels::gemm<double>(true, false, ci, co, static_cast<int>(rows), 1.0 / static_cast<double>(rows), A.data(), ci,
                          B.data(), co, 0.0, M.data(), co);
    // sigma_max^2 = the largest eigenvalue of M^T M (co x co).
    std::vector<double> mtm(static_cast<size_t>(co) * co);
    kernels::gemm<double>(true, false, co, co, ci, 1.0, M.data(), co, M.data(), co, 0.0, mtm.data(), co);
    const double sigma = std::sqrt(std::max(0.0, kernels::symmetric_eigenvalues(mtm.data(), co).back()));
    total += -sigma - 1.0 / (sigma + 1e-6) + 2.0;
    release();
  }
  out.trainability = out.identity_block ? -std::numeric_limits<double>::infinity()
                                        : total / static_cast<double>(nb - 1);
  return out;
}

template double meco_min_eigenvalue(const float*, int, int64_t);
template double meco_min_eigenvalue(const double*, int, int64_t);
template double cpu_meco(const net::Plan&, const TypedBank<float>&, const float*);
template double cpu_meco(const net::Plan&, const TypedBank<double>&, const double*);
template AzNasValues cpu_az_nas(const net::Plan&, const TypedBank<float>&, const float*, int,
                                const std::vector<std::vector<float>>&);
template AzNasValues cpu_az_nas(const net::Plan&, const TypedBank<double>&, const double*, int,
                                const std::vector<std::vector<double>>&);

// ---- FeatureProxies --------------------------------------------------------------------------

namespace {
bool has(const std::vector<Proxy>& ps, Proxy p) { return std::find(ps.begin(), ps.end(), p) != ps.end(); }
double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

template <typename T>
FeatureProxies<T>::FeatureProxies(const ScoreSettings& s, const std::vector<Proxy>& raw,
                                  const std::vector<double>& images)
    : s_(s), raw_(raw) {
  swap_ = has(raw, Proxy::kSwap) || has(raw, Proxy::kSwapReg);
  meco_ = has(raw, Proxy::kMeco);
  az_ = has(raw, Proxy::kAzExpressivity) || has(raw, Proxy::kAzProgressivity) || has(raw, Proxy::kAzTrainability);
  if ((swap_ || meco_) && images.size() < static_cast<size_t>(s.batch) * net::kImageNumel)
    throw std::invalid_argument("swap, swap_reg and meco need the run's input images (--data or --gaussian-input)");
  if (swap_ || meco_) images_.assign(images.begin(), images.begin() + static_cast<std::ptrdiff_t>(s.batch) * net::kImageNumel);
  if (swap_)
    for (int r = 0; r < s.swap_repeats; ++r)  // N(0,1) conv and linear weights: entropy's repeat-r bank
      swap_banks_.emplace_back(net::WeightBank::generate(net::InitScheme::kEntropy, s.score_seed, s.num_classes, r, s.space));
  if (meco_) default_bank_.emplace(net::WeightBank::generate(net::InitScheme::kDefault, s.score_seed, s.num_classes, 0, s.space));
  if (az_) {
    const int n = az_images(s.batch);
    kaiming_bank_.emplace(net::WeightBank::generate(net::InitScheme::kKaimingNormal, s.score_seed, s.num_classes, 0, s.space));
    const auto x = net::gaussian_images(s.score_seed, Purpose::kAzInput, 0, n);
    az_input_.assign(x.begin(), x.end());
    for (const auto& c : az_cotangents(s.score_seed, n, s.space)) az_cotangents_.emplace_back(c.begin(), c.end());
  }
}

template <typename T>
void FeatureProxies<T>::score(const std::vector<const net::Plan*>& pp, const Setter& set) const {
  const size_t P = pp.size();
  if (P == 0) return;
  if (swap_) {
    const auto t0 = std::chrono::steady_clock::now();
    const int samples = swap_samples(s_.batch);
    std::vector<int64_t> total(P, 0);
    ForwardOptions opt;
    opt.need_logits = false;  // sites only
    const PopulationSchedule schedule(pp, opt);
    for (const TypedBank<T>& bank : swap_banks_) {
      std::vector<std::unique_ptr<SwapPatterns>> pat;
      for (size_t m = 0; m < P; ++m) pat.push_back(std::make_unique<SwapPatterns>(samples));
      cpu_forward_population<T>(schedule, bank, images_.data(), samples, opt,
                                [&](size_t m, const SiteView<T>& v) { (*pat[m])(v); });
      for (size_t m = 0; m < P; ++m) total[m] += pat[m]->count();
    }
    std::vector<double> mean(P);
    for (size_t m = 0; m < P; ++m) mean[m] = static_cast<double>(total[m]) / s_.swap_repeats;
    const double secs = since(t0) / static_cast<double>(P);
    const bool both = has(raw_, Proxy::kSwap) && has(raw_, Proxy::kSwapReg);
    const SwapRegParameters reg = swap_reg_mu_sigma(s_);
    for (size_t m = 0; m < P; ++m) {
      if (has(raw_, Proxy::kSwap)) set(m, Proxy::kSwap, ProxyValue{mean[m], "", secs});
      if (has(raw_, Proxy::kSwapReg))
        set(m, Proxy::kSwapReg,
            ProxyValue{mean[m] * swap_regulariser(pp[m]->param_count, reg.mu, reg.sigma), "", both ? 0.0 : secs});
    }
  }
  if (meco_) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<double> v(P);
    each_member(P, [&](size_t m) { v[m] = cpu_meco<T>(*pp[m], *default_bank_, images_.data()); });
    const double secs = since(t0) / static_cast<double>(P);
    for (size_t m = 0; m < P; ++m) set(m, Proxy::kMeco, ProxyValue{v[m], "", secs});
  }
  if (az_) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<AzNasValues> v(P);
    each_member(P, [&](size_t m) {
      v[m] = cpu_az_nas<T>(*pp[m], *kaiming_bank_, az_input_.data(), az_images(s_.batch), az_cotangents_);
    });
    const double secs = since(t0) / static_cast<double>(P);
    for (size_t m = 0; m < P; ++m) {
      bool first = true;  // the pass's time goes on the first requested of the three
      for (Proxy p : {Proxy::kAzExpressivity, Proxy::kAzProgressivity, Proxy::kAzTrainability}) {
        if (!has(raw_, p)) continue;
        ProxyValue pv;
        if (p == Proxy::kAzTrainability)  // computed whatever the expressivity, as the code does
          pv = v[m].identity_block ? worst(p, kFlagNonfinite) : ProxyValue{v[m].trainability, "", 0.0};
        else
          pv = v[m].zero_variance ? worst(p, kFlagZeroVariance)
                                  : ProxyValue{p == Proxy::kAzExpressivity ? v[m].expressivity : v[m].progressivity, "", 0.0};
        pv.seconds = first ? secs : 0.0;
        first = false;
        set(m, p, pv);
      }
    }
  }
}

template class FeatureProxies<float>;
template class FeatureProxies<double>;

}  // namespace hn::engine
