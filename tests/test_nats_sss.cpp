// NATS-Bench's size search space (net/nats_sss.hpp, docs/nats_sss.md): arch strings, the
// benchmark's index against the shared table's order, and the parameter / multiply-accumulate
// counts against xautodl's DynamicShapeTinyNet run on the CPU
// (tests/reference/nats_sss_official_counts.json, how it was obtained is in the file).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "net/nats_sss.hpp"
#include "test_util.hpp"

using namespace hn;
using net::sss::Widths;

TEST(NatsSss, ArchStringsRoundTripAndBadOnesAreRefused) {
  const Widths w = net::sss::parse_widths("16:32:48:24:56");
  EXPECT_EQ(w.c, (std::array<int, 5>{16, 32, 48, 24, 56}));
  EXPECT_EQ(net::sss::widths_string(w), "16:32:48:24:56");
  for (const char* bad : {"", "8:8:8:8", "8:8:8:8:8:8", "8:8:8:8:72", "8:8:8:8:0", "8:8:12:8:8", "8:8:x:8:8",
                          "8::8:8:8", "8:8:8:8:-8", "8:8:8:8:8 "})
    EXPECT_THROW(net::sss::parse_widths(bad), std::invalid_argument) << bad;
  EXPECT_THROW(net::sss::widths_from_index(-1), std::out_of_range);
  EXPECT_THROW(net::sss::widths_from_index(32768), std::out_of_range);
}

// The shared table lists the 32,768 architectures in index order: index -> string -> index is the
// identity on every row.
TEST(NatsSss, IndexMatchesTheBenchmarksOrder) {
  std::ifstream in(test::data_path("nats_sss/nats_sss_cifar10.csv"));
  ASSERT_TRUE(in.good());
  std::string line;
  std::getline(in, line);  // header
  int64_t rows = 0;
  while (std::getline(in, line)) {
    std::stringstream ss(line);
    std::string idx, arch;
    std::getline(ss, idx, ',');
    std::getline(ss, arch, ',');
    const int64_t index = std::stoll(idx);
    ASSERT_EQ(net::sss::widths_string(net::sss::widths_from_index(index)), arch) << index;
    ASSERT_EQ(net::sss::widths_index(net::sss::parse_widths(arch)), index) << arch;
    ++rows;
  }
  EXPECT_EQ(rows, net::sss::kNumArchs);
}

TEST(NatsSss, CountsEqualXautodls) {
  std::ifstream in(std::string(HYBRIDNAS_SOURCE_DIR) + "/tests/reference/nats_sss_official_counts.json");
  ASSERT_TRUE(in.good());
  const auto j = nlohmann::json::parse(in);
  ASSERT_GE(j["archs"].size(), 10u);
  for (const auto& a : j["archs"]) {
    const Widths w = net::sss::parse_widths(a["arch_str"].get<std::string>());
    SCOPED_TRACE(a["arch_str"].get<std::string>());
    EXPECT_EQ(net::sss::widths_index(w), a["arch_index"].get<int64_t>());
    EXPECT_EQ(net::sss::sss_params(w, 10), a["params"].get<int64_t>());
    EXPECT_EQ(net::sss::sss_macs(w, 10), a["macs"].get<int64_t>());
  }
  // NATS-Bench's own records (CIFAR-10) for the data README's check architectures.
  EXPECT_EQ(net::sss::sss_params(net::sss::parse_widths("8:8:8:8:8"), 10), 11714);
  EXPECT_EQ(net::sss::sss_macs(net::sss::parse_widths("8:8:40:32:40"), 10), 21827994);
  for (const auto& v : j["official_nats_bench"]["cifar100_for_reference"]) {  // 100 classes
    const Widths w = net::sss::widths_from_index(v["arch_index"].get<int64_t>());
    EXPECT_NEAR(net::sss::sss_params(w, 100) / 1e6, v["params"].get<double>(), 1e-9);
    EXPECT_NEAR(net::sss::sss_macs(w, 100) / 1e6, v["flop"].get<double>(), 1e-9);
  }
}
