// CPU kernels against naive double-precision references: exact for integer outputs (codes,
// Hamming counts), tolerance for floating point.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "kernels/cpu_backward.hpp"
#include "kernels/cpu_ops.hpp"
#include "kernels/hamming.hpp"
#include "kernels/linalg.hpp"
#include "kernels/onednn_conv.hpp"

#include <omp.h>
#include <cstring>

using namespace hn::kernels;

namespace {
std::vector<double> random_vec(size_t n, unsigned seed) {
  std::mt19937 g(seed);
  std::normal_distribution<double> d;
  std::vector<double> v(n);
  for (auto& x : v) x = d(g);
  return v;
}
}  // namespace

TEST(Kernels, HammingKernelEqualsNaiveAgreementCount) {
  const int B = 7;
  for (const int64_t units : {64, 100, 4096}) {
    const auto x = random_vec(B * units, 1 + units);
    std::vector<uint64_t> codes(B * code_words(units));
    pack_relu_codes(x.data(), B, units, codes.data());
    std::vector<int64_t> k(B * B, 5);
    hamming_accumulate(codes.data(), B, units, 3, k.data());
    for (int n = 0; n < B; ++n)
      for (int m = 0; m < B; ++m) {
        int64_t agree = 0;
        for (int64_t u = 0; u < units; ++u) agree += (x[n * units + u] > 0) == (x[m * units + u] > 0);
        ASSERT_EQ(k[n * B + m], 5 + 3 * agree) << n << "," << m << " units " << units;
      }
  }
}

TEST(Kernels, CodesTreatZeroAndNegativeZeroAsInactive) {
  const std::vector<float> x = {0.0f, -0.0f, 1e-30f, -1e-30f};
  std::vector<uint64_t> c(1);
  pack_relu_codes(x.data(), 1, 4, c.data());
  EXPECT_EQ(c[0], 0b0100u);
}

TEST(Kernels, CholeskyLogDetAndSingularity) {
  const std::vector<double> k = {4, 2, 2, 3};  // det 8
  const LogDet ld = cholesky_logdet(k.data(), 2);
  EXPECT_FALSE(ld.singular);
  EXPECT_NEAR(ld.value, std::log(8.0), 1e-15);
  const std::vector<double> s = {1, 1, 1, 1};  // rank 1
  EXPECT_TRUE(cholesky_logdet(s.data(), 2).singular);
  const std::vector<double> tiny = {1e6, 0, 0, 1e-7};  // pivot^2 below 1e-12 * max diag
  EXPECT_TRUE(cholesky_logdet(tiny.data(), 2).singular);
  const std::vector<double> neg = {1, 2, 2, 1};  // indefinite
  EXPECT_TRUE(cholesky_logdet(neg.data(), 2).singular);
}

TEST(Kernels, ConvolutionMatchesDirectSum) {
  for (const auto& s : {ConvShape{2, 3, 9, 7, 4, 3, 1, 1}, ConvShape{2, 3, 8, 8, 5, 3, 2, 1},
                        ConvShape{3, 4, 5, 5, 2, 1, 1, 0}}) {
    const auto x = random_vec(size_t(s.batch) * s.cin * s.h * s.w, 7);
    const auto w = random_vec(size_t(s.cout) * s.cin * s.k * s.k, 8);
    std::vector<double> y(size_t(s.batch) * s.cout * s.oh() * s.ow());
    conv2d_forward(s, x.data(), w.data(), y.data());
    for (int n = 0; n < s.batch; ++n)
      for (int co = 0; co < s.cout; ++co)
        for (int oy = 0; oy < s.oh(); ++oy)
          for (int ox = 0; ox < s.ow(); ++ox) {
            double acc = 0;
            for (int ci = 0; ci < s.cin; ++ci)
              for (int ky = 0; ky < s.k; ++ky)
                for (int kx = 0; kx < s.k; ++kx) {
                  const int iy = oy * s.stride - s.pad + ky, ix = ox * s.stride - s.pad + kx;
                  if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
                  acc += x[((size_t(n) * s.cin + ci) * s.h + iy) * s.w + ix] *
                         w[((size_t(co) * s.cin + ci) * s.k + ky) * s.k + kx];
                }
            const double got = y[((size_t(n) * s.cout + co) * s.oh() + oy) * s.ow() + ox];
            ASSERT_NEAR(got, acc, 1e-12);
          }
  }
}

// The FP32 convolution of every NB201 3x3 shape (stem, cells at 16/32/64 channels, the residual
// block's stride-2 conv; oneDNN when the build has it): close to the FP64 direct sum, and
// bit-identical whatever the thread count and however the images are grouped (one call for 2
// groups of 5, or one image per call), which is what makes scores independent of the population.
TEST(Kernels, Fp32ConvolutionIsBitIdenticalAcrossThreadsAndGroupings) {
  cpu_kernels_init();
  const int B = 5;
  for (const auto& s : {ConvShape{B, 3, 32, 32, 16, 3, 1, 1}, ConvShape{B, 16, 32, 32, 16, 3, 1, 1},
                        ConvShape{B, 32, 16, 16, 32, 3, 1, 1}, ConvShape{B, 64, 8, 8, 64, 3, 1, 1},
                        ConvShape{B, 16, 32, 32, 32, 3, 2, 1}, ConvShape{B, 16, 32, 32, 16, 1, 1, 0}}) {
    const size_t in = size_t(s.cin) * s.h * s.w, out = size_t(s.cout) * s.oh() * s.ow();
    const auto xd = random_vec(2 * B * in, 11), wd = random_vec(size_t(s.cout) * s.cin * s.k * s.k, 12);
    const std::vector<float> x(xd.begin(), xd.end()), w(wd.begin(), wd.end());
    std::vector<double> ref(2 * B * out);
    ConvShape s2 = s;
    s2.batch = 2 * B;
    conv2d_forward(s2, xd.data(), wd.data(), ref.data());
    std::vector<float> first;
    const int saved = omp_get_max_threads();
    for (const int threads : {1, 2, 3}) {
      omp_set_num_threads(threads);
      std::vector<float> grouped(2 * B * out), single(2 * B * out);
      const float* xs[2] = {x.data(), x.data() + B * in};
      float* ys[2] = {grouped.data(), grouped.data() + B * out};
      conv2d_forward_grouped(s, 2, xs, w.data(), ys);
      ConvShape one = s;
      one.batch = 1;
      for (int n = 0; n < 2 * B; ++n) conv2d_forward(one, x.data() + n * in, w.data(), single.data() + n * out);
      EXPECT_EQ(0, std::memcmp(grouped.data(), single.data(), grouped.size() * sizeof(float)))
          << "grouped vs one image per call, cin " << s.cin << " k " << s.k << ", " << threads << " threads";
      if (first.empty()) first = grouped;
      EXPECT_EQ(0, std::memcmp(grouped.data(), first.data(), grouped.size() * sizeof(float)))
          << "1 thread vs " << threads << ", cin " << s.cin << " k " << s.k;
      double scale = 0;
      for (double v : ref) scale = std::max(scale, std::abs(v));
      for (size_t i = 0; i < ref.size(); ++i) ASSERT_NEAR(grouped[i], ref[i], 1e-5 * scale) << i;
    }
    omp_set_num_threads(saved);
  }
}

// ntk_fast's per-image weight gradients through oneDNN (one grouped backward-weights call, the
// images as groups) against the FP64 direct sum dW[i][co][ci][ky][kx] = sum_p dy[i][co][p] x[i][ci]
// at p's tap, on every 3x3 shape of the network. A call is deterministic; in the cells (cin >= 16)
// an image's gradient is the same bits whatever images share its call (the stem's 3 input channels
// get another blocking per group count: callers use fixed slices of images).
TEST(Kernels, PerImageWeightGradientsMatchTheDirectSum) {
  cpu_kernels_init();
  const int B = 5;
  for (const auto& s : {ConvShape{B, 3, 32, 32, 16, 3, 1, 1}, ConvShape{B, 16, 32, 32, 16, 3, 1, 1},
                        ConvShape{B, 32, 16, 16, 32, 3, 1, 1}, ConvShape{B, 64, 8, 8, 64, 3, 1, 1},
                        ConvShape{B, 16, 32, 32, 32, 3, 2, 1}, ConvShape{B, 32, 16, 16, 64, 3, 2, 1}}) {
    if (!onednn_conv_applies(s)) GTEST_SKIP() << "a build without oneDNN";
    const int oh = s.oh(), ow = s.ow();
    const size_t in = size_t(s.cin) * s.h * s.w, out = size_t(s.cout) * oh * ow;
    const size_t wsize = size_t(s.cout) * s.cin * s.k * s.k;
    const auto xd = random_vec(B * in, 21), gd = random_vec(B * out, 22);
    const std::vector<float> x(xd.begin(), xd.end()), dy(gd.begin(), gd.end());
    std::vector<float> dw(B * wsize, -1.0f);
    onednn_conv_weight_grads_per_image(s, x.data(), dy.data(), dw.data());
    double scale = 0, worst = 0;
    std::vector<double> ref(B * wsize, 0.0);
    for (int i = 0; i < B; ++i)
      for (int co = 0; co < s.cout; ++co)
        for (int ci = 0; ci < s.cin; ++ci)
          for (int ky = 0; ky < s.k; ++ky)
            for (int kx = 0; kx < s.k; ++kx) {
              double acc = 0;
              for (int y = 0; y < oh; ++y)
                for (int xx = 0; xx < ow; ++xx) {
                  const int iy = y * s.stride - s.pad + ky, ix = xx * s.stride - s.pad + kx;
                  if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
                  acc += double(dy[i * out + (size_t(co) * oh + y) * ow + xx]) *
                         double(x[i * in + (size_t(ci) * s.h + iy) * s.w + ix]);
                }
              ref[i * wsize + ((size_t(co) * s.cin + ci) * s.k + ky) * s.k + kx] = acc;
              scale = std::max(scale, std::abs(acc));
            }
    for (size_t j = 0; j < ref.size(); ++j) worst = std::max(worst, std::abs(dw[j] - ref[j]));
    EXPECT_LE(worst, 1e-5 * scale) << "cin " << s.cin << " cout " << s.cout << " stride " << s.stride;
    std::vector<float> again(B * wsize);
    onednn_conv_weight_grads_per_image(s, x.data(), dy.data(), again.data());
    EXPECT_EQ(0, std::memcmp(again.data(), dw.data(), dw.size() * sizeof(float))) << "repeated, cin " << s.cin;
    if (s.cin < 16) continue;
    // Image 2 alone, and images 1..3 as a call of three: the same bits as in the call of five.
    ConvShape one = s, three = s;
    one.batch = 1;
    three.batch = 3;
    std::vector<float> alone(wsize), mid(3 * wsize);
    onednn_conv_weight_grads_per_image(one, x.data() + 2 * in, dy.data() + 2 * out, alone.data());
    onednn_conv_weight_grads_per_image(three, x.data() + in, dy.data() + out, mid.data());
    EXPECT_EQ(0, std::memcmp(alone.data(), dw.data() + 2 * wsize, wsize * sizeof(float))) << "alone, cin " << s.cin;
    EXPECT_EQ(0, std::memcmp(mid.data() + wsize, dw.data() + 2 * wsize, wsize * sizeof(float))) << "of 3, cin " << s.cin;
  }
}

TEST(Kernels, AvgPool3ExcludesPaddingFromTheDivisor) {
  // 3x3 image of ones: every output is exactly 1 (a divisor of 9 at the border would give 4/9).
  std::vector<double> x(9, 1.0), y(9);
  avgpool3_forward(x.data(), 1, 1, 3, 3, y.data());
  for (double v : y) EXPECT_DOUBLE_EQ(v, 1.0);
  std::vector<double> r = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  avgpool3_forward(r.data(), 1, 1, 3, 3, y.data());
  EXPECT_DOUBLE_EQ(y[0], (1 + 2 + 4 + 5) / 4.0);
  EXPECT_DOUBLE_EQ(y[4], 5.0);
  avgpool2_forward(r.data(), 1, 1, 2, 2, y.data());  // reads the top-left 2x2 of a 2x2 view
  EXPECT_DOUBLE_EQ(y[0], (1 + 2 + 3 + 4) / 4.0);
}

TEST(Kernels, BatchNormStatisticsAreTwoPassBiased) {
  const int B = 3, C = 2, HW = 5;
  const auto x = random_vec(B * C * HW, 11);
  std::vector<double> mean(C), invstd(C), y(x.size());
  batchnorm_stats(x.data(), B, C, HW, 1e-5, mean.data(), invstd.data());
  batchnorm_apply(x.data(), B, C, HW, mean.data(), invstd.data(), y.data());
  for (int c = 0; c < C; ++c) {
    double m = 0, v = 0;
    for (int n = 0; n < B; ++n)
      for (int i = 0; i < HW; ++i) m += x[(n * C + c) * HW + i];
    m /= B * HW;
    for (int n = 0; n < B; ++n)
      for (int i = 0; i < HW; ++i) v += std::pow(x[(n * C + c) * HW + i] - m, 2);
    v /= B * HW;
    EXPECT_NEAR(mean[c], m, 1e-15);
    EXPECT_NEAR(invstd[c], 1 / std::sqrt(v + 1e-5), 1e-12);
    EXPECT_NEAR(y[c * HW], (x[c * HW] - m) / std::sqrt(v + 1e-5), 1e-12);
  }
}

TEST(Kernels, TensorStdIsUnbiasedOverAllElements) {
  const std::vector<double> x = {1, 2, 3, 4};
  EXPECT_NEAR(tensor_std(x.data(), 4), std::sqrt(5.0 / 3.0), 1e-15);
  const std::vector<float> c(10, 2.5f);
  EXPECT_EQ(tensor_std(c.data(), 10), 0.0);
}

TEST(Kernels, AvgPool3MatchesTheWindowDefinitionOnRandomInput) {
  for (const auto& [h, w] : {std::pair{5, 7}, std::pair{1, 4}, std::pair{3, 1}, std::pair{8, 8}}) {
    const auto x = random_vec(2 * h * w, 3);
    std::vector<double> y(x.size());
    avgpool3_forward(x.data(), 1, 2, h, w, y.data());
    for (int p = 0; p < 2; ++p)
      for (int oy = 0; oy < h; ++oy)
        for (int ox = 0; ox < w; ++ox) {
          double s = 0;
          int n = 0;
          for (int iy = oy - 1; iy <= oy + 1; ++iy)
            for (int ix = ox - 1; ix <= ox + 1; ++ix)
              if (iy >= 0 && iy < h && ix >= 0 && ix < w) {
                s += x[(p * h + iy) * w + ix];
                ++n;
              }
          ASSERT_NEAR(y[(p * h + oy) * w + ox], s / n, 1e-14);
        }
  }
}

// Backward kernels are the adjoints of the forward ones: <dy, f(x)> = <f^T(dy), x>.
TEST(Kernels, BackwardKernelsAreAdjoints) {
  auto dot = [](const std::vector<double>& a, const std::vector<double>& b) {
    double s = 0;
    for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
    return s;
  };
  {
    const int h = 6, w = 5;
    const auto x = random_vec(3 * h * w, 4), dy = random_vec(3 * h * w, 5);
    std::vector<double> y(x.size()), dx(x.size(), 0.0);
    avgpool3_forward(x.data(), 1, 3, h, w, y.data());
    avgpool3_backward(dy.data(), 1, 3, h, w, dx.data());
    EXPECT_NEAR(dot(dy, y), dot(dx, x), 1e-12);
  }
  {
    const auto x = random_vec(2 * 8 * 8, 6), dy = random_vec(2 * 4 * 4, 7);
    std::vector<double> y(dy.size()), dx(x.size(), 0.0);
    avgpool2_forward(x.data(), 1, 2, 8, 8, y.data());
    avgpool2_backward(dy.data(), 1, 2, 8, 8, dx.data());
    EXPECT_NEAR(dot(dy, y), dot(dx, x), 1e-12);
  }
  for (const auto& s : {ConvShape{2, 3, 9, 7, 4, 3, 1, 1}, ConvShape{2, 3, 8, 8, 5, 3, 2, 1},
                        ConvShape{3, 4, 5, 5, 2, 1, 1, 0}}) {
    const auto x = random_vec(size_t(s.batch) * s.cin * s.h * s.w, 8);
    const auto w = random_vec(size_t(s.cout) * s.cin * s.k * s.k, 9);
    const auto dy = random_vec(size_t(s.batch) * s.cout * s.oh() * s.ow(), 10);
    std::vector<double> y(dy.size()), dx(x.size(), 0.0);
    conv2d_forward(s, x.data(), w.data(), y.data());
    conv2d_backward_data(s, dy.data(), w.data(), dx.data());
    EXPECT_NEAR(dot(dy, y), dot(dx, x), 1e-10 * std::abs(dot(dy, y)) + 1e-12);
  }
}
