#include "engine/cuda_ntk.hpp"

#include <algorithm>
#include <memory>
#include <optional>
#include <stdexcept>
#include <vector>

#include "engine/cpu_ntk.hpp"  // ntk_forward_options
#include "engine/cuda_population.hpp"
#include "kernels/gpu_kernels.cuh"
#include "kernels/gpu_population.cuh"
#include "kernels/nvtx.hpp"

namespace hn::engine {

namespace {

using net::StepKind;

// A member's gradient of one value: a slice of a group's allocation.
struct Grad {
  std::shared_ptr<gpu::StreamBuffer<float>> buf;
  float* p = nullptr;
};

}  // namespace

int64_t gpu_ntk_bytes_per_member(const net::Plan& plan, int images, bool exact) {
  const LoweredPlan L = lower_plan(plan, ntk_forward_options());
  const int64_t rows = exact ? int64_t(images) * images : images;
  int64_t kept = 0, largest = 0, col = 0, block = 0;
  for (const net::Step& st : L.steps) {
    if (st.out >= 0) {
      kept += plan.values[st.out].numel();
      largest = std::max(largest, plan.values[st.out].numel());
    }
    if (st.kind == StepKind::kConv) {
      const net::Shape& si = plan.values[st.in0];
      const net::SlotInfo info = net::slot_info(st.slot, plan.num_classes);
      col = std::max(col, int64_t(si.c) * st.k * st.k * plan.values[st.out].hw() * images);
      block = std::max(block, info.numel());
    }
  }
  // Forward activations; about seven live gradient tensors of the largest value (dy, dx, nodes'
  // sums, the exact NTK's transposed dy, a gathered copy, group allocations held until their last
  // member's slice goes); im2col; a parameter group's gradients in FP32 and FP64; Theta.
  return 4 * (kept * images + 7 * rows * largest + col) + 12 * int64_t(images) * block + 8 * int64_t(images) * images;
}

void gpu_ntk_population(Lane& lane, const PopulationSchedule& S, const DeviceBank& bank, const float* x, int images,
                        bool exact, double* eig, int64_t eig_pitch, int* info, int64_t info_pitch) {
  HN_NVTX_RANGE(exact ? "ntk_population" : "ntk_fast_population");
  const cudaStream_t s = lane.s();
  const int P = static_cast<int>(S.size());
  const int n = images;
  if (P == 0) return;
  if (n < 1 || n > 64) throw std::invalid_argument("gpu_ntk_population: 1 to 64 images");
  const GpuPopulationForward fwd = gpu_forward_population(lane, S, bank, x, n, ntk_forward_options(), {});
  const kg::GpuRowMap map = exact ? kg::GpuRowMap{n * n, n, false} : kg::GpuRowMap{n, n, true};
  const int64_t R = map.rows;
  const int cots = n;  // every cotangent in one pass
  const int classes = S.plan(0).num_classes;
  const int64_t nn = int64_t(n) * n;

  gpu::StreamBuffer<double> theta(size_t(P) * nn, s);  // column-major n x n per member
  CUDA_CHECK(cudaMemsetAsync(theta.get(), 0, sizeof(double) * P * nn, s));
  // The cotangent seed (ones on a row's own image's logits) is the same for every member: one tensor.
  auto seed = std::make_shared<gpu::StreamBuffer<float>>(size_t(R) * classes, s);
  kg::launch_ntk_seed(seed->get(), map, classes, 0, s);
  std::vector<std::vector<Grad>> grad(P);
  std::vector<int> input_value(P, -1);
  for (int m = 0; m < P; ++m) {
    grad[m].resize(S.plan(m).values.size());
    grad[m][S.lowered(m).rep[S.plan(m).logits]] = {seed, seed->get()};
    for (const net::Step& st : S.lowered(m).steps)
      if (st.kind == StepKind::kInput) input_value[m] = st.out;
  }

  // Theta_m += S_m S_m^T for the rows (cotangents x size, contiguous per member) of each member of
  // a parameter group: one conversion to FP64 and one batched DGEMM.
  const double one = 1.0;
  auto fold = [&](const float* slab, const std::vector<int>& members, int64_t size) {
    const int count = static_cast<int>(members.size());
    gpu::StreamBuffer<double> d(size_t(count) * cots * size, s);
    kg::launch_float_to_double(slab, count * cots, size, size, d.get(), s);
    std::vector<const double*> a(count);
    std::vector<double*> c(count);
    for (int j = 0; j < count; ++j) {
      a[j] = d.get() + int64_t(j) * cots * size;
      c[j] = theta.get() + int64_t(members[j]) * nn;
    }
    const auto da = upload_async(a, s);
    const auto dc = upload_async(c, s);
    CUBLAS_CHECK(cublasDgemmBatched(lane.cublas.get(), CUBLAS_OP_T, CUBLAS_OP_N, n, n, static_cast<int>(size), &one,
                                    da.get(), static_cast<int>(size), da.get(), static_cast<int>(size), &one, dc.get(),
                                    n, count));
  };

  // The gradient of value v_j of each listed member j (group positions in `js`, members in ms):
  // launch(subset, dx, add) runs once for the members that have it already (add) and once for the
  // others, whose gradients are fresh slices of one allocation (written, not added to).
  std::vector<const MemberStep*> ms;
  auto into = [&](const std::vector<int>& js, auto value_of, int64_t per, auto launch) {
    std::vector<int> olds, news;
    for (int j : js) (grad[ms[j]->member][value_of(j)].p ? olds : news).push_back(j);
    if (!news.empty()) {
      auto buf = std::make_shared<gpu::StreamBuffer<float>>(size_t(per) * news.size(), s);
      std::vector<float*> dx;
      for (size_t k = 0; k < news.size(); ++k) {
        Grad& g = grad[ms[news[k]]->member][value_of(news[k])];
        g = {buf, buf->get() + int64_t(k) * per};
        dx.push_back(g.p);
      }
      launch(news, dx, false);
    }
    if (!olds.empty()) {
      std::vector<float*> dx;
      for (int j : olds) dx.push_back(grad[ms[j]->member][value_of(j)].p);
      launch(olds, dx, true);
    }
  };

  const auto& steps = S.steps();
  std::vector<int> all;
  for (int gi = static_cast<int>(steps.size()) - 1; gi >= 0; --gi) {
    const GroupStep& g = steps[gi];
    ms.clear();
    for (const MemberStep& m : g.members)
      if (m.out >= 0 && grad[m.member][m.out].p) ms.push_back(&m);
    if (ms.empty()) continue;
    const int count = static_cast<int>(ms.size());
    all.resize(count);
    for (int j = 0; j < count; ++j) all[j] = j;
    const net::Shape si = g.in_shape, so = g.out_shape;
    auto dy = [&](int j) -> const float* { return grad[ms[j]->member][ms[j]->out].p; };
    auto fwd_value = [&](int j, int v) { return fwd.values[ms[j]->member][v]; };
    auto pick_dy = [&](const std::vector<int>& js) {
      std::vector<const float*> v;
      for (int j : js) v.push_back(dy(j));
      return v;
    };
    auto in0 = [&](int j) { return ms[j]->in0; };
    auto in1 = [&](int j) { return ms[j]->in1; };
    switch (g.kind) {
      case StepKind::kInput:
      case StepKind::kZero:
      case StepKind::kBlockEnd:
        break;
      case StepKind::kLinear: {
        const int in = si.c;
        const int64_t size = int64_t(in) * classes;
        gpu::StreamBuffer<float> slab(size_t(count) * cots * size, s);
        into(all, in0, R * in, [&](const std::vector<int>& js, const std::vector<float*>& dx, bool add) {
          std::vector<const float*> xs;
          std::vector<float*> dw;
          for (int j : js) {
            xs.push_back(fwd_value(j, ms[j]->in0));
            dw.push_back(slab.get() + int64_t(j) * cots * size);
          }
          const auto d = pick_dy(js);
          kg::launch_seg_linear_backward(map, d.data(), xs.data(), bank.slot(g.slot), in, classes,
                                         dx.data(), add, dw.data(), static_cast<int>(js.size()), s);
        });
        std::vector<int> members;
        for (const MemberStep* m : ms) members.push_back(m->member);
        fold(slab.get(), members, size);
        break;
      }
      case StepKind::kGlobalAvgPool:
        into(all, in0, R * si.numel(), [&](const std::vector<int>& js, const std::vector<float*>& dx, bool add) {
          const auto d = pick_dy(js);
          kg::launch_seg_global_avgpool_backward(d.data(), dx.data(), static_cast<int>(js.size()),
                                                 static_cast<int>(R * si.c), si.hw(), add, s);
        });
        break;
      case StepKind::kRelu:
        into(all, in0, R * si.numel(), [&](const std::vector<int>& js, const std::vector<float*>& dx, bool add) {
          std::vector<const float*> pre;
          for (int j : js) pre.push_back(fwd_value(j, ms[j]->in0));
          const auto d = pick_dy(js);
          kg::launch_seg_relu_backward(map, d.data(), pre.data(), dx.data(), static_cast<int>(js.size()), si.numel(),
                                       add, s);
        });
        break;
      case StepKind::kBatchNorm: {
        gpu::StreamBuffer<float> slab(size_t(count) * cots * si.c, s);
        into(all, in0, R * si.numel(), [&](const std::vector<int>& js, const std::vector<float*>& dx, bool add) {
          std::vector<const float*> xhat;
          std::vector<const double*> invstd;
          std::vector<float*> dgamma;
          for (int j : js) {
            xhat.push_back(fwd_value(j, ms[j]->out));
            invstd.push_back(fwd.bn_invstd[ms[j]->member][ms[j]->bn]);
            dgamma.push_back(slab.get() + int64_t(j) * cots * si.c);
          }
          const auto d = pick_dy(js);
          kg::launch_seg_batchnorm_backward(map, d.data(), xhat.data(), invstd.data(), si.c, si.hw(), !exact, dx.data(),
                                            add, dgamma.data(), static_cast<int>(js.size()), s);
        });
        std::vector<int> members;
        for (const MemberStep* m : ms) members.push_back(m->member);
        fold(slab.get(), members, si.c);
        break;
      }
      case StepKind::kAdd:
        for (const auto& which : {0, 1})
          into(all, [&](int j) { return which == 0 ? in0(j) : in1(j); }, R * so.numel(),
               [&](const std::vector<int>& js, const std::vector<float*>& dx, bool add) {
                 const auto d = pick_dy(js);
                 kg::launch_seg_accumulate(d.data(), dx.data(), static_cast<int>(js.size()), R * so.numel(), add, s);
               });
        break;
      case StepKind::kAvgPool3:
      case StepKind::kAvgPool2:
        into(all, in0, R * si.numel(), [&](const std::vector<int>& js, const std::vector<float*>& dx, bool add) {
          const auto d = pick_dy(js);
          kg::launch_seg_avgpool_backward(g.kind == StepKind::kAvgPool3 ? 3 : 2, d.data(), dx.data(),
                                          static_cast<int>(js.size()), static_cast<int>(R * si.c), si.h, si.w, add, s);
        });
        break;
      case StepKind::kConv: {
        const net::SlotInfo info = net::slot_info(g.slot, classes);
        const int kdim = si.c * g.k * g.k;
        const int64_t ohw = so.hw();
        const int64_t size = int64_t(info.cout) * kdim;
        const int64_t per_dy = R * so.numel();
        // Every member's dY as one tensor in group order (gathered when it is not).
        bool contiguous = true;
        for (int j = 1; j < count && contiguous; ++j) contiguous = dy(j) == dy(0) + j * per_dy;
        std::optional<gpu::StreamBuffer<float>> gathered;
        const float* dys = dy(0);
        if (!contiguous) {
          gathered.emplace(size_t(per_dy) * count, s);
          std::vector<float*> dst(count);
          for (int j = 0; j < count; ++j) dst[j] = gathered->get() + j * per_dy;
          const auto src = pick_dy(all);
          kg::launch_seg_unary(kg::SegUnary::kCopy, src.data(), dst.data(), count, per_dy, s);
          dys = gathered->get();
        }
        // Data gradient: one cuDNN call over every member's rows, into a fresh tensor whose slices
        // become the members' gradients, or are added to the ones that exist.
        bool need_dx = in0(0) != input_value[ms[0]->member];
        for (int j = 1; j < count; ++j)
          if ((in0(j) != input_value[ms[j]->member]) != need_dx)
            throw std::logic_error("gpu_ntk_population: a conv group mixes the input and activations");
        if (need_dx) {
          const int64_t per_dx = R * si.numel();
          auto buf = std::make_shared<gpu::StreamBuffer<float>>(size_t(per_dx) * count, s);
          lane.conv.backward_data({static_cast<int>(R * count), si.c, si.h, si.w, info.cout, g.k, g.stride, g.pad}, dys,
                                  bank.slot(g.slot), buf->get(), false);
          std::vector<const float*> src;
          std::vector<float*> dst;
          for (int j = 0; j < count; ++j) {
            Grad& d = grad[ms[j]->member][in0(j)];
            float* slice = buf->get() + j * per_dx;
            if (d.p) {
              src.push_back(slice);
              dst.push_back(d.p);
            } else {
              d = {buf, slice};
            }
          }
          if (!dst.empty())
            kg::launch_seg_accumulate(src.data(), dst.data(), static_cast<int>(dst.size()), per_dx, true, s);
        }
        // Weight gradients of every (member, cotangent) into the group's slab, then Theta.
        gpu::StreamBuffer<float> slab(size_t(count) * cots * size, s);
        std::vector<const float*> xs;
        for (int j = 0; j < count; ++j) xs.push_back(fwd_value(j, in0(j)));
        const float onef = 1.0f, zerof = 0.0f;
        if (!exact) {
          // Per image: dW[(j, i)] = dY[(j, i)] col[(j, i)]^T, one strided batch over (member, image).
          gpu::StreamBuffer<float> col(size_t(count) * n * kdim * ohw, s);
          std::vector<float*> cols(count);
          for (int j = 0; j < count; ++j) cols[j] = col.get() + int64_t(j) * n * kdim * ohw;
          kg::launch_seg_im2col(xs.data(), cols.data(), count, n, si.c, si.h, si.w, g.k, g.stride, g.pad, true, s);
          CUBLAS_CHECK(cublasSgemmStridedBatched(lane.cublas.get(), CUBLAS_OP_T, CUBLAS_OP_N, kdim, info.cout,
                                                 static_cast<int>(ohw), &onef, col.get(), static_cast<int>(ohw),
                                                 int64_t(kdim) * ohw, dys, static_cast<int>(ohw), info.cout * ohw,
                                                 &zerof, slab.get(), kdim, size, count * n));
        } else {
          // Every cotangent at once: dW[j] (cotangents x C_out rows) = dY'[j] col[j]^T with K =
          // images x positions, dY' = dY laid out [cotangent][C_out][image][position] (the rows of
          // all cotangents one matrix: N = cotangents x C_out); one strided batch over members.
          const int64_t nhw = int64_t(n) * ohw;
          gpu::StreamBuffer<float> col(size_t(count) * kdim * nhw, s);
          gpu::StreamBuffer<float> t(size_t(count) * per_dy, s);
          std::vector<float*> cols(count), ts(count);
          std::vector<const float*> dyj(count);
          for (int j = 0; j < count; ++j) {
            cols[j] = col.get() + int64_t(j) * kdim * nhw;
            ts[j] = t.get() + int64_t(j) * per_dy;
            dyj[j] = dys + int64_t(j) * per_dy;
          }
          kg::launch_seg_im2col(xs.data(), cols.data(), count, n, si.c, si.h, si.w, g.k, g.stride, g.pad, false, s);
          kg::launch_seg_transpose_rows(dyj.data(), ts.data(), count, cots, n, info.cout, ohw, s);
          CUBLAS_CHECK(cublasSgemmStridedBatched(lane.cublas.get(), CUBLAS_OP_T, CUBLAS_OP_N, kdim, cots * info.cout,
                                                 static_cast<int>(nhw), &onef, col.get(), static_cast<int>(nhw),
                                                 int64_t(kdim) * nhw, t.get(), static_cast<int>(nhw), per_dy, &zerof,
                                                 slab.get(), kdim, int64_t(cots) * size, count));
        }
        std::vector<int> members;
        for (const MemberStep* m : ms) members.push_back(m->member);
        fold(slab.get(), members, size);
        break;
      }
    }
    // An output's gradient is complete once its producer ran: released (a group's allocation goes
    // when its last member's gradient does).
    for (const MemberStep* m : ms) grad[m->member][m->out] = {};
  }

  // Every member's eigenvalues by one batched solve, then to the callers' slots.
  gpu::StreamBuffer<double> w(size_t(P) * n, s);
  gpu::StreamBuffer<int> dinfo(P, s);
  cusolverDnParams_t params = nullptr;
  CUSOLVER_CHECK(cusolverDnCreateParams(&params));
  struct ParamsGuard {
    cusolverDnParams_t p;
    ~ParamsGuard() { cusolverDnDestroyParams(p); }
  } guard{params};
  size_t dev_bytes = 0, host_bytes = 0;
  CUSOLVER_CHECK(cusolverDnXsyevBatched_bufferSize(lane.cusolver.get(), params, CUSOLVER_EIG_MODE_NOVECTOR,
                                                   CUBLAS_FILL_MODE_LOWER, n, CUDA_R_64F, theta.get(), n, CUDA_R_64F,
                                                   w.get(), CUDA_R_64F, &dev_bytes, &host_bytes, P));
  gpu::StreamBuffer<char> work(std::max<size_t>(1, dev_bytes), s);
  std::vector<char> host_work(std::max<size_t>(1, host_bytes));
  CUSOLVER_CHECK(cusolverDnXsyevBatched(lane.cusolver.get(), params, CUSOLVER_EIG_MODE_NOVECTOR, CUBLAS_FILL_MODE_LOWER,
                                        n, CUDA_R_64F, theta.get(), n, CUDA_R_64F, w.get(), CUDA_R_64F, work.get(),
                                        dev_bytes, host_work.data(), host_bytes, dinfo.get(), P));
  if (host_bytes > 0) CUDA_CHECK(cudaStreamSynchronize(s));  // the host workspace must outlive the solve
  CUDA_CHECK(cudaMemcpy2DAsync(eig, static_cast<size_t>(eig_pitch), w.get(), sizeof(double) * n, sizeof(double) * n,
                               P, cudaMemcpyDeviceToDevice, s));
  CUDA_CHECK(cudaMemcpy2DAsync(info, static_cast<size_t>(info_pitch), dinfo.get(), sizeof(int), sizeof(int), P,
                               cudaMemcpyDeviceToDevice, s));
}

}  // namespace hn::engine
