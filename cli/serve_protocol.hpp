// The `hybridnas serve` protocol (docs/serve.md): one JSON object per line in, one per line out.
// This file parses one request line; the server (cli/serve.cpp) runs it.
#pragma once
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "engine/proxy.hpp"

namespace hn::cli {

inline constexpr int kServeProtocol = 1;

enum class ServeOp { kScore, kInfo, kPing, kShutdown };

struct ServeRequest {
  nlohmann::json id;  // echoed in the response: an integer, a string, or null when absent
  ServeOp op = ServeOp::kScore;
  // kScore: each requested architecture as the text `score --arch` would take (a JSON integer
  // becomes its decimal digits, a JSON array of numbers "[a, b, ...]"); an item of another JSON
  // type is kept as its JSON text and answered by an error record.
  std::vector<std::string> archs;
  std::vector<bool> arch_is_text;  // false: the item was not a string, integer or number array
  std::vector<engine::Proxy> proxies;  // kScore: the proxies to report (a subset of the loaded)
};

// A line that cannot be served: what() is the message of the error response, `id` the request's
// id when one could be read (else null).
class RequestError : public std::runtime_error {
 public:
  RequestError(nlohmann::json id, const std::string& message)
      : std::runtime_error(message), id(std::move(id)) {}
  nlohmann::json id;
};

// Parses one request line (without its newline). `loaded` are the proxies the server computes
// (score's --proxies, ninaswot included); a request's "proxies" must be a subset of them, and
// defaults to all of them. Refuses, with a RequestError whose message is valid UTF-8: bytes that
// are not UTF-8, text that is not one JSON object, unknown fields, an id that is not an integer,
// a string or null, an unknown "op", "archs" that is not an array or holds more than `max_archs`
// items, "proxies" that is not a list of loaded proxy names.
ServeRequest parse_serve_request(std::string_view line, const std::vector<engine::Proxy>& loaded,
                                 size_t max_archs);

// The id at the start of a line too long to parse ({"id": 7, ...), or null.
nlohmann::json leading_request_id(std::string_view line_start);

}  // namespace hn::cli
