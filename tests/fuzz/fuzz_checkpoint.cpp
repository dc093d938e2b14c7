// Fuzzes engine::parse_checkpoint (GA checkpoints, read when a search resumes).
// Expected failure: CheckpointError. An accepted checkpoint must hold valid op codes.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "engine/search.hpp"
#include "tests/fuzz/fuzz_util.hpp"

using namespace hn;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const engine::CheckpointData c = engine::parse_checkpoint(text, "fuzz.ckpt");
    if (c.population.size() % engine::kGenes != 0) fuzz::finding("checkpoint population is not n x 6");
    for (uint8_t op : c.population)
      if (op >= engine::kOps) fuzz::finding("checkpoint population holds an invalid op code");
    if (c.generation < 0 || c.stall < 0) fuzz::finding("checkpoint with a negative generation or stall");
  } catch (const engine::CheckpointError&) {
  } catch (const std::exception& e) {
    fuzz::unexpected_exception("parse_checkpoint", e);
  }
  return 0;
}
