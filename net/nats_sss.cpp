#include "net/nats_sss.hpp"

#include <algorithm>
#include <stdexcept>

#include "net/text.hpp"

namespace hn::net::sss {

Widths parse_widths(const std::string& text_in) {
  // Messages show at most 80 bytes of the input (a long line is not echoed whole).
  const std::string text = printable(text_in, 80), &in = text_in;
  const auto fields = std::count(in.begin(), in.end(), ':') + 1;
  if (fields != kLayers)
    throw std::invalid_argument("NATS-SSS arch '" + text + "': " + std::to_string(fields) + " colon-separated " +
                                (fields == 1 ? "field" : "fields") + ", expected 5 widths c1:c2:c3:c4:c5");
  Widths w;
  size_t pos = 0;
  for (int k = 0; k < kLayers; ++k) {
    const size_t end = k + 1 < kLayers ? in.find(':', pos) : in.size();
    if (end == std::string::npos)
      throw std::invalid_argument("NATS-SSS arch '" + text + "': expected 5 widths c1:c2:c3:c4:c5");
    const std::string part = in.substr(pos, end - pos);
    if (part.find(':') != std::string::npos)
      throw std::invalid_argument("NATS-SSS arch '" + text + "': more than 5 widths");
    if (part.empty() || part.find_first_not_of("0123456789") != std::string::npos)
      throw std::invalid_argument("NATS-SSS arch '" + text + "': width " + std::to_string(k + 1) + " ('" + printable(part, 20) +
                                  "') is not a number");
    // Decimal, leading zeros allowed (as every number the CLI reads); anything past 64 is refused.
    const size_t first = std::min(part.find_first_not_of('0'), part.size() - 1);
    const int c = part.size() - first > 3 ? 1000 : std::stoi(part.substr(first));
    if (c < 8 || c > 64 || c % 8 != 0)
      throw std::invalid_argument("NATS-SSS arch '" + text + "': width " + std::to_string(k + 1) + " is " + printable(part, 20) +
                                  "; each must be one of 8, 16, ..., 64");
    w.c[k] = c;
    pos = end + 1;
  }
  return w;
}

std::string widths_string(const Widths& w) {
  std::string s;
  for (int k = 0; k < kLayers; ++k) s += (k ? ":" : "") + std::to_string(w.c[k]);
  return s;
}

int64_t widths_index(const Widths& w) {
  int64_t index = 0;
  for (int k = 0; k < kLayers; ++k) index = index * kWidthChoices + (w.c[k] / 8 - 1);
  return index;
}

Widths widths_from_index(int64_t index) {
  if (index < 0 || index >= kNumArchs)
    throw std::out_of_range("NATS-SSS index " + std::to_string(index) + " is outside 0..32767");
  Widths w;
  for (int k = kLayers - 1; k >= 0; --k) {
    w.c[k] = static_cast<int>(index % kWidthChoices + 1) * 8;
    index /= kWidthChoices;
  }
  return w;
}

namespace {
// A cell i -> o: two 3x3 edges from the input (i -> o), three o -> o, five BNs, and the skip a
// 1x1 conv + BN when the width changes (docs/nats_sss.md).
int64_t cell_params(int64_t i, int64_t o) { return 18 * i * o + 27 * o * o + 10 * o + (i != o ? i * o + 2 * o : 0); }
// A reduction block i -> o: conv_a 3x3 (i -> o), conv_b 3x3 (o -> o), two BNs, the 1x1 shortcut.
int64_t reduction_params(int64_t i, int64_t o) { return 10 * i * o + 9 * o * o + 4 * o; }
int64_t cell_macs(int64_t i, int64_t o, int64_t hw) { return hw * (18 * i * o + 27 * o * o + (i != o ? i * o : 0)); }
int64_t reduction_macs(int64_t i, int64_t o, int64_t hw) { return hw * (10 * i * o + 9 * o * o); }
}  // namespace

int64_t sss_params(const Widths& w, int num_classes) {
  const int64_t c1 = w.c[0], c2 = w.c[1], c3 = w.c[2], c4 = w.c[3], c5 = w.c[4], k = num_classes;
  return 27 * c1 + 2 * c1 + cell_params(c1, c1) + reduction_params(c1, c2) + cell_params(c2, c3) +
         reduction_params(c3, c4) + cell_params(c4, c5) + 2 * c5 + k * c5 + k;
}

int64_t sss_macs(const Widths& w, int num_classes) {
  const int64_t c1 = w.c[0], c2 = w.c[1], c3 = w.c[2], c4 = w.c[3], c5 = w.c[4], k = num_classes;
  return 27 * 1024 * c1 + cell_macs(c1, c1, 1024) + reduction_macs(c1, c2, 256) + cell_macs(c2, c3, 256) +
         reduction_macs(c3, c4, 64) + cell_macs(c4, c5, 64) + k * c5 + k;
}

}  // namespace hn::net::sss
