// NAS-Bench-201 cell space (SPEC.md 1): ops, genes, arch strings, degenerate cells, isomorphism key.
#pragma once
#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace hn::net {

enum class Op : uint8_t { kNone = 0, kSkip = 1, kConv1x1 = 2, kConv3x3 = 3, kAvgPool = 4 };
inline constexpr int kNumOps = 5;
inline constexpr int kNumEdges = 6;
inline constexpr int kNumArchs = 15625;  // 5^6

// Edge e connects node kEdgeFrom[e] -> node kEdgeTo[e], in arch-string (= gene) order.
inline constexpr std::array<int, kNumEdges> kEdgeFrom = {0, 0, 1, 0, 1, 2};
inline constexpr std::array<int, kNumEdges> kEdgeTo = {1, 2, 2, 3, 3, 3};

const char* op_name(Op op);
inline bool is_conv(Op op) { return op == Op::kConv1x1 || op == Op::kConv3x3; }

// One cell = 6 genes, one op per edge.
struct Genes {
  std::array<Op, kNumEdges> ops{};
  Op operator[](int e) const { return ops[e]; }
  Op& operator[](int e) { return ops[e]; }
  bool operator==(const Genes& o) const { return ops == o.ops; }
  bool operator!=(const Genes& o) const { return ops != o.ops; }
  bool operator<(const Genes& o) const { return ops < o.ops; }
};

// Dense code in [0, 15625): sum of op index * 5^edge. Not the NB201 index (that needs a table).
int genes_code(const Genes& g);
Genes genes_from_code(int code);

// A malformed arch string: what() says what is wrong and at which character.
class ArchParseError : public std::runtime_error {
 public:
  ArchParseError(const std::string& what, size_t position)
      : std::runtime_error(what), position_(position) {}
  size_t position() const { return position_; }

 private:
  size_t position_;
};

// Strict parser for `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`; surrounding whitespace is allowed.
Genes parse_arch(std::string_view text);
std::string arch_string(const Genes& g);

int conv_edge_count(const Genes& g);
// Node 3 unreachable from node 0 through non-`none` edges (341 of 15,625 cells).
bool is_degenerate(const Genes& g);
// NB201's isomorphism rule (SPEC.md 1): equal keys = same function.
std::string isomorphism_key(const Genes& g);

}  // namespace hn::net
