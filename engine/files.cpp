#include "engine/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace hn::engine {

namespace fs = std::filesystem;

namespace {
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

void check_output_path(const std::string& path, const std::string& option) {
  if (path.empty()) throw OutputFileError(option + ": the path is empty");
  struct stat st{};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    throw OutputFileError(option + " '" + path + "' is a directory; give a file path");
  const std::string dir = dir_of(path);
  if (::stat(dir.c_str(), &st) != 0)
    throw OutputFileError(option + " '" + path + "': the directory '" + dir + "' does not exist");
  if (!S_ISDIR(st.st_mode))
    throw OutputFileError(option + " '" + path + "': '" + dir + "' is not a directory");
  // A probe file, since access() ignores read-only mounts and ACL subtleties.
  std::string probe = (fs::path(dir) / (".hybridnas-probe-XXXXXX")).string();
  const int fd = ::mkstemp(probe.data());
  if (fd < 0)
    throw OutputFileError(option + " '" + path + "': cannot create files in '" + dir + "' (" +
                          std::strerror(errno) + ")");
  ::close(fd);
  ::unlink(probe.c_str());
  if (::access(path.c_str(), F_OK) == 0 && ::access(path.c_str(), W_OK) != 0)
    throw OutputFileError(option + " '" + path + "' exists and is not writable");
}

void write_file_atomic(const std::string& path, std::string_view content) {
  const std::string dir = dir_of(path);
  std::string tmp = path + ".tmp-XXXXXX";
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

}  // namespace hn::engine
