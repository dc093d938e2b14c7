// Benchmark index <-> architecture through a table (SPEC.md 1: NB201's index is a seeded shuffle,
// not a formula). Reads CSV files with at least `arch_index,arch_str` columns; any other numeric
// columns (e.g. cifar10_test) are kept for evaluation. The arch strings say the space: NB201's
// |op~0|+... or NATS-SSS's c1:c2:c3:c4:c5 (its index is also a formula, checked against the table).
#pragma once
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "net/nb201.hpp"
#include "net/space.hpp"

namespace hn::net {

class ArchTable {
 public:
  // Throws std::runtime_error naming the file and line on any malformed content.
  static ArchTable load(const std::string& path);

  const std::string& path() const { return path_; }
  size_t size() const { return index_to_code_.size(); }
  Space space() const { return space_; }
  // nullopt for an architecture of another space or missing from the table.
  std::optional<int> index_of(const Arch& a) const;
  // Throws std::out_of_range with a clear message when the index is not in the table.
  Arch arch_of(int index) const;
  Genes genes_of(int index) const;  // NB201 tables only (std::out_of_range otherwise)
  bool has_column(const std::string& name) const;
  // Column values by NB201 index (NaN where a cell was empty).
  const std::vector<double>& column(const std::string& name) const;
  std::vector<std::string> column_names() const;

 private:
  std::string path_;
  Space space_ = Space::kNb201;
  std::vector<int> index_to_code_;            // -1 where an index is missing
  std::vector<int> code_to_index_;            // -1 where an arch is missing
  std::unordered_map<std::string, std::vector<double>> columns_;
  std::vector<std::string> column_order_;
};

// The table used when none is given: $HYBRIDNAS_TABLE (NATS-SSS: $HYBRIDNAS_SSS_TABLE), else the
// build's default path when that file exists; empty when neither is available.
std::string default_table_path(Space space = Space::kNb201);

}  // namespace hn::net
