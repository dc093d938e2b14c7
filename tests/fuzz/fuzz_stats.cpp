// Fuzzes engine::parse_stats (z statistics files: score --stats, search --stats).
// Expected failure: std::runtime_error. Accepted statistics must be finite with a positive std,
// n >= 2 and a known transform (the function's documented checks).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "engine/zstats.hpp"
#include "tests/fuzz/fuzz_util.hpp"

using namespace hn;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const engine::ZStats s = engine::parse_stats(text, "fuzz.json");
    for (const auto& [proxy, st] : s) {
      if (!std::isfinite(st.mean) || !std::isfinite(st.std) || !(st.std > 0))
        fuzz::finding("parse_stats accepted a non-finite mean or a non-positive std");
      if (st.n < 2) fuzz::finding("parse_stats accepted n < 2");
      if (st.transform != "identity" && st.transform != "log") fuzz::finding("parse_stats: unknown transform");
    }
  } catch (const std::runtime_error&) {
  } catch (const std::exception& e) {
    fuzz::unexpected_exception("parse_stats", e);
  }
  return 0;
}
