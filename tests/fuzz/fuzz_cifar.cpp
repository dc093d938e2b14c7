// Fuzzes net::CifarReader: the input bytes as a CIFAR-10 and as a CIFAR-100 binary file, then
// normalized() and identity() over small ranges at both ends and one past the end.
// Expected failure: DataError. Normalised values must be finite and labels in range.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "net/cifar.hpp"
#include "tests/fuzz/fuzz_util.hpp"

using namespace hn;

namespace {

void read(const std::string& path, net::DatasetKind kind) {
  try {
    const net::CifarReader r(path, kind);
    if (r.size() <= 0) fuzz::finding("CifarReader accepted a file with no records");
    const int n = static_cast<int>(std::min<int64_t>(r.size(), 2));
    for (const int64_t offset : {int64_t{0}, r.size() - n}) {
      try {
        std::vector<int> labels;
        const std::vector<double> x = r.normalized(offset, n, &labels);
        for (double v : x)
          if (!std::isfinite(v)) fuzz::finding("CifarReader::normalized gave a non-finite value");
        for (int l : labels)
          if (l < 0 || l >= net::dataset_classes(kind)) fuzz::finding("CifarReader: label out of range");
      } catch (const net::DataError&) {
        // a label out of range: refused
      }
      if (r.identity(offset, n).empty()) fuzz::finding("CifarReader::identity is empty");
    }
    try {
      r.normalized(r.size(), 1);
      fuzz::finding("CifarReader::normalized past the end did not throw");
    } catch (const net::DataError&) {
    }
  } catch (const net::DataError&) {
  } catch (const std::exception& e) {
    fuzz::unexpected_exception("CifarReader", e);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path =
      fuzz::write_scratch("data.bin", std::string_view(reinterpret_cast<const char*>(data), size));
  read(path, net::DatasetKind::kCifar10);
  read(path, net::DatasetKind::kCifar100);
  return 0;
}
