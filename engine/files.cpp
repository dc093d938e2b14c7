#include "engine/files.hpp"

#include "net/text.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <vector>

namespace hn::engine {

namespace fs = std::filesystem;

namespace {
constexpr const char* kTempSuffix = ".tmp-XXXXXX";  // mkstemp's pattern

std::string dir_of(const std::string& path) {
  const fs::path p(path);
  return p.has_parent_path() ? p.parent_path().string() : std::string(".");
}

void write_all(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw OutputFileError("cannot write '" + path + "': " + std::strerror(errno));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
}
}  // namespace

std::string resolve_output(const std::string& path) {
  std::error_code ec;
  if (!fs::is_symlink(path, ec)) return path;
  // A link is written through: the file it points to is replaced, the link stays.
  const fs::path target = fs::weakly_canonical(fs::path(path), ec);
  if (ec) throw OutputFileError("cannot follow the link '" + path + "': " + ec.message());
  return target.string();
}

void check_output_path(const std::string& path_in, const std::string& option) {
  if (path_in.empty()) throw OutputFileError(option + ": the path is empty");
  const std::string path = resolve_output(path_in);
  struct stat st{};
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode))
      throw OutputFileError(option + " '" + path_in + "' is a directory; give a file path");
    if (!S_ISREG(st.st_mode))
      throw OutputFileError(option + " '" + path_in + "' is not a regular file (a device, FIFO or socket); "
                            "give a file path (or leave the option out to use stdout where it can)");
  }
  const std::string dir = dir_of(path);
  if (::stat(dir.c_str(), &st) != 0)
    throw OutputFileError(option + " '" + path_in + "': the directory '" + dir + "' does not exist");
  if (!S_ISDIR(st.st_mode))
    throw OutputFileError(option + " '" + path_in + "': '" + dir + "' is not a directory");
  // A probe with the temporary name an atomic write uses: it proves the directory takes new
  // files (access() ignores read-only mounts) and that the name is not too long.
  std::string probe = path + kTempSuffix;
  const int fd = ::mkstemp(probe.data());
  if (fd < 0)
    throw OutputFileError(option + " '" + path_in + "': cannot create files there (" + std::strerror(errno) +
                          (errno == ENAMETOOLONG ? "; the file name is too long" : "") + ")");
  ::close(fd);
  ::unlink(probe.c_str());
  if (::access(path.c_str(), F_OK) == 0 && ::access(path.c_str(), W_OK) != 0)
    throw OutputFileError(option + " '" + path_in + "' exists and is not writable");
}

void write_file_atomic(const std::string& path_in, std::string_view content) {
  const std::string path = resolve_output(path_in);
  const std::string dir = dir_of(path);
  std::string tmp = path + kTempSuffix;
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0)
    throw OutputFileError("cannot write '" + path + "': cannot create a temporary file in '" + dir +
                          "' (" + std::strerror(errno) + ")");
  try {
    write_all(fd, content, path);
    if (::fsync(fd) != 0) throw OutputFileError("cannot write '" + path + "': " + std::strerror(errno));
    ::fchmod(fd, 0644);
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    throw OutputFileError("cannot write '" + path + "': " + why);
  }
  // The rename itself is durable once the directory is flushed.
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

std::string read_file(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    throw OutputFileError("'" + path + "' is a directory, not a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw OutputFileError("cannot open '" + path + "'");
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

nlohmann::json parse_json_strict(std::string_view text, int max_depth) {
  // JSON text has no raw control bytes (only tab, CR and LF as whitespace); the parser would take
  // a NUL for the end of the input and quietly drop what follows it.
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char u = static_cast<unsigned char>(text[i]);
    if (u < 0x20 && u != '\t' && u != '\n' && u != '\r') {
      char hex[8];
      std::snprintf(hex, sizeof hex, "%02X", u);
      throw std::runtime_error("not valid JSON (a control byte \\x" + std::string(hex) + " at byte " +
                               std::to_string(i + 1) + "; JSON has control characters only as escapes)");
    }
  }
  std::vector<std::set<std::string>> keys;  // one set per open object
  int depth = 0;
  auto check = [&](int, nlohmann::json::parse_event_t ev, nlohmann::json& parsed) {
    using E = nlohmann::json::parse_event_t;
    if (ev == E::object_start || ev == E::array_start) {
      if (++depth > max_depth)
        throw std::runtime_error("JSON nested more than " + std::to_string(max_depth) + " levels deep");
      if (ev == E::object_start) keys.emplace_back();
    } else if (ev == E::object_end || ev == E::array_end) {
      --depth;
      if (ev == E::object_end && !keys.empty()) keys.pop_back();
    } else if (ev == E::key && !keys.empty()) {
      const std::string k = parsed.get<std::string>();
      if (!keys.back().insert(k).second)
        throw std::runtime_error("JSON object has the key \"" + net::printable(k, 60) + "\" twice");
    }
    return true;
  };
  try {
    return nlohmann::json::parse(text.begin(), text.end(), check);
  } catch (const nlohmann::json::exception& e) {
    // nlohmann quotes the bytes it last read, which may be half of a UTF-8 sequence.
    throw std::runtime_error("not valid JSON (" + net::printable(e.what(), 400) + ")");
  }
}

}  // namespace hn::engine
