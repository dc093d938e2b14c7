#include "net/plan.hpp"

#include <stdexcept>

namespace hn::net {

int slot_edge_conv(int g, int e, Op op) {
  if (!is_conv(op)) throw std::invalid_argument("slot_edge_conv: not a conv op");
  return 1 + (g * kNumEdges + e) * 2 + (op == Op::kConv3x3 ? 1 : 0);
}

int slot_reduction(int r, int part) { return 181 + 3 * r + part; }

namespace {
// NATS-SSS slot -> (family, ci, co).
struct SssSlot {
  int family, ci, co;
};
SssSlot sss_decode(int slot) {
  if (slot < kSssSlotBase || slot >= kNumSlots) throw std::out_of_range("no parameter slot " + std::to_string(slot));
  const int rel = slot - kSssSlotBase;
  return {rel / 64, (rel / 8) % 8, rel % 8};
}
int width_of(int i) { return 8 * (i + 1); }
}  // namespace

bool slot_used(int slot) {
  if (slot < 0 || slot >= kNumSlots) return false;
  if (slot < kNb201Slots) return true;
  const SssSlot d = sss_decode(slot);
  if (d.family == kSssFamilyStem || d.family == kSssFamilyLinearWeight || d.family == kSssFamilyLinearBias)
    return d.co == 0;
  if (d.family >= sss_family_reduction(0, 0)) return (d.family - 19) % 3 != 1 || d.ci == d.co;
  const int cell = (d.family - 1) / 6, e = (d.family - 1) % 6;
  if (cell == 0 && d.ci != d.co) return false;  // cells.0 keeps the stem's width
  if (e == 3) return d.ci != d.co;              // the skip is a conv only when the width changes
  if (e == 0 || e == 1) return true;            // edges from node 0: C_in -> C_out
  return d.ci == d.co;                          // edges from nodes 1, 2: C_out -> C_out
}

SlotInfo slot_info(int slot, int num_classes) {
  if (slot >= kSssSlotBase) {
    const SssSlot d = sss_decode(slot);
    const int ci = width_of(d.ci), co = width_of(d.co);
    if (d.family == kSssFamilyStem) return {SlotKind::kConvWeight, ci, kImageChannels, 3};
    if (d.family == kSssFamilyLinearWeight) return {SlotKind::kLinearWeight, num_classes, ci, 1};
    if (d.family == kSssFamilyLinearBias) return {SlotKind::kLinearBias, num_classes, 1, 1, ci};
    if (d.family >= sss_family_reduction(0, 0)) {
      const int part = (d.family - 19) % 3;
      return {SlotKind::kConvWeight, co, part == 1 ? co : ci, part == 2 ? 1 : 3};
    }
    const int e = (d.family - 1) % 6;
    return {SlotKind::kConvWeight, co, (e == 0 || e == 1 || e == 3) ? ci : co, e == 3 ? 1 : 3};
  }
  if (slot == kSlotStem) return {SlotKind::kConvWeight, kStemChannels, kImageChannels, 3};
  if (slot >= 1 && slot <= 180) {
    const int rel = slot - 1;
    const int g = rel / (kNumEdges * 2);
    const int c = kStemChannels << (g / kCellsPerStage);
    return {SlotKind::kConvWeight, c, c, (rel % 2) ? 3 : 1};
  }
  if (slot >= 181 && slot <= 186) {
    const int r = (slot - 181) / 3, part = (slot - 181) % 3;
    const int cin = kStemChannels << r, cout = cin * 2;
    if (part == 0) return {SlotKind::kConvWeight, cout, cin, 3};
    if (part == 1) return {SlotKind::kConvWeight, cout, cout, 3};
    return {SlotKind::kConvWeight, cout, cin, 1};
  }
  const int head = kStemChannels << (kStages - 1);
  if (slot == kSlotLinearWeight) return {SlotKind::kLinearWeight, num_classes, head, 1};
  if (slot == kSlotLinearBias) return {SlotKind::kLinearBias, num_classes, 1, 1};
  throw std::out_of_range("no parameter slot " + std::to_string(slot));
}

namespace {
// xautodl numbering of `cells`: 0-4, reduction 5, 6-10, reduction 11, 12-16.
int module_cell_index(int stage, int cell) { return stage * (kCellsPerStage + 1) + cell; }
}  // namespace

std::string slot_name(int slot) {
  if (slot >= kSssSlotBase) {
    const SssSlot d = sss_decode(slot);
    const std::string w = " (" + std::to_string(width_of(d.ci)) + "->" + std::to_string(width_of(d.co)) + ")";
    if (d.family == kSssFamilyStem) return "stem.0.weight (" + std::to_string(width_of(d.ci)) + ")";
    if (d.family == kSssFamilyLinearWeight) return "classifier.weight (" + std::to_string(width_of(d.ci)) + ")";
    if (d.family == kSssFamilyLinearBias) return "classifier.bias (" + std::to_string(width_of(d.ci)) + ")";
    if (d.family >= sss_family_reduction(0, 0)) {
      const int r = (d.family - 19) / 3, part = (d.family - 19) % 3;
      const char* names[] = {".conv_a.op.1.weight", ".conv_b.op.1.weight", ".downsample.1.weight"};
      return "cells." + std::to_string(2 * r + 1) + names[part] + w;
    }
    const int cell = (d.family - 1) / 6, e = (d.family - 1) % 6;
    return "cells." + std::to_string(2 * cell) + ".layers." + std::to_string(e) + (e == 3 ? ".conv.weight" : ".op.1.weight") + w;
  }
  if (slot == kSlotStem) return "stem.0.weight";
  if (slot >= 1 && slot <= 180) {
    const int rel = slot - 1, g = rel / (kNumEdges * 2), e = (rel / 2) % kNumEdges;
    return "cells." + std::to_string(module_cell_index(g / kCellsPerStage, g % kCellsPerStage)) +
           ".layers." + std::to_string(e) + ".op.1.weight" + ((rel % 2) ? " (3x3)" : " (1x1)");
  }
  if (slot >= 181 && slot <= 186) {
    const int r = (slot - 181) / 3, part = (slot - 181) % 3;
    const std::string cell = "cells." + std::to_string(module_cell_index(r + 1, -1));
    const char* names[] = {".conv_a.op.1.weight", ".conv_b.op.1.weight", ".downsample.1.weight"};
    return cell + names[part];
  }
  if (slot == kSlotLinearWeight) return "classifier.weight";
  if (slot == kSlotLinearBias) return "classifier.bias";
  throw std::out_of_range("no parameter slot " + std::to_string(slot));
}

const char* step_kind_name(StepKind k) {
  switch (k) {
    case StepKind::kInput: return "input";
    case StepKind::kZero: return "zero";
    case StepKind::kConv: return "conv";
    case StepKind::kBatchNorm: return "batch_norm";
    case StepKind::kRelu: return "relu";
    case StepKind::kAdd: return "add";
    case StepKind::kAvgPool3: return "avg_pool_3x3";
    case StepKind::kAvgPool2: return "avg_pool_2x2";
    case StepKind::kGlobalAvgPool: return "global_avg_pool";
    case StepKind::kLinear: return "linear";
    case StepKind::kBlockEnd: return "block_end";
  }
  return "?";
}

int64_t Plan::weighted_units() const {
  int64_t n = 0;
  for (const auto& s : sites) n += s.units * s.hooked_modules;
  return n;
}

int64_t Plan::unweighted_units() const {
  int64_t n = 0;
  for (const auto& s : sites) n += s.units * s.relu_modules;
  return n;
}

namespace {

class Builder {
 public:
  explicit Builder(Plan& p) : p_(p) {}

  int value(Shape s) {
    p_.values.push_back(s);
    return static_cast<int>(p_.values.size()) - 1;
  }
  Shape shape(int v) const { return p_.values[v]; }

  int input() {
    const int out = value({kImageChannels, kImageSize, kImageSize});
    push(Step{StepKind::kInput, out});
    return out;
  }
  int zero(Shape s) {
    const int out = value(s);
    push(Step{StepKind::kZero, out});
    return out;
  }
  int conv(int in, int slot, int stride) {
    const SlotInfo info = slot_info(slot, p_.num_classes);
    const Shape si = shape(in);
    const int pad = info.k / 2;
    const Shape so{info.cout, (si.h + 2 * pad - info.k) / stride + 1,
                   (si.w + 2 * pad - info.k) / stride + 1};
    const int out = value(so);
    Step st{StepKind::kConv, out, in};
    st.slot = slot;
    st.k = info.k;
    st.stride = stride;
    st.pad = pad;
    push(st);
    p_.param_count += info.numel();
    p_.flops += 2 * info.numel() * so.hw();
    return out;
  }
  int batch_norm(int in) {
    const int out = value(shape(in));
    Step st{StepKind::kBatchNorm, out, in};
    st.bn = static_cast<int>(p_.bn_channels.size());
    p_.bn_channels.push_back(shape(in).c);
    push(st);
    p_.param_count += 2 * shape(in).c;
    return out;
  }
  // A new ReLU site on `in`: `hooked` = modules the official NASWOT code hooks per nn.ReLU.
  int relu(int in, const std::string& module, int hooked) {
    const int out = value(shape(in));
    Step st{StepKind::kRelu, out, in};
    st.site = static_cast<int>(p_.sites.size());
    p_.sites.push_back(Site{in, shape(in).numel(), 1, hooked});
    p_.relu_modules.push_back(ReluModule{module, st.site});
    push(st);
    return out;
  }
  // Another nn.ReLU module reading the same tensor as an existing site's ReLU step.
  void share_relu(int relu_out, const std::string& module, int hooked) {
    for (const auto& st : p_.steps)
      if (st.kind == StepKind::kRelu && st.out == relu_out) {
        p_.sites[st.site].relu_modules += 1;
        p_.sites[st.site].hooked_modules += hooked;
        p_.relu_modules.push_back(ReluModule{module, st.site});
        return;
      }
    throw std::logic_error("share_relu: no such ReLU step");
  }
  // `modules` more nn.Modules of MeCo's network return value v (ModuleTap).
  void tap(int v, int modules) {
    for (auto& t : p_.meco_taps)
      if (t.value == v) {
        t.modules += modules;
        return;
      }
    p_.meco_taps.push_back(ModuleTap{v, modules});
  }
  int binary(StepKind kind, int a, int b) {
    const int out = value(shape(a));
    push(Step{kind, out, a, b});
    return out;
  }
  int unary(StepKind kind, int in, Shape so) {
    const int out = value(so);
    push(Step{kind, out, in});
    return out;
  }
  void block_end(int v) {
    Step st{StepKind::kBlockEnd, -1, v};
    st.block = blocks_++;
    at(999);
    push(st);
  }

  // Positions within a cell: edge e owns 10e + (0 the ReLU of its source node when e is that
  // node's first outgoing edge, 1 conv, 2 BN, 3 avg-pool, 4 the add into the target node, 5 a
  // target node with no input after its last incoming edge).
  static int first_edge_from(int node) { return node == 0 ? 0 : node == 1 ? 2 : 5; }
  static int last_edge_into(int node) { return node == 1 ? 0 : node == 2 ? 2 : 5; }

  int cell(int x, int stage, int cell_in_stage) {
    const int g = stage * kCellsPerStage + cell_in_stage;
    section(1 + stage * (kCellsPerStage + 1) + cell_in_stage);
    const std::string prefix = "cells." + std::to_string(module_cell_index(stage, cell_in_stage));
    std::array<int, 4> node{x, -1, -1, -1};
    std::array<int, 4> relu_of{-1, -1, -1, -1};  // shared ReLU output per source node
    int e = 0;
    for (int j = 1; j <= 3; ++j) {
      int sum = -1;
      for (int i = 0; i < j; ++i, ++e) {
        const Op op = p_.genes[e];
        int term = -1;
        const std::string module = prefix + ".layers." + std::to_string(e) + ".op.0";
        switch (op) {
          case Op::kNone: break;
          case Op::kSkip:
            term = node[i];
            tap(term, 1);  // Identity
            break;
          case Op::kAvgPool:
            at(10 * e + 3);
            term = unary(StepKind::kAvgPool3, node[i], shape(node[i]));
            tap(term, 2);  // AvgPool2d and its POOLING parent
            break;
          case Op::kConv1x1:
          case Op::kConv3x3:
            // The ReLU module and its ReLU-Conv-BN parent both see this input: weight 2.
            at(10 * first_edge_from(i));
            if (relu_of[i] < 0) relu_of[i] = relu(node[i], module, 2);
            else share_relu(relu_of[i], module, 2);
            at(10 * e + 1);
            const int c = conv(relu_of[i], slot_edge_conv(g, e, op), 1);
            at(10 * e + 2);
            term = batch_norm(c);
            tap(relu_of[i], 1);  // this edge's ReLU
            tap(c, 1);
            tap(term, 3);  // BN, the Sequential, the ReLU-Conv-BN edge
            break;
        }
        if (term < 0) continue;
        at(10 * e + 4);
        sum = sum < 0 ? term : binary(StepKind::kAdd, sum, term);
      }
      at(10 * last_edge_into(j) + 5);
      node[j] = sum >= 0 ? sum : zero(shape(x));
    }
    tap(node[3], cell_in_stage == kCellsPerStage - 1 ? 2 : 1);  // the cell; the last, its stack too
    return node[3];
  }

  int reduction(int x, int r) {
    section((r + 1) * (kCellsPerStage + 1));
    return reduction_block(x, "cells." + std::to_string(module_cell_index(r + 1, -1)), slot_reduction(r, 0),
                           slot_reduction(r, 1), slot_reduction(r, 2));
  }
  // ResNetBasicblock(stride 2) with the given conv_a, conv_b and shortcut slots, in the current
  // section.
  int reduction_block(int x, const std::string& prefix, int slot_a, int slot_b, int slot_shortcut) {
    at(1);
    const int ra = relu(x, prefix + ".conv_a.op.0", 2);
    at(2);
    const int ca = conv(ra, slot_a, 2);
    at(3);
    const int a = batch_norm(ca);
    at(4);
    const int rb = relu(a, prefix + ".conv_b.op.0", 2);
    at(5);
    const int cb = conv(rb, slot_b, 1);
    at(6);
    const int b = batch_norm(cb);
    const Shape sx = shape(x);
    at(7);
    const int pooled = unary(StepKind::kAvgPool2, x, {sx.c, sx.h / 2, sx.w / 2});
    at(8);
    const int shortcut = conv(pooled, slot_shortcut, 1);
    at(9);
    const int out = binary(StepKind::kAdd, b, shortcut);
    // MeCo's modules in its forward order: conv_a (ReLU, conv, BN x 3), conv_b (the same), the
    // residual (AvgPool2d, conv, its Sequential), the block.
    tap(ra, 1);
    tap(ca, 1);
    tap(a, 3);
    tap(rb, 1);
    tap(cb, 1);
    tap(b, 3);
    tap(pooled, 1);
    tap(shortcut, 2);
    tap(out, 1);
    return out;
  }
  void build() {
    section(0);
    at(0);
    p_.input = input();
    at(1);
    int x = conv(p_.input, kSlotStem, 1);
    tap(x, 1);
    at(2);
    x = batch_norm(x);
    tap(x, 3);  // BN, stem.net, stem
    block_end(x);
    for (int stage = 0; stage < kStages; ++stage) {
      if (stage > 0) {
        x = reduction(x, stage - 1);
        block_end(x);
      }
      for (int c = 0; c < kCellsPerStage; ++c) {
        x = cell(x, stage, c);
        block_end(x);
      }
    }
    section(kStages * (kCellsPerStage + 1));
    head(x, kSlotLinearWeight);
  }
  // Head: BN -> ReLU (hooked once: lastact is a Sequential) -> GAP -> linear, in the current
  // section.
  void head(int x, int linear_slot) {
    at(1);
    const int hb = batch_norm(x);
    at(2);
    const int h = relu(hb, "lastact.1", 1);
    p_.sites.back().inplace = true;
    tap(hb, 1);  // hooked before the in-place ReLU overwrites it
    tap(h, 2);   // the ReLU and lastact
    const Shape sh = shape(h);
    at(3);
    const int pooled = unary(StepKind::kGlobalAvgPool, h, {sh.c, 1, 1});
    at(4);
    p_.logits = unary(StepKind::kLinear, pooled, {p_.num_classes, 1, 1});
    p_.steps.back().slot = linear_slot;
    p_.param_count += int64_t(p_.num_classes) * sh.c + p_.num_classes;
    p_.flops += 2LL * p_.num_classes * sh.c;
  }

  // ---- NATS-SSS (docs/nats_sss.md) ----
  static int widx(int c) { return c / 8 - 1; }
  // InferCell(G, ci -> co) of NB201's best cell G, cell number L (cells.2L), in the current section.
  int sss_cell(int x, int L, int ci, int co) {
    const std::string prefix = "cells." + std::to_string(2 * L);
    const int i = widx(ci), o = widx(co);
    auto edge_slot = [&](int e) { return sss_slot(sss_family_cell_edge(L, e), (e == 0 || e == 1 || e == 3) ? i : o, o); };
    // A ReLU-Conv-BN edge from node `from` (its ReLU shared by the node's 3x3 edges).
    std::array<int, 3> relu_of{-1, -1, -1};
    auto conv_edge = [&](int e, int from, int src) {
      at(10 * first_edge_from(from));
      const std::string module = prefix + ".layers." + std::to_string(e) + ".op.0";
      if (relu_of[from] < 0) relu_of[from] = relu(src, module, 2);
      else share_relu(relu_of[from], module, 2);
      at(10 * e + 1);
      const int c = conv(relu_of[from], edge_slot(e), 1);
      at(10 * e + 2);
      const int term = batch_norm(c);
      tap(relu_of[from], 1);
      tap(c, 1);
      tap(term, 3);  // BN, the Sequential, the ReLU-Conv-BN edge
      return term;
    };
    auto add = [&](int e, int sum, int term) {
      at(10 * e + 4);
      return binary(StepKind::kAdd, sum, term);
    };
    // node1 = layers.0(x); node2 = layers.1(x) + layers.2(node1);
    // node3 = layers.3(x) + layers.4(node1) + layers.5(node2).
    const int n1 = conv_edge(0, 0, x);
    const int t1 = conv_edge(1, 0, x);
    const int t2 = conv_edge(2, 1, n1);
    const int n2 = add(2, t1, t2);
    int skip = x;
    if (ci == co) {
      tap(x, 1);  // Identity
    } else {
      // FactorizedReduce at stride 1: conv1x1 -> BN, no ReLU (its relu module is never called).
      at(10 * 3 + 1);
      const int c = conv(x, edge_slot(3), 1);
      at(10 * 3 + 2);
      skip = batch_norm(c);
      tap(c, 1);
      tap(skip, 2);  // BN, FactorizedReduce
    }
    const int t4 = conv_edge(4, 1, n1);
    const int s4 = add(4, skip, t4);
    const int t5 = conv_edge(5, 2, n2);
    const int n3 = add(5, s4, t5);
    tap(n3, 1);  // the cell
    return n3;
  }

  void build_sss() {
    const auto& c = p_.widths.c;
    sss_section(0, c[0], c[0]);
    at(0);
    p_.input = input();
    at(1);
    int x = conv(p_.input, sss_slot(kSssFamilyStem, widx(c[0]), 0), 1);
    tap(x, 1);
    at(2);
    x = batch_norm(x);
    tap(x, 2);  // BN, stem (a Sequential)
    block_end(x);
    int prev = c[0];
    for (int k = 0; k < sss::kLayers; ++k) {
      sss_section(k + 1, prev, c[k]);
      if (k % 2 == 0) {
        x = sss_cell(x, k / 2, prev, c[k]);
      } else {
        const int r = k / 2, i = widx(prev), o = widx(c[k]);
        x = reduction_block(x, "cells." + std::to_string(k), sss_slot(sss_family_reduction(r, 0), i, o),
                            sss_slot(sss_family_reduction(r, 1), o, o), sss_slot(sss_family_reduction(r, 2), i, o));
      }
      block_end(x);
      prev = c[k];
    }
    sss_section(sss::kLayers + 1, prev, prev);
    head(x, sss_slot(kSssFamilyLinearWeight, widx(prev), 0));
  }

 private:
  void sss_section(int s, int ci, int co) {
    section_ = s;
    variant_ = 1 + widx(ci) * 8 + widx(co);
  }
  void section(int s) { section_ = s; }
  void at(int offset) { pos_ = section_ * 1000 + offset; }
  void push(Step st) {
    st.pos = pos_;
    st.variant = variant_;
    p_.steps.push_back(st);
  }

  Plan& p_;
  int blocks_ = 0;
  int section_ = 0;
  int variant_ = 0;
  int pos_ = 0;
};

}  // namespace

Plan build_plan(const Genes& genes, int num_classes) {
  if (num_classes < 1 || num_classes > 100000)
    throw std::invalid_argument("num_classes must be in 1..100000, got " +
                                std::to_string(num_classes));
  if (is_degenerate(genes))
    throw std::invalid_argument("degenerate cell " + arch_string(genes) +
                                ": node 3 is unreachable; it has no network to run");
  Plan p;
  p.genes = genes;
  p.num_classes = num_classes;
  Builder(p).build();
  return p;
}

Plan build_sss_plan(const sss::Widths& widths, int num_classes) {
  if (num_classes < 1 || num_classes > 100000)
    throw std::invalid_argument("num_classes must be in 1..100000, got " + std::to_string(num_classes));
  for (int c : widths.c)
    if (c < 8 || c > 64 || c % 8 != 0)
      throw std::invalid_argument("NATS-SSS widths must be in 8, 16, ..., 64: " + sss::widths_string(widths));
  Plan p;
  p.space = Space::kNatsSss;
  p.widths = widths;
  p.num_classes = num_classes;
  p.num_blocks = 1 + sss::kLayers;
  Builder(p).build_sss();
  return p;
}

int linear_bias_slot(int w) {
  if (w == kSlotLinearWeight) return kSlotLinearBias;
  if (w >= kSssSlotBase && w < kNumSlots && sss_slot_family(w) == kSssFamilyLinearWeight)
    return w + (kSssFamilyLinearBias - kSssFamilyLinearWeight) * 64;
  throw std::invalid_argument("slot " + std::to_string(w) + " is not a classifier weight");
}

Plan build_plan(const Arch& arch, int num_classes) {
  return arch.is_nb201() ? build_plan(arch.genes, num_classes) : build_sss_plan(arch.widths, num_classes);
}

}  // namespace hn::net
