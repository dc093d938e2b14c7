#include "net/cifar.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "net/plan.hpp"

namespace hn::net {

namespace fs = std::filesystem;

const char* dataset_name(DatasetKind k) { return k == DatasetKind::kCifar10 ? "cifar10" : "cifar100"; }
int dataset_classes(DatasetKind k) { return k == DatasetKind::kCifar10 ? 10 : 100; }

CifarReader::CifarReader(const std::string& path, DatasetKind kind) : path_(path), kind_(kind) {
  std::error_code ec;
  std::vector<std::string> paths;
  if (fs::is_directory(path, ec)) {
    const std::vector<std::string> names =
        kind == DatasetKind::kCifar10
            ? std::vector<std::string>{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                       "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"}
            : std::vector<std::string>{"train.bin", "test.bin"};
    for (const auto& n : names) {
      const fs::path p = fs::path(path) / n;
      if (!fs::exists(p, ec))
        throw DataError("data directory '" + path + "' has no " + n + " (a " +
                        dataset_name(kind) + " directory holds " +
                        (kind == DatasetKind::kCifar10 ? "data_batch_1.bin .. data_batch_5.bin and test_batch.bin"
                                                       : "train.bin and test.bin") +
                        ")");
      paths.push_back(p.string());
    }
  } else if (fs::exists(path, ec)) {
    paths.push_back(path);
  } else {
    throw DataError("data path '" + path + "' does not exist");
  }
  for (const auto& p : paths) {
    const auto bytes = fs::file_size(p, ec);
    if (ec) throw DataError("cannot read data file '" + p + "': " + ec.message());
    if (bytes == 0 || bytes % record_bytes() != 0)
      throw DataError("data file '" + p + "' has " + std::to_string(bytes) +
                      " bytes, not a whole number of " + std::to_string(record_bytes()) + "-byte " +
                      dataset_name(kind) + " records (truncated, or not " + dataset_name(kind) +
                      " binary format?)");
    files_.push_back({p, static_cast<int64_t>(bytes / record_bytes())});
    total_ += files_.back().records;
  }
}

void CifarReader::check_range(int64_t offset, int count) const {
  // Written so that no sum can overflow, whatever the offset.
  if (offset < 0 || count < 0 || offset > total_ || count > total_ - offset)
    throw DataError("images " + std::to_string(offset) + " .. " + std::to_string(offset) + " + " +
                    std::to_string(count) + " requested but '" + path_ + "' holds " +
                    std::to_string(total_) + " images (check --image-offset and the batch sizes)");
}

std::vector<double> CifarReader::normalized(int64_t offset, int count, std::vector<int>* labels) const {
  check_range(offset, count);
  // SPEC.md 3: constants computed in double.
  const std::array<double, 3> mean10{125.3, 123.0, 113.9}, std10{63.0, 62.1, 66.7};
  const std::array<double, 3> mean100{129.3, 124.1, 112.4}, std100{68.2, 65.4, 70.4};
  const auto& mean = kind_ == DatasetKind::kCifar10 ? mean10 : mean100;
  const auto& sd = kind_ == DatasetKind::kCifar10 ? std10 : std100;
  std::array<double, 3> m, s;
  for (int c = 0; c < 3; ++c) {
    m[c] = mean[c] / 255.0;
    s[c] = sd[c] / 255.0;
  }
  const int label_bytes = record_bytes() - kImageNumel;
  const int max_label = dataset_classes(kind_);
  std::vector<double> out(static_cast<size_t>(count) * kImageNumel);
  if (labels) labels->assign(count, 0);
  std::vector<unsigned char> rec(record_bytes());
  int64_t global = 0;
  int done = 0;
  for (const auto& f : files_) {
    const int64_t first = std::max<int64_t>(offset, global);
    const int64_t last = std::min<int64_t>(offset + count, global + f.records);
    if (first < last) {
      std::ifstream in(f.path, std::ios::binary);
      if (!in) throw DataError("cannot open data file '" + f.path + "'");
      in.seekg((first - global) * record_bytes());
      for (int64_t r = first; r < last; ++r, ++done) {
        if (!in.read(reinterpret_cast<char*>(rec.data()), record_bytes()))
          throw DataError("data file '" + f.path + "' ended early (was it truncated?)");
        const int label = rec[label_bytes - 1];  // CIFAR-100: the fine label is the second byte
        if (label >= max_label)
          throw DataError("record " + std::to_string(r) + " of '" + path_ + "' has label " +
                          std::to_string(label) + " (not " + dataset_name(kind_) + " binary format?)");
        if (labels) (*labels)[done] = label;
        double* dst = out.data() + static_cast<size_t>(done) * kImageNumel;
        for (int i = 0; i < kImageNumel; ++i) {
          const int c = i / (kImageSize * kImageSize);
          dst[i] = (rec[label_bytes + i] / 255.0 - m[c]) / s[c];
        }
      }
    }
    global += f.records;
  }
  return out;
}

std::string CifarReader::identity(int64_t offset, int count) const {
  check_range(offset, count);
  uint64_t h = 1469598103934665603ULL;  // FNV-1a 64
  int64_t global = 0;
  std::vector<char> rec(record_bytes());
  for (const auto& f : files_) {
    const int64_t first = std::max<int64_t>(offset, global);
    const int64_t last = std::min<int64_t>(offset + count, global + f.records);
    if (first < last) {
      std::ifstream in(f.path, std::ios::binary);
      in.seekg((first - global) * record_bytes());
      for (int64_t r = first; r < last; ++r) {
        if (!in.read(rec.data(), record_bytes()))
          throw DataError("data file '" + f.path + "' ended early (was it truncated?)");
        for (char c : rec) {
          h ^= static_cast<unsigned char>(c);
          h *= 1099511628211ULL;
        }
      }
    }
    global += f.records;
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return std::string(dataset_name(kind_)) + ":" + hex;
}

}  // namespace hn::net
