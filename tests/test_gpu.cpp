// GPU tests (named Gpu*): each CUDA kernel against its CPU twin on identical FP32 inputs (integer
// outputs exactly, the rest with a tolerance, printing the first mismatches), the CUDA scorer
// against the CPU scorer end to end in SPEC.md 7's FP32 regime (batch 16, and batch 128 for the
// chunked exact NTK), and the GA's device path against its host path. Without a GPU every Gpu*
// test is skipped (a skip is not a pass). Fp32Rule.* checks the FP32 rule's helper on the CPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>

#include "engine/cpu_ntk.hpp"
#include "engine/cuda_scorer.hpp"
#include "engine/distributed_scorer.hpp"
#include "engine/search.hpp"
#include "kernels/cpu_backward.hpp"
#include "kernels/cpu_ops.hpp"
#include "kernels/cudnn_conv.hpp"
#include "kernels/gpu_kernels.cuh"
#include "kernels/gpu_population.cuh"
#include "kernels/linalg.hpp"
#include "net/sampling.hpp"
#include "engine/cpu_proxies.hpp"
#include "kernels/gpu_resources.hpp"
#include "kernels/hamming.hpp"
#include "fp32_rule.hpp"
#include "test_util.hpp"

using namespace hn;
namespace kg = hn::kernels::gpu;
using engine::Proxy;

namespace {

#define SKIP_WITHOUT_GPU()                                                    \
  do {                                                                        \
    std::string why_;                                                         \
    if (gpu::device_count(&why_) == 0) GTEST_SKIP() << "no GPU: " << why_;    \
  } while (0)

std::vector<float> randn(size_t n, unsigned seed, float scale = 1.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

template <typename T>
gpu::DeviceBuffer<T> dev(const std::vector<T>& v) {
  gpu::DeviceBuffer<T> d(v.size());
  CUDA_CHECK(cudaMemcpy(d.get(), v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
  // Pageable copies and memsets on the legacy stream may still be in flight when they return; the
  // kernels under test run on non-blocking streams that do not wait for it.
  CUDA_CHECK(cudaDeviceSynchronize());
  return d;
}
template <typename T>
gpu::DeviceBuffer<T> dev_zeros(size_t n) {
  gpu::DeviceBuffer<T> d(n);
  CUDA_CHECK(cudaMemset(d.get(), 0, n * sizeof(T)));
  CUDA_CHECK(cudaDeviceSynchronize());
  return d;
}
template <typename T>
std::vector<T> host(const gpu::DeviceBuffer<T>& d) {
  CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<T> v(d.size());
  CUDA_CHECK(cudaMemcpy(v.data(), d.get(), v.size() * sizeof(T), cudaMemcpyDeviceToHost));
  return v;
}

// |a - b| <= atol + rtol |b| everywhere; prints the first mismatches.
template <typename A, typename B>
void expect_close(const char* what, const std::vector<A>& got, const std::vector<B>& want, double rtol,
                  double atol = 0.0) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int shown = 0;
  size_t bad = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double d = std::abs(double(got[i]) - double(want[i]));
    if (!(d <= atol + rtol * std::abs(double(want[i])))) {
      ++bad;
      if (shown++ < 5) std::printf("  %s mismatch [%zu]: gpu %.9g cpu %.9g\n", what, i, double(got[i]), double(want[i]));
    }
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << want.size() << " elements differ";
}

}  // namespace

TEST(GpuKernels, BatchNormReluPoolsLinearMatchTheCpu) {
  SKIP_WITHOUT_GPU();
  const int B = 6, C = 5, H = 7, W = 9;
  const int64_t HW = H * W, N = int64_t(B) * C * HW;
  const auto x = randn(N, 1);
  auto dx = dev(x);
  // BN statistics and normalise.
  std::vector<double> mean(C), invstd(C);
  kernels::batchnorm_stats(x.data(), B, C, HW, 1e-5, mean.data(), invstd.data());
  auto dmean = dev_zeros<double>(C), dinv = dev_zeros<double>(C);
  kg::launch_batchnorm_stats(dx.get(), B, C, HW, 1e-5, dmean.get(), dinv.get(), 0);
  expect_close("bn mean", host(dmean), mean, 1e-12, 1e-14);
  expect_close("bn invstd", host(dinv), invstd, 1e-12);
  std::vector<float> y(N);
  kernels::batchnorm_apply(x.data(), B, C, HW, mean.data(), invstd.data(), y.data());
  auto dy = dev_zeros<float>(N);
  kg::launch_batchnorm_apply(dx.get(), B, C, HW, dmean.get(), dinv.get(), dy.get(), 0);
  expect_close("bn apply", host(dy), y, 1e-6, 1e-6);
  // ReLU, add.
  kernels::relu_forward(x.data(), N, y.data());
  kg::launch_relu(dx.get(), N, dy.get(), 0);
  expect_close("relu", host(dy), y, 0.0);
  // Pools (same order of operations as the CPU: bit-identical).
  kernels::avgpool3_forward(x.data(), B, C, H, W, y.data());
  kg::launch_avgpool3(dx.get(), B * C, H, W, dy.get(), 0);
  expect_close("avgpool3", host(dy), y, 0.0);
  std::vector<float> y2(int64_t(B) * C * (H / 2) * (W / 2));
  kernels::avgpool2_forward(x.data(), B, C, H, W, y2.data());
  auto dy2 = dev_zeros<float>(y2.size());
  kg::launch_avgpool2(dx.get(), B * C, H, W, dy2.get(), 0);
  expect_close("avgpool2", host(dy2), y2, 0.0);
  std::vector<float> gap(B * C);
  kernels::global_avgpool_forward(x.data(), B, C, HW, gap.data());
  auto dgap = dev_zeros<float>(B * C);
  kg::launch_global_avgpool(dx.get(), B * C, HW, dgap.get(), 0);
  expect_close("global avgpool", host(dgap), gap, 1e-7);
  // Linear, FP64-accumulated on both sides.
  const auto w = randn(10 * C, 2), b = randn(10, 3);
  std::vector<float> lin(B * 10);
  kernels::linear_forward(gap.data(), B, C, 10, w.data(), b.data(), lin.data());
  auto dw = dev(w), db = dev(b);
  auto dlin = dev_zeros<float>(B * 10);
  kg::launch_linear(dgap.get(), B, C, 10, dw.get(), db.get(), dlin.get(), 0);
  expect_close("linear", host(dlin), lin, 0.0);
  // Std and divide (entropy's block ends).
  auto partial = dev_zeros<double>(256), sd = dev_zeros<double>(1);
  auto flag = dev_zeros<int>(1);
  kg::launch_tensor_std(dx.get(), N, partial.get(), sd.get(), 0);
  expect_close("tensor std", host(sd), std::vector<double>{kernels::tensor_std(x.data(), N)}, 1e-12);
  kg::launch_divide_by(dx.get(), N, sd.get(), flag.get(), 0);
  std::vector<float> xd = x;
  kernels::divide_inplace(xd.data(), N, kernels::tensor_std(x.data(), N));
  expect_close("divide", host(dx), xd, 1e-7);
  EXPECT_EQ(host(flag)[0], 0);
}

// The population executor's segmented kernels against the single-tensor CPU kernels applied to
// each member: 520 segments (more than one launch's table of 512) in separate allocations.
TEST(GpuPopulation, SegmentedKernelsMatchTheCpuPerMember) {
  SKIP_WITHOUT_GPU();
  const int G = 520, B = 3, C = 16, H = 8, W = 8, classes = 10;
  const int64_t HW = H * W, per = int64_t(B) * C * HW;
  std::vector<std::vector<float>> xs, x2s;
  std::vector<gpu::DeviceBuffer<float>> dx, dx2, dy;
  std::vector<const float*> px, px2;
  std::vector<float*> py;
  for (int g = 0; g < G; ++g) {
    xs.push_back(randn(per, 100 + g, 1.0f + 0.1f * g));
    x2s.push_back(randn(per, 900 + g));
    dx.push_back(dev(xs.back()));
    dx2.push_back(dev(x2s.back()));
    dy.push_back(dev_zeros<float>(per));
    px.push_back(dx.back().get());
    px2.push_back(dx2.back().get());
    py.push_back(dy.back().get());
  }
  auto each = [&](const char* what, double rtol, double atol, auto cpu) {
    for (int g = 0; g < G; ++g) {
      std::vector<float> want(per, 0.0f);
      const size_t n = cpu(g, want);
      want.resize(n);
      auto got = host(dy[g]);
      got.resize(n);
      expect_close((std::string(what) + " segment " + std::to_string(g)).c_str(), got, want, rtol, atol);
      if (::testing::Test::HasFailure()) return;
    }
  };
  kg::launch_seg_unary(kg::SegUnary::kRelu, px.data(), py.data(), G, per, 0);
  each("seg relu", 0, 0, [&](int g, std::vector<float>& y) { kernels::relu_forward(xs[g].data(), per, y.data()); return size_t(per); });
  kg::launch_seg_add(px.data(), px2.data(), py.data(), G, per, 0);
  each("seg add", 0, 0, [&](int g, std::vector<float>& y) { kernels::add_forward(xs[g].data(), x2s[g].data(), per, y.data()); return size_t(per); });
  kg::launch_seg_avgpool(3, px.data(), py.data(), G, B * C, H, W, 0);
  each("seg avgpool3", 0, 0, [&](int g, std::vector<float>& y) { kernels::avgpool3_forward(xs[g].data(), B, C, H, W, y.data()); return size_t(per); });
  kg::launch_seg_avgpool(2, px.data(), py.data(), G, B * C, H, W, 0);
  each("seg avgpool2", 0, 0, [&](int g, std::vector<float>& y) { kernels::avgpool2_forward(xs[g].data(), B, C, H, W, y.data()); return size_t(per / 4); });
  kg::launch_seg_global_avgpool(px.data(), py.data(), G, B * C, HW, 0);
  each("seg global avgpool", 1e-7, 0, [&](int g, std::vector<float>& y) { kernels::global_avgpool_forward(xs[g].data(), B, C, HW, y.data()); return size_t(B * C); });
  const auto w = randn(size_t(classes) * C, 7), b = randn(classes, 8);
  auto dw = dev(w), db = dev(b);
  kg::launch_seg_linear(px.data(), py.data(), G, B, C, classes, dw.get(), db.get(), 0);
  each("seg linear", 0, 0, [&](int g, std::vector<float>& y) { kernels::linear_forward(xs[g].data(), B, C, classes, w.data(), b.data(), y.data()); return size_t(B * classes); });
  auto mean = dev_zeros<double>(size_t(G) * C), invstd = dev_zeros<double>(size_t(G) * C);
  kg::launch_seg_batchnorm(px.data(), py.data(), G, B, C, HW, 1e-5, mean.get(), invstd.get(), 0);
  const auto gm = host(mean), gi = host(invstd);
  each("seg batchnorm", 1e-6, 1e-6, [&](int g, std::vector<float>& y) {
    std::vector<double> m(C), is(C);
    kernels::batchnorm_stats(xs[g].data(), B, C, HW, 1e-5, m.data(), is.data());
    expect_close("seg bn mean", std::vector<double>(gm.begin() + g * C, gm.begin() + (g + 1) * C), m, 1e-12, 1e-14);
    expect_close("seg bn invstd", std::vector<double>(gi.begin() + g * C, gi.begin() + (g + 1) * C), is, 1e-12);
    kernels::batchnorm_apply(xs[g].data(), B, C, HW, m.data(), is.data(), y.data());
    return size_t(per);
  });
  // The node sum with a fused BN apply (odd segments' first term deferred), against the CPU's
  // apply with the GPU's own statistics, then add: bit for bit.
  {
    std::vector<kg::SegBnInput> ta(G), tb(G);
    for (int g = 0; g < G; ++g) {
      ta[g] = {px[g], g % 2 ? mean.get() + int64_t(g) * C : nullptr, g % 2 ? invstd.get() + int64_t(g) * C : nullptr};
      tb[g] = {px2[g], nullptr, nullptr};
    }
    kg::launch_seg_add_bn(ta.data(), tb.data(), py.data(), G, per, C, HW, 0);
    each("seg add with fused BN", 0, 0, [&](int g, std::vector<float>& y) {
      std::vector<float> t(per);
      if (g % 2) {
        const std::vector<double> m(gm.begin() + g * C, gm.begin() + (g + 1) * C), is(gi.begin() + g * C, gi.begin() + (g + 1) * C);
        kernels::batchnorm_apply(xs[g].data(), B, C, HW, m.data(), is.data(), t.data());
      } else {
        t = xs[g];
      }
      kernels::add_forward(t.data(), x2s[g].data(), per, y.data());
      return size_t(per);
    });
  }
  // Block-end rescale (in place on copies), with one zero tensor that must set its flag.
  std::vector<gpu::DeviceBuffer<float>> dr;
  std::vector<float*> pr;
  for (int g = 0; g < G; ++g) {
    dr.push_back(dev(g == 5 ? std::vector<float>(per, 0.0f) : xs[g]));
    pr.push_back(dr.back().get());
  }
  auto stds = dev_zeros<double>(G);
  auto flags = dev_zeros<int>(G);
  auto scratch = dev_zeros<double>(kg::seg_rescale_scratch_doubles());
  std::vector<double*> ps;
  std::vector<int*> pf;
  for (int g = 0; g < G; ++g) {
    ps.push_back(stds.get() + g);
    pf.push_back(flags.get() + g);
  }
  kg::launch_seg_rescale(pr.data(), G, per, ps.data(), pf.data(), scratch.get(), 0);
  const auto gs = host(stds);
  const auto gf = host(flags);
  for (int g = 0; g < G; ++g) {
    if (g == 5) {
      EXPECT_EQ(gf[g], 1) << "a zero tensor's std must flag";
      continue;
    }
    EXPECT_EQ(gf[g], 0);
    const double want = kernels::tensor_std(xs[g].data(), per);
    EXPECT_NEAR(gs[g], want, 1e-12 * want) << "seg std " << g;
    std::vector<float> xd = xs[g];
    kernels::divide_inplace(xd.data(), per, want);
    expect_close("seg divide", host(dr[g]), xd, 1e-7);
  }
  // NASWOT at a site: codes and K exactly, per member; weights differ per member.
  const int64_t units = C * HW;
  auto codes = dev_zeros<uint32_t>(size_t(G) * B * units / 32);
  auto k = dev_zeros<int64_t>(size_t(G) * B * B), k1 = dev_zeros<int64_t>(size_t(G) * B * B);
  std::vector<int64_t*> pk, pk1;
  std::vector<int64_t> w1, w2;
  for (int g = 0; g < G; ++g) {
    pk.push_back(k.get() + int64_t(g) * B * B);
    pk1.push_back(k1.get() + int64_t(g) * B * B);
    w1.push_back(1 + g % 3);
    w2.push_back(1 + g % 2);
  }
  kg::launch_seg_naswot_site(px.data(), G, B, units, codes.get(), pk.data(), pk1.data(), w1.data(), w2.data(), 0);
  const auto gk = host(k), gk1 = host(k1);
  for (int g = 0; g < G; ++g) {
    std::vector<uint64_t> c(size_t(B) * kernels::code_words(units));
    kernels::pack_relu_codes(xs[g].data(), B, units, c.data());
    std::vector<int64_t> want(B * B, 0), want1(B * B, 0);
    kernels::hamming_accumulate(c.data(), B, units, w1[g], want.data());
    kernels::hamming_accumulate(c.data(), B, units, w2[g], want1.data());
    EXPECT_EQ(std::vector<int64_t>(gk.begin() + g * B * B, gk.begin() + (g + 1) * B * B), want) << "K " << g;
    EXPECT_EQ(std::vector<int64_t>(gk1.begin() + g * B * B, gk1.begin() + (g + 1) * B * B), want1) << "K_once " << g;
  }
  // Per-member FP64 sums.
  auto sq = dev_zeros<double>(G);
  std::vector<double*> psq;
  for (int g = 0; g < G; ++g) psq.push_back(sq.get() + g);
  kg::launch_seg_abs_sum(px.data(), G, per, false, ps.data(), 0);
  kg::launch_seg_sum_squared_diff(px.data(), px2.data(), G, per, psq.data(), 0);
  const auto ga = host(stds), gq = host(sq);
  for (int g = 0; g < G; ++g) {
    double want = 0.0, want_sq = 0.0;
    for (int64_t i = 0; i < per; ++i) {
      want += std::abs(double(xs[g][i]));
      want_sq += (double(xs[g][i]) - double(x2s[g][i])) * (double(xs[g][i]) - double(x2s[g][i]));
    }
    EXPECT_NEAR(ga[g], want, 1e-12 * want) << "seg abs sum " << g;
    EXPECT_NEAR(gq[g], want_sq, 1e-12 * want_sq) << "seg sum squared diff " << g;
  }
}

// The NTK's segmented backward kernels (engine/cuda_ntk.cpp) per member against the CPU twins,
// written (first contribution) and added, for the exact row map (rows = cotangents x images) and
// ntk_fast's; more members than one launch's table (BN: 256, the others: 512).
TEST(GpuPopulation, SegmentedBackwardKernelsMatchTheCpuPerMember) {
  SKIP_WITHOUT_GPU();
  const int G = 300, n = 3, C = 4, H = 6, W = 6, in = 8, out = 5;
  const int64_t HW = H * W;
  const cudaStream_t s = 0;
  for (const bool diagonal : {false, true}) {
    const int rows = diagonal ? n : n * n;
    const kernels::RowMap cmap{rows, n, diagonal};
    const kg::GpuRowMap gmap{rows, n, diagonal};
    const int64_t per = int64_t(rows) * C * HW;
    std::vector<std::vector<float>> dys, fwds, prior;
    std::vector<gpu::DeviceBuffer<float>> ddy, dfwd, ddx, ddg;
    std::vector<gpu::DeviceBuffer<double>> dinv;
    std::vector<std::vector<double>> invs;
    std::vector<const float*> pdy, pfwd;
    std::vector<const double*> pinv;
    std::vector<float*> pdx, pdg;
    for (int g = 0; g < G; ++g) {
      dys.push_back(randn(per, 5000 + g));
      fwds.push_back(randn(size_t(n) * C * HW, 7000 + g));
      prior.push_back(randn(per, 9000 + g));
      invs.push_back({0.5 + 0.01 * g, 1.0, 1.5, 2.0});
      ddy.push_back(dev(dys.back()));
      dfwd.push_back(dev(fwds.back()));
      ddx.push_back(dev_zeros<float>(per));
      ddg.push_back(dev_zeros<float>(size_t(n) * C));
      dinv.push_back(dev(invs.back()));
      pdy.push_back(ddy.back().get());
      pfwd.push_back(dfwd.back().get());
      pdx.push_back(ddx.back().get());
      pdg.push_back(ddg.back().get());
      pinv.push_back(dinv.back().get());
    }
    // Each launch twice: written into garbage, then added to a prior value.
    auto check = [&](const char* what, double rtol, double atol, auto launch, auto cpu) {
      for (const bool add : {false, true}) {
        for (int g = 0; g < G; ++g) {
          const std::vector<float> start = add ? prior[g] : std::vector<float>(per, 1e30f);
          CUDA_CHECK(cudaMemcpy(pdx[g], start.data(), per * sizeof(float), cudaMemcpyHostToDevice));
        }
        CUDA_CHECK(cudaDeviceSynchronize());
        launch(add);
        for (int g = 0; g < G; g += 37) {
          std::vector<float> want = add ? prior[g] : std::vector<float>(per, 0.0f);
          cpu(g, want);
          expect_close((std::string(what) + (add ? " added" : " written") + " segment " + std::to_string(g)).c_str(),
                       host(ddx[g]), want, rtol, atol);
        }
      }
    };
    check("relu backward", 0.0, 0.0,
          [&](bool add) { kg::launch_seg_relu_backward(gmap, pdy.data(), pfwd.data(), pdx.data(), G, C * HW, add, s); },
          [&](int g, std::vector<float>& want) {
            kernels::relu_backward(cmap, dys[g].data(), fwds[g].data(), C * HW, want.data());
          });
    check("accumulate", 0.0, 0.0,
          [&](bool add) { kg::launch_seg_accumulate(pdy.data(), pdx.data(), G, per, add, s); },
          [&](int g, std::vector<float>& want) { kernels::accumulate(dys[g].data(), per, want.data()); });
    check("avgpool3 backward", 1e-6, 1e-6,
          [&](bool add) { kg::launch_seg_avgpool_backward(3, pdy.data(), pdx.data(), G, rows * C, H, W, add, s); },
          [&](int g, std::vector<float>& want) { kernels::avgpool3_backward(dys[g].data(), rows, C, H, W, want.data()); });
    check("avgpool2 backward", 0.0, 0.0,
          [&](bool add) { kg::launch_seg_avgpool_backward(2, pdy.data(), pdx.data(), G, rows * C, H, W, add, s); },
          [&](int g, std::vector<float>& want) { kernels::avgpool2_backward(dys[g].data(), rows, C, H, W, want.data()); });
    check("global avgpool backward", 1e-7, 0.0,
          [&](bool add) {
            kg::launch_seg_global_avgpool_backward(pdy.data(), pdx.data(), G, rows * C, HW, add, s);
          },
          [&](int g, std::vector<float>& want) {
            kernels::global_avgpool_backward(dys[g].data(), rows, C, HW, want.data());
          });
    for (const bool frozen : {false, true}) {
      check(frozen ? "bn backward (frozen)" : "bn backward", 1e-5, 1e-6,
            [&](bool add) {
              kg::launch_seg_batchnorm_backward(gmap, pdy.data(), pfwd.data(), pinv.data(), C, HW, frozen, pdx.data(),
                                                add, pdg.data(), G, s);
            },
            [&](int g, std::vector<float>& want) {
              std::vector<double> dgamma(size_t(n) * C, 0.0);
              kernels::batchnorm_backward(cmap, dys[g].data(), fwds[g].data(), C, HW, invs[g].data(), frozen,
                                          want.data(), dgamma.data());
              expect_close("bn dgamma", host(ddg[g]), dgamma, 1e-5, 1e-6);
            });
    }
    // Linear: dy rows x out, x n x in, dw cotangents x out x in.
    std::vector<std::vector<float>> ldy, lx, ldx;
    std::vector<gpu::DeviceBuffer<float>> dldy, dlx, dldx, dldw;
    std::vector<const float*> pl_dy, pl_x;
    std::vector<float*> pl_dx, pl_dw;
    const auto w = randn(size_t(out) * in, 31);
    auto dw_dev = dev(w);
    for (int g = 0; g < G; ++g) {
      ldy.push_back(randn(size_t(rows) * out, 11000 + g));
      lx.push_back(randn(size_t(n) * in, 12000 + g));
      dldy.push_back(dev(ldy.back()));
      dlx.push_back(dev(lx.back()));
      dldx.push_back(dev(std::vector<float>(size_t(rows) * in, 1e30f)));
      dldw.push_back(dev_zeros<float>(size_t(n) * out * in));
      pl_dy.push_back(dldy.back().get());
      pl_x.push_back(dlx.back().get());
      pl_dx.push_back(dldx.back().get());
      pl_dw.push_back(dldw.back().get());
    }
    kg::launch_seg_linear_backward(gmap, pl_dy.data(), pl_x.data(), dw_dev.get(), in, out, pl_dx.data(), false,
                                   pl_dw.data(), G, s);
    for (int g = 0; g < G; g += 37) {
      std::vector<float> wdx(size_t(rows) * in, 0.0f), wdw(size_t(n) * out * in, 0.0f);
      kernels::linear_backward(cmap, ldy[g].data(), lx[g].data(), w.data(), in, out, wdx.data(), wdw.data());
      expect_close("linear dx", host(dldx[g]), wdx, 1e-5, 1e-6);
      expect_close("linear dw", host(dldw[g]), wdw, 1e-5, 1e-6);
    }
  }
  // im2col per image ([image][k][ohw]) and the transpose, against the CPU's im2col / layout.
  const kernels::ConvShape cs{n, C, H, W, 2, 3, 2, 1};
  const int ohw = cs.oh() * cs.ow(), kdim = C * 9;
  std::vector<std::vector<float>> xs;
  std::vector<gpu::DeviceBuffer<float>> dxs, dcols;
  std::vector<const float*> px;
  std::vector<float*> pcol;
  for (int g = 0; g < 3; ++g) {
    xs.push_back(randn(size_t(n) * C * HW, 13000 + g));
    dxs.push_back(dev(xs.back()));
    dcols.push_back(dev_zeros<float>(size_t(n) * kdim * ohw));
    px.push_back(dxs.back().get());
    pcol.push_back(dcols.back().get());
  }
  kg::launch_seg_im2col(px.data(), pcol.data(), 3, n, C, H, W, 3, 2, 1, true, s);
  for (int g = 0; g < 3; ++g) {
    const auto got = host(dcols[g]);
    for (int img = 0; img < n; ++img) {
      std::vector<float> col(size_t(kdim) * ohw);
      kernels::im2col_image(cs, xs[g].data() + img * C * HW, col.data());
      ASSERT_EQ(0, std::memcmp(got.data() + size_t(img) * kdim * ohw, col.data(), col.size() * sizeof(float)))
          << "im2col per image, segment " << g << " image " << img;
    }
  }
  const int groups = 2;
  const auto t_in = randn(size_t(groups) * n * C * HW, 14000);
  auto dt_in = dev(t_in);
  auto dt_out = dev_zeros<float>(t_in.size());
  const float* tin[1] = {dt_in.get()};
  float* tout[1] = {dt_out.get()};
  kg::launch_seg_transpose_rows(tin, tout, 1, groups, n, C, HW, s);
  const auto t = host(dt_out);
  for (int q = 0; q < groups; ++q)
    for (int img = 0; img < n; ++img)
      for (int c = 0; c < C; ++c)
        for (int p = 0; p < HW; ++p)
          ASSERT_EQ(t[((size_t(q) * C + c) * n + img) * HW + p], t_in[((size_t(q) * n + img) * C + c) * HW + p]);
}

TEST(GpuKernels, CodesAndHammingKernelAreExact) {
  SKIP_WITHOUT_GPU();
  const int B = 37;
  for (const int64_t units : {64, 4096, 16384}) {
    auto x = randn(B * units, 5);
    for (size_t i = 0; i < x.size(); i += 17) x[i] = 0.0f;  // ties at zero are inactive
    std::vector<uint64_t> codes(B * kernels::code_words(units));
    kernels::pack_relu_codes(x.data(), B, units, codes.data());
    std::vector<int64_t> k(B * B, 0);
    kernels::hamming_accumulate(codes.data(), B, units, 2, k.data());
    std::vector<int64_t> k1(B * B, 0);
    kernels::hamming_accumulate(codes.data(), B, units, 1, k1.data());
    auto dx = dev(x);
    auto dcodes = dev_zeros<uint32_t>(B * units / 32);
    kg::launch_pack_codes(dx.get(), B, units, dcodes.get(), 0);
    const auto gc = host(dcodes);
    std::vector<uint64_t> as64(codes.size());
    std::memcpy(as64.data(), gc.data(), as64.size() * 8);
    EXPECT_EQ(as64, codes) << "codes, units " << units;
    auto dk = dev_zeros<int64_t>(B * B), dk1 = dev_zeros<int64_t>(B * B);
    kg::launch_hamming_accumulate(dcodes.get(), B, units, 2, 1, dk.get(), dk1.get(), 0);
    EXPECT_EQ(host(dk), k) << "K, units " << units;
    EXPECT_EQ(host(dk1), k1) << "K_once, units " << units;
  }
}

TEST(GpuKernels, ConvolutionsThroughCudnnMatchTheCpu) {
  SKIP_WITHOUT_GPU();
  gpu::Stream stream;
  kg::ConvRunner conv(stream.get(), false);
  for (const auto& s : {kernels::ConvShape{4, 16, 32, 32, 16, 3, 1, 1}, kernels::ConvShape{4, 16, 32, 32, 32, 3, 2, 1},
                        kernels::ConvShape{4, 64, 8, 8, 64, 1, 1, 0}, kernels::ConvShape{4, 3, 32, 32, 16, 3, 1, 1}}) {
    const auto x = randn(size_t(s.batch) * s.cin * s.h * s.w, 7);
    const auto w = randn(size_t(s.cout) * s.cin * s.k * s.k, 8, 0.2f);
    const auto dyv = randn(size_t(s.batch) * s.cout * s.oh() * s.ow(), 9);
    std::vector<float> y(dyv.size()), dxc(x.size(), 0.5f);
    kernels::conv2d_forward(s, x.data(), w.data(), y.data());
    kernels::conv2d_backward_data(s, dyv.data(), w.data(), dxc.data());
    auto dx = dev(x), dw = dev(w), ddy = dev(dyv);
    auto dy = dev_zeros<float>(y.size());
    auto ddx = dev(std::vector<float>(x.size(), 0.5f));
    conv.forward(s, dx.get(), dw.get(), dy.get());
    conv.backward_data_accumulate(s, ddy.get(), dw.get(), ddx.get());
    stream.sync();
    expect_close("conv forward", host(dy), y, 1e-4, 1e-4);
    expect_close("conv backward data", host(ddx), dxc, 1e-4, 1e-4);
  }
  std::printf("  cuDNN algorithms: %s\n", conv.algorithms().c_str());
}

TEST(GpuKernels, BackwardKernelsMatchTheCpu) {
  SKIP_WITHOUT_GPU();
  const int n = 4, C = 3, H = 6, W = 6;
  const int64_t HW = H * W;
  for (const bool diagonal : {false, true}) {
    const int rows = diagonal ? n : 2 * n;
    const kernels::RowMap cmap{rows, n, diagonal};
    const kg::GpuRowMap gmap{rows, n, diagonal};
    const auto dyv = randn(size_t(rows) * C * HW, 11);
    const auto xhat = randn(size_t(n) * C * HW, 12);
    std::vector<double> invstd = {0.7, 1.3, 2.1};
    for (const bool frozen : {false, true}) {
      std::vector<float> dx(dyv.size(), 0.25f);
      std::vector<double> dgamma(size_t(cmap.cotangents()) * C, 0.0);
      kernels::batchnorm_backward(cmap, dyv.data(), xhat.data(), C, HW, invstd.data(), frozen, dx.data(), dgamma.data());
      auto ddy = dev(dyv), dxh = dev(xhat);
      auto dinv = dev(invstd);
      auto ddx = dev(std::vector<float>(dyv.size(), 0.25f));
      auto dg = dev_zeros<float>(size_t(cmap.cotangents()) * C);
      kg::launch_batchnorm_backward(gmap, ddy.get(), dxh.get(), C, HW, dinv.get(), frozen, ddx.get(), dg.get(), C, 0);
      expect_close("bn backward dx", host(ddx), dx, 1e-5, 1e-6);
      expect_close("bn backward dgamma", host(dg), dgamma, 1e-5, 1e-6);
    }
    std::vector<float> dx(dyv.size(), 0.0f);
    kernels::relu_backward(cmap, dyv.data(), xhat.data(), C * HW, dx.data());
    auto ddy = dev(dyv), dxh = dev(xhat);
    auto ddx = dev_zeros<float>(dyv.size());
    kg::launch_relu_backward(gmap, ddy.get(), dxh.get(), C * HW, ddx.get(), 0);
    expect_close("relu backward", host(ddx), dx, 0.0);
  }
  // Pools: gather (GPU) vs scatter (CPU) of the same shares.
  const auto g = randn(size_t(n) * C * HW, 13);
  std::vector<float> p3(g.size(), 0.0f);
  kernels::avgpool3_backward(g.data(), n, C, H, W, p3.data());
  auto dg = dev(g);
  auto dp3 = dev_zeros<float>(g.size());
  kg::launch_avgpool3_backward(dg.get(), n * C, H, W, dp3.get(), 0);
  expect_close("avgpool3 backward", host(dp3), p3, 1e-6, 1e-7);
  const auto g2 = randn(size_t(n) * C * (HW / 4), 14);
  std::vector<float> p2(g.size(), 0.0f);
  kernels::avgpool2_backward(g2.data(), n, C, H, W, p2.data());
  auto dg2 = dev(g2);
  auto dp2 = dev_zeros<float>(g.size());
  kg::launch_avgpool2_backward(dg2.get(), n * C, H, W, dp2.get(), 0);
  expect_close("avgpool2 backward", host(dp2), p2, 0.0);
  // im2col: the GPU's [k][n * ohw] layout holds each image's CPU im2col block.
  const kernels::ConvShape cs{n, C, H, W, 2, 3, 1, 1};
  const auto x = randn(size_t(n) * C * HW, 15);
  auto dx = dev(x);
  auto dcol = dev_zeros<float>(size_t(C) * 9 * n * HW);
  kg::launch_im2col(dx.get(), n, C, H, W, 3, 1, 1, dcol.get(), 0);
  const auto gcol = host(dcol);
  for (int img = 0; img < n; ++img) {
    std::vector<float> col(size_t(C) * 9 * HW);
    kernels::im2col_image(cs, x.data() + img * C * HW, col.data());
    for (int r = 0; r < C * 9; ++r)
      for (int p = 0; p < HW; ++p)
        ASSERT_EQ(gcol[(size_t(r) * n + img) * HW + p], col[size_t(r) * HW + p]) << "im2col row " << r;
  }
}

namespace {
engine::ScoreSettings e2e_settings(bool fp64 = false) {
  engine::ScoreSettings s;
  s.proxies = {Proxy::kNaswot, Proxy::kNaswotOnce, Proxy::kNi, Proxy::kEntropy, Proxy::kEntropySeed,
               Proxy::kNtkFast, Proxy::kNtk};
  s.batch = 16;
  s.entropy_batch = 8;
  s.entropy_repeats = 2;
  s.score_seed = 1;
  s.data_path = test::data_path("cifar10/cifar10_sample.bin");
  s.image_offset = 1000;
  s.precision = fp64 ? engine::Precision::kFp64 : engine::Precision::kFp32;
  return s;
}
const std::vector<std::string>& kE2eArchs = test::kCoverageArchs;

// SPEC.md 7, FP32 regime, end to end: flags equal; naswot and naswot_once to 1e-6 relative; every
// other proxy e(a) <= 8 * max(e_cpu(a), e_rms) + 1e-6 (tests/fp32_rule.hpp), e_rms over `archs`.
// Architectures of s32.space (NB201 cells or NATS-SSS width strings).
void expect_cuda_matches_cpu(engine::ScoreSettings s32, const std::vector<std::string>& archs) {
  std::vector<net::Arch> genes;
  for (const auto& a : archs)
    genes.push_back(s32.space == net::Space::kNatsSss ? net::Arch(net::sss::parse_widths(a)) : net::Arch(net::parse_arch(a)));
  s32.precision = engine::Precision::kFp32;
  engine::ScoreSettings s64 = s32;
  s64.precision = engine::Precision::kFp64;
  const auto in = engine::load_inputs(s32);
  const auto cpu32 = engine::make_cpu_scorer(s32, in)->score_all(genes);
  const auto cpu64 = engine::make_cpu_scorer(s64, in)->score_all(genes);
  const auto gpu = engine::make_cuda_scorer(s32, in)->score_all(genes);
  for (Proxy p : s32.proxies) {
    const char* name = engine::proxy_name(p);
    std::vector<test::Fp32Case> cases;
    for (size_t a = 0; a < genes.size(); ++a) {
      ASSERT_TRUE(gpu[a][p] && cpu32[a][p] && cpu64[a][p]) << name << " missing for " << archs[a];
      const auto& g = *gpu[a][p];
      const auto& c = *cpu32[a][p];
      const auto& r = *cpu64[a][p];
      EXPECT_EQ(g.flag, c.flag) << name << " " << archs[a];
      if (!c.flag.empty() || !r.flag.empty() || !g.flag.empty()) {
        std::printf("  %-12s flagged (gpu '%s' cpu32 '%s' cpu64 '%s')  %s\n", name, g.flag.c_str(), c.flag.c_str(),
                    r.flag.c_str(), archs[a].c_str());
        continue;
      }
      if (p == Proxy::kNaswot || p == Proxy::kNaswotOnce) {
        EXPECT_TRUE(test::naswot_within_rule(g.value, c.value))
            << name << ": gpu " << g.value << " cpu32 " << c.value << " (1e-6 relative)  " << archs[a];
        std::printf("  %-12s gpu %.10g cpu32 %.10g  rel %.2e (<= 1e-6)  %s\n", name, g.value, c.value,
                    test::relative_deviation(g.value, c.value), archs[a].c_str());
      } else {
        cases.push_back({archs[a], g.value, c.value, r.value});
      }
    }
    for (const auto& v : test::check_fp32_rule(cases)) {
      EXPECT_TRUE(v.ok) << name << ": e_gpu " << v.e << " > bound " << v.bound << " (e_cpu " << v.e_cpu << ")  "
                        << v.name;
      std::printf("  %-12s e_gpu %.2e e_cpu %.2e bound %.2e %s  %s\n", name, v.e, v.e_cpu, v.bound,
                  v.ok ? "ok" : "FAIL", v.name.c_str());
    }
  }
}
}  // namespace

TEST(GpuEndToEnd, CudaScorerMatchesTheCpuScorer) {
  SKIP_WITHOUT_GPU();
  expect_cuda_matches_cpu(e2e_settings(), kE2eArchs);
}

// docs/proxies.md's proxies on the CUDA backend (params / flops on the device plan, the others
// through their host twins for now) against the CPU scorer, within the same FP32 rule.
TEST(GpuEndToEnd, DocsProxiesMatchTheCpuScorer) {
  SKIP_WITHOUT_GPU();
  engine::ScoreSettings s = e2e_settings();
  s.proxies = {Proxy::kParams, Proxy::kFlops, Proxy::kSynflow, Proxy::kLogsynflow, Proxy::kZico,
               Proxy::kSwap, Proxy::kSwapReg, Proxy::kMeco, Proxy::kAzExpressivity, Proxy::kAzProgressivity,
               Proxy::kAzTrainability};
  s.swap_repeats = 2;
  expect_cuda_matches_cpu(s, kE2eArchs);
}

// A score does not depend on the population (SPEC.md 7, within the FP32 rule on a GPU): the
// coverage architectures, a duplicate of one and 20 random ones, scored as one population and
// one architecture at a time, each against the CPU; and alone against together directly.
TEST(GpuPopulation, ScoresDoNotDependOnThePopulation) {
  SKIP_WITHOUT_GPU();
  std::vector<std::string> archs = kE2eArchs;
  archs.push_back(archs.front());
  for (const auto& g : net::sample_distinct(20, 7, Purpose::kRandomSearch, true)) archs.push_back(net::arch_string(g));
  engine::ScoreSettings s = e2e_settings();
  s.proxies = {Proxy::kNaswot, Proxy::kNaswotOnce, Proxy::kNi, Proxy::kEntropy, Proxy::kEntropySeed};
  std::vector<net::Genes> genes;
  for (const auto& a : archs) genes.push_back(net::parse_arch(a));
  const auto in = engine::load_inputs(s);
  s.population_batch = 0;
  const auto together = engine::make_cuda_scorer(s, in)->score_all(genes);
  expect_cuda_matches_cpu(s, archs);
  s.population_batch = 1;
  const auto alone = engine::make_cuda_scorer(s, in)->score_all(genes);
  expect_cuda_matches_cpu(s, archs);
  for (size_t a = 0; a < genes.size(); ++a)
    for (Proxy p : s.proxies) {
      ASSERT_TRUE(together[a][p] && alone[a][p]);
      EXPECT_EQ(together[a][p]->flag, alone[a][p]->flag) << engine::proxy_name(p) << " " << archs[a];
      EXPECT_NEAR(together[a][p]->value, alone[a][p]->value, 1e-4 * (1.0 + std::abs(alone[a][p]->value)))
          << engine::proxy_name(p) << " " << archs[a];
    }
  // The duplicate scores as its original in the same population.
  for (Proxy p : s.proxies)
    EXPECT_NEAR(together[kE2eArchs.size()][p]->value, together[0][p]->value,
                1e-6 * (1.0 + std::abs(together[0][p]->value)))
        << engine::proxy_name(p);
}

// --devices: populations split across CUDA scorers on threads (engine::ShardedScorer). Every
// visible device takes a shard (device 0 twice on a one-GPU machine, so two scorers share it
// concurrently); the values equal one scorer's within the FP32 rule, in input order.
TEST(GpuDevices, ShardedScorersMatchOneScorer) {
  SKIP_WITHOUT_GPU();
  engine::ScoreSettings s = e2e_settings();
  s.proxies = {Proxy::kNaswot, Proxy::kNi, Proxy::kEntropy};
  std::vector<net::Genes> genes;
  for (const auto& g : net::sample_distinct(48, 3, Purpose::kRandomSearch, false)) genes.push_back(g);
  const auto in = engine::load_inputs(s);
  const auto one = engine::make_cuda_scorer(s, in)->score_all(genes);
  const int devices = gpu::device_count();
  std::vector<std::unique_ptr<engine::Scorer>> shards;
  for (int d = 0; d < std::max(devices, 2); ++d) {
    engine::ScoreSettings sd = s;
    sd.device = d % devices;
    shards.push_back(engine::make_cuda_scorer(sd, in));
  }
  engine::ShardedScorer sharded(std::move(shards), 4);
  const auto split = sharded.score_all(genes);
  ASSERT_EQ(split.size(), genes.size());
  for (size_t a = 0; a < genes.size(); ++a) {
    EXPECT_TRUE(split[a].arch == genes[a]);
    for (Proxy p : s.proxies) {
      ASSERT_TRUE(split[a][p] && one[a][p]);
      EXPECT_EQ(split[a][p]->flag, one[a][p]->flag);
      EXPECT_NEAR(split[a][p]->value, one[a][p]->value, 1e-4 * (1.0 + std::abs(one[a][p]->value)))
          << engine::proxy_name(p) << " " << a;
    }
  }
  for (int64_t c : sharded.per_shard()) EXPECT_GT(c, 0);
}

// Batch 128: ntk and ntk_fast use 64 images: the GPU's exact NTK runs all 64 cotangents (4,096
// rows) in one pass, the CPU's in chunks of 512 / 64 = 8 cotangents. A cheap architecture (one 3x3
// and one 1x1 conv per cell) keeps the CPU references short.
TEST(GpuEndToEnd, ChunkedNtkAtBatch128MatchesTheCpu) {
  SKIP_WITHOUT_GPU();
  engine::ScoreSettings s = e2e_settings();
  s.proxies = {Proxy::kNtkFast, Proxy::kNtk};
  s.batch = 128;
  expect_cuda_matches_cpu(s, {"|nor_conv_3x3~0|+|none~0|none~1|+|none~0|nor_conv_1x1~1|none~2|"});
}

// The FP32 rule's helper on hand-made numbers (no GPU needed).
TEST(Fp32Rule, BoundIsEightTimesTheLargerOfOwnAndRmsDeviation) {
  // e_cpu = 1e-4, 3e-4, 0 -> e_rms = sqrt((1e-8 + 9e-8 + 0) / 3) = 1.826e-4.
  const double e_rms = std::sqrt((1e-8 + 9e-8) / 3);
  auto v = test::check_fp32_rule({{"a", 1.0 + 1.4e-3, 1.0 + 1e-4, 1.0},
                                  {"b", 2.0 * (1 - 2.4e-3), 2.0 * (1 + 3e-4), 2.0},
                                  {"c", -5.0 * (1 + 1.4e-3), -5.0, -5.0}});
  ASSERT_EQ(v.size(), 3u);
  EXPECT_NEAR(v[0].e_cpu, 1e-4, 1e-12);
  EXPECT_NEAR(v[0].bound, 8 * e_rms + 1e-6, 1e-12);  // own 1e-4 < e_rms
  EXPECT_NEAR(v[1].bound, 8 * 3e-4 + 1e-6, 1e-12);   // own 3e-4 > e_rms
  EXPECT_NEAR(v[2].bound, 8 * e_rms + 1e-6, 1e-12);  // exact CPU: the rms still allows rounding
  EXPECT_TRUE(v[0].ok);   // 1.4e-3 <= 1.462e-3: passes on the rms although 14x its own e_cpu
  EXPECT_TRUE(v[1].ok);   // 2.4e-3 <= 2.401e-3
  EXPECT_TRUE(v[2].ok);   // 1.4e-3 <= 1.462e-3
  // Just over each bound fails.
  v = test::check_fp32_rule({{"a", 1.0 + 1.47e-3, 1.0 + 1e-4, 1.0},
                             {"b", 2.0 * (1 + 2.41e-3), 2.0 * (1 + 3e-4), 2.0},
                             {"c", -5.0 * (1 + 1.47e-3), -5.0, -5.0}});
  EXPECT_FALSE(v[0].ok);
  EXPECT_FALSE(v[1].ok);
  EXPECT_FALSE(v[2].ok);
}

TEST(Fp32Rule, AbsoluteFloorNonFiniteValuesAndNaswot) {
  // All exact on the CPU: only the 1e-6 floor remains.
  auto v = test::check_fp32_rule({{"a", 1.0 + 0.9e-6, 1.0, 1.0}, {"b", 1.0 + 1.1e-6, 1.0, 1.0}});
  EXPECT_TRUE(v[0].ok);
  EXPECT_FALSE(v[1].ok);
  // A NaN or infinite value never passes, and a NaN e_cpu does not poison the other cases' rms.
  const double nan = std::nan(""), inf = INFINITY;
  v = test::check_fp32_rule({{"nan", nan, 1.0, 1.0}, {"inf", inf, 1.0, 1.0}, {"cpu nan", 1.0, nan, 1.0},
                             {"fine", 1.0 + 1e-7, 1.0, 1.0}});
  EXPECT_FALSE(v[0].ok);
  EXPECT_FALSE(v[1].ok);
  EXPECT_FALSE(v[2].ok);
  EXPECT_TRUE(v[3].ok);
  // A zero reference: equal passes, anything else fails.
  v = test::check_fp32_rule({{"zero", 0.0, 0.0, 0.0}, {"off", 1e-30, 0.0, 0.0}});
  EXPECT_TRUE(v[0].ok);
  EXPECT_FALSE(v[1].ok);
  EXPECT_TRUE(test::check_fp32_rule({}).empty());
  // naswot: 1e-6 relative to the CPU's FP32 value.
  EXPECT_TRUE(test::naswot_within_rule(1000.0009, 1000.0));
  EXPECT_FALSE(test::naswot_within_rule(1000.0011, 1000.0));
  EXPECT_TRUE(test::naswot_within_rule(-1000.0009, -1000.0));
  EXPECT_FALSE(test::naswot_within_rule(nan, 1000.0));
}

TEST(GpuSearch, DevicePathVisitsWhatTheHostPathVisits) {
  SKIP_WITHOUT_GPU();
  std::vector<uint8_t> pop;
  std::vector<double> fit;
  for (int i = 0; i < 100; ++i) {
    const auto g = net::genes_from_code((i * 7919) % net::kNumArchs);
    for (int e = 0; e < 6; ++e) pop.push_back(static_cast<uint8_t>(g[e]));
    fit.push_back(std::cos(i * 0.37) + (i % 5 == 0 ? 0.0 : 0.1 * i));
  }
  for (uint32_t gen = 0; gen < 20; ++gen) {
    std::vector<uint8_t> a, b;
    engine::ga_generation_host(pop, fit, gen, philox_key(21), {}, a);
    engine::ga_generation_device(pop, fit, gen, philox_key(21), {}, b);
    ASSERT_EQ(a, b) << "generation " << gen;
  }
}

// NATS-Bench's size space on the CUDA backend (issue 17): every proxy, on a population of mixed
// widths (the narrowest and widest networks, widening and shrinking ones, widths that differ in
// one layer only: members grouped by position and width), against the CPU scorer within the same
// rule; and each member's value does not depend on its population. Last in the file: the device
// check's time-limited tests step reaches it after the NB201 tests.
TEST(GpuSizeSpace, CudaScorerMatchesTheCpuScorer) {
  SKIP_WITHOUT_GPU();
  const std::vector<std::string> archs = {"8:8:8:8:8",     "64:64:64:64:64", "16:32:48:24:56", "56:24:48:32:16",
                                          "64:8:64:8:64",  "8:64:8:64:8",    "32:32:32:32:32", "32:32:32:32:40",
                                          "40:32:32:32:32"};
  engine::ScoreSettings s = e2e_settings();
  s.space = net::Space::kNatsSss;
  // ntk (exact) runs ntk_fast's kernels on more rows; left out to keep the FP64 reference short
  // (this test runs last in the device check's tests step).
  s.proxies.erase(std::remove(s.proxies.begin(), s.proxies.end(), Proxy::kNtk), s.proxies.end());
  expect_cuda_matches_cpu(s, archs);
  s.proxies = {Proxy::kParams, Proxy::kFlops, Proxy::kSynflow, Proxy::kLogsynflow, Proxy::kZico,
               Proxy::kSwap, Proxy::kSwapReg, Proxy::kMeco, Proxy::kAzExpressivity, Proxy::kAzProgressivity,
               Proxy::kAzTrainability};
  s.swap_repeats = 2;
  expect_cuda_matches_cpu(s, archs);
  s.proxies = {Proxy::kNaswot, Proxy::kNi, Proxy::kEntropy, Proxy::kEntropySeed, Proxy::kNtkFast};
  std::vector<net::Arch> as;
  for (const auto& a : archs) as.emplace_back(net::sss::parse_widths(a));
  const auto in = engine::load_inputs(s);
  const auto together = engine::make_cuda_scorer(s, in)->score_all(as);
  s.population_batch = 1;
  const auto alone = engine::make_cuda_scorer(s, in)->score_all(as);
  for (size_t a = 0; a < as.size(); ++a) {
    EXPECT_TRUE(together[a].arch == as[a]);
    for (Proxy p : s.proxies) {
      ASSERT_TRUE(together[a][p] && alone[a][p]);
      EXPECT_EQ(together[a][p]->flag, alone[a][p]->flag) << engine::proxy_name(p) << " " << archs[a];
      EXPECT_NEAR(together[a][p]->value, alone[a][p]->value, 1e-4 * (1.0 + std::abs(alone[a][p]->value)))
          << engine::proxy_name(p) << " " << archs[a];
    }
  }
}
