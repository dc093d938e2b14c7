// NATS-Bench's size search space (SSS; docs/nats_sss.md): five layer widths c1..c5, each one of
// 8, 16, ..., 64, on the fixed NB201 cell of the best topology; arch strings "c1:c2:c3:c4:c5", the
// benchmark's index (base-8 digits of c/8 - 1, the last layer fastest), and xautodl's parameter and
// multiply-accumulate counts of the network (closed forms of docs/nats_sss.md, checked against
// xautodl's DynamicShapeTinyNet run on the CPU: tests/reference/nats_sss_official_counts.json).
// The groundwork of issue 17: the network plan and the engine's use of this space come next.
#pragma once
#include <array>
#include <cstdint>
#include <string>

namespace hn::net::sss {

inline constexpr int kLayers = 5;
inline constexpr int kWidthChoices = 8;         // 8, 16, ..., 64
inline constexpr int64_t kNumArchs = 32768;     // 8^5

// Layer widths: cell, reduction, cell, reduction, cell.
struct Widths {
  std::array<int, kLayers> c{};
  bool operator==(const Widths& o) const { return c == o.c; }
};

// "c1:c2:c3:c4:c5" (each a multiple of 8 in 8..64) -> widths. Throws std::invalid_argument saying
// what is wrong.
Widths parse_widths(const std::string& text);
std::string widths_string(const Widths& w);

// NATS-Bench SSS index in [0, 32768): sum over k of (c_k / 8 - 1) * 8^(4 - k).
int64_t widths_index(const Widths& w);
// Throws std::out_of_range outside [0, 32768).
Widths widths_from_index(int64_t index);

// xautodl's counts for `num_classes` classes at 1 x 3 x 32 x 32: parameters (conv weights, BN gamma
// and beta, the classifier's weight and bias; NATS-Bench's `params` x 1e6) and multiply-accumulates
// of the convolutions and the classifier (with its bias; NATS-Bench's `flops` x 1e6).
int64_t sss_params(const Widths& w, int num_classes);
int64_t sss_macs(const Widths& w, int num_classes);

}  // namespace hn::net::sss
