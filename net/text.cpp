#include "net/text.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace hn::net {

namespace {
// Length of the UTF-8 sequence at s[i], or 0 when it is not a valid one.
size_t utf8_sequence(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  size_t n;
  uint32_t cp;
  if (c >= 0xC2 && c <= 0xDF) { n = 2; cp = c & 0x1F; }
  else if (c >= 0xE0 && c <= 0xEF) { n = 3; cp = c & 0x0F; }
  else if (c >= 0xF0 && c <= 0xF4) { n = 4; cp = c & 0x07; }
  else return 0;
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
      (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return n;
}

}  // namespace

bool is_valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8_sequence(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string printable(std::string_view s, size_t max_bytes) {
  std::string out;
  const size_t end = std::min(s.size(), max_bytes);
  for (size_t i = 0; i < end;) {
    const size_t n = utf8_sequence(s, i);
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const bool invisible = n == 3 && s.substr(i, 3) == "\xEF\xBB\xBF";  // U+FEFF, a mid-text BOM
    if (n == 0 || invisible || (n == 1 && ((c < 0x20 && c != '\t') || c == 0x7F))) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
      ++i;
    } else {
      if (i + n > end && n > 1) break;  // do not cut a character in two
      out.append(s.substr(i, n));
      i += n;
    }
  }
  if (s.size() > max_bytes) out += "...";
  return out;
}

bool parse_decimal(std::string_view text, double* out) {
  // [+-] digits [. digits] [(e|E) [+-] digits], or [+-] digits . (numpy), nothing else.
  size_t i = 0;
  const size_t n = text.size();
  if (i < n && (text[i] == '+' || text[i] == '-')) ++i;
  const size_t int_from = i;
  while (i < n && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  size_t digits = i - int_from;
  if (i < n && text[i] == '.') {
    ++i;
    const size_t frac_from = i;
    while (i < n && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
    digits += i - frac_from;
  }
  if (digits == 0) return false;
  if (i < n && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    if (i < n && (text[i] == '+' || text[i] == '-')) ++i;
    const size_t exp_from = i;
    while (i < n && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
    if (i == exp_from) return false;
  }
  if (i != n) return false;
  const std::string s(text);
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (*end != '\0' || errno == ERANGE || v != v || v - v != 0) return false;  // overflow or NaN
  *out = v;
  return true;
}

}  // namespace hn::net
