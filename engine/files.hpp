// Output files that are never lost: paths checked before any work starts, results written
// atomically (a temporary file beside the target, flushed to disk, renamed over it).
#pragma once
#include <stdexcept>
#include <string>
#include <string_view>

namespace hn::engine {

class OutputFileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Checks that `path` can be written: its directory exists and is writable (a probe file is
// created and removed there) and the path itself is not a directory. `option` names the option
// in the message (e.g. "--out"). Throws OutputFileError.
void check_output_path(const std::string& path, const std::string& option);

// Writes `content` to `path` atomically: readers see the old file or the whole new one, never a
// part, and a crash leaves the old file intact. Throws OutputFileError naming the path.
void write_file_atomic(const std::string& path, std::string_view content);

// The whole content of a file; throws OutputFileError when it cannot be read.
std::string read_file(const std::string& path);

}  // namespace hn::engine
