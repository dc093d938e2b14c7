// CUDA backend, both spaces (the plans carry the shapes, the banks the space's slots): a lane
// (stream + cuBLAS / cuSOLVER / cuDNN handles) per host thread; each lane
// scores population slices of the list, lanes run concurrently. Per slice, the forward proxies run
// on the population executor (engine/cuda_population.hpp: one cuDNN call per grouped convolution,
// one segmented launch per other grouped step), and so do the NTK proxies' backward passes
// (engine/cuda_ntk.hpp); results land in pinned memory and the lane synchronises once per slice. Activations use the stream-ordered
// allocator (cudaMallocAsync), allocated on produce and freed after their last use.
#include "engine/cuda_scorer.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <exception>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>

#include "engine/cpu_forward.hpp"  // ForwardOptions, lower_plan, entropy_options
#include "engine/cpu_ntk.hpp"      // ntk_forward_options
#include "engine/cuda_lane.hpp"
#include "engine/cuda_ntk.hpp"
#include "engine/cuda_population.hpp"
#include "engine/feature_proxies.hpp"
#include "kernels/cudnn_conv.hpp"
#include "kernels/gpu_kernels.cuh"
#include "kernels/gpu_population.cuh"
#include "kernels/gpu_resources.hpp"
#include "kernels/linalg.hpp"
#include "kernels/nvtx.hpp"
#include "net/weight_bank.hpp"

namespace hn::engine {

namespace {

namespace kg = kernels::gpu;

// ---- the scorer -------------------------------------------------------------------------------

// Per-architecture results, written by the device, read after one synchronisation.
struct Results {
  double naswot[2], naswot_once[2];  // log det, singular flag
  double ni;
  double entropy_std[64 * net::kBlockOutputs];  // repeat r's block b at r * kBlockOutputs + b
  int entropy_flag[64];
  double eseed_site[256];                        // per ReLU site of the plan
  double eig[2][64];                 // ntk, ntk_fast eigenvalues (ascending)
  int eig_info[2];
};

class CudaScorer final : public Scorer {
 public:
  CudaScorer(const ScoreSettings& s, const ScoreInputs& in)
      : s_(s), raw_(raw_proxies(s.proxies)), features_(s, raw_proxies(s.proxies), in.images) {
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
    // A block freed on one lane's stream is reused by that lane only (no opportunistic reuse, no
    // dependencies inserted between streams): lanes never wait on each other's frees.
    int no = 0;
    CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolReuseAllowOpportunistic, &no));
    CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolReuseAllowInternalDependencies, &no));

    const bool default_net = has(Proxy::kNaswot) || has(Proxy::kNaswotOnce) || has(Proxy::kNi) ||
                             has(Proxy::kNtk) || has(Proxy::kNtkFast) || has(Proxy::kZico);
    if (default_net) {
      if (in.images.size() != static_cast<size_t>(s.batch) * net::kImageNumel)
        throw std::invalid_argument("scorer inputs do not hold --batch images");
      std::vector<float> img(in.images.begin(), in.images.end());
      images_ = upload(img);
      if (has(Proxy::kZico)) {  // ZiCo runs on the host (the CPU twin) for now
        check_zico_labels(in.labels, s);
        labels_ = in.labels;
        host_images_ = img;
        host_bank_.emplace(net::WeightBank::generate(net::InitScheme::kDefault, s.score_seed, s.num_classes, 0, s.space));
      }
      bank_default_.emplace(net::WeightBank::generate(net::InitScheme::kDefault, s.score_seed, s.num_classes, 0, s.space));
      if (has(Proxy::kNi)) {
        const auto z = net::gaussian_images(s.score_seed, Purpose::kNiNoise, 0, s.batch, 0.05);
        for (size_t i = 0; i < img.size(); ++i) img[i] += z[i];
        noisy_ = upload(img);
      }
    }
    if (has(Proxy::kEntropy))
      for (int r = 0; r < s.entropy_repeats; ++r) {
        bank_entropy_.emplace_back(
            net::WeightBank::generate(net::InitScheme::kEntropy, s.score_seed, s.num_classes, r, s.space));
        entropy_inputs_.push_back(upload(net::gaussian_images(s.score_seed, Purpose::kEntropyInput, r, s.entropy_batch)));
      }
    if (has(Proxy::kSynflow) || has(Proxy::kLogsynflow)) bank_abs_.emplace(synflow_bank(s.score_seed, s.num_classes, s.space));
    if (has(Proxy::kEntropySeed)) {
      bank_eseed_.emplace(
          net::WeightBank::generate(net::InitScheme::kEntropySeed, s.score_seed, s.num_classes, 0, s.space));
      eseed_input_ = upload(net::gaussian_images(s.score_seed, Purpose::kEntropySeedInput, 0, s.batch));
    }
    CUDA_CHECK(cudaDeviceSynchronize());
  }

  const char* backend_name() const override { return "cuda"; }

  // Architectures are scored in populations (engine/cuda_population.hpp): slices of the list, one
  // per lane at a time, each a grouped forward pass per proxy; a slice that runs out of device
  // memory is split in halves and retried, never failed. `done` is called in input order.
  void score(const std::vector<net::Arch>& archs,
             const std::function<void(size_t, ArchScore&&)>& done) override {
    HN_NVTX_RANGE("score_population");
    require_space(archs, s_.space);
    CUDA_CHECK(cudaSetDevice(s_.device));  // lanes' streams and handles belong to the run's device
    const size_t slice = population_slice();
    std::vector<std::pair<size_t, size_t>> slices;
    for (size_t start = 0; start < archs.size(); start += slice)
      slices.emplace_back(start, std::min(archs.size(), start + slice));
    const int lanes = std::max(1, std::min<int>(s_.gpu_streams, static_cast<int>(slices.size())));
    // Lanes (streams, library handles, cuDNN plans) live as long as the scorer: a search calls
    // score() once per generation.
    while (static_cast<int>(lanes_.size()) < lanes) lanes_.push_back(std::make_unique<Lane>(s_.tf32));
    std::atomic<size_t> next{0};
    std::mutex mu;
    std::vector<std::optional<ArchScore>> ready(archs.size());
    size_t emitted = 0;
    std::exception_ptr error;
    auto worker = [&](int l) {
      try {
        CUDA_CHECK(cudaSetDevice(s_.device));
        Lane& lane = *lanes_[l];
        for (size_t i = next++; i < slices.size(); i = next++) {
          {
            std::lock_guard<std::mutex> g(mu);
            if (error) return;
          }
          const std::vector<net::Arch> part(archs.begin() + static_cast<std::ptrdiff_t>(slices[i].first),
                                             archs.begin() + static_cast<std::ptrdiff_t>(slices[i].second));
          std::vector<ArchScore> scored = score_split(lane, part);
          std::lock_guard<std::mutex> g(mu);
          for (size_t j = 0; j < scored.size(); ++j) ready[slices[i].first + j] = std::move(scored[j]);
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

  // Members per population slice: --population-batch, else what half the free device memory
  // holds across the lanes (about 12 live activations of the widest full-resolution tensor of
  // the space per member: NB201's stem, NATS-SSS's widest first layer), at most
  // 1,024 and at most 2^17 images per grouped convolution (cuDNN's 32-bit element counts).
  size_t population_slice() const {
    if (s_.population_batch > 0) return static_cast<size_t>(s_.population_batch);
    size_t free_bytes = 0, total_bytes = 0;
    CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
    const int64_t images = std::max(s_.batch, s_.entropy_batch);
    const int64_t per_member =
        images * net::max_full_resolution_channels(s_.space) * net::kImageSize * net::kImageSize * 4 * 12;
    const int64_t lanes = std::max(1, s_.gpu_streams);
    const int64_t fit = static_cast<int64_t>(free_bytes / 2) / lanes / std::max<int64_t>(1, per_member);
    return static_cast<size_t>(std::clamp<int64_t>(fit, 1, std::min<int64_t>(1024, (int64_t(1) << 17) / images)));
  }

  // score_slice, splitting the slice in halves while device memory runs out.
  std::vector<ArchScore> score_split(Lane& lane, const std::vector<net::Arch>& part) {
    try {
      return score_slice(lane, part);
    } catch (const GpuError& e) {
      if (e.status() != "cudaErrorMemoryAllocation" || part.size() < 2) throw;
      CUDA_CHECK(cudaStreamSynchronize(lane.s()));  // the failed slice's frees complete
      (void)cudaGetLastError();
      const auto mid = part.begin() + static_cast<std::ptrdiff_t>(part.size() / 2);
      std::vector<ArchScore> out = score_split(lane, std::vector<net::Arch>(part.begin(), mid));
      std::vector<ArchScore> rest = score_split(lane, std::vector<net::Arch>(mid, part.end()));
      for (auto& r : rest) out.push_back(std::move(r));
      return out;
    }
  }

  std::vector<ArchScore> score_slice(Lane& lane, const std::vector<net::Arch>& archs) {
    HN_NVTX_RANGE("score_slice");
    std::vector<ArchScore> out;
    const RunnableMembers rm = runnable_members(archs, s_.num_classes, raw_, out);
    const std::vector<size_t>& run = rm.index;
    const std::vector<const net::Plan*>& pp = rm.members;
    if (run.empty()) return out;
    for (const net::Plan* p : pp)
      if (p->num_blocks > net::kBlockOutputs || p->sites.size() > sizeof(Results::eseed_site) / sizeof(double))
        throw std::logic_error("CudaScorer: a plan with more blocks or ReLU sites than Results holds");
    const size_t P = pp.size();
    const cudaStream_t s = lane.s();
    gpu::StreamBuffer<Results> dres(P, s);
    CUDA_CHECK(cudaMemsetAsync(dres.get(), 0, sizeof(Results) * P, s));
    // Events around each proxy: GPU time per proxy, shared equally by the slice's members.
    std::vector<std::pair<Proxy, std::pair<gpu::Event, gpu::Event>>> timing;
    auto timed = [&](Proxy p, auto&& body) {
      timing.emplace_back(std::piecewise_construct, std::forward_as_tuple(p), std::forward_as_tuple());
      timing.back().second.first.record(s);
      body();
      timing.back().second.second.record(s);
    };
    if (has(Proxy::kNaswot) || has(Proxy::kNaswotOnce) || has(Proxy::kNi))
      timed(has(Proxy::kNaswot) ? Proxy::kNaswot : has(Proxy::kNaswotOnce) ? Proxy::kNaswotOnce : Proxy::kNi,
            [&] { naswot_and_ni(lane, pp, dres.get()); });
    if (has(Proxy::kEntropy)) timed(Proxy::kEntropy, [&] { entropy(lane, pp, dres.get()); });
    if (has(Proxy::kEntropySeed)) timed(Proxy::kEntropySeed, [&] { entropy_seed(lane, pp, dres.get()); });
    if (has(Proxy::kNtkFast)) timed(Proxy::kNtkFast, [&] { ntk(lane, pp, false, dres.get()); });
    if (has(Proxy::kNtk)) timed(Proxy::kNtk, [&] { ntk(lane, pp, true, dres.get()); });
    gpu::PinnedBuffer<Results> host(P);
    CUDA_CHECK(cudaMemcpyAsync(host.get(), dres.get(), sizeof(Results) * P, cudaMemcpyDeviceToHost, s));
    // SynFlow / LogSynflow run on the host (the CPU twin, FP64: values reach 1e50, beyond FP32; the
    // device executor is FP32) while the device works on the slice.
    // ZiCo likewise (FP32, the CPU twin) until it has a device path. Seconds per member.
    auto on_host = [&](bool wanted, auto& values, auto&& f) {
      if (!wanted) return 0.0;
      const auto t0 = std::chrono::steady_clock::now();
      values.resize(P);
      for (size_t m = 0; m < P; ++m) values[m] = f(*pp[m]);
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / double(P);
    };
    std::vector<SynflowValues> syn;
    std::vector<double> zico;
    const double syn_secs = on_host(has(Proxy::kSynflow) || has(Proxy::kLogsynflow), syn,
                                    [&](const net::Plan& p) { return cpu_synflow(p, *bank_abs_); });
    const double zico_secs = on_host(has(Proxy::kZico), zico, [&](const net::Plan& p) {
      return cpu_zico<float>(p, *host_bank_, host_images_.data(), labels_, s_.batch);
    });
    // swap, swap_reg, meco and the az_* proxies: on the host too (engine/feature_proxies), until
    // they have device paths.
    std::vector<std::vector<std::pair<Proxy, ProxyValue>>> feat(P);
    if (features_.any())
      features_.score(pp, [&](size_t m, Proxy p, ProxyValue v) { feat[m].emplace_back(p, std::move(v)); });
    lane.stream.sync();
    auto seconds = [&](Proxy p) {
      for (auto& [q, ev] : timing)
        if (q == p) return ev.second.since(ev.first) / 1000.0 / static_cast<double>(P);
      return 0.0;
    };
    for (size_t m = 0; m < P; ++m) {
      ArchScore& a = out[run[m]];
      a = to_score(host[m], *pp[m], syn.empty() ? SynflowValues{} : syn[m], zico.empty() ? 0.0 : zico[m]);
      a.arch = archs[run[m]];
      for (Proxy p : raw_)
        if (a[p])
          a[p]->seconds = p == Proxy::kSynflow || p == Proxy::kLogsynflow ? syn_secs
                          : p == Proxy::kZico                             ? zico_secs
                                                                          : seconds(p);
      for (auto& [p, v] : feat[m]) a[p] = sanitize(p, std::move(v));
    }
    // naswot_once and ni share naswot's clean forward: their time is inside naswot's.
    return out;
  }

  // A member's proxies from its results (device values read back).
  ArchScore to_score(const Results& res, const net::Plan& plan, const SynflowValues& syn, double zico) const {
    ArchScore out;
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
        for (int b = 0; b < plan.num_blocks; ++b) v += std::log(res.entropy_std[r * net::kBlockOutputs + b]);
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
    if (has(Proxy::kParams)) out[Proxy::kParams] = ProxyValue{net::nb201_params_m(plan), "", 0.0};
    if (has(Proxy::kFlops)) out[Proxy::kFlops] = ProxyValue{net::nb201_flops_m(plan), "", 0.0};
    if (has(Proxy::kSynflow)) out[Proxy::kSynflow] = ProxyValue{syn.synflow, "", 0.0};
    if (has(Proxy::kLogsynflow)) out[Proxy::kLogsynflow] = ProxyValue{syn.logsynflow, "", 0.0};
    if (has(Proxy::kZico))
      out[Proxy::kZico] = std::isnan(zico) ? worst(Proxy::kZico, kFlagZeroVariance) : ProxyValue{zico, "", 0.0};
    for (Proxy p : raw_)
      if (out[p]) out[p] = sanitize(p, *out[p]);  // the host-side feature proxies come later
    return out;
  }

  // One clean grouped forward gives every member's Hamming kernels (codes packed and accumulated
  // per grouped ReLU site) and clean logits; the log-determinants by one batched Cholesky; ni adds
  // one noisy grouped forward and one segmented sum of squared differences.
  void naswot_and_ni(Lane& lane, const std::vector<const net::Plan*>& pp, Results* dres) {
    HN_NVTX_RANGE("naswot_ni");
    const cudaStream_t s = lane.s();
    const int B = s_.batch;
    const int P = static_cast<int>(pp.size());
    const bool want_k = has(Proxy::kNaswot) || has(Proxy::kNaswotOnce);
    const int64_t bb = int64_t(B) * B;
    std::optional<gpu::StreamBuffer<int64_t>> k, k1;
    if (want_k) {
      k.emplace(size_t(P) * bb, s);
      k1.emplace(size_t(P) * bb, s);
      CUDA_CHECK(cudaMemsetAsync(k->get(), 0, sizeof(int64_t) * P * bb, s));
      CUDA_CHECK(cudaMemsetAsync(k1->get(), 0, sizeof(int64_t) * P * bb, s));
    }
    ForwardOptions opt;
    opt.report_sites = want_k;
    opt.need_logits = has(Proxy::kNi);
    const PopulationSchedule clean_schedule(pp, opt);
    GpuPopulationHooks hooks;
    hooks.on_sites = [&](const std::vector<int>& members, const std::vector<int>& sites,
                         const std::vector<const float*>& pre, int64_t units) {
      const int count = static_cast<int>(members.size());
      gpu::StreamBuffer<uint32_t> codes(size_t(count) * B * ((units + 31) / 32), s);
      std::vector<int64_t*> kp(count), k1p(count);
      std::vector<int64_t> w1(count), w2(count);
      for (int j = 0; j < count; ++j) {
        kp[j] = k->get() + members[j] * bb;
        k1p[j] = k1->get() + members[j] * bb;
        const net::Site& site = pp[members[j]]->sites[sites[j]];
        w1[j] = site.hooked_modules;
        w2[j] = site.relu_modules;
      }
      kg::launch_seg_naswot_site(pre.data(), count, B, units, codes.get(), kp.data(), k1p.data(), w1.data(),
                                 w2.data(), s);
    };
    const GpuPopulationForward clean =
        gpu_forward_population(lane, clean_schedule, *bank_default_, images_.get(), B, opt, hooks);
    if (want_k) {
      // Every member's K as FP64, one batched Cholesky, one batched log-determinant.
      gpu::StreamBuffer<double> kd(size_t(P) * bb, s);
      gpu::StreamBuffer<int> info(P, s);
      gpu::StreamBuffer<double*> ptrs(P, s);
      std::vector<double*> host_ptrs(P);
      for (int j = 0; j < P; ++j) host_ptrs[j] = kd.get() + j * bb;
      CUDA_CHECK(cudaMemcpyAsync(ptrs.get(), host_ptrs.data(), sizeof(double*) * P, cudaMemcpyHostToDevice, s));
      constexpr int64_t stride = sizeof(Results) / sizeof(double);
      static_assert(sizeof(Results) % sizeof(double) == 0, "Results is an array of doubles' stride");
      for (const bool once : {false, true}) {
        const int64_t* kk = once ? k1->get() : k->get();
        kg::launch_int64_to_double(kk, int64_t(P) * bb, kd.get(), s);
        CUSOLVER_CHECK(cusolverDnDpotrfBatched(lane.cusolver.get(), CUBLAS_FILL_MODE_LOWER, B, ptrs.get(), B,
                                               info.get(), P));
        double* first = once ? dres[0].naswot_once : dres[0].naswot;
        kg::launch_batched_logdet_finalize(kd.get(), kk, B, P, info.get(), first, stride, s);
      }
      // The pageable pointer copy above was staged before cudaMemcpyAsync returned.
    }
    if (has(Proxy::kNi)) {
      ForwardOptions nopt;
      nopt.report_sites = false;
      const PopulationSchedule noisy_schedule(pp, nopt);
      const GpuPopulationForward noisy =
          gpu_forward_population(lane, noisy_schedule, *bank_default_, noisy_.get(), B, nopt, {});
      std::vector<double*> outs(P);
      for (int j = 0; j < P; ++j) outs[j] = &dres[j].ni;
      kg::launch_seg_sum_squared_diff(clean.logits.data(), noisy.logits.data(), P, int64_t(B) * s_.num_classes,
                                      outs.data(), s);
    }
  }

  void entropy(Lane& lane, const std::vector<const net::Plan*>& pp, Results* dres) {
    HN_NVTX_RANGE("entropy");
    const ForwardOptions opt = entropy_options();
    const PopulationSchedule schedule(pp, opt);
    for (int r = 0; r < s_.entropy_repeats; ++r) {
      GpuPopulationHooks hooks;
      hooks.block_std = [&](int m, int block) { return dres[m].entropy_std + r * net::kBlockOutputs + block; };
      hooks.block_flag = [&](int m) { return dres[m].entropy_flag + r; };
      gpu_forward_population(lane, schedule, bank_entropy_[r], entropy_inputs_[r].get(), s_.entropy_batch, opt,
                             hooks);
    }
  }

  void entropy_seed(Lane& lane, const std::vector<const net::Plan*>& pp, Results* dres) {
    HN_NVTX_RANGE("entropy_seed");
    ForwardOptions opt;
    opt.need_logits = false;
    const PopulationSchedule schedule(pp, opt);
    GpuPopulationHooks hooks;
    hooks.on_sites = [&](const std::vector<int>& members, const std::vector<int>& sites,
                         const std::vector<const float*>& pre, int64_t units) {
      // Sites that are the head's in-place ReLU sum max(x, 0); the others |x|.
      for (const bool inplace : {false, true}) {
        std::vector<const float*> xs;
        std::vector<double*> outs;
        for (size_t j = 0; j < members.size(); ++j)
          if (pp[members[j]]->sites[sites[j]].inplace == inplace) {
            xs.push_back(pre[j]);
            outs.push_back(dres[members[j]].eseed_site + sites[j]);
          }
        if (!xs.empty())
          kg::launch_seg_abs_sum(xs.data(), static_cast<int>(xs.size()), int64_t(s_.batch) * units, inplace,
                                 outs.data(), lane.s());
      }
    };
    gpu_forward_population(lane, schedule, *bank_eseed_, eseed_input_.get(), s_.batch, opt, hooks);
  }

  // The NTK proxies of the slice on the population schedule (engine/cuda_ntk.hpp), in passes of
  // as many members as half the free device memory holds across the lanes (at least one), with
  // every cuDNN tensor of a pass (members x gradient rows x a value) under 2^31 elements (the
  // legacy descriptors' limit). A pass that runs out of memory is halved and retried here.
  void ntk(Lane& lane, const std::vector<const net::Plan*>& pp, bool exact, Results* dres) {
    const int n = std::min(64, s_.batch);
    const int slot = exact ? 0 : 1;
    const int64_t rows = exact ? int64_t(n) * n : n;
    size_t free_bytes = 0, total_bytes = 0;
    CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
    const int64_t budget = static_cast<int64_t>(free_bytes / 2) / std::max(1, s_.gpu_streams);
    std::vector<int64_t> bytes(pp.size()), elements(pp.size());
    for (size_t m = 0; m < pp.size(); ++m) {
      bytes[m] = gpu_ntk_bytes_per_member(*pp[m], n, exact);
      int64_t largest = 0;
      for (const net::Shape& v : pp[m]->values) largest = std::max(largest, v.numel());
      elements[m] = std::max(rows, int64_t(n)) * largest;
    }
    constexpr int64_t kMaxElements = (int64_t(1) << 31) - 1;
    size_t cap = pp.size();  // lowered when a pass runs out of memory
    for (size_t start = 0; start < pp.size();) {
      size_t end = start + 1;
      int64_t used = bytes[start], elems = elements[start];
      while (end < pp.size() && end - start < cap && used + bytes[end] <= budget && elems + elements[end] <= kMaxElements) {
        used += bytes[end];
        elems += elements[end];
        ++end;
      }
      const std::vector<const net::Plan*> part(pp.begin() + static_cast<std::ptrdiff_t>(start),
                                               pp.begin() + static_cast<std::ptrdiff_t>(end));
      try {
        const PopulationSchedule schedule(part, ntk_forward_options());
        gpu_ntk_population(lane, schedule, *bank_default_, images_.get(), n, exact, dres[start].eig[slot],
                           sizeof(Results), &dres[start].eig_info[slot], sizeof(Results));
      } catch (const GpuError& e) {
        if (e.status() != "cudaErrorMemoryAllocation" || part.size() < 2) throw;
        CUDA_CHECK(cudaStreamSynchronize(lane.s()));  // the failed pass's frees complete
        (void)cudaGetLastError();
        cap = part.size() / 2;
        continue;
      }
      start = end;
    }
  }

  ScoreSettings s_;
  std::vector<Proxy> raw_;
  std::vector<std::unique_ptr<Lane>> lanes_;
  gpu::DeviceBuffer<float> images_, noisy_, eseed_input_;
  std::optional<DeviceBank> bank_default_, bank_eseed_;
  std::optional<TypedBank<double>> bank_abs_;  // SynFlow's |parameters| (host)
  std::optional<TypedBank<float>> host_bank_;  // ZiCo's host path: the scoring bank, images, labels
  std::vector<float> host_images_;
  std::vector<int> labels_;
  std::vector<DeviceBank> bank_entropy_;
  std::vector<gpu::DeviceBuffer<float>> entropy_inputs_;
  FeatureProxies<float> features_;  // swap, swap_reg, meco, az_* (host)
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
