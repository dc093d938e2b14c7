#include "net/arch_table.hpp"

#include "net/text.hpp"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace hn::net {

namespace {
std::vector<std::string> split_csv_line(const std::string& line) {
  // NB201 exports have no quoted fields except possibly around arch strings; strip quotes.
  std::vector<std::string> out;
  std::string field;
  bool quoted = false;
  for (char c : line) {
    if (c == '"') {
      quoted = !quoted;
    } else if (c == ',' && !quoted) {
      out.push_back(field);
      field.clear();
    } else if (c != '\r') {
      field += c;
    }
  }
  out.push_back(field);
  return out;
}
}  // namespace

ArchTable ArchTable::load(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw std::runtime_error("architecture table '" + path + "' is a directory, not a CSV file");
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open architecture table '" + path + "'");
  ArchTable t;
  t.path_ = path;
  std::string line;
  if (!std::getline(in, line)) throw std::runtime_error("architecture table '" + path + "' is empty");
  if (line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);  // a UTF-8 byte-order mark
  const auto header = split_csv_line(line);
  int col_index = -1, col_arch = -1;
  for (size_t c = 0; c < header.size(); ++c) {
    if (header[c] == "arch_index") col_index = static_cast<int>(c);
    else if (header[c] == "arch_str") col_arch = static_cast<int>(c);
  }
  if (col_index < 0 || col_arch < 0)
    throw std::runtime_error("architecture table '" + path +
                             "' needs the columns arch_index and arch_str in its header");
  for (size_t c = 0; c < header.size(); ++c)
    if (static_cast<int>(c) != col_index && static_cast<int>(c) != col_arch) {
      t.column_order_.push_back(header[c]);
      t.columns_[header[c]];
    }
  std::vector<std::vector<double>> values;  // by row, aligned with column_order_
  std::vector<int> row_index;
  size_t lineno = 1;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty() || line == "\r") continue;
    const auto f = split_csv_line(line);
    const std::string where = path + ":" + std::to_string(lineno);
    if (f.size() != header.size())
      throw std::runtime_error(where + ": expected " + std::to_string(header.size()) +
                               " fields, found " + std::to_string(f.size()));
    char* endp = nullptr;
    const long idx = std::strtol(f[col_index].c_str(), &endp, 10);
    if (f[col_index].empty() || *endp != '\0' || idx < 0 || idx >= 10000000)
      throw std::runtime_error(where + ": arch_index '" + f[col_index] + "' is not an index");
    if (t.code_to_index_.empty()) {  // the first row's arch string says the space
      t.space_ = f[col_arch].find(':') != std::string::npos && f[col_arch].find('|') == std::string::npos
                     ? Space::kNatsSss
                     : Space::kNb201;
      t.code_to_index_.assign(static_cast<size_t>(space_size(t.space_)), -1);
    }
    int code = -1;
    try {
      code = static_cast<int>(t.space_ == Space::kNb201 ? genes_code(parse_arch(f[col_arch]))
                                                         : sss::widths_index(sss::parse_widths(f[col_arch])));
      // NATS-SSS's index is a formula: a table that numbers its rows otherwise is of another benchmark.
      if (t.space_ == Space::kNatsSss && code != idx)
        throw std::invalid_argument("arch_index " + std::to_string(idx) + " is not the NATS-SSS index of " +
                                    f[col_arch] + " (" + std::to_string(code) + ")");
    } catch (const ArchParseError& e) {
      throw std::runtime_error(where + ": " + e.what());
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error(where + ": " + e.what());
    }
    if (t.code_to_index_[code] >= 0)
      throw std::runtime_error(where + ": architecture listed twice");
    if (static_cast<size_t>(idx) >= t.index_to_code_.size()) t.index_to_code_.resize(idx + 1, -1);
    if (t.index_to_code_[idx] >= 0)
      throw std::runtime_error(where + ": arch_index " + std::to_string(idx) + " listed twice");
    t.index_to_code_[idx] = code;
    t.code_to_index_[code] = static_cast<int>(idx);
    std::vector<double> row;
    for (size_t c = 0; c < f.size(); ++c) {
      if (static_cast<int>(c) == col_index || static_cast<int>(c) == col_arch) continue;
      // An empty cell is a missing value; anything else must be a number (never silently NaN).
      double v = NAN;
      if (!f[c].empty() && !parse_decimal(f[c], &v))
        throw std::runtime_error(where + ": column " + printable(header[c], 40) + " holds '" +
                                 printable(f[c], 40) + "', not a decimal number");
      row.push_back(v);
    }
    values.push_back(std::move(row));
    row_index.push_back(static_cast<int>(idx));
  }
  if (values.empty()) throw std::runtime_error("architecture table '" + path + "' has no rows");
  for (size_t c = 0; c < t.column_order_.size(); ++c) {
    auto& col = t.columns_[t.column_order_[c]];
    col.assign(t.index_to_code_.size(), NAN);
    for (size_t r = 0; r < values.size(); ++r) col[row_index[r]] = values[r][c];
  }
  return t;
}

std::optional<int> ArchTable::index_of(const Arch& a) const {
  if (a.space != space_) return std::nullopt;
  const int idx = code_to_index_[static_cast<size_t>(arch_code(a))];
  if (idx < 0) return std::nullopt;
  return idx;
}

Arch ArchTable::arch_of(int index) const {
  if (index < 0 || static_cast<size_t>(index) >= index_to_code_.size() || index_to_code_[index] < 0)
    throw std::out_of_range(std::string(space_ == Space::kNb201 ? "NB201" : "NATS-SSS") + " index " +
                            std::to_string(index) + " is not in table '" + path_ + "' (valid: 0.." +
                            std::to_string(index_to_code_.size() - 1) + ")");
  return arch_from_code(space_, index_to_code_[index]);
}

Genes ArchTable::genes_of(int index) const {
  if (space_ != Space::kNb201)
    throw std::out_of_range("table '" + path_ + "' is a NATS-SSS table, not an NB201 one");
  return arch_of(index).genes;
}

bool ArchTable::has_column(const std::string& name) const { return columns_.count(name) > 0; }

const std::vector<double>& ArchTable::column(const std::string& name) const {
  const auto it = columns_.find(name);
  if (it == columns_.end()) {
    std::string known;
    for (const auto& c : column_order_) known += (known.empty() ? "" : ", ") + c;
    throw std::runtime_error("table '" + path_ + "' has no column '" + name + "' (it has: " +
                             known + ")");
  }
  return it->second;
}

std::vector<std::string> ArchTable::column_names() const { return column_order_; }

std::string default_table_path(Space space) {
  if (space == Space::kNatsSss) {
    if (const char* env = std::getenv("HYBRIDNAS_SSS_TABLE"); env && *env) return env;
#ifdef HYBRIDNAS_DEFAULT_SSS_TABLE
    if (std::ifstream(HYBRIDNAS_DEFAULT_SSS_TABLE).good()) return HYBRIDNAS_DEFAULT_SSS_TABLE;
#endif
    return {};
  }
  if (const char* env = std::getenv("HYBRIDNAS_TABLE"); env && *env) return env;
#ifdef HYBRIDNAS_DEFAULT_TABLE
  if (std::ifstream(HYBRIDNAS_DEFAULT_TABLE).good()) return HYBRIDNAS_DEFAULT_TABLE;
#endif
  return {};
}

}  // namespace hn::net
