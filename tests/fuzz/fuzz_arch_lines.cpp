// Fuzzes net::read_arch_lines (architecture lists: --archs FILE and stdin): every entry's text
// and error must be valid UTF-8, line numbers must increase and stay within the count returned,
// an entry's text is bounded, and each usable entry goes through net::parse_arch_input as the
// score command does (ArchInputError expected).
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

#include "net/arch_input.hpp"
#include "tests/fuzz/fuzz_util.hpp"

using namespace hn;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  int last = 0;
  int lines = 0;
  try {
    lines = net::read_arch_lines(in, [&](net::ArchLine&& l) {
      if (l.line <= last) fuzz::finding("read_arch_lines: line numbers do not increase");
      last = l.line;
      if (!net::is_valid_utf8(l.text)) fuzz::finding("read_arch_lines: entry text is not valid UTF-8");
      if (!net::is_valid_utf8(l.error)) fuzz::finding("read_arch_lines: entry error is not valid UTF-8");
      if (l.text.size() > net::kMaxArchLineBytes) fuzz::finding("read_arch_lines: entry longer than the limit");
      if (!l.error.empty()) return;
      if (l.text.empty()) fuzz::finding("read_arch_lines: empty entry without an error");
      try {
        net::parse_arch_input(l.text, nullptr);
      } catch (const net::ArchInputError& e) {
        if (!net::is_valid_utf8(e.what())) fuzz::finding("ArchInputError message is not valid UTF-8");
      }
    });
  } catch (const std::exception& e) {
    fuzz::unexpected_exception("read_arch_lines", e);
  }
  if (last > lines) fuzz::finding("read_arch_lines: an entry's line is past the count returned");
  return 0;
}
