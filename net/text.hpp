// Text helpers for everything that reads user files or echoes user input: UTF-8 validity, a
// printable form of arbitrary bytes, and a strict decimal number parser.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace hn::net {

// True when `bytes` is well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
bool is_valid_utf8(std::string_view bytes);
// `bytes` as valid UTF-8 for messages and records: invalid bytes, control characters other than
// tab and U+FEFF become \xNN; at most `max_bytes` of input are shown (then "...").
std::string printable(std::string_view bytes, size_t max_bytes = 200);
// A finite decimal number, strictly: [+-]digits[.digits][e[+-]digits] ("1." allowed). No hex
// (0x5A, 0x1p7), no inf / nan, no surrounding spaces, no overflow. False when it is not one.
bool parse_decimal(std::string_view text, double* out);

}  // namespace hn::net
