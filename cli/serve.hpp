// `hybridnas serve`: a long-running scorer answering JSON-lines requests on stdin/stdout or on a
// Unix domain socket (docs/serve.md).
#pragma once
#include "cli/common.hpp"

namespace hn::cli {

struct ServeCommand {
  ScoringOptions scoring;
  std::string cache;
  NinaswotOptions ninaswot;
  std::string socket_path;
  int64_t max_request_bytes = 16 << 20;
  int max_archs = 100000;
  int max_clients = 64;

  void add_to(CLI::App& app);
  int run();
};

}  // namespace hn::cli
