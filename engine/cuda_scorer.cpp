// CUDA backend: a lane (stream + cuBLAS / cuSOLVER / cuDNN handles + scratch) per host thread;
// each lane scores whole architectures, lanes run concurrently. Per architecture, every proxy is
// queued on the lane's stream; its results land in pinned memory and the lane synchronises once,
// at the end. Activations use the stream-ordered allocator (cudaMallocAsync), mirroring the CPU
// executor's allocate-on-produce / free-after-last-use.
#include "engine/cuda_scorer.hpp"

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>

#include "engine/cpu_forward.hpp"  // ForwardOptions, lower_plan, entropy_options
#include "engine/cpu_ntk.hpp"      // ntk_layout
#include "kernels/cudnn_conv.hpp"
#include "kernels/gpu_kernels.cuh"
#include "kernels/gpu_resources.hpp"
#include "kernels/linalg.hpp"
#include "kernels/nvtx.hpp"
#include "net/weight_bank.hpp"

namespace hn::engine {

namespace {

namespace kg = kernels::gpu;
using net::Step;
using net::StepKind;

template <typename T>
gpu::DeviceBuffer<T> upload(const std::vector<T>& v) {
  gpu::DeviceBuffer<T> d(v.size());
  if (!v.empty()) CUDA_CHECK(cudaMemcpy(d.get(), v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}

// One init scheme's weights on the device, every slot in one allocation.
class DeviceBank {
 public:
  explicit DeviceBank(const net::WeightBank& bank) {
    std::vector<float> all;
    offsets_.resize(net::kNumSlots);
    for (int s = 0; s < net::kNumSlots; ++s) {
      offsets_[s] = all.size();
      all.insert(all.end(), bank.slot(s).begin(), bank.slot(s).end());
    }
    data_ = upload(all);
  }
  const float* slot(int s) const { return data_.get() + offsets_[s]; }

 private:
  std::vector<size_t> offsets_;
  gpu::DeviceBuffer<float> data_;
};

struct Lane {
  explicit Lane(bool tf32) : cublas(stream.get(), tf32), cusolver(stream.get()), conv(stream.get(), tf32) {}
  gpu::Stream stream;
  gpu::CublasHandle cublas;
  gpu::CusolverHandle cusolver;
  kg::ConvRunner conv;
  cudaStream_t s() const { return stream.get(); }
};

// What a forward pass leaves behind.
struct GpuForward {
  std::vector<gpu::StreamBuffer<float>> values;  // by value id (all of them with keep_values)
  std::vector<gpu::StreamBuffer<double>> bn_mean, bn_invstd;
  const float* logits = nullptr;
};

using GpuSiteFn = std::function<void(int site, const float* pre, int64_t units)>;

// The lowered plan on the lane's stream (engine/cpu_forward.cpp is the reference).
// stds / flag: entropy's block ends (rescale_blocks).
GpuForward gpu_forward(Lane& lane, const net::Plan& plan, const DeviceBank& bank, const float* x,
                       int batch, const ForwardOptions& opt, const GpuSiteFn& on_site,
                       double* stds = nullptr, int* flag = nullptr, double* partial = nullptr) {
  HN_NVTX_RANGE("gpu_forward");
  const LoweredPlan L = lower_plan(plan, opt);
  const cudaStream_t s = lane.s();
  GpuForward out;
  out.values.resize(plan.values.size());
  out.bn_mean.resize(plan.bn_channels.size());
  out.bn_invstd.resize(plan.bn_channels.size());
  auto numel = [&](int v) { return plan.values[v].numel() * batch; };
  auto alloc = [&](int v) {
    out.values[v] = gpu::StreamBuffer<float>(static_cast<size_t>(numel(v)), s);
    return out.values[v].get();
  };
  for (size_t i = 0; i < L.steps.size(); ++i) {
    const Step& st = L.steps[i];
    const float* a = st.in0 >= 0 ? out.values[st.in0].get() : nullptr;
    const float* b = st.in1 >= 0 ? out.values[st.in1].get() : nullptr;
    const net::Shape si = st.in0 >= 0 ? plan.values[st.in0] : net::Shape{};
    switch (st.kind) {
      case StepKind::kInput:
        CUDA_CHECK(cudaMemcpyAsync(alloc(st.out), x, sizeof(float) * numel(st.out), cudaMemcpyDeviceToDevice, s));
        break;
      case StepKind::kZero:
        kg::launch_fill_zero(alloc(st.out), numel(st.out), s);
        break;
      case StepKind::kConv: {
        const net::SlotInfo info = net::slot_info(st.slot, plan.num_classes);
        lane.conv.forward({batch, si.c, si.h, si.w, info.cout, st.k, st.stride, st.pad}, a,
                          bank.slot(st.slot), alloc(st.out));
        break;
      }
      case StepKind::kBatchNorm: {
        gpu::StreamBuffer<double> mean(si.c, s), invstd(si.c, s);
        kg::launch_batchnorm_stats(a, batch, si.c, si.hw(), net::kBnEps, mean.get(), invstd.get(), s);
        kg::launch_batchnorm_apply(a, batch, si.c, si.hw(), mean.get(), invstd.get(), alloc(st.out), s);
        if (opt.keep_values) {
          out.bn_mean[st.bn] = std::move(mean);
          out.bn_invstd[st.bn] = std::move(invstd);
        }
        break;
      }
      case StepKind::kRelu:
        if (opt.report_sites && on_site) on_site(st.site, a, si.numel());
        if (L.materialize[i]) kg::launch_relu(a, numel(st.out), alloc(st.out), s);
        break;
      case StepKind::kAdd:
        kg::launch_add(a, b, numel(st.out), alloc(st.out), s);
        break;
      case StepKind::kAvgPool3:
        kg::launch_avgpool3(a, batch * si.c, si.h, si.w, alloc(st.out), s);
        break;
      case StepKind::kAvgPool2:
        kg::launch_avgpool2(a, batch * si.c, si.h, si.w, alloc(st.out), s);
        break;
      case StepKind::kGlobalAvgPool:
        kg::launch_global_avgpool(a, batch * si.c, si.hw(), alloc(st.out), s);
        break;
      case StepKind::kLinear:
        kg::launch_linear(a, batch, si.c, plan.num_classes, bank.slot(net::kSlotLinearWeight),
                          bank.slot(net::kSlotLinearBias), alloc(st.out), s);
        break;
      case StepKind::kBlockEnd:
        if (opt.rescale_blocks) {
          float* v = out.values[st.in0].get();
          kg::launch_tensor_std(v, numel(st.in0), partial, stds + st.block, s);
          kg::launch_divide_by(v, numel(st.in0), stds + st.block, flag, s);
        }
        break;
    }
    if (!opt.keep_values) {
      if (st.in0 >= 0 && L.last_use[st.in0] == static_cast<int>(i)) out.values[st.in0] = {};
      if (st.in1 >= 0 && L.last_use[st.in1] == static_cast<int>(i)) out.values[st.in1] = {};
    }
  }
  out.logits = out.values[L.rep[plan.logits]].get();
  return out;
}

// ---- the scorer -------------------------------------------------------------------------------

// Per-architecture results, written by the device, read after one synchronisation.
struct Results {
  double naswot[2], naswot_once[2];  // log det, singular flag
  double ni;
  double entropy_std[64 * net::kBlockOutputs];
  int entropy_flag[64];
  double eseed_site[256];
  double eig[2][64];                 // ntk, ntk_fast eigenvalues (ascending)
  int eig_info[2];
};

class CudaScorer final : public Scorer {
 public:
  CudaScorer(const ScoreSettings& s, const ScoreInputs& in) : s_(s), raw_(raw_proxies(s.proxies)) {
    raw_.erase(std::remove(raw_.begin(), raw_.end(), Proxy::kNinaswot), raw_.end());
    std::string why;
    const int count = gpu::device_count(&why);
    if (count == 0) throw BackendUnavailable("no usable GPU: " + why + "; --backend cpu works here");
    if (s.device >= count)
      throw BackendUnavailable("--device " + std::to_string(s.device) + " but only " +
                               std::to_string(count) + " GPU(s) are visible");
    if (s.precision == Precision::kFp64)
      throw std::invalid_argument("--precision fp64 is a CPU-backend reference mode");
    if (s.entropy_repeats > 64) throw std::invalid_argument("the CUDA backend takes at most 64 entropy repeats");
    CUDA_CHECK(cudaSetDevice(s.device));
    // Keep freed activation memory in the pool instead of returning it to the driver.
    cudaMemPool_t pool;
    CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, s.device));
    uint64_t threshold = UINT64_MAX;
    CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold));

    const bool default_net = has(Proxy::kNaswot) || has(Proxy::kNaswotOnce) || has(Proxy::kNi) ||
                             has(Proxy::kNtk) || has(Proxy::kNtkFast);
    if (default_net) {
      if (in.images.size() != static_cast<size_t>(s.batch) * net::kImageNumel)
        throw std::invalid_argument("scorer inputs do not hold --batch images");
      std::vector<float> img(in.images.begin(), in.images.end());
      images_ = upload(img);
      bank_default_.emplace(net::WeightBank::generate(net::InitScheme::kDefault, s.score_seed, s.num_classes));
      if (has(Proxy::kNi)) {
        const auto z = net::gaussian_images(s.score_seed, Purpose::kNiNoise, 0, s.batch, 0.05);
        for (size_t i = 0; i < img.size(); ++i) img[i] += z[i];
        noisy_ = upload(img);
      }
    }
    if (has(Proxy::kEntropy))
      for (int r = 0; r < s.entropy_repeats; ++r) {
        bank_entropy_.emplace_back(net::WeightBank::generate(net::InitScheme::kEntropy, s.score_seed, s.num_classes, r));
        entropy_inputs_.push_back(upload(net::gaussian_images(s.score_seed, Purpose::kEntropyInput, r, s.entropy_batch)));
      }
    if (has(Proxy::kEntropySeed)) {
      bank_eseed_.emplace(net::WeightBank::generate(net::InitScheme::kEntropySeed, s.score_seed, s.num_classes));
      eseed_input_ = upload(net::gaussian_images(s.score_seed, Purpose::kEntropySeedInput, 0, s.batch));
    }
    CUDA_CHECK(cudaDeviceSynchronize());
  }

  const char* backend_name() const override { return "cuda"; }

  void score(const std::vector<net::Genes>& archs,
             const std::function<void(size_t, ArchScore&&)>& done) override {
    HN_NVTX_RANGE("score_population");
    const int lanes = std::max(1, std::min<int>(s_.gpu_streams, static_cast<int>(archs.size())));
    // Lanes (streams, library handles, cuDNN plans) live as long as the scorer: a search calls
    // score() once per generation.
    CUDA_CHECK(cudaSetDevice(s_.device));  // lanes' streams and handles belong to the run's device
    while (static_cast<int>(lanes_.size()) < lanes) lanes_.push_back(std::make_unique<LaneState>(s_.tf32));
    std::atomic<size_t> next{0};
    std::mutex mu;
    std::vector<std::optional<ArchScore>> ready(archs.size());
    size_t emitted = 0;
    std::exception_ptr error;
    auto worker = [&](int l) {
      try {
        CUDA_CHECK(cudaSetDevice(s_.device));
        LaneState& lane = *lanes_[l];
        for (size_t i = next++; i < archs.size(); i = next++) {
          {
            std::lock_guard<std::mutex> g(mu);
            if (error) return;
          }
          ArchScore a = score_one(lane.lane, *lane.results.get(), archs[i]);
          std::lock_guard<std::mutex> g(mu);
          ready[i] = std::move(a);
          for (; emitted < archs.size() && ready[emitted]; ++emitted) {
            done(emitted, std::move(*ready[emitted]));
            ready[emitted].reset();
          }
        }
      } catch (...) {
        std::lock_guard<std::mutex> g(mu);
        if (!error) error = std::current_exception();
      }
    };
    std::vector<std::thread> threads;
    for (int l = 0; l < lanes; ++l) threads.emplace_back(worker, l);
    for (auto& t : threads) t.join();
    if (error) std::rethrow_exception(error);
  }

 private:
  bool has(Proxy p) const { return std::find(raw_.begin(), raw_.end(), p) != raw_.end(); }

  ArchScore score_one(Lane& lane, Results& res, const net::Genes& g) {
    HN_NVTX_RANGE("score_architecture");
    if (net::is_degenerate(g)) return degenerate_score(g, raw_);
    ArchScore out;
    out.genes = g;
    const net::Plan plan = net::build_plan(g, s_.num_classes);
    const cudaStream_t s = lane.s();
    std::memset(&res, 0, sizeof(Results));
    gpu::StreamBuffer<Results> dres(1, s);
    CUDA_CHECK(cudaMemsetAsync(dres.get(), 0, sizeof(Results), s));
    gpu::StreamBuffer<double> partial(256, s);
    // Events around each proxy: GPU time per proxy, reported as its seconds.
    std::vector<std::pair<Proxy, std::pair<gpu::Event, gpu::Event>>> timing;
    auto timed = [&](Proxy p, auto&& body) {
      timing.emplace_back(std::piecewise_construct, std::forward_as_tuple(p), std::forward_as_tuple());
      timing.back().second.first.record(s);
      body();
      timing.back().second.second.record(s);
    };
    if (has(Proxy::kNaswot) || has(Proxy::kNaswotOnce) || has(Proxy::kNi))
      timed(has(Proxy::kNaswot) ? Proxy::kNaswot : has(Proxy::kNaswotOnce) ? Proxy::kNaswotOnce : Proxy::kNi,
            [&] { naswot_and_ni(lane, plan, dres.get()); });
    if (has(Proxy::kEntropy)) timed(Proxy::kEntropy, [&] { entropy(lane, plan, dres.get(), partial.get()); });
    if (has(Proxy::kEntropySeed))
      timed(Proxy::kEntropySeed, [&] { entropy_seed(lane, plan, dres.get(), partial.get()); });
    if (has(Proxy::kNtkFast)) timed(Proxy::kNtkFast, [&] { ntk(lane, plan, false, dres.get()); });
    if (has(Proxy::kNtk)) timed(Proxy::kNtk, [&] { ntk(lane, plan, true, dres.get()); });
    CUDA_CHECK(cudaMemcpyAsync(&res, dres.get(), sizeof(Results), cudaMemcpyDeviceToHost, s));
    lane.stream.sync();

    auto seconds = [&](Proxy p) {
      for (auto& [q, ev] : timing)
        if (q == p) return ev.second.since(ev.first) / 1000.0;
      return 0.0;
    };
    auto logdet = [&](const double* r, Proxy p) {
      return r[1] != 0.0 ? worst(p, kFlagSingular) : ProxyValue{r[0], "", 0.0};
    };
    if (has(Proxy::kNaswot)) out[Proxy::kNaswot] = logdet(res.naswot, Proxy::kNaswot);
    if (has(Proxy::kNaswotOnce)) out[Proxy::kNaswotOnce] = logdet(res.naswot_once, Proxy::kNaswotOnce);
    if (has(Proxy::kNi)) out[Proxy::kNi] = ProxyValue{-res.ni, "", 0.0};
    if (has(Proxy::kEntropy)) {
      double total = 0.0;
      bool zero = false;
      for (int r = 0; r < s_.entropy_repeats; ++r) {
        zero = zero || res.entropy_flag[r] != 0;
        double v = std::log(64.0);
        for (int b = 0; b < net::kBlockOutputs; ++b) v += std::log(res.entropy_std[r * net::kBlockOutputs + b]);
        total += v;
      }
      out[Proxy::kEntropy] = zero ? worst(Proxy::kEntropy, kFlagZeroVariance)
                                  : ProxyValue{total / s_.entropy_repeats, "", 0.0};
    }
    if (has(Proxy::kEntropySeed)) {
      double v = 0.0;
      for (size_t i = 0; i < plan.sites.size(); ++i)
        v += plan.sites[i].hooked_modules * std::log(1.0 + res.eseed_site[i] / s_.batch);
      out[Proxy::kEntropySeed] = ProxyValue{v, "", 0.0};
    }
    const int n = std::min(64, s_.batch);
    for (const bool exact : {true, false}) {
      const Proxy p = exact ? Proxy::kNtk : Proxy::kNtkFast;
      if (!has(p)) continue;
      const double* eig = res.eig[exact ? 0 : 1];
      const double lo = eig[0], hi = eig[n - 1];
      const bool ill = res.eig_info[exact ? 0 : 1] != 0 || !(hi > 0) || !(lo > 1e-10 * hi) ||
                       !std::isfinite(lo) || !std::isfinite(hi);
      out[p] = ill ? worst(p, kFlagIllConditioned) : ProxyValue{hi / lo, "", 0.0};
    }
    for (Proxy p : raw_) {
      out[p] = sanitize(p, *out[p]);
      out[p]->seconds = seconds(p);
    }
    // naswot_once and ni share naswot's clean forward: their time is inside naswot's.
    return out;
  }

  void naswot_and_ni(Lane& lane, const net::Plan& plan, Results* dres) {
    HN_NVTX_RANGE("naswot_ni");
    const cudaStream_t s = lane.s();
    const int B = s_.batch;
    const bool want_k = has(Proxy::kNaswot) || has(Proxy::kNaswotOnce);
    gpu::StreamBuffer<int64_t> k(size_t(B) * B, s), k1(size_t(B) * B, s);
    CUDA_CHECK(cudaMemsetAsync(k.get(), 0, sizeof(int64_t) * B * B, s));
    CUDA_CHECK(cudaMemsetAsync(k1.get(), 0, sizeof(int64_t) * B * B, s));
    int64_t max_units = 0;
    for (const auto& site : plan.sites) max_units = std::max(max_units, site.units);
    gpu::StreamBuffer<uint32_t> codes(size_t(B) * ((max_units + 31) / 32), s);
    ForwardOptions opt;
    opt.report_sites = want_k;
    opt.need_logits = has(Proxy::kNi);
    GpuForward clean = gpu_forward(lane, plan, *bank_default_, images_.get(), B, opt,
                                   [&](int site, const float* pre, int64_t units) {
                                     kg::launch_pack_codes(pre, B, units, codes.get(), s);
                                     kg::launch_hamming_accumulate(codes.get(), B, units,
                                                                   plan.sites[site].hooked_modules,
                                                                   plan.sites[site].relu_modules,
                                                                   k.get(), k1.get(), s);
                                   });
    if (want_k) {
      int lwork = 0;
      gpu::StreamBuffer<double> kd(size_t(B) * B, s);
      CUSOLVER_CHECK(cusolverDnDpotrf_bufferSize(lane.cusolver.get(), CUBLAS_FILL_MODE_LOWER, B, kd.get(), B, &lwork));
      gpu::StreamBuffer<double> work(std::max(1, lwork), s);
      gpu::StreamBuffer<int> info(1, s);
      for (const bool once : {false, true}) {
        const int64_t* kk = once ? k1.get() : k.get();
        kg::launch_int64_to_double(kk, int64_t(B) * B, kd.get(), s);
        CUSOLVER_CHECK(cusolverDnDpotrf(lane.cusolver.get(), CUBLAS_FILL_MODE_LOWER, B, kd.get(), B,
                                        work.get(), lwork, info.get()));
        kg::launch_logdet_finalize(kd.get(), kk, B, info.get(), once ? dres->naswot_once : dres->naswot, s);
      }
    }
    if (has(Proxy::kNi)) {
      ForwardOptions nopt;
      nopt.report_sites = false;
      GpuForward noisy = gpu_forward(lane, plan, *bank_default_, noisy_.get(), B, nopt, {});
      kg::launch_sum_squared_diff(clean.logits, noisy.logits, int64_t(B) * plan.num_classes, &dres->ni, s);
    }
  }

  void entropy(Lane& lane, const net::Plan& plan, Results* dres, double* partial) {
    HN_NVTX_RANGE("entropy");
    for (int r = 0; r < s_.entropy_repeats; ++r)
      gpu_forward(lane, plan, bank_entropy_[r], entropy_inputs_[r].get(), s_.entropy_batch,
                  entropy_options(), {}, dres->entropy_std + r * net::kBlockOutputs,
                  dres->entropy_flag + r, partial);
  }

  void entropy_seed(Lane& lane, const net::Plan& plan, Results* dres, double* partial) {
    HN_NVTX_RANGE("entropy_seed");
    ForwardOptions opt;
    opt.need_logits = false;
    gpu_forward(lane, plan, *bank_eseed_, eseed_input_.get(), s_.batch, opt,
                [&](int site, const float* pre, int64_t units) {
                  kg::launch_abs_sum(pre, int64_t(s_.batch) * units, plan.sites[site].inplace, partial,
                                     dres->eseed_site + site, lane.s());
                });
  }

  // Gradients of the summed logits for the first n images (SPEC.md 3), batched over cotangents
  // (exact) or images (fast); the FP64 Gram by chunks; eigenvalues by cuSOLVER.
  void ntk(Lane& lane, const net::Plan& plan, bool exact, Results* dres) {
    HN_NVTX_RANGE(exact ? "ntk" : "ntk_fast");
    const cudaStream_t s = lane.s();
    const int n = std::min(64, s_.batch);
    ForwardOptions fopt;
    fopt.report_sites = false;
    fopt.keep_values = true;
    const LoweredPlan L = lower_plan(plan, fopt);
    GpuForward fwd = gpu_forward(lane, plan, *bank_default_, images_.get(), n, fopt, {});
    // The CPU's gradient layout (engine/cpu_ntk.hpp).
    const NtkLayout layout = ntk_layout(plan, L);
    const int64_t params = layout.params;
    auto offset = [&](int step) { return layout.blocks[layout.block_of_step[step]].offset; };
    int input_value = -1;
    for (const Step& st : L.steps)
      if (st.kind == StepKind::kInput) input_value = st.out;
    gpu::StreamBuffer<float> G(size_t(n) * params, s);
    // Every kept step writes its columns today; zeroing keeps a skipped one from feeding garbage
    // into Theta (the CPU twin zero-fills too).
    CUDA_CHECK(cudaMemsetAsync(G.get(), 0, sizeof(float) * size_t(n) * params, s));
    const int per_chunk = exact ? std::clamp(512 / n, 1, n) : n;
    const int classes = plan.num_classes;
    for (int c0 = 0; c0 < n; c0 += per_chunk) {
      const int cots = std::min(per_chunk, n - c0);
      const kg::GpuRowMap map = exact ? kg::GpuRowMap{cots * n, n, false} : kg::GpuRowMap{n, n, true};
      std::vector<gpu::StreamBuffer<float>> grad(plan.values.size());
      auto grad_of = [&](int v) {
        if (!grad[v]) {
          const size_t sz = size_t(map.rows) * plan.values[v].numel();
          grad[v] = gpu::StreamBuffer<float>(sz, s);
          CUDA_CHECK(cudaMemsetAsync(grad[v].get(), 0, sz * sizeof(float), s));
        }
        return grad[v].get();
      };
      kg::launch_ntk_seed(grad_of(L.rep[plan.logits]), map, classes, c0, s);
      float* g_chunk = G.get() + size_t(exact ? c0 : 0) * params;
      for (int i = static_cast<int>(L.steps.size()) - 1; i >= 0; --i) {
        const Step& st = L.steps[i];
        if (st.out < 0 || !grad[st.out]) continue;
        const float* dy = grad[st.out].get();
        const net::Shape si = st.in0 >= 0 ? plan.values[st.in0] : net::Shape{};
        switch (st.kind) {
          case StepKind::kInput:
          case StepKind::kZero:
          case StepKind::kBlockEnd:
            break;
          case StepKind::kLinear:
            kg::launch_linear_backward(map, dy, fwd.values[st.in0].get(), bank_default_->slot(net::kSlotLinearWeight),
                                       si.c, classes, grad_of(st.in0), g_chunk + offset(i), params, s);
            break;
          case StepKind::kGlobalAvgPool:
            kg::launch_global_avgpool_backward(dy, map.rows * si.c, si.hw(), grad_of(st.in0), s);
            break;
          case StepKind::kRelu:
            kg::launch_relu_backward(map, dy, fwd.values[st.in0].get(), si.numel(), grad_of(st.in0), s);
            break;
          case StepKind::kBatchNorm:
            kg::launch_batchnorm_backward(map, dy, fwd.values[st.out].get(), si.c, si.hw(),
                                          fwd.bn_invstd[st.bn].get(), !exact, grad_of(st.in0),
                                          g_chunk + offset(i), params, s);
            break;
          case StepKind::kAdd: {
            const int64_t cnt = int64_t(map.rows) * plan.values[st.out].numel();
            kg::launch_accumulate(dy, cnt, grad_of(st.in0), s);
            kg::launch_accumulate(dy, cnt, grad_of(st.in1), s);
            break;
          }
          case StepKind::kAvgPool3:
            kg::launch_avgpool3_backward(dy, map.rows * si.c, si.h, si.w, grad_of(st.in0), s);
            break;
          case StepKind::kAvgPool2:
            kg::launch_avgpool2_backward(dy, map.rows * si.c, si.h, si.w, grad_of(st.in0), s);
            break;
          case StepKind::kConv:
            conv_backward(lane, plan, st, si, map, n, dy, fwd.values[st.in0].get(), st.in0 != input_value,
                          grad_of, g_chunk + offset(i), params, exact);
            break;
        }
        grad[st.out] = {};
      }
      if (!exact) break;
    }
    // Theta = G G^T in FP64, 4,096 columns at a time (lower triangle, column-major).
    gpu::StreamBuffer<double> theta(size_t(n) * n, s), chunk(size_t(n) * 4096, s);
    CUDA_CHECK(cudaMemsetAsync(theta.get(), 0, sizeof(double) * n * n, s));
    const double one = 1.0;
    for (int64_t c = 0; c < params; c += 4096) {
      const int64_t w = std::min<int64_t>(4096, params - c);
      kg::launch_float_to_double(G.get() + c, n, w, params, chunk.get(), s);
      CUBLAS_CHECK(cublasDsyrk(lane.cublas.get(), CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_T, n, static_cast<int>(w),
                               &one, chunk.get(), static_cast<int>(w), &one, theta.get(), n));
    }
    int lwork = 0;
    const int slot = exact ? 0 : 1;
    CUSOLVER_CHECK(cusolverDnDsyevd_bufferSize(lane.cusolver.get(), CUSOLVER_EIG_MODE_NOVECTOR, CUBLAS_FILL_MODE_LOWER,
                                               n, theta.get(), n, dres->eig[slot], &lwork));
    gpu::StreamBuffer<double> work(std::max(1, lwork), s);
    CUSOLVER_CHECK(cusolverDnDsyevd(lane.cusolver.get(), CUSOLVER_EIG_MODE_NOVECTOR, CUBLAS_FILL_MODE_LOWER, n,
                                    theta.get(), n, dres->eig[slot], work.get(), lwork, &dres->eig_info[slot]));
  }

  // dX += conv^T(dY) through cuDNN; per-cotangent weight gradients by one strided-batched GEMM
  // over an im2col of the n forward images (see engine/cpu_ntk.cpp for the math).
  template <typename GradOf>
  void conv_backward(Lane& lane, const net::Plan& plan, const Step& st, const net::Shape& si,
                     const kg::GpuRowMap& map, int n, const float* dy, const float* x, bool need_dx,
                     GradOf& grad_of, float* dw, int64_t params, bool exact) {
    const cudaStream_t s = lane.s();
    const net::SlotInfo info = net::slot_info(st.slot, plan.num_classes);
    const kernels::ConvShape cs{map.rows, si.c, si.h, si.w, info.cout, st.k, st.stride, st.pad};
    if (need_dx) lane.conv.backward_data_accumulate(cs, dy, bank_default_->slot(st.slot), grad_of(st.in0));
    const int kdim = si.c * st.k * st.k;
    const int ohw = static_cast<int>(plan.values[st.out].hw());
    const int64_t nhw = int64_t(n) * ohw;
    gpu::StreamBuffer<float> col(size_t(kdim) * nhw, s);
    kg::launch_im2col(x, n, si.c, si.h, si.w, st.k, st.stride, st.pad, col.get(), s);
    const float one = 1.0f, zero = 0.0f;
    if (exact) {
      // dY [g][n][cout][ohw] -> [g][cout][n * ohw], then dW_g = dY'_g col^T for every g at once.
      const int cots = map.rows / n;
      gpu::StreamBuffer<float> t(size_t(map.rows) * info.cout * ohw, s);
      kg::launch_transpose_rows(dy, cots, n, info.cout, ohw, t.get(), s);
      CUBLAS_CHECK(cublasSgemmStridedBatched(lane.cublas.get(), CUBLAS_OP_T, CUBLAS_OP_N, kdim, info.cout,
                                             static_cast<int>(nhw), &one, col.get(), static_cast<int>(nhw), 0,
                                             t.get(), static_cast<int>(nhw), int64_t(info.cout) * nhw, &zero,
                                             dw, kdim, params, cots));
    } else {
      // dW_r = dY_r col_r^T, col_r = the r-th image's columns of col.
      CUBLAS_CHECK(cublasSgemmStridedBatched(lane.cublas.get(), CUBLAS_OP_T, CUBLAS_OP_N, kdim, info.cout, ohw,
                                             &one, col.get(), static_cast<int>(nhw), ohw, dy, ohw,
                                             int64_t(info.cout) * ohw, &zero, dw, kdim, params, map.rows));
    }
  }

  struct LaneState {
    explicit LaneState(bool tf32) : lane(tf32), results(1) {}
    Lane lane;
    gpu::PinnedBuffer<Results> results;
  };

  ScoreSettings s_;
  std::vector<Proxy> raw_;
  std::vector<std::unique_ptr<LaneState>> lanes_;
  gpu::DeviceBuffer<float> images_, noisy_, eseed_input_;
  std::optional<DeviceBank> bank_default_, bank_eseed_;
  std::vector<DeviceBank> bank_entropy_;
  std::vector<gpu::DeviceBuffer<float>> entropy_inputs_;
};

}  // namespace

std::unique_ptr<Scorer> make_cuda_scorer(const ScoreSettings& settings, const ScoreInputs& inputs) {
  settings.validate();
  try {
    return std::make_unique<CudaScorer>(settings, inputs);
  } catch (const GpuError& e) {
    throw BackendUnavailable(std::string("GPU setup failed: ") + e.what());
  }
}

}  // namespace hn::engine
