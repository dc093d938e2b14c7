// Helpers shared by the tests: data paths, temporary directories, running the CLI.
#pragma once
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace hn::test {

// The shared reference data: $HYBRIDNAS_DATA_DIR (device machines, other checkouts), else the
// build's ../shared/data.
inline std::string data_path(const std::string& rel) {
  const char* env = std::getenv("HYBRIDNAS_DATA_DIR");
  return std::string(env && *env ? env : HYBRIDNAS_DATA_DIR) + "/" + rel;
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "hybridnas_test_XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string write(const std::string& name, const std::string& content) const {
    const std::string p = path_ + "/" + name;
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }

 private:
  std::string path_;
};

// Architectures that cover the space's cases: the CIFAR-10 optimum (6111), the fixture cell
// (3160, every op), NB201 index 0, every edge a 3x3 conv, a conv-free cell, a cell whose conv
// edge never reaches node 3, an all-`none` node, a lone conv chain, and a degenerate cell (last).
inline const std::vector<std::string> kCoverageArchs = {
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|",
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "|avg_pool_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|avg_pool_3x3~0|skip_connect~1|none~2|",
    "|nor_conv_1x1~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|none~2|",
    "|none~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|",
    "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|nor_conv_1x1~1|none~2|",
    "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|avg_pool_3x3~2|",
};

struct CommandResult {
  int exit_code;
  std::string out, err;
};

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Runs the hybridnas binary with `args` (a shell-quoted string), capturing stdout and stderr.
// `env` (e.g. "HYBRIDNAS_TABLE=/x") is set for the command only.
inline CommandResult run_cli(const std::string& args, const std::string& stdin_text = "",
                             const std::string& env = "") {
  TempDir d;
  const std::string in = d.write("stdin", stdin_text);
  const std::string cmd = (env.empty() ? std::string() : "env " + env + " ") +
                          std::string(HYBRIDNAS_BINARY) + " " + args + " <" + in + " >" +
                          d.path() + "/out 2>" + d.path() + "/err";
  const int status = std::system(cmd.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(d.path() + "/out");
  r.err = slurp(d.path() + "/err");
  return r;
}

}  // namespace hn::test
