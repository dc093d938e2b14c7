// CIFAR binary readers: normalisation, directories, and clear errors for bad files.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "net/cifar.hpp"
#include "test_util.hpp"

using namespace hn::net;
using hn::test::TempDir;

namespace {
std::string record(int label, unsigned char fill, int label_bytes = 1) {
  std::string r(label_bytes, static_cast<char>(label));
  r += std::string(3072, static_cast<char>(fill));
  return r;
}
}  // namespace

TEST(Cifar, NormalisesPerChannelInDouble) {
  TempDir d;
  const auto f = d.write("one.bin", record(3, 255) + record(7, 0));
  const CifarReader r(f, DatasetKind::kCifar10);
  EXPECT_EQ(r.size(), 2);
  std::vector<int> labels;
  const auto x = r.normalized(0, 2, &labels);
  EXPECT_EQ(labels, (std::vector<int>{3, 7}));
  EXPECT_DOUBLE_EQ(x[0], (1.0 - 125.3 / 255) / (63.0 / 255));          // red, pixel 255
  EXPECT_DOUBLE_EQ(x[1024], (1.0 - 123.0 / 255) / (62.1 / 255));       // green
  EXPECT_DOUBLE_EQ(x[3072 + 2048], (0.0 - 113.9 / 255) / (66.7 / 255));  // blue, pixel 0
}

TEST(Cifar, Cifar100UsesItsOwnRecordsAndConstants) {
  TempDir d;
  const auto f = d.write("train.bin", record(99, 255, 2));
  const CifarReader r(f, DatasetKind::kCifar100);
  std::vector<int> labels;
  const auto x = r.normalized(0, 1, &labels);
  EXPECT_EQ(labels[0], 99);
  EXPECT_DOUBLE_EQ(x[0], (1.0 - 129.3 / 255) / (68.2 / 255));
}

TEST(Cifar, DirectoryConcatenatesTheStandardBatches) {
  TempDir d;
  for (int b = 1; b <= 5; ++b) d.write("data_batch_" + std::to_string(b) + ".bin", record(b, 0));
  d.write("test_batch.bin", record(9, 0) + record(8, 0));
  const CifarReader r(d.path(), DatasetKind::kCifar10);
  EXPECT_EQ(r.size(), 7);
  std::vector<int> labels;
  r.normalized(4, 3, &labels);  // crosses from data_batch_5 into test_batch
  EXPECT_EQ(labels, (std::vector<int>{5, 9, 8}));
}

TEST(Cifar, ClearErrors) {
  TempDir d;
  auto message = [](auto&& f) {
    try {
      f();
    } catch (const DataError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const auto truncated = d.write("t.bin", record(1, 0) + std::string(100, 'x'));
  EXPECT_NE(message([&] { CifarReader(truncated, DatasetKind::kCifar10); }).find("not a whole number"),
            std::string::npos);
  EXPECT_NE(message([&] { CifarReader(d.path() + "/nope.bin", DatasetKind::kCifar10); }).find("does not exist"),
            std::string::npos);
  EXPECT_NE(message([&] { CifarReader(d.path(), DatasetKind::kCifar10); }).find("data_batch_1.bin"),
            std::string::npos);
  const auto two = d.write("two.bin", record(1, 0) + record(2, 0));
  const CifarReader r(two, DatasetKind::kCifar10);
  EXPECT_NE(message([&] { r.normalized(1, 2); }).find("holds 2 images"), std::string::npos);
  // A label byte out of range means the file is not CIFAR-10.
  const auto badlabel = d.write("bl.bin", record(200, 0));
  const CifarReader rb(badlabel, DatasetKind::kCifar10);
  EXPECT_NE(message([&] { rb.normalized(0, 1); }).find("label 200"), std::string::npos);
}

TEST(Cifar, IdentityIsContentBased) {
  TempDir d;
  const auto a = d.write("a.bin", record(1, 5) + record(2, 6));
  const auto b = d.write("b.bin", record(1, 5) + record(2, 6));
  const auto c = d.write("c.bin", record(1, 5) + record(2, 7));
  const CifarReader ra(a, DatasetKind::kCifar10), rb(b, DatasetKind::kCifar10), rc(c, DatasetKind::kCifar10);
  EXPECT_EQ(ra.identity(0, 2), rb.identity(0, 2));
  EXPECT_NE(ra.identity(0, 2), rc.identity(0, 2));
  EXPECT_EQ(ra.identity(0, 1), rc.identity(0, 1));
}
