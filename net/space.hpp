// The search spaces the engine knows, and one architecture of either: NAS-Bench-201's cell space
// (SPEC.md 1; net/nb201.hpp) and NATS-Bench's size space (docs/nats_sss.md; net/nats_sss.hpp).
#pragma once
#include <cstdint>
#include <string>

#include "net/nats_sss.hpp"
#include "net/nb201.hpp"

namespace hn::net {

enum class Space : uint8_t {
  kNb201 = 0,    // "nb201": 15,625 cells on the fixed 16/32/64-channel skeleton
  kNatsSss = 1,  // "nats-sss": 32,768 width configurations of NB201's best cell
};
const char* space_name(Space s);
// "nb201" or "nats-sss"; throws std::invalid_argument naming both otherwise.
Space parse_space(const std::string& name);
int64_t space_size(Space s);
// The most channels a network of the space has at full resolution (32 x 32): NB201's stem, 16;
// NATS-SSS's widest first layer, 64. For memory estimates (activations per image).
int max_full_resolution_channels(Space s);

// One architecture of a space: genes for NB201, widths for NATS-SSS (the other field is unused).
// Genes convert implicitly: code written for NB201 keeps working unchanged.
struct Arch {
  Space space = Space::kNb201;
  Genes genes{};
  sss::Widths widths{};

  Arch() = default;
  Arch(const Genes& g) : genes(g) {}  // NOLINT(google-explicit-constructor): NB201 is the default space
  explicit Arch(const sss::Widths& w) : space(Space::kNatsSss), widths(w) {}

  bool is_nb201() const { return space == Space::kNb201; }
  bool operator==(const Arch& o) const {
    return space == o.space && (is_nb201() ? genes == o.genes : widths == o.widths);
  }
  bool operator!=(const Arch& o) const { return !(*this == o); }
  bool operator<(const Arch& o) const;
};

// A dense code in [0, space_size): genes_code for NB201, the benchmark's index for NATS-SSS.
int64_t arch_code(const Arch& a);
Arch arch_from_code(Space s, int64_t code);  // throws std::out_of_range outside the space
// The space's arch string: |op~0|+... or c1:c2:c3:c4:c5.
std::string arch_string(const Arch& a);
// NB201's degenerate cells (never run); no NATS-SSS network is degenerate.
bool is_degenerate(const Arch& a);
// Equal keys = the same function (NB201's isomorphism rule; NATS-SSS: the arch string).
std::string isomorphism_key(const Arch& a);

}  // namespace hn::net
