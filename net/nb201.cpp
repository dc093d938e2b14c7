#include "net/nb201.hpp"

#include "net/text.hpp"

#include <algorithm>
#include <cstdio>
#include <vector>

namespace hn::net {

namespace {
constexpr std::array<const char*, kNumOps> kOpNames = {"none", "skip_connect", "nor_conv_1x1",
                                                       "nor_conv_3x3", "avg_pool_3x3"};

[[noreturn]] void fail(std::string_view text, size_t pos, const std::string& what) {
  const std::string shown = printable(text);
  throw ArchParseError("invalid architecture string '" + shown + "' at character " +
                           std::to_string(pos + 1) + ": " + what,
                       pos);
}
}  // namespace

const char* op_name(Op op) { return kOpNames.at(static_cast<int>(op)); }

int genes_code(const Genes& g) {
  int code = 0;
  for (int e = kNumEdges - 1; e >= 0; --e) code = code * kNumOps + static_cast<int>(g[e]);
  return code;
}

Genes genes_from_code(int code) {
  if (code < 0 || code >= kNumArchs) throw std::out_of_range("genes code out of range");
  Genes g;
  for (int e = 0; e < kNumEdges; ++e) {
    g[e] = static_cast<Op>(code % kNumOps);
    code /= kNumOps;
  }
  return g;
}

Genes parse_arch(std::string_view text) {
  const std::string_view full = text;
  size_t begin = 0, end = text.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(text[begin]))) ++begin;
  while (end > begin && std::isspace(static_cast<unsigned char>(text[end - 1]))) --end;
  if (begin == end) fail(full, 0, "empty string");
  size_t pos = begin;
  auto expect = [&](char c) {
    if (pos >= end) fail(full, pos, std::string("expected '") + c + "' but the string ended");
    if (text[pos] != c) {
      // One byte of a multi-byte character, or a control byte, is shown as \xNN: the message
      // stays valid UTF-8 whatever the input.
      const unsigned char u = static_cast<unsigned char>(text[pos]);
      char found[8];
      std::snprintf(found, sizeof found, u >= 0x20 && u < 0x7F ? "%c" : "\\x%02X", u);
      fail(full, pos, std::string("expected '") + c + "', found '" + found + "'");
    }
    ++pos;
  };
  Genes g;
  int edge = 0;
  for (int node = 1; node <= 3; ++node) {
    if (node > 1) expect('+');
    expect('|');
    for (int from = 0; from < node; ++from, ++edge) {
      const size_t tok = pos;
      if (tok >= end)
        fail(full, tok, "the string ended after " + std::to_string(edge) + " edges (a cell has 6)");
      while (pos < end && text[pos] != '~' && text[pos] != '|') ++pos;
      const std::string_view name = text.substr(tok, pos - tok);
      int op = -1;
      for (int k = 0; k < kNumOps; ++k)
        if (name == kOpNames[k]) op = k;
      if (op < 0)
        fail(full, tok,
             "unknown op '" + std::string(name) +
                 "' (expected none, skip_connect, nor_conv_1x1, nor_conv_3x3 or avg_pool_3x3)");
      g[edge] = static_cast<Op>(op);
      expect('~');
      const size_t num = pos;
      while (pos < end && std::isdigit(static_cast<unsigned char>(text[pos]))) ++pos;
      if (num == pos) fail(full, num, "expected the input node number after '~'");
      const std::string digits(text.substr(num, pos - num));
      if (digits != std::to_string(from))
        fail(full, num,
             "edge into node " + std::to_string(node) + " must come from node " +
                 std::to_string(from) + " here, found " + digits);
      expect('|');
    }
  }
  if (pos != end) fail(full, pos, "unexpected trailing text after the third node");
  return g;
}

std::string arch_string(const Genes& g) {
  std::string s;
  int edge = 0;
  for (int node = 1; node <= 3; ++node) {
    if (node > 1) s += '+';
    s += '|';
    for (int from = 0; from < node; ++from, ++edge) {
      s += op_name(g[edge]);
      s += '~';
      s += std::to_string(from);
      s += '|';
    }
  }
  return s;
}

int conv_edge_count(const Genes& g) {
  return static_cast<int>(std::count_if(g.ops.begin(), g.ops.end(), is_conv));
}

bool is_degenerate(const Genes& g) {
  std::array<bool, 4> reach{true, false, false, false};
  for (int e = 0; e < kNumEdges; ++e)  // edges are topologically ordered
    if (g[e] != Op::kNone && reach[kEdgeFrom[e]]) reach[kEdgeTo[e]] = true;
  return !reach[3];
}

std::string isomorphism_key(const Genes& g) {
  std::array<std::string, 4> expr;
  expr[0] = "0";
  int edge = 0;
  for (int node = 1; node <= 3; ++node) {
    std::vector<std::string> terms;
    for (int from = 0; from < node; ++from, ++edge) {
      const Op op = g[edge];
      if (op == Op::kNone || expr[from] == "#")
        terms.emplace_back("#");
      else if (op == Op::kSkip)
        terms.push_back(expr[from]);
      else
        terms.push_back("(" + expr[from] + ")@" + op_name(op));
    }
    std::sort(terms.begin(), terms.end());
    std::string joined;
    for (size_t t = 0; t < terms.size(); ++t) joined += (t ? "+" : "") + terms[t];
    expr[node] = joined;
  }
  return expr[3];
}

}  // namespace hn::net
