// The network plan of one NB201 architecture (SPEC.md 1): a flat list of steps over value ids,
// with shapes, parameter slots and ReLU sites. Backends execute it; nothing here allocates
// activations. Parameter slots are keyed by position in the network, not by architecture, so one
// weight bank (net/weight_bank.hpp) serves every architecture.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "net/nats_sss.hpp"
#include "net/nb201.hpp"
#include "net/space.hpp"

namespace hn::net {

inline constexpr int kStemChannels = 16;
inline constexpr int kCellsPerStage = 5;
inline constexpr int kStages = 3;
inline constexpr int kImageSize = 32;
inline constexpr int kImageChannels = 3;
inline constexpr int kImageNumel = kImageChannels * kImageSize * kImageSize;
inline constexpr int kBlockOutputs = 18;  // stem, 15 cells, 2 reduction blocks
inline constexpr double kBnEps = 1e-5;

// ---- parameter slots (SPEC.md 2) -------------------------------------------------------------
inline constexpr int kSlotStem = 0;
inline constexpr int kSlotLinearWeight = 187;
inline constexpr int kSlotLinearBias = 188;
inline constexpr int kNb201Slots = 189;
// g = stage * 5 + cell (0..14), e = edge, op = nor_conv_1x1 or nor_conv_3x3.
int slot_edge_conv(int g, int e, Op op);
// r = 0 (16->32) or 1 (32->64); part 0 = conv_a, 1 = conv_b, 2 = shortcut conv1x1.
int slot_reduction(int r, int part);

// NATS-SSS slots (docs/nats_sss.md "Weights"): one per (family, input width, output width), the
// family a place in the network: 0 the stem conv, 1 + 6 L + e edge e of cell L (cells.0, .2, .4;
// edge 3 is the skip's 1 x 1 conv when the width changes), 19 + 3 R + part reduction block R
// (parts as NB201's), 25 the classifier weight, 26 its bias (both indexed by the head's width as
// ci, co = 0; the bias's scale depends on it). ci, co = width / 8 - 1 (0..7).
inline constexpr int kSssSlotBase = kNb201Slots;
inline constexpr int kSssFamilies = 27;
inline constexpr int kSssFamilyStem = 0, kSssFamilyLinearWeight = 25, kSssFamilyLinearBias = 26;
inline int sss_family_cell_edge(int cell, int e) { return 1 + 6 * cell + e; }
inline int sss_family_reduction(int r, int part) { return 19 + 3 * r + part; }
inline int sss_slot(int family, int ci, int co) { return kSssSlotBase + (family * 8 + ci) * 8 + co; }
inline int sss_slot_family(int slot) { return (slot - kSssSlotBase) / 64; }
inline constexpr int kNumSlots = kSssSlotBase + kSssFamilies * 64;
inline Space slot_space(int slot) { return slot < kNb201Slots ? Space::kNb201 : Space::kNatsSss; }
// Whether some network of the slot's space uses it (a bank materialises exactly those).
bool slot_used(int slot);

enum class SlotKind : uint8_t { kConvWeight, kLinearWeight, kLinearBias };
struct SlotInfo {
  SlotKind kind;
  int cout = 0, cin = 0, k = 1;  // linear: cout = num_classes, cin = the head's width
  int head_width = 64;           // linear bias: the layer's input width (its default init's fan_in)
  int64_t numel() const { return int64_t(cout) * cin * k * k; }
  int fan_in() const { return cin * k * k; }
};
SlotInfo slot_info(int slot, int num_classes);
std::string slot_name(int slot);  // xautodl-style parameter name, for messages and fixtures

// ---- steps -----------------------------------------------------------------------------------
struct Shape {
  int c = 0, h = 0, w = 0;
  int64_t numel() const { return int64_t(c) * h * w; }
  int64_t hw() const { return int64_t(h) * w; }
};

enum class StepKind : uint8_t {
  kInput,          // out = the network input
  kZero,           // out = 0 (a node with only `none` inputs)
  kConv,           // out = conv(in0; slot, k, stride, pad), no bias
  kBatchNorm,      // out = train-mode BN(in0), gamma = 1, beta = 0; `bn` numbers the layer
  kRelu,           // out = max(in0, 0); in0 is ReLU site `site`
  kAdd,            // out = in0 + in1
  kAvgPool3,       // out = 3x3 average, stride 1, pad 1, padded cells not counted
  kAvgPool2,       // out = 2x2 average, stride 2
  kGlobalAvgPool,  // out[c] = mean over H x W
  kLinear,         // out = W in0 + b (slots kSlotLinearWeight, kSlotLinearBias)
  kBlockEnd,       // marks in0 as block output `block` (entropy's measuring points); no output
};
const char* step_kind_name(StepKind k);

struct Step {
  StepKind kind;
  int out = -1, in0 = -1, in1 = -1;
  int slot = -1;                  // kConv
  int k = 1, stride = 1, pad = 0; // kConv
  int bn = -1;                    // kBatchNorm: index of the layer (its gamma is a parameter)
  int site = -1;                  // kRelu
  int block = -1;                 // kBlockEnd
  // NATS-SSS: the widths of the step's section (0 in NB201), so that steps of different plans
  // with equal (pos, variant) have equal shapes and weights; the population schedule groups by both.
  int variant = 0;
  // Where the step stands in the network skeleton, the same for every architecture: steps of
  // different plans with equal pos compute the same thing on tensors of the same shapes (with the
  // same weights for a conv), and executing every plan's steps in pos order is a valid order for
  // each. A cell's ReLU of node i takes the pos of the first edge that could read it, which may
  // come before the step's place in `steps`. Sections (stem, 15 cells, 2 reduction blocks, head)
  // are 1000 apart; within a cell, edge e owns 10e .. 10e+5 (see net/plan.cpp). NATS-SSS: a
  // section per module (stem, cells.0 .. cells.4, head), the same offsets.
  int pos = -1;
};

// A tensor whose ReLU codes the naswot kernel reads. Several conv edges leaving one node share it.
struct Site {
  int value = -1;        // the pre-activation value
  int64_t units = 0;     // per image
  int relu_modules = 0;  // nn.ReLU modules reading it: its weight in naswot_once
  int hooked_modules = 0;// modules the official NASWOT code hooks on it: its weight in naswot
  bool inplace = false;  // the head's in-place ReLU: hooks see max(x, 0) (entropy_seed)
};

// Each nn.ReLU module of the reference network, in execution order (xautodl names).
struct ReluModule {
  std::string name;
  int site = -1;
};

// A tensor that the modules of MeCo's NB201 network (zero-cost-nas's NAS201Model, hooked by the
// MeCo authors' code on every module) return: `modules` of them return it (a Sequential returns
// its last child's tensor; a ReLU-Conv-BN edge's BN output is returned by the BN, the Sequential
// and the edge module). Zero edges and 1 x 1 outputs (pooling, head) are left out: their MeCo
// term is 0.
struct ModuleTap {
  int value = -1;
  int modules = 0;
};

struct Plan {
  Space space = Space::kNb201;
  Genes genes;          // NB201
  sss::Widths widths;   // NATS-SSS
  int num_blocks = kBlockOutputs;  // block outputs (kBlockEnd steps): 18 in NB201, 6 in NATS-SSS
  int num_classes = 10;
  std::vector<Shape> values;     // per-image shape of every value id
  std::vector<Step> steps;
  std::vector<Site> sites;
  std::vector<ReluModule> relu_modules;
  std::vector<int> bn_channels;  // channels of each BN layer
  std::vector<ModuleTap> meco_taps;  // one entry per value, in first-tap order
  int input = -1, logits = -1;
  int64_t param_count = 0;       // conv + BN (gamma, beta) + linear (weight, bias), as PyTorch counts
  int64_t flops = 0;             // 2 x multiply-accumulates of convolutions and the linear layer, per image

  // Weighted units per image, sum of site units x hooked modules (N_A, the naswot K diagonal).
  int64_t weighted_units() const;
  int64_t unweighted_units() const;  // the naswot_once diagonal
};

// NB201's cost conventions (xautodl's get_model_infos at 1 x 3 x 32 x 32, the benchmark tables'
// `params` and `flops` columns), in millions: every parameter of the network (conv weights, BN
// affine gamma and beta, the classifier's weight and bias; every edge of the cell, reaching the
// output or not), and multiply-adds of the convolutions and the linear layer counted once, plus
// the classifier's bias (BN, ReLU, pooling and additions not counted).
inline double nb201_params_m(const Plan& p) { return static_cast<double>(p.param_count) / 1e6; }
inline double nb201_flops_m(const Plan& p) { return static_cast<double>(p.flops / 2 + p.num_classes) / 1e6; }

// The section of a step position (0 stem, 1-5 cells of stage 0, 6 reduction 0, 7-11 stage 1,
// 12 reduction 1, 13-17 stage 2, 18 head).
inline int pos_section(int pos) { return pos / 1000; }

// Throws std::invalid_argument for a degenerate cell (callers must not run those) or a bad
// num_classes.
Plan build_plan(const Genes& genes, int num_classes);
// The NATS-SSS network of docs/nats_sss.md (xautodl's DynamicShapeTinyNet on NB201's best cell).
Plan build_sss_plan(const sss::Widths& widths, int num_classes);
// Either space.
Plan build_plan(const Arch& arch, int num_classes);
// The classifier bias slot of a plan's linear step (its `slot` is the weight's).
int linear_bias_slot(int linear_weight_slot);

// N_A for a cell with n_conv conv edges (SPEC.md 1): 286,720 * n_conv + 77,824.
inline int64_t expected_weighted_units(int n_conv) { return 286720LL * n_conv + 77824; }

}  // namespace hn::net
