#include "cli/output.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace hn::cli {

using engine::Proxy;

nlohmann::json json_number(double v) {
  if (std::isnan(v)) throw std::logic_error("NaN reached the output");
  if (std::isinf(v)) return v > 0 ? "+inf" : "-inf";
  return v == 0.0 ? 0.0 : v;
}

std::string csv_number(double v) {
  if (std::isnan(v)) throw std::logic_error("NaN reached the output");
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (v == 0.0) return "0";
  // The shortest text that reads back as the same double (as the JSON lines write it): 0.1, not
  // 0.10000000000000001.
  char buf[32];
  const auto res = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, res.ptr);
}

namespace {
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += (c == '"') ? std::string("\"\"") : std::string(1, c == '\n' ? ' ' : c);
  return q + "\"";
}
}  // namespace

nlohmann::json record_json(const Record& r, const std::vector<Proxy>& proxies) {
  nlohmann::json j = nlohmann::json::object();
  if (!r.error.empty()) {
    j["input"] = r.input;
    if (r.line > 0) j["line"] = r.line;
    j["error"] = r.error;
    return j;
  }
  const engine::ArchScore& s = *r.score;
  j["arch"] = net::arch_string(s.arch);
  j["index"] = r.index ? nlohmann::json(*r.index) : nlohmann::json(nullptr);
  nlohmann::json flags = nlohmann::json::object(), secs = nlohmann::json::object();
  for (Proxy p : proxies) {
    const auto& v = s[p];
    if (!v) continue;
    j[engine::proxy_name(p)] = json_number(v->value);
    if (!v->flag.empty()) flags[engine::proxy_name(p)] = v->flag;
    secs[engine::proxy_name(p)] = v->seconds;
  }
  j["flags"] = flags;
  j["seconds"] = secs;
  return j;
}

RecordWriter::RecordWriter(std::ostream& out, Format f, std::vector<Proxy> proxies)
    : out_(out), format_(f), proxies_(std::move(proxies)) {}

void RecordWriter::write(const Record& r) {
  if (format_ == Format::kJsonl) {
    out_ << record_json(r, proxies_).dump() << "\n";
    out_.flush();
    return;
  }
  if (!header_done_) {
    out_ << "arch,index";
    for (Proxy p : proxies_) out_ << "," << engine::proxy_name(p);
    out_ << ",flags";
    for (Proxy p : proxies_) out_ << ",seconds_" << engine::proxy_name(p);
    out_ << ",error\n";
    header_done_ = true;
  }
  if (!r.error.empty()) {
    out_ << csv_field(r.input) << ",";
    for (size_t i = 0; i < proxies_.size(); ++i) out_ << ",";
    out_ << ",";
    for (size_t i = 0; i < proxies_.size(); ++i) out_ << ",";
    out_ << "," << csv_field(r.error) << "\n";
    out_.flush();
    return;
  }
  const engine::ArchScore& s = *r.score;
  out_ << net::arch_string(s.arch) << "," << (r.index ? std::to_string(*r.index) : "");
  std::string flags;
  for (Proxy p : proxies_) {
    const auto& v = s[p];
    out_ << "," << (v ? csv_number(v->value) : "");
    if (v && !v->flag.empty())
      flags += (flags.empty() ? "" : ";") + std::string(engine::proxy_name(p)) + ":" + v->flag;
  }
  out_ << "," << flags;
  for (Proxy p : proxies_) {
    const auto& v = s[p];
    out_ << "," << (v ? csv_number(v->seconds) : "");
  }
  out_ << ",\n";
  out_.flush();
}

}  // namespace hn::cli
