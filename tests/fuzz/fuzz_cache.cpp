// Fuzzes engine::ScoreCache on arbitrary file content (--cache FILE.db): the input bytes as the
// database file, opened, then get_many over a few keys and size(). Expected failure: CacheError.
// Values served must be valid (no NaN, known flags, finite non-negative seconds).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "engine/score_cache.hpp"
#include "engine/score_file.hpp"
#include "tests/fuzz/fuzz_util.hpp"

using namespace hn;

namespace {

void check_value(const engine::ProxyValue& v) {
  if (std::isnan(v.value)) fuzz::finding("ScoreCache served NaN");
  if (!v.flag.empty() && !engine::is_known_flag(v.flag)) fuzz::finding("ScoreCache served an unknown flag");
  if (!std::isfinite(v.value) && v.flag.empty()) fuzz::finding("ScoreCache served an unflagged infinity");
  if (!std::isfinite(v.seconds) || v.seconds < 0) fuzz::finding("ScoreCache served bad seconds");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path =
      fuzz::write_scratch("cache.db", std::string_view(reinterpret_cast<const char*>(data), size));
  std::error_code ec;
  std::filesystem::remove(path + "-wal", ec);
  std::filesystem::remove(path + "-shm", ec);
  try {
    engine::ScoreCache cache(path);
    if (cache.size() < 0) fuzz::finding("ScoreCache::size is negative");
    for (const engine::Proxy p : {engine::Proxy::kNaswot, engine::Proxy::kNtk}) {
      for (const char* settings : {"", "b=32"}) {
        try {
          for (const auto& [arch, v] : cache.get_many(p, settings, 0, {0, 1, 5, 15624})) check_value(v);
        } catch (const engine::CacheError&) {
        }
      }
    }
  } catch (const engine::CacheError&) {
  } catch (const std::exception& e) {
    fuzz::unexpected_exception("ScoreCache", e);
  }
  return 0;
}
