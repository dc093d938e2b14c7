// Shared by the libFuzzer targets (tools/fuzz.sh): what counts as a finding besides a crash or a
// sanitizer report, and a per-process scratch directory for targets that read files.
#pragma once
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace hn::fuzz {

// A broken promise of the API under test: report and abort (libFuzzer saves the input).
[[noreturn]] inline void finding(const std::string& what) {
  std::fprintf(stderr, "FUZZ FINDING: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

// An exception other than the documented one escaped the API.
[[noreturn]] inline void unexpected_exception(const char* api, const std::exception& e) {
  finding(std::string(api) + " threw an undocumented exception: " + e.what());
}

// A directory of this process's own under $TMPDIR, removed at exit (by the static's destructor).
inline const std::string& scratch_dir() {
  struct Dir {
    std::string path;
    Dir() {
      std::string tmpl = (std::filesystem::temp_directory_path() / "hybridnas_fuzz_XXXXXX").string();
      if (!mkdtemp(tmpl.data())) finding("mkdtemp failed");
      path = tmpl;
    }
    ~Dir() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static const Dir dir;
  return dir.path;
}

// Writes `bytes` to `name` in the scratch directory (replacing it) and returns its path.
inline std::string write_scratch(const std::string& name, std::string_view bytes) {
  const std::string path = scratch_dir() + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) finding("cannot write " + path);
  return path;
}

}  // namespace hn::fuzz
