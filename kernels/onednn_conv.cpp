#include "kernels/onednn_conv.hpp"

#include <stdexcept>

#ifdef HYBRIDNAS_WITH_ONEDNN
#include <omp.h>

#include <map>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <tuple>
#include <vector>
#endif

namespace hn::kernels {

#ifdef HYBRIDNAS_WITH_ONEDNN

namespace {

using Key = std::tuple<int, int, int, int, int, int, int, int>;

struct Conv {
  dnnl::convolution_forward::primitive_desc pd;
  dnnl::convolution_forward prim;
};

dnnl::engine& cpu_engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

// oneDNN's OpenMP runtime sizes its blocking and its thread team by omp_get_max_threads() of the
// calling thread: 1 while this lives, restored after.
class SequentialScope {
 public:
  SequentialScope() : saved_(omp_get_max_threads()) { omp_set_num_threads(1); }
  ~SequentialScope() { omp_set_num_threads(saved_); }
  SequentialScope(const SequentialScope&) = delete;
  SequentialScope& operator=(const SequentialScope&) = delete;

 private:
  int saved_;
};

// Per thread: its primitives by shape (a few dozen in NB201) and reusable buffers for the blocked
// layouts, so no call allocates after the first of its shape.
struct ThreadState {
  std::map<Key, std::unique_ptr<Conv>> convs;
  std::vector<float> src, wei, dst;
};

ThreadState& thread_state() {
  thread_local ThreadState st;
  return st;
}

const Conv& conv_for(ThreadState& ts, const ConvShape& s) {
  auto& slot = ts.convs[Key{s.batch, s.cin, s.h, s.w, s.cout, s.k, s.stride, s.pad}];
  if (!slot) {
    using dnnl::memory;
    const memory::dims src{s.batch, s.cin, s.h, s.w}, wei{s.cout, s.cin, s.k, s.k}, dst{s.batch, s.cout, s.oh(), s.ow()};
    auto any = [](const memory::dims& d) { return memory::desc(d, memory::data_type::f32, memory::format_tag::any); };
    const auto d = dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference,
                                                   dnnl::algorithm::convolution_direct, any(src), any(wei), any(dst),
                                                   {s.stride, s.stride}, {s.pad, s.pad}, {s.pad, s.pad});
    auto pd = dnnl::convolution_forward::primitive_desc(d, cpu_engine());
    slot = std::make_unique<Conv>(Conv{pd, dnnl::convolution_forward(pd)});
  }
  return *slot;
}

// Per thread and shape: the per-image weight-gradient primitive (a grouped backward-weights
// convolution, one group per image).
struct WeightGrads {
  dnnl::convolution_backward_weights::primitive_desc pd;
  dnnl::convolution_backward_weights prim;
};
struct GradState {
  std::map<Key, std::unique_ptr<WeightGrads>> prims;
  std::vector<float> src, diff_dst, diff_wei;
};
GradState& grad_state() {
  thread_local GradState st;
  return st;
}

// A memory object in `desc`'s layout over `buf` (grown as needed).
dnnl::memory blocked(const dnnl::memory::desc& desc, std::vector<float>& buf) {
  const size_t n = desc.get_size() / sizeof(float) + 1;
  if (buf.size() < n) buf.resize(n);
  return dnnl::memory(desc, cpu_engine(), buf.data());
}

}  // namespace

bool onednn_conv_applies(const ConvShape& s) { return s.k > 1; }

void onednn_conv_forward(const ConvShape& s, const float* x, const float* w, float* y) {
  using dnnl::memory;
  const SequentialScope seq;
  ThreadState& ts = thread_state();
  const Conv& c = conv_for(ts, s);
  dnnl::engine& eng = cpu_engine();
  dnnl::stream st(eng);
  memory usr_src({{s.batch, s.cin, s.h, s.w}, memory::data_type::f32, memory::format_tag::nchw}, eng,
                 const_cast<float*>(x));
  memory usr_wei({{s.cout, s.cin, s.k, s.k}, memory::data_type::f32, memory::format_tag::oihw}, eng,
                 const_cast<float*>(w));
  memory usr_dst({{s.batch, s.cout, s.oh(), s.ow()}, memory::data_type::f32, memory::format_tag::nchw}, eng, y);
  // The primitive's own (channel-blocked) layouts; plain NCHW in and out around it.
  memory src = usr_src, wei = usr_wei, dst = usr_dst;
  if (c.pd.src_desc() != usr_src.get_desc()) {
    src = blocked(c.pd.src_desc(), ts.src);
    dnnl::reorder(usr_src, src).execute(st, usr_src, src);
  }
  if (c.pd.weights_desc() != usr_wei.get_desc()) {
    wei = blocked(c.pd.weights_desc(), ts.wei);
    dnnl::reorder(usr_wei, wei).execute(st, usr_wei, wei);
  }
  if (c.pd.dst_desc() != usr_dst.get_desc()) dst = blocked(c.pd.dst_desc(), ts.dst);
  c.prim.execute(st, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}});
  if (dst != usr_dst) dnnl::reorder(dst, usr_dst).execute(st, dst, usr_dst);
  st.wait();
}

void onednn_conv_weight_grads_per_image(const ConvShape& s, const float* x, const float* dy, float* dw) {
  using dnnl::memory;
  const SequentialScope seq;
  GradState& gs = grad_state();
  const int n = s.batch;
  // n images as one image of n x cin channels (the same memory), n groups of cin -> cout: the
  // gradient of group i's weights is image i's own [cout, cin, k, k] gradient.
  const memory::dims src_d{1, n * s.cin, s.h, s.w}, dst_d{1, n * s.cout, s.oh(), s.ow()},
      wei_d{n, s.cout, s.cin, s.k, s.k};
  auto& slot = gs.prims[Key{n, s.cin, s.h, s.w, s.cout, s.k, s.stride, s.pad}];
  if (!slot) {
    auto any = [](const memory::dims& d) { return memory::desc(d, memory::data_type::f32, memory::format_tag::any); };
    const memory::dims strides{s.stride, s.stride}, pad{s.pad, s.pad};
    const auto fwd = dnnl::convolution_forward::primitive_desc(
        dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
                                        any(src_d), any(wei_d), any(dst_d), strides, pad, pad),
        cpu_engine());
    const auto bwd = dnnl::convolution_backward_weights::primitive_desc(
        dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct, any(src_d), any(wei_d),
                                                 any(dst_d), strides, pad, pad),
        cpu_engine(), fwd);
    slot = std::make_unique<WeightGrads>(WeightGrads{bwd, dnnl::convolution_backward_weights(bwd)});
  }
  const WeightGrads& c = *slot;
  dnnl::engine& eng = cpu_engine();
  dnnl::stream st(eng);
  memory usr_src({src_d, memory::data_type::f32, memory::format_tag::nchw}, eng, const_cast<float*>(x));
  memory usr_dst({dst_d, memory::data_type::f32, memory::format_tag::nchw}, eng, const_cast<float*>(dy));
  memory usr_wei({wei_d, memory::data_type::f32, memory::format_tag::goihw}, eng, dw);
  memory src = usr_src, ddst = usr_dst, dwei = usr_wei;
  if (c.pd.src_desc() != usr_src.get_desc()) {
    src = blocked(c.pd.src_desc(), gs.src);
    dnnl::reorder(usr_src, src).execute(st, usr_src, src);
  }
  if (c.pd.diff_dst_desc() != usr_dst.get_desc()) {
    ddst = blocked(c.pd.diff_dst_desc(), gs.diff_dst);
    dnnl::reorder(usr_dst, ddst).execute(st, usr_dst, ddst);
  }
  if (c.pd.diff_weights_desc() != usr_wei.get_desc()) dwei = blocked(c.pd.diff_weights_desc(), gs.diff_wei);
  c.prim.execute(st, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, ddst}, {DNNL_ARG_DIFF_WEIGHTS, dwei}});
  if (dwei != usr_wei) dnnl::reorder(dwei, usr_wei).execute(st, dwei, usr_wei);
  st.wait();
}

std::string onednn_description() {
  const dnnl_version_t* v = dnnl_version();
  std::string isa;
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::avx512_core: isa = "avx512_core"; break;
    case dnnl::cpu_isa::avx512_core_vnni: isa = "avx512_core_vnni"; break;
    case dnnl::cpu_isa::avx512_core_bf16: isa = "avx512_core_bf16"; break;
    case dnnl::cpu_isa::avx512_core_amx: isa = "avx512_core_amx"; break;
    case dnnl::cpu_isa::avx2: isa = "avx2"; break;
    case dnnl::cpu_isa::avx2_vnni: isa = "avx2_vnni"; break;
    case dnnl::cpu_isa::avx: isa = "avx"; break;
    case dnnl::cpu_isa::sse41: isa = "sse41"; break;
    default: isa = "other";
  }
  return "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch) +
         " (isa " + isa + ")";
}

#else

bool onednn_conv_applies(const ConvShape&) { return false; }
void onednn_conv_forward(const ConvShape&, const float*, const float*, float*) {
  throw std::logic_error("onednn_conv_forward: this build has no oneDNN");
}
void onednn_conv_weight_grads_per_image(const ConvShape&, const float*, const float*, float*) {
  throw std::logic_error("onednn_conv_weight_grads_per_image: this build has no oneDNN");
}
std::string onednn_description() { return ""; }

#endif

}  // namespace hn::kernels
