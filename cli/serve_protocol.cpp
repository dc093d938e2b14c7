#include "cli/serve_protocol.hpp"

#include <algorithm>
#include <cctype>

#include "engine/files.hpp"
#include "net/text.hpp"

namespace hn::cli {

using engine::Proxy;
using nlohmann::json;

namespace {

bool valid_id(const json& id) {
  return id.is_null() || id.is_string() || id.is_number_integer() || id.is_number_unsigned();
}

// The text `score --arch` takes for one item of "archs".
bool arch_text(const json& item, std::string* text) {
  if (item.is_string()) {
    *text = item.get<std::string>();
    return true;
  }
  if (item.is_number_integer() || item.is_number_unsigned()) {
    *text = item.dump();
    return true;
  }
  if (item.is_array() && !item.empty() &&
      std::all_of(item.begin(), item.end(), [](const json& v) { return v.is_number(); })) {
    std::string t = "[";
    for (size_t i = 0; i < item.size(); ++i) t += (i ? ", " : "") + item[i].dump();
    *text = t + "]";
    return true;
  }
  *text = item.dump();
  return false;
}

std::string loaded_names(const std::vector<Proxy>& loaded) { return engine::proxy_list_string(loaded); }

// "a string", "an array", "an object", ...
std::string a_type(const json& j) {
  const std::string t = j.type_name();
  return (t == "array" || t == "object" ? "an " : "a ") + t;
}

}  // namespace

ServeRequest parse_serve_request(std::string_view line, const std::vector<Proxy>& loaded,
                                 size_t max_archs) {
  if (!net::is_valid_utf8(line))
    throw RequestError(nullptr, "the request is not UTF-8 text (binary or wrongly encoded bytes)");
  json j;
  try {
    j = engine::parse_json_strict(line);
  } catch (const std::exception& e) {
    throw RequestError(leading_request_id(line), std::string("bad request: ") + e.what() +
                                                     "; send one JSON object per line");
  }
  if (!j.is_object())
    throw RequestError(nullptr, "the request is " + a_type(j) +
                                    ", not an object such as {\"id\": 1, \"archs\": [...]}");
  ServeRequest r;
  if (j.contains("id")) {
    if (!valid_id(j["id"]))
      throw RequestError(nullptr, "\"id\" must be an integer, a string or null, not " +
                                      a_type(j["id"]));
    r.id = j["id"];
  }
  for (const auto& [key, value] : j.items()) {
    (void)value;
    if (key != "id" && key != "op" && key != "archs" && key != "proxies")
      throw RequestError(r.id, "unknown field \"" + net::printable(key, 60) +
                                   "\" (a request has \"id\", \"op\", \"archs\" and \"proxies\")");
  }
  std::string op = "score";
  if (j.contains("op")) {
    if (!j["op"].is_string())
      throw RequestError(r.id, "\"op\" must be a string: score, info, ping or shutdown");
    op = j["op"].get<std::string>();
  } else if (!j.contains("archs")) {
    throw RequestError(r.id, "the request names no operation: give \"archs\" to score, or \"op\" "
                             "(score, info, ping, shutdown)");
  }
  if (op == "info") r.op = ServeOp::kInfo;
  else if (op == "ping") r.op = ServeOp::kPing;
  else if (op == "shutdown") r.op = ServeOp::kShutdown;
  else if (op == "score") r.op = ServeOp::kScore;
  else
    throw RequestError(r.id, "unknown op \"" + net::printable(op, 60) +
                                 "\" (ops: score, info, ping, shutdown)");
  if (r.op != ServeOp::kScore) {
    if (j.contains("archs") || j.contains("proxies"))
      throw RequestError(r.id, "\"" + op + "\" takes no \"archs\" or \"proxies\"");
    return r;
  }
  if (!j.contains("archs")) throw RequestError(r.id, "a score request needs \"archs\": a list");
  const json& archs = j["archs"];
  if (!archs.is_array())
    throw RequestError(r.id, "\"archs\" must be a list (of arch strings, NB201 indices or NASLib "
                             "encodings), not " + a_type(archs));
  if (archs.size() > max_archs)
    throw RequestError(r.id, "\"archs\" holds " + std::to_string(archs.size()) +
                                 " items; at most " + std::to_string(max_archs) +
                                 " per request (send several requests)");
  for (const json& item : archs) {
    std::string text;
    r.arch_is_text.push_back(arch_text(item, &text));
    r.archs.push_back(std::move(text));
  }
  r.proxies = loaded;
  if (j.contains("proxies") && !j["proxies"].is_null()) {
    const json& p = j["proxies"];
    std::vector<std::string> names;
    if (p.is_string()) {
      names.push_back(p.get<std::string>());
    } else if (p.is_array() && std::all_of(p.begin(), p.end(), [](const json& v) { return v.is_string(); })) {
      for (const json& v : p) names.push_back(v.get<std::string>());
    } else {
      throw RequestError(r.id, "\"proxies\" must be a list of proxy names (or one comma-separated "
                               "string)");
    }
    if (names.empty())
      throw RequestError(r.id, "\"proxies\" is empty; leave it out for every proxy the server computes");
    std::string joined;
    for (size_t i = 0; i < names.size(); ++i) joined += (i ? "," : "") + names[i];
    std::vector<Proxy> wanted;
    try {
      wanted = engine::parse_proxy_list(joined);
    } catch (const std::invalid_argument& e) {
      throw RequestError(r.id, net::printable(e.what(), 400));
    }
    if (wanted.empty()) throw RequestError(r.id, "\"proxies\" is empty; leave it out for every loaded proxy");
    for (Proxy w : wanted)
      if (std::find(loaded.begin(), loaded.end(), w) == loaded.end())
        throw RequestError(r.id, "proxy " + std::string(engine::proxy_name(w)) +
                                     " is not computed by this server (it computes " +
                                     loaded_names(loaded) + "; start it with --proxies to add it)");
    // In the server's order, so that records look the same whatever order was asked for.
    std::vector<Proxy> subset;
    for (Proxy l : loaded)
      if (std::find(wanted.begin(), wanted.end(), l) != wanted.end()) subset.push_back(l);
    r.proxies = subset;
  }
  return r;
}

json leading_request_id(std::string_view s) {
  size_t i = 0;
  auto skip = [&] {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  };
  skip();
  if (i >= s.size() || s[i] != '{') return nullptr;
  ++i;
  skip();
  if (s.substr(i, 4) != "\"id\"") return nullptr;
  i += 4;
  skip();
  if (i >= s.size() || s[i] != ':') return nullptr;
  ++i;
  skip();
  const size_t start = i;
  if (i < s.size() && s[i] == '"') {
    ++i;
    while (i < s.size() && s[i] != '"' && s[i] != '\\' && i - start < 256) ++i;
    if (i >= s.size() || s[i] != '"') return nullptr;
    const std::string id(s.substr(start + 1, i - start - 1));
    return net::is_valid_utf8(id) ? json(id) : json(nullptr);
  }
  if (i < s.size() && s[i] == '-') ++i;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])) && i - start < 19) ++i;
  if (i == start || (i == start + 1 && s[start] == '-')) return nullptr;
  if (i < s.size() && s[i] != ',' && s[i] != '}' && !std::isspace(static_cast<unsigned char>(s[i])))
    return nullptr;
  try {
    return json::parse(s.substr(start, i - start));
  } catch (const std::exception&) {
    return nullptr;
  }
}

}  // namespace hn::cli
