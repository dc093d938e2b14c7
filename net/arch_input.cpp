#include "net/arch_input.hpp"

#include "net/text.hpp"

#include <cctype>
#include <cstdio>
#include <vector>

namespace hn::net {

namespace {

constexpr const char* kFormats =
    "accepted: an NB201 arch string (|nor_conv_3x3~0|+|...~0|...~1|+|...~0|...~1|...~2|), an NB201 "
    "index (0..15624), NASLib op indices ([4, 0, 3, 1, 4, 3]) or a NASLib one-hot list of 30 "
    "values";

// NASLib's edge k (EDGE_LIST order) is our gene kNaslibEdgeToGene[k]; NASLib's op index o is our
// op kNaslibOp[o].
constexpr int kNaslibEdgeToGene[kNumEdges] = {0, 1, 3, 2, 4, 5};
constexpr Op kNaslibOp[kNumOps] = {Op::kSkip, Op::kNone, Op::kConv3x3, Op::kConv1x1, Op::kAvgPool};

std::string_view trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\r' || s[b] == '\n')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r' || s[e - 1] == '\n')) --e;
  return s.substr(b, e - b);
}

[[noreturn]] void refuse(std::string_view text, const std::string& what) {
  throw ArchInputError("'" + printable(text) + "' is not an architecture: " + what + " (" +
                       kFormats + ")");
}

ArchRef parse_index(std::string_view t, const ArchTable* table) {
  const std::string shown = printable(t);
  if (t[0] == '-')
    throw ArchInputError("NB201 index " + shown + " is negative: indices are 0..15624");
  if (t[0] == '+')
    throw ArchInputError("'" + shown + "': write an NB201 index without a sign (0..15624)");
  std::string_view digits = t;  // leading zeros are decimal, never octal
  while (digits.size() > 1 && digits[0] == '0') digits.remove_prefix(1);
  if (digits.size() > 9)
    throw ArchInputError("NB201 index " + shown + " is out of range: indices are 0..15624");
  const int idx = std::stoi(std::string(digits));
  if (idx >= kNumArchs)
    throw ArchInputError("NB201 index " + shown + " is out of range: indices are 0..15624");
  if (!table)
    throw ArchInputError("'" + shown +
                         "' is an NB201 index, which needs the NB201 table (--table FILE or "
                         "$HYBRIDNAS_TABLE); arch strings and NASLib encodings need none");
  try {
    return ArchRef{table->arch_of(idx), idx};
  } catch (const std::out_of_range& e) {
    throw ArchInputError(e.what());
  }
}

// A bracketed list of numbers: [a, b, ...] or (a, b, ...), separated by commas and/or spaces.
ArchRef parse_list(std::string_view t, const ArchTable* table) {
  const char close = t[0] == '[' ? ']' : ')';
  if (t.size() < 2 || t.back() != close)
    refuse(t, std::string("a list must end with '") + close + "'");
  std::string_view body = t.substr(1, t.size() - 2);
  // Values separated by commas (Python: "4, 0, 3") or by whitespace only (numpy: "1. 0. 0."),
  // never both, and no empty slot between two commas.
  std::vector<std::string_view> items;
  const bool commas = body.find(',') != std::string_view::npos;
  size_t i = 0;
  auto skip_space = [&] {
    while (i < body.size() && (body[i] == ' ' || body[i] == '\t')) ++i;
  };
  skip_space();
  while (i < body.size()) {
    const size_t b = i;
    while (i < body.size() && body[i] != ',' && body[i] != ' ' && body[i] != '\t') ++i;
    if (i == b) refuse(t, "an empty value in the list");
    items.push_back(body.substr(b, i - b));
    skip_space();
    if (commas && i < body.size()) {
      if (body[i] != ',') refuse(t, "list values must be separated by commas throughout");
      ++i;
      skip_space();
      if (i == body.size()) refuse(t, "a comma ends the list");
    }
  }
  auto value_of = [&](std::string_view v, int hi) -> int {
    // Integers, or numpy-style floats with a zero fraction ("1.", "1.0", "0.000").
    size_t k = 0;
    int n = 0;
    if (v.size() > 1 && v[0] == '0' && std::isdigit(static_cast<unsigned char>(v[1])))
      refuse(t, "list value '" + printable(v) + "' has a leading zero");
    const size_t digits_at = k;
    while (k < v.size() && std::isdigit(static_cast<unsigned char>(v[k])) && k - digits_at < 4)
      n = n * 10 + (v[k++] - '0');
    bool ok = k > digits_at;
    if (ok && k < v.size() && v[k] == '.') {
      ++k;
      while (k < v.size() && v[k] == '0') ++k;
    }
    ok = ok && k == v.size() && n <= hi;
    if (!ok)
      refuse(t, "list value '" + printable(v) + "' is not an integer in 0.." + std::to_string(hi));
    return n;
  };
  int ops[kNumEdges];
  if (items.size() == kNumEdges) {
    for (int e = 0; e < kNumEdges; ++e) ops[e] = value_of(items[e], kNumOps - 1);
  } else if (items.size() == kNumEdges * kNumOps) {
    for (int e = 0; e < kNumEdges; ++e) {
      int hot = -1, ones = 0;
      for (int o = 0; o < kNumOps; ++o)
        if (value_of(items[e * kNumOps + o], 1) == 1) {
          hot = o;
          ++ones;
        }
      if (ones != 1)
        refuse(t, "one-hot block " + std::to_string(e + 1) + " (values " +
                      std::to_string(e * kNumOps + 1) + ".." + std::to_string(e * kNumOps + kNumOps) +
                      ") holds " + std::to_string(ones) + " ones, not exactly one");
      ops[e] = hot;
    }
  } else {
    refuse(t, "a list of " + std::to_string(items.size()) +
                  " values (NASLib op indices have 6, a one-hot encoding 30)");
  }
  ArchRef r{genes_from_naslib_op_indices(ops), std::nullopt};
  if (table) r.index = table->index_of(r.arch);
  return r;
}

constexpr const char* kSssFormats =
    "accepted in the NATS-SSS space: widths c1:c2:c3:c4:c5, each one of 8, 16, ..., 64 (16:32:48:24:56), or a "
    "NATS-SSS index (0..32767)";

ArchRef parse_sss_input(std::string_view t) {
  const std::string shown = printable(t);
  ArchRef r;
  bool digits = !t.empty();
  for (char c : t) digits = digits && std::isdigit(static_cast<unsigned char>(c));
  if (digits) {
    std::string_view d = t;  // leading zeros are decimal
    while (d.size() > 1 && d[0] == '0') d.remove_prefix(1);
    const long long idx = d.size() > 9 ? -1 : std::stoll(std::string(d));
    if (idx < 0 || idx >= sss::kNumArchs)
      throw ArchInputError("NATS-SSS index " + shown + " is out of range: indices are 0..32767");
    r.arch = Arch(sss::widths_from_index(idx));
  } else {
    if (t[0] == '|')
      throw ArchInputError("'" + shown + "' is written as an NB201 cell, and this is the NATS-SSS space (--space "
                           "nb201 selects NB201; " + kSssFormats + ")");
    if (t[0] == '[' || t[0] == '(')
      throw ArchInputError("'" + shown + "' is a list: lists are NB201's NASLib encodings (--space nb201), and "
                           "NATS-SSS widths are written c1:c2:c3:c4:c5 (" + kSssFormats + ")");
    if (t.find_first_not_of("0123456789:") != std::string_view::npos)
      throw ArchInputError("'" + shown + "' is not a NATS-SSS architecture (" + kSssFormats + ")");
    try {
      r.arch = Arch(sss::parse_widths(std::string(t)));
    } catch (const std::invalid_argument& e) {
      throw ArchInputError(std::string(e.what()) + " (" + kSssFormats + ")");
    }
  }
  r.index = static_cast<int>(arch_code(r.arch));  // the benchmark's formula (tables are checked against it)
  return r;
}

}  // namespace

Genes genes_from_naslib_op_indices(const int (&ops)[kNumEdges]) {
  Genes g;
  for (int k = 0; k < kNumEdges; ++k) {
    if (ops[k] < 0 || ops[k] >= kNumOps)
      throw ArchInputError("NASLib op index " + std::to_string(ops[k]) + " is outside 0..4");
    g[kNaslibEdgeToGene[k]] = kNaslibOp[ops[k]];
  }
  return g;
}

ArchRef parse_arch_input(std::string_view text, const ArchTable* table, Space space) {
  const std::string_view t = trim(text);
  if (space == Space::kNatsSss && (t.empty() || !is_valid_utf8(t)))
    throw ArchInputError("'" + printable(t) + "' is not a NATS-SSS architecture: " +
                         (t.empty() ? "it is empty" : "it holds bytes that are not UTF-8 text") + " (" + kSssFormats + ")");
  if (t.empty()) refuse(text, "it is empty");
  if (!is_valid_utf8(t)) refuse(t, "it holds bytes that are not UTF-8 text");
  if (table && table->space() != space)
    throw ArchInputError(std::string("the table '") + table->path() + "' is of space " + space_name(table->space()) +
                         ", not " + space_name(space));
  if (space == Space::kNatsSss) return parse_sss_input(t);
  const bool signed_number = (t[0] == '-' || t[0] == '+') && t.size() > 1;
  if (std::isdigit(static_cast<unsigned char>(t[0])) || signed_number) {
    bool all_digits = true;
    for (size_t i = signed_number ? 1 : 0; i < t.size(); ++i)
      all_digits = all_digits && std::isdigit(static_cast<unsigned char>(t[i]));
    if (all_digits) return parse_index(t, table);
    if (t.find_first_not_of("0123456789:") == std::string_view::npos)
      refuse(t, "it looks like NATS-SSS widths c1:c2:c3:c4:c5, and this is the NB201 space (--space nats-sss "
                "selects the size space)");
    refuse(t, "an NB201 index is a whole number 0..15624");
  }
  if (t[0] == '[' || t[0] == '(') return parse_list(t, table);
  if (t[0] != '|') refuse(t, "it matches none of the formats");
  ArchRef r;
  try {
    r.arch = parse_arch(t);
  } catch (const ArchParseError& e) {
    throw ArchInputError(e.what());
  }
  if (table) r.index = table->index_of(r.arch);
  return r;
}

int read_arch_lines(std::istream& in, const std::function<void(ArchLine&&)>& sink) {
  std::streambuf* buf = in.rdbuf();
  int lineno = 0;
  bool first = true;
  while (true) {
    std::string line;
    bool too_long = false, any = false;
    int c;
    while ((c = buf->sbumpc()) != std::char_traits<char>::eof()) {
      any = true;
      if (c == '\n') break;
      if (line.size() < kMaxArchLineBytes) line.push_back(static_cast<char>(c));
      else too_long = true;
    }
    if (!any) break;
    ++lineno;
    if (first && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);
    first = false;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    ArchLine out;
    out.line = lineno;
    if (too_long) {
      out.text = printable(line, 80);
      out.error = "line " + std::to_string(lineno) + " is longer than " +
                  std::to_string(kMaxArchLineBytes) + " bytes; an architecture fits in one short line";
      sink(std::move(out));
      continue;
    }
    bool control = false;
    for (char ch : line) {
      const unsigned char u = static_cast<unsigned char>(ch);
      control = control || (u < 0x20 && u != '\t') || u == 0x7F;
    }
    if (control || !is_valid_utf8(line)) {
      out.text = printable(line, 80);
      out.error = "line " + std::to_string(lineno) +
                  " is not UTF-8 text (binary or wrongly encoded bytes, shown as \\xNN)";
      sink(std::move(out));
      continue;
    }
    const size_t hash = line.find('#');
    const std::string_view entry = trim(std::string_view(line).substr(0, hash));
    if (entry.empty()) continue;
    out.text = std::string(entry);
    sink(std::move(out));
  }
  return lineno;
}

}  // namespace hn::net
