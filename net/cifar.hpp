// CIFAR-10 / CIFAR-100 binary readers (the standard `*.bin` formats) with SPEC.md 3's
// normalisation. A path is a file, or a directory holding the standard batch files, which are
// then read as one sequence: CIFAR-10 data_batch_1..5.bin then test_batch.bin; CIFAR-100
// train.bin then test.bin.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace hn::net {

enum class DatasetKind : uint8_t { kCifar10, kCifar100 };
const char* dataset_name(DatasetKind k);
int dataset_classes(DatasetKind k);

class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class CifarReader {
 public:
  // Throws DataError when a file is missing, unreadable, or not a whole number of records.
  CifarReader(const std::string& path, DatasetKind kind);

  DatasetKind kind() const { return kind_; }
  const std::string& path() const { return path_; }
  int64_t size() const { return total_; }
  int record_bytes() const { return kind_ == DatasetKind::kCifar10 ? 3073 : 3074; }

  // Records [offset, offset + count) normalised per channel, N x 3 x 32 x 32, in double.
  // Throws DataError when the range runs past the end or a label byte is out of range.
  std::vector<double> normalized(int64_t offset, int count, std::vector<int>* labels = nullptr) const;
  // Identity of the images [offset, offset + count): dataset kind and an FNV-1a hash of their
  // record bytes, so two copies of the same data in different places agree.
  std::string identity(int64_t offset, int count) const;

 private:
  struct File {
    std::string path;
    int64_t records;
  };
  void check_range(int64_t offset, int count) const;  // throws DataError
  std::string path_;
  DatasetKind kind_;
  std::vector<File> files_;
  int64_t total_ = 0;
};

}  // namespace hn::net
