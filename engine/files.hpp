// Output files that are never lost: paths checked before any work starts, results written
// atomically (a temporary file beside the target, flushed to disk, renamed over it).
#pragma once
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace hn::engine {

class OutputFileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Checks that `path` can be written: its directory exists and takes new files (a probe with
// the name of an atomic write's temporary file is created and removed there), and the path is
// not a directory, device, FIFO or socket (a link is followed). `option` names the option
// in the message (e.g. "--out"). Throws OutputFileError.
void check_output_path(const std::string& path, const std::string& option);

// The path a write to `path` goes to: the target of a symbolic link (the link stays), else `path`.
std::string resolve_output(const std::string& path);

// Writes `content` to `path` atomically: readers see the old file or the whole new one, never a
// part, and a crash leaves the old file intact. Throws OutputFileError naming the path.
void write_file_atomic(const std::string& path, std::string_view content);

// The whole content of a file; throws OutputFileError when it cannot be read.
std::string read_file(const std::string& path);

// JSON text from a file we did not necessarily write: parsed with at most `max_depth` levels of
// nesting (deeper documents are refused instead of exhausting the stack) and no key twice in an
// object (nlohmann would keep the last one silently). Throws std::runtime_error saying what is
// wrong (without a file name: callers add it).
nlohmann::json parse_json_strict(std::string_view text, int max_depth = 32);

}  // namespace hn::engine
