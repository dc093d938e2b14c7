// Score records on the wire: JSON lines or CSV (SPEC.md 3: no infinities in JSON, written as the
// strings "-inf"/"+inf"; CSV writes -inf/inf; never NaN; -0.0 written as 0).
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "engine/scorer.hpp"

namespace hn::cli {

enum class Format { kJsonl, kCsv };

// One output line: a scored architecture, or an input that could not be scored.
struct Record {
  std::optional<engine::ArchScore> score;
  std::optional<int> index;  // NB201 index when known
  std::string input;         // the input text (error records)
  int line = 0;              // 1-based input line (error records from --archs), 0 otherwise
  std::string error;         // non-empty for an error record
};

nlohmann::json json_number(double v);  // finite -> number, +-inf -> "+inf"/"-inf"
std::string csv_number(double v);

class RecordWriter {
 public:
  RecordWriter(std::ostream& out, Format f, std::vector<engine::Proxy> proxies);
  void write(const Record& r);

 private:
  std::ostream& out_;
  Format format_;
  std::vector<engine::Proxy> proxies_;
  bool header_done_ = false;
};

nlohmann::json record_json(const Record& r, const std::vector<engine::Proxy>& proxies);

}  // namespace hn::cli
