// The serve protocol parser (cli/serve_protocol) and the serve command's option checks. The
// server's behaviour over pipes and sockets, streaming score and the Python client are tested by
// python/tests/test_serve.py (ctest Python.ServeAndClient).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli/serve_protocol.hpp"
#include "net/text.hpp"
#include "test_util.hpp"

using hn::cli::parse_serve_request;
using hn::cli::RequestError;
using hn::cli::ServeOp;
using hn::engine::Proxy;
using hn::test::run_cli;

namespace {

const std::vector<Proxy> kLoaded = {Proxy::kNaswot, Proxy::kNi, Proxy::kNinaswot};

// The error a line gets: {id, message}.
std::pair<nlohmann::json, std::string> refusal(const std::string& line, size_t max_archs = 100) {
  try {
    parse_serve_request(line, kLoaded, max_archs);
  } catch (const RequestError& e) {
    EXPECT_TRUE(hn::net::is_valid_utf8(e.what()));
    return {e.id, e.what()};
  }
  ADD_FAILURE() << "accepted: " << line;
  return {};
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST(ServeProtocol, ScoreRequestsTakeEveryEncodingScoreTakes) {
  const auto r = parse_serve_request(
      R"({"id": 7, "archs": ["|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", 6111, "42", [4, 0, 3, 1, 4, 3], {"x": 1}, true]})",
      kLoaded, 100);
  EXPECT_EQ(r.id, 7);
  EXPECT_EQ(r.op, ServeOp::kScore);
  ASSERT_EQ(r.archs.size(), 6u);
  EXPECT_EQ(r.archs[1], "6111");
  EXPECT_EQ(r.archs[2], "42");
  EXPECT_EQ(r.archs[3], "[4, 0, 3, 1, 4, 3]");
  EXPECT_EQ(r.arch_is_text, (std::vector<bool>{true, true, true, true, false, false}));
  EXPECT_EQ(r.proxies, kLoaded);  // all loaded by default
}

TEST(ServeProtocol, ProxySubsetsComeInTheServersOrder) {
  auto r = parse_serve_request(R"({"archs": [1], "proxies": ["ninaswot", "naswot"]})", kLoaded, 100);
  EXPECT_EQ(r.proxies, (std::vector<Proxy>{Proxy::kNaswot, Proxy::kNinaswot}));
  EXPECT_TRUE(r.id.is_null());
  r = parse_serve_request(R"({"id": "a", "archs": [1], "proxies": "ni,naswot"})", kLoaded, 100);
  EXPECT_EQ(r.proxies, (std::vector<Proxy>{Proxy::kNaswot, Proxy::kNi}));
  EXPECT_TRUE(has(refusal(R"({"id": 1, "archs": [1], "proxies": ["ntk"]})").second, "not computed by this server"));
  EXPECT_TRUE(has(refusal(R"({"id": 1, "archs": [1], "proxies": ["nope"]})").second, "nope"));
  EXPECT_TRUE(has(refusal(R"({"id": 1, "archs": [1], "proxies": []})").second, "\"proxies\" is empty"));
  EXPECT_TRUE(has(refusal(R"({"id": 1, "archs": [1], "proxies": [1]})").second, "list of proxy names"));
}

TEST(ServeProtocol, OpsAndTheirArguments) {
  EXPECT_EQ(parse_serve_request(R"({"id": 1, "op": "ping"})", kLoaded, 1).op, ServeOp::kPing);
  EXPECT_EQ(parse_serve_request(R"({"op": "info"})", kLoaded, 1).op, ServeOp::kInfo);
  EXPECT_EQ(parse_serve_request(R"({"id": null, "op": "shutdown"})", kLoaded, 1).op, ServeOp::kShutdown);
  EXPECT_EQ(parse_serve_request(R"({"id": 2, "op": "score", "archs": []})", kLoaded, 1).archs.size(), 0u);
  auto e = refusal(R"({"id": 3, "op": "dance"})");
  EXPECT_EQ(e.first, 3);
  EXPECT_TRUE(has(e.second, "unknown op"));
  EXPECT_TRUE(has(refusal(R"({"id": 3, "op": "ping", "archs": []})").second, "takes no"));
  EXPECT_TRUE(has(refusal(R"({"id": 3, "op": 5})").second, "must be a string"));
  EXPECT_TRUE(has(refusal(R"({"id": 3})").second, "names no operation"));
  EXPECT_TRUE(has(refusal(R"({"id": 3, "op": "score"})").second, "needs \"archs\""));
}

TEST(ServeProtocol, MalformedLinesAreRefusedWithTheirIdWhenReadable) {
  EXPECT_TRUE(refusal("{not json").first.is_null());
  EXPECT_EQ(refusal(R"({"id": 12, "archs": [1, )").first, 12);  // truncated, id still readable
  EXPECT_EQ(refusal(R"({"id": "q7", "archs": [1, )").first, "q7");
  EXPECT_TRUE(has(refusal("[1, 2]").second, "not an object"));
  EXPECT_TRUE(has(refusal(R"({"id": 1.5, "op": "ping"})").second, "\"id\" must be"));
  EXPECT_TRUE(has(refusal(R"({"id": [1], "op": "ping"})").second, "\"id\" must be"));
  EXPECT_TRUE(has(refusal(R"({"id": 1, "arch": [1]})").second, "unknown field \"arch\""));
  EXPECT_TRUE(has(refusal(R"({"id": 1, "archs": "6111"})").second, "must be a list"));
  EXPECT_TRUE(has(refusal(R"({"id": 1, "archs": [1, 2, 3]})", 2).second, "at most 2"));
  EXPECT_TRUE(has(refusal(R"({"id": 1, "id": 2, "op": "ping"})").second, "twice"));
  const auto garbage = refusal(std::string("\xff\xfe\x00{\"id\": 4}", 10));
  EXPECT_TRUE(garbage.first.is_null());
  EXPECT_TRUE(has(garbage.second, "not UTF-8"));
  EXPECT_TRUE(has(refusal("{\"id\": 1, \"op\": \"pi\xc3\xa9ng\"}").second, "pi\xc3\xa9ng"));
  // A NUL ends nothing: the parser would have taken it for the end of the line (found by a tester).
  const auto nul = refusal(std::string("{\"id\": 2, \"op\": \"ping\"}\0{\"id\": 3, \"op\": \"shutdown\"}", 45));
  EXPECT_EQ(nul.first, 2);
  EXPECT_TRUE(has(nul.second, "control byte \\x00")) << nul.second;
  EXPECT_TRUE(has(refusal(R"({"id": [1], "op": "ping"})").second, "not an array"));
  EXPECT_TRUE(has(refusal(R"({"id": 1, "archs": {"a": 1}})").second, "not an object"));
}

TEST(ServeProtocol, LeadingIdOfAnOverlongLine) {
  using hn::cli::leading_request_id;
  EXPECT_EQ(leading_request_id(R"(  { "id" : 42, "archs": [)"), 42);
  EXPECT_EQ(leading_request_id(R"({"id":-3,)"), -3);
  EXPECT_EQ(leading_request_id(R"({"id": "job-1", "archs)"), "job-1");
  EXPECT_TRUE(leading_request_id(R"({"archs": [1], "id": 4})").is_null());  // not at the start
  EXPECT_TRUE(leading_request_id(R"({"id": 4x)").is_null());
  EXPECT_TRUE(leading_request_id(R"({"id": "a\"b", )").is_null());
  EXPECT_TRUE(leading_request_id(R"({"id": 123456789012345678901234567890, )").is_null());
  EXPECT_TRUE(leading_request_id("").is_null());
}

TEST(ServeCommand, OptionsAreCheckedBeforeServing) {
  const std::string quick = " --backend cpu --proxies naswot --batch 8 -q --data " +
                            hn::test::data_path("cifar10/cifar10_sample.bin") + " ";
  auto r = run_cli("serve" + quick + "--socket /tmp/" + std::string(120, 's'));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(has(r.err, "at most 107")) << r.err;
  r = run_cli("serve" + quick + "--stats /nonexistent.json");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(has(r.err, "ninaswot")) << r.err;
  r = run_cli("serve" + quick + "--max-request-bytes 10");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  // An empty value is an error, not stdin mode (an unset shell variable: --socket "$SOCK").
  r = run_cli("serve" + quick + "--socket ''");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(has(r.err, "--socket: an empty value")) << r.err;
  r = run_cli("score --index 1" + quick + "--out ''");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  // End of input at once: the ready record, then exit 0.
  r = run_cli("serve" + quick, "");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto ready = nlohmann::json::parse(r.out);
  EXPECT_EQ(ready["ready"], true);
  EXPECT_EQ(ready["proxies"], nlohmann::json::array({"naswot"}));
}

TEST(Cli, VersionNamesTheBackendsAndTheirLibraries) {
  const auto r = run_cli("--version");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(has(r.out, "hybridnas ")) << r.out;
  EXPECT_TRUE(has(r.out, "cpu: OpenBLAS")) << r.out;
  EXPECT_TRUE(has(r.out, "cuda: ")) << r.out;
#ifdef HYBRIDNAS_WITH_CUDA
  EXPECT_TRUE(has(r.out, "cuDNN")) << r.out;
#else
  EXPECT_TRUE(has(r.out, "not built")) << r.out;
#endif
}
