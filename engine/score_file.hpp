// `hybridnas score` output read back (by `eval` and `score --resume`): JSON lines or CSV, with
// every value validated. Also the settings file written beside a score output, which records
// what made the records so that a resume never mixes results of different meanings.
#pragma once
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/scorer.hpp"

namespace hn::engine {

// What is wrong and where: "<name>:<line>: ...".
class ScoreFileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class ScoreFormat { kJsonl, kCsv };

struct ScoreRecord {
  int line = 0;                 // 1-based line of the file
  bool error_record = false;    // an input that could not be scored (input, line, error)
  ArchScore score;              // genes and every proxy column present (error records: empty)
  std::optional<int> index;     // the record's benchmark index (null / empty: none)
  std::string input;            // error records: the input text and its line (0: none)
  int input_line = 0;
};

struct ScoreFile {
  ScoreFormat format = ScoreFormat::kJsonl;
  std::vector<ScoreRecord> records;
  std::vector<Proxy> csv_proxies;   // CSV: the proxy columns of the header, in order
  size_t complete_bytes = 0;        // bytes up to the end of the last newline-terminated line
  bool partial_last_line = false;   // the text ends inside a line (a writer killed mid-record)
  net::Space space = net::Space::kNb201;  // the records' space (arch strings |...| or c1:...:c5; one per file)
};

// Parses score output. The format is CSV when the first line is a header starting with
// "arch,index", JSON lines otherwise. Proxy values are numbers or the strings "+inf" / "-inf"
// (CSV: inf / -inf); NaN, other strings, unknown flags, negative or non-finite seconds, a
// malformed arch string, an index outside the space (NB201 0..15624, NATS-SSS 0..32767) and
// records of two spaces are errors naming `name` and the line.
// A final line without a newline is not parsed (partial_last_line). Throws ScoreFileError.
ScoreFile parse_score_file(std::string_view text, const std::string& name);

// The flags a score record may carry (SPEC.md 3).
bool is_known_flag(const std::string& flag);

// The settings file beside a score output: "<out>.settings.json".
std::string settings_file_path(const std::string& out);
// Compares the settings recorded for an output with this run's; throws ScoreFileError naming
// the first setting that differs (e.g. "batch: the file was made with 64, this run uses 128").
// Keys named in `order` are compared first, in that order (the options a user sets, before the
// values derived from them), then the rest.
void require_same_settings(const nlohmann::json& recorded, const nlohmann::json& now,
                           const std::string& what, const std::vector<std::string>& order = {});

}  // namespace hn::engine
