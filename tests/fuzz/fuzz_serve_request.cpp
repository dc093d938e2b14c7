// Fuzzes cli::parse_serve_request (one request line of `hybridnas serve`, docs/serve.md) and
// cli::leading_request_id. Expected failure: RequestError, whose message must be valid UTF-8 and
// whose id is an integer, a string or null. An accepted request holds only loaded proxies, at most
// max_archs architectures, and one is_text flag per architecture.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cli/serve_protocol.hpp"
#include "net/text.hpp"
#include "tests/fuzz/fuzz_util.hpp"

using namespace hn;

namespace {
bool id_ok(const nlohmann::json& id) {
  return id.is_null() || id.is_string() || id.is_number_integer() || id.is_number_unsigned();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  const std::vector<engine::Proxy> loaded = {engine::Proxy::kNaswot, engine::Proxy::kNi,
                                             engine::Proxy::kNinaswot};
  try {
    const cli::ServeRequest r = cli::parse_serve_request(line, loaded, 8);
    if (!id_ok(r.id)) fuzz::finding("accepted an id that is not an integer, string or null");
    if (r.archs.size() > 8) fuzz::finding("more archs than max_archs");
    if (r.archs.size() != r.arch_is_text.size()) fuzz::finding("arch_is_text out of step");
    for (auto p : r.proxies)
      if (std::find(loaded.begin(), loaded.end(), p) == loaded.end()) fuzz::finding("a proxy not loaded");
    if (r.op == cli::ServeOp::kScore && r.proxies.empty()) fuzz::finding("a score request without proxies");
    // The response echoes the id: it must serialise.
    (void)nlohmann::json({{"id", r.id}}).dump();
  } catch (const cli::RequestError& e) {
    if (!net::is_valid_utf8(e.what())) fuzz::finding("RequestError message is not valid UTF-8");
    if (!id_ok(e.id)) fuzz::finding("RequestError id is not an integer, string or null");
    (void)nlohmann::json({{"id", e.id}, {"error", e.what()}}).dump();
  } catch (const std::exception& e) {
    fuzz::unexpected_exception("parse_serve_request", e);
  }
  const nlohmann::json id = cli::leading_request_id(line);
  if (!id_ok(id)) fuzz::finding("leading_request_id returned something else than an id");
  (void)id.dump();
  return 0;
}
