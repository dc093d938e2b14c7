// Fuzzes engine::parse_score_file (score output read back by `eval` and `score --resume`), JSON
// lines and CSV. Expected failure: ScoreFileError, whose message must be valid UTF-8. Accepted
// records must hold no NaN, only known flags, finite non-negative seconds and an index in range,
// and complete_bytes must lie within the text.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "engine/score_file.hpp"
#include "net/arch_input.hpp"
#include "tests/fuzz/fuzz_util.hpp"

using namespace hn;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const engine::ScoreFile f = engine::parse_score_file(text, "fuzz.jsonl");
    if (f.complete_bytes > size) fuzz::finding("parse_score_file: complete_bytes past the end");
    int last = 0;
    for (const auto& r : f.records) {
      if (r.line <= last) fuzz::finding("parse_score_file: record lines do not increase");
      last = r.line;
      if (r.index && (*r.index < 0 || *r.index >= net::kNumArchs))
        fuzz::finding("parse_score_file: index out of range");
      for (const auto& v : r.score.values) {
        if (!v) continue;
        if (std::isnan(v->value)) fuzz::finding("parse_score_file accepted NaN");
        if (!v->flag.empty() && !engine::is_known_flag(v->flag)) fuzz::finding("parse_score_file: unknown flag");
        if (!std::isfinite(v->seconds) || v->seconds < 0) fuzz::finding("parse_score_file: bad seconds");
      }
    }
  } catch (const engine::ScoreFileError& e) {
    if (!net::is_valid_utf8(e.what())) fuzz::finding("ScoreFileError message is not valid UTF-8");
  } catch (const std::exception& e) {
    fuzz::unexpected_exception("parse_score_file", e);
  }
  return 0;
}
