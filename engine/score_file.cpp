#include "engine/score_file.hpp"

#include <cerrno>
#include <cmath>
#include <algorithm>
#include <cstdlib>

#include "engine/files.hpp"
#include "net/arch_input.hpp"

namespace hn::engine {

namespace {

[[noreturn]] void fail(const std::string& name, int line, const std::string& what) {
  throw ScoreFileError(name + ":" + std::to_string(line) + ": " + what);
}

std::optional<Proxy> proxy_of(const std::string& key) {
  for (int p = 0; p < kNumProxies; ++p)
    if (key == proxy_name(static_cast<Proxy>(p))) return static_cast<Proxy>(p);
  return std::nullopt;
}

double json_proxy_value(const nlohmann::json& v, const std::string& name, int line, const char* proxy) {
  if (v.is_number()) {
    const double d = v.get<double>();
    if (!std::isfinite(d)) fail(name, line, std::string(proxy) + " is not a finite number");
    return d;
  }
  if (v.is_string()) {
    if (v == "+inf") return INFINITY;
    if (v == "-inf") return -INFINITY;
  }
  fail(name, line, std::string(proxy) + " must be a number, \"+inf\" or \"-inf\", found " +
                       net::printable(v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), 60));
}

double number_field(const std::string& f, const std::string& name, int line, const std::string& what,
                    bool allow_inf) {
  if (allow_inf && (f == "inf" || f == "+inf")) return INFINITY;
  if (allow_inf && f == "-inf") return -INFINITY;
  double d = 0;
  if (!net::parse_decimal(f, &d))
    fail(name, line, what + " '" + net::printable(f, 60) + "' is not a finite decimal number");
  return d;
}

// What SPEC.md 3 allows a value: infinite only as a flagged worst value, and the flag
// `degenerate` exactly on degenerate cells.
void check_value(Proxy p, const ProxyValue& v, const net::Arch& g, const std::string& name, int line) {
  if (std::isinf(v.value) && (v.flag.empty() || v.value != worst_value(p)))
    fail(name, line, std::string(proxy_name(p)) + " is infinite without being a flagged worst value");
  if ((v.flag == kFlagDegenerate) != net::is_degenerate(g))
    fail(name, line, std::string(proxy_name(p)) + (net::is_degenerate(g) ? " of a degenerate cell lacks the flag degenerate"
                                                                        : " is flagged degenerate on a cell that is not"));
}

int index_value(long long v, const net::Arch& a, const std::string& name, int line) {
  if (v < 0 || v >= net::space_size(a.space))
    fail(name, line, "index " + std::to_string(v) + " is outside 0.." + std::to_string(net::space_size(a.space) - 1));
  return static_cast<int>(v);
}

// An NB201 arch string, or NATS-SSS widths c1:c2:c3:c4:c5 (the record's space).
net::Arch arch_value(const std::string& s, const std::string& name, int line) {
  try {
    if (!s.empty() && s[0] != '|' && s.find(':') != std::string::npos) return net::Arch(net::sss::parse_widths(s));
    return net::parse_arch(s);
  } catch (const net::ArchParseError& e) {
    if (s.empty() || s[0] != '|')
      fail(name, line, "arch '" + net::printable(s, 80) +
                           "' is neither an NB201 arch string (|op~0|+...) nor NATS-SSS widths (c1:c2:c3:c4:c5)");
    fail(name, line, net::printable(e.what()));
  } catch (const std::invalid_argument& e) {
    fail(name, line, net::printable(e.what()));
  }
}

// Every score record of a file is of one space: out.space.
void check_one_space(ScoreFile& out, const std::string& name) {
  bool first = true;
  for (const ScoreRecord& r : out.records) {
    if (r.error_record) continue;
    if (first) out.space = r.score.arch.space;
    else if (r.score.arch.space != out.space)
      fail(name, r.line, std::string("a ") + net::space_name(r.score.arch.space) + " architecture in a file of " +
                             net::space_name(out.space) + " ones");
    first = false;
  }
}

ScoreRecord parse_json_line(const std::string& text, const std::string& name, int line) {
  nlohmann::json j;
  try {
    j = parse_json_strict(text);
  } catch (const std::exception& e) {
    fail(name, line, std::string("not a JSON record: ") + e.what());
  }
  if (!j.is_object()) fail(name, line, "not a JSON object");
  ScoreRecord r;
  r.line = line;
  if (!j.contains("arch")) {
    if (j.contains("error") && j["error"].is_string() && j.contains("input") && j["input"].is_string()) {
      r.error_record = true;
      r.input = j["input"].get<std::string>();
      if (j.contains("line")) {
        if (!j["line"].is_number_unsigned() || j["line"].get<uint64_t>() > 1000000000)
          fail(name, line, "the error record's line is not a line number");
        r.input_line = static_cast<int>(j["line"].get<uint64_t>());
      }
      return r;
    }
    fail(name, line, "neither a score record (arch) nor an error record (input, error)");
  }
  if (!j["arch"].is_string()) fail(name, line, "arch is not a string");
  r.score.arch = arch_value(j["arch"].get<std::string>(), name, line);
  if (j.contains("index") && !j["index"].is_null()) {
    const uint64_t top = static_cast<uint64_t>(net::space_size(r.score.arch.space) - 1);
    if (!j["index"].is_number_integer() || (j["index"].is_number_unsigned() && j["index"].get<uint64_t>() > top))
      fail(name, line, "index " + net::printable(j["index"].dump(), 40) + " is not an integer in 0.." + std::to_string(top));
    r.index = index_value(j["index"].get<long long>(), r.score.arch, name, line);
  }
  const nlohmann::json flags = j.value("flags", nlohmann::json::object());
  const nlohmann::json secs = j.value("seconds", nlohmann::json::object());
  if (!flags.is_object()) fail(name, line, "flags is not an object");
  if (!secs.is_object()) fail(name, line, "seconds is not an object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    const auto p = proxy_of(it.key());
    if (!p) continue;
    ProxyValue v;
    v.value = json_proxy_value(it.value(), name, line, proxy_name(*p));
    if (flags.contains(it.key())) {
      if (!flags[it.key()].is_string() || !is_known_flag(flags[it.key()].get<std::string>()))
        fail(name, line, "unknown flag for " + it.key());
      v.flag = flags[it.key()].get<std::string>();
    }
    if (secs.contains(it.key())) {
      const auto& s = secs[it.key()];
      if (!s.is_number() || !std::isfinite(s.get<double>()) || s.get<double>() < 0)
        fail(name, line, "seconds of " + it.key() + " is not a non-negative number");
      v.seconds = s.get<double>();
    }
    check_value(*p, v, r.score.arch, name, line);
    r.score[*p] = v;
  }
  for (auto it = flags.begin(); it != flags.end(); ++it)
    if (!proxy_of(it.key()) || !r.score[*proxy_of(it.key())])
      fail(name, line, "flags names '" + net::printable(it.key(), 40) + "', which has no value here");
  return r;
}

std::vector<std::string> split_csv(const std::string& line, const std::string& name, int lineno) {
  std::vector<std::string> out;
  std::string field;
  bool quoted = false, was_quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < line.size() && line[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          quoted = false;
        }
      } else {
        field += c;
      }
    } else if (c == '"') {
      if (!field.empty() || was_quoted) fail(name, lineno, "a quote inside an unquoted CSV field");
      quoted = was_quoted = true;
    } else if (c == ',') {
      out.push_back(std::move(field));
      field.clear();
      was_quoted = false;
    } else {
      if (was_quoted) fail(name, lineno, "text after a closing quote in a CSV field");
      field += c;
    }
  }
  if (quoted) fail(name, lineno, "an unterminated quoted CSV field");
  out.push_back(std::move(field));
  return out;
}

}  // namespace

bool is_known_flag(const std::string& f) {
  return f == kFlagDegenerate || f == kFlagSingular || f == kFlagIllConditioned ||
         f == kFlagZeroVariance || f == kFlagNonfinite;
}

ScoreFile parse_score_file(std::string_view text, const std::string& name) {
  ScoreFile out;
  size_t pos = 0;
  int lineno = 0;
  bool header_seen = false;
  std::vector<std::string> header;
  while (pos < text.size()) {
    const size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) {
      out.partial_last_line = true;
      break;
    }
    ++lineno;
    std::string line(text.substr(pos, nl - pos));
    pos = out.complete_bytes = nl + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (lineno == 1 && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);  // a BOM
    if (line.empty()) continue;
    if (!net::is_valid_utf8(line)) fail(name, lineno, "not UTF-8 text");
    if (!header_seen) {
      header_seen = true;
      if (line.rfind("arch,index", 0) == 0) {
        out.format = ScoreFormat::kCsv;
        header = split_csv(line, name, lineno);
        if (header.size() < 4 || header.back() != "error")
          fail(name, lineno, "a CSV header must be arch,index,<proxies>,flags,<seconds_proxies>,error");
        size_t k = 2;
        for (; k < header.size() && header[k] != "flags"; ++k) {
          const auto p = proxy_of(header[k]);
          if (!p) fail(name, lineno, "unknown CSV column '" + net::printable(header[k], 40) + "'");
          if (std::find(out.csv_proxies.begin(), out.csv_proxies.end(), *p) != out.csv_proxies.end())
            fail(name, lineno, "the CSV header names " + header[k] + " twice");
          out.csv_proxies.push_back(*p);
        }
        if (k + out.csv_proxies.size() + 2 != header.size())
          fail(name, lineno, "the CSV header's seconds columns do not match its proxy columns");
        for (size_t i = 0; i < out.csv_proxies.size(); ++i)
          if (header[k + 1 + i] != std::string("seconds_") + proxy_name(out.csv_proxies[i]))
            fail(name, lineno, "unexpected CSV column '" + net::printable(header[k + 1 + i], 40) + "'");
        continue;
      }
    }
    if (out.format == ScoreFormat::kJsonl) {
      out.records.push_back(parse_json_line(line, name, lineno));
      continue;
    }
    const auto f = split_csv(line, name, lineno);
    if (f.size() != header.size())
      fail(name, lineno, "expected " + std::to_string(header.size()) + " CSV fields, found " +
                             std::to_string(f.size()));
    ScoreRecord r;
    r.line = lineno;
    if (!f.back().empty()) {
      r.error_record = true;
      r.input = f[0];
      out.records.push_back(std::move(r));
      continue;
    }
    r.score.arch = arch_value(f[0], name, lineno);
    if (!f[1].empty()) {
      const std::string& s = f[1];
      if (s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos)
        fail(name, lineno, "index '" + net::printable(s, 40) + "' is not an integer");
      r.index = index_value(std::stoll(s), r.score.arch, name, lineno);
    }
    const size_t np = out.csv_proxies.size();
    std::map<Proxy, std::string> flags;
    const std::string& fl = f[2 + np];
    for (size_t b = 0; b < fl.size();) {
      size_t e = fl.find(';', b);
      if (e == std::string::npos) e = fl.size();
      const std::string item = fl.substr(b, e - b);
      const size_t colon = item.find(':');
      const auto p = colon == std::string::npos ? std::nullopt : proxy_of(item.substr(0, colon));
      if (!p || !is_known_flag(item.substr(colon + 1)))
        fail(name, lineno, "flags entry '" + net::printable(item, 40) + "' is not proxy:flag");
      if (!flags.emplace(*p, item.substr(colon + 1)).second)
        fail(name, lineno, "flags name " + std::string(proxy_name(*p)) + " twice");
      b = e + 1;
    }
    for (size_t i = 0; i < np; ++i) {
      const Proxy p = out.csv_proxies[i];
      if (f[2 + i].empty()) continue;
      ProxyValue v;
      v.value = number_field(f[2 + i], name, lineno, proxy_name(p), true);
      if (flags.count(p)) v.flag = flags[p];
      if (!f[3 + np + i].empty()) {
        v.seconds = number_field(f[3 + np + i], name, lineno, std::string("seconds_") + proxy_name(p), false);
        if (v.seconds < 0) fail(name, lineno, std::string("seconds_") + proxy_name(p) + " is negative");
      }
      check_value(p, v, r.score.arch, name, lineno);
      r.score[p] = v;
    }
    out.records.push_back(std::move(r));
  }
  check_one_space(out, name);
  return out;
}

std::string settings_file_path(const std::string& out) { return out + ".settings.json"; }

void require_same_settings(const nlohmann::json& recorded, const nlohmann::json& now,
                           const std::string& what, const std::vector<std::string>& order) {
  if (!recorded.is_object()) throw ScoreFileError(what + " holds no settings object");
  std::vector<std::string> keys;
  for (const auto& k : order)
    if (now.contains(k)) keys.push_back(k);
  for (auto it = now.begin(); it != now.end(); ++it)
    if (std::find(keys.begin(), keys.end(), it.key()) == keys.end()) keys.push_back(it.key());
  for (const auto& k : keys) {
    const auto r = recorded.find(k);
    const std::string was = r == recorded.end() ? "(not recorded)" : r->dump();
    if (r == recorded.end() || *r != now[k])
      throw ScoreFileError(what + ": " + k + " differs: it was made with " + net::printable(was, 300) +
                           ", this run uses " + net::printable(now[k].dump(), 300));
  }
  for (auto it = recorded.begin(); it != recorded.end(); ++it)
    if (!now.contains(it.key()))
      throw ScoreFileError(what + ": it records a setting this run does not have: " +
                           net::printable(it.key(), 80));
}

}  // namespace hn::engine
