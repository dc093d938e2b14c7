#include "net/space.hpp"

#include <stdexcept>
#include <tuple>

#include "net/plan.hpp"  // kStemChannels

namespace hn::net {

const char* space_name(Space s) { return s == Space::kNatsSss ? "nats-sss" : "nb201"; }

Space parse_space(const std::string& name) {
  if (name == "nb201") return Space::kNb201;
  if (name == "nats-sss") return Space::kNatsSss;
  throw std::invalid_argument("unknown search space '" + name + "': expected nb201 or nats-sss");
}

int64_t space_size(Space s) { return s == Space::kNatsSss ? sss::kNumArchs : kNumArchs; }

int max_full_resolution_channels(Space s) { return s == Space::kNatsSss ? 8 * sss::kWidthChoices : kStemChannels; }

bool Arch::operator<(const Arch& o) const {
  if (space != o.space) return space < o.space;
  return is_nb201() ? genes < o.genes : widths.c < o.widths.c;
}

int64_t arch_code(const Arch& a) { return a.is_nb201() ? genes_code(a.genes) : sss::widths_index(a.widths); }

Arch arch_from_code(Space s, int64_t code) {
  if (s == Space::kNatsSss) return Arch(sss::widths_from_index(code));
  if (code < 0 || code >= kNumArchs)
    throw std::out_of_range("NB201 code " + std::to_string(code) + " is outside 0..15624");
  return Arch(genes_from_code(static_cast<int>(code)));
}

std::string arch_string(const Arch& a) { return a.is_nb201() ? arch_string(a.genes) : sss::widths_string(a.widths); }

bool is_degenerate(const Arch& a) { return a.is_nb201() && is_degenerate(a.genes); }

std::string isomorphism_key(const Arch& a) {
  return a.is_nb201() ? isomorphism_key(a.genes) : "sss:" + sss::widths_string(a.widths);
}

}  // namespace hn::net
