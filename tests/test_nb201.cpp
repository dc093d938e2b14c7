// The NB201 space: parser, degenerate cells, isomorphism classes, the index table.
#include <gtest/gtest.h>

#include <set>

#include "net/arch_table.hpp"
#include "net/nb201.hpp"
#include "test_util.hpp"

using namespace hn::net;

namespace {
const char* kIndex0 =
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|";
const char* kIndex6111 =
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|";
}  // namespace

TEST(Nb201, ParseAndFormatRoundTripEveryArchitecture) {
  for (int c = 0; c < kNumArchs; ++c) {
    const Genes g = genes_from_code(c);
    ASSERT_EQ(genes_code(g), c);
    ASSERT_EQ(parse_arch(arch_string(g)), g);
  }
}

TEST(Nb201, ParseKnownString) {
  const Genes g = parse_arch(kIndex6111);
  EXPECT_EQ(g[0], Op::kConv3x3);
  EXPECT_EQ(g[3], Op::kSkip);
  EXPECT_EQ(g[5], Op::kConv1x1);
  EXPECT_EQ(arch_string(g), kIndex6111);
  EXPECT_EQ(parse_arch(std::string("  ") + kIndex6111 + "\n"), g);  // surrounding blanks allowed
}

TEST(Nb201, ParserRejectsMalformedStringsSayingWhere) {
  struct Case {
    std::string text;
    size_t pos;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"", 0, "empty"},
      {"|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|", 80,
       "ended"},
      {"|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", 1, "unknown op 'conv'"},
      {"|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", 6, "must come from node 0"},
      {"|none~0||none~0|none~1|+|none~0|none~1|none~2|", 8, "expected '+'"},
      {"|none~0|+|none~0|none~1|+|none~0|none~1|none~2|x", 47, "trailing"},
      {"|none0|+|none~0|none~1|+|none~0|none~1|none~2|", 1, "unknown op 'none0'"},
      {"|none~|+|none~0|none~1|+|none~0|none~1|none~2|", 6, "node number"},
  };
  for (const auto& c : cases) {
    try {
      parse_arch(c.text);
      ADD_FAILURE() << "accepted: " << c.text;
    } catch (const ArchParseError& e) {
      EXPECT_NE(std::string(e.what()).find(c.says), std::string::npos) << e.what();
      EXPECT_EQ(e.position(), c.pos) << e.what();
      EXPECT_NE(std::string(e.what()).find("character " + std::to_string(c.pos + 1)),
                std::string::npos)
          << e.what();
    }
  }
}

TEST(Nb201, DegenerateCellsAre341) {
  int degenerate = 0;
  for (int c = 0; c < kNumArchs; ++c) degenerate += is_degenerate(genes_from_code(c));
  EXPECT_EQ(degenerate, 341);
  EXPECT_TRUE(is_degenerate(parse_arch("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")));
  // Node 3 fed only by node 2, which is fed only by node 1, which is cut off from node 0.
  EXPECT_TRUE(is_degenerate(parse_arch(
      "|none~0|+|none~0|nor_conv_3x3~1|+|none~0|skip_connect~1|nor_conv_3x3~2|")));
  EXPECT_FALSE(is_degenerate(parse_arch(
      "|none~0|+|none~0|none~1|+|avg_pool_3x3~0|none~1|none~2|")));
}

TEST(Nb201, IsomorphismKeyGives6466Classes) {
  std::set<std::string> keys;
  for (int c = 0; c < kNumArchs; ++c) keys.insert(isomorphism_key(genes_from_code(c)));
  EXPECT_EQ(keys.size(), 6466u);
}

TEST(Nb201, IsomorphismKeyIgnoresDeadAndSymmetricEdges) {
  // A conv into node 1 that node 3 never reads changes nothing...
  EXPECT_EQ(isomorphism_key(parse_arch("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")),
            isomorphism_key(parse_arch("|avg_pool_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")));
  // ...but the op on a live edge does.
  EXPECT_NE(isomorphism_key(parse_arch("|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|")),
            isomorphism_key(parse_arch("|none~0|+|none~0|none~1|+|nor_conv_1x1~0|none~1|none~2|")));
  EXPECT_EQ(isomorphism_key(parse_arch("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")), "#+#+0");
}

TEST(Nb201, TableMapsIndicesBothWays) {
  const auto path = hn::test::data_path("nb201/nb201_cifar10.csv");
  const ArchTable t = ArchTable::load(path);
  EXPECT_EQ(t.size(), 15625u);
  EXPECT_EQ(arch_string(t.genes_of(0)), kIndex0);
  EXPECT_EQ(arch_string(t.genes_of(6111)), kIndex6111);
  EXPECT_EQ(t.index_of(parse_arch(kIndex6111)), 6111);
  EXPECT_NEAR(t.column("cifar10_test")[6111], 94.3733, 1e-9);
  EXPECT_NEAR(t.column("cifar10_test")[13714], 94.3733, 1e-9);
  EXPECT_THROW(t.genes_of(15625), std::out_of_range);
  EXPECT_THROW(t.genes_of(-1), std::out_of_range);
  EXPECT_THROW(t.column("no_such_column"), std::runtime_error);
}

TEST(Nb201, TableErrorsNameFileAndLine) {
  hn::test::TempDir dir;
  const auto bad = dir.write("bad.csv", "arch_index,arch_str\n0,|none~0|+|none~0|none~1|+|none~0|none~1|none~2|\n1,|bogus~0|\n");
  try {
    ArchTable::load(bad);
    ADD_FAILURE();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.csv:3"), std::string::npos) << e.what();
  }
  const auto noheader = dir.write("h.csv", "index,arch\n0,x\n");
  EXPECT_THROW(ArchTable::load(noheader), std::runtime_error);
  EXPECT_THROW(ArchTable::load(dir.path() + "/missing.csv"), std::runtime_error);
  try {
    ArchTable::load(dir.path());
    ADD_FAILURE() << "a directory was read as a table";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("is a directory"), std::string::npos) << e.what();
  }
}
