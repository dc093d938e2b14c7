// The hybridnas command line: `score`, `stats`, `bench`.
#pragma once

namespace hn::cli {
// Parses argv, runs the subcommand and returns the process exit code (cli/common.hpp).
int run(int argc, char** argv);
}  // namespace hn::cli
