// NB201 index <-> architecture through a table (SPEC.md 1: the index is a seeded shuffle, not a
// formula). Reads CSV files with at least `arch_index,arch_str` columns; any other numeric
// columns (e.g. cifar10_test) are kept for evaluation.
#pragma once
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "net/nb201.hpp"

namespace hn::net {

class ArchTable {
 public:
  // Throws std::runtime_error naming the file and line on any malformed content.
  static ArchTable load(const std::string& path);

  const std::string& path() const { return path_; }
  size_t size() const { return index_to_code_.size(); }
  std::optional<int> index_of(const Genes& g) const;
  // Throws std::out_of_range with a clear message when the index is not in the table.
  Genes genes_of(int index) const;
  bool has_column(const std::string& name) const;
  // Column values by NB201 index (NaN where a cell was empty).
  const std::vector<double>& column(const std::string& name) const;
  std::vector<std::string> column_names() const;

 private:
  std::string path_;
  std::vector<int> index_to_code_;            // -1 where an index is missing
  std::vector<int> code_to_index_;            // -1 where an arch is missing
  std::unordered_map<std::string, std::vector<double>> columns_;
  std::vector<std::string> column_order_;
};

// The table used when none is given: $HYBRIDNAS_TABLE, else the build's default path when that
// file exists; empty when neither is available.
std::string default_table_path();

}  // namespace hn::net
