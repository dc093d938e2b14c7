// NATS-Bench's size search space (net/nats_sss.hpp, docs/nats_sss.md): arch strings, the
// benchmark's index against the shared table's order, and the parameter / multiply-accumulate
// counts against xautodl's DynamicShapeTinyNet run on the CPU
// (tests/reference/nats_sss_official_counts.json, how it was obtained is in the file).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include <algorithm>
#include <cmath>
#include <set>

#include "engine/cpu_forward.hpp"
#include "engine/population.hpp"
#include "engine/files.hpp"
#include "engine/score_file.hpp"
#include "engine/search.hpp"
#include "engine/scorer.hpp"
#include "net/arch_input.hpp"
#include "net/arch_table.hpp"
#include "net/nats_sss.hpp"
#include "net/plan.hpp"
#include "net/weight_bank.hpp"
#include "test_util.hpp"

using namespace hn;
using engine::Proxy;
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
  // A long input is not echoed whole: messages show its first 80 bytes.
  std::string many = "8";
  for (int k = 0; k < 2000; ++k) many += ":8";
  for (const std::string& bad : {many, "8:8:8:8:" + std::string(5000, '9'), "8:8:8:8:8" + std::string(5000, ':')}) {
    try {
      net::sss::parse_widths(bad);
      ADD_FAILURE() << "accepted a " << bad.size() << "-byte input";
    } catch (const std::invalid_argument& e) {
      EXPECT_LT(std::string(e.what()).size(), 250u) << e.what();
      EXPECT_NE(std::string(e.what()).find("..."), std::string::npos) << e.what();
    }
  }
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

// ---- the network (net::build_sss_plan), its weights, and the engine on it ----------------------

namespace {
int64_t expected_hooked_units(const Widths& w) {
  const int64_t c1 = w.c[0], c2 = w.c[1], c3 = w.c[2], c4 = w.c[3], c5 = w.c[4];
  return 2 * (5 * 1024 * c1 + (1024 * c1 + 256 * c2) + 256 * (2 * c2 + 3 * c3) + (256 * c3 + 64 * c4) +
              64 * (2 * c4 + 3 * c5)) +
         64 * c5;
}
}  // namespace

// Every one of the 32,768 plans counts xautodl's parameters and MACs (the closed forms checked
// against xautodl above), and its ReLU sites the hooks of docs/nats_sss.md; every conv uses a slot
// of its shape that a bank materialises.
TEST(NatsSssPlan, EveryPlanHasXautodlsCountsAndHookUnits) {
  for (int64_t i = 0; i < net::sss::kNumArchs; ++i) {
    const Widths w = net::sss::widths_from_index(i);
    const net::Plan p = net::build_sss_plan(w, 10);
    ASSERT_EQ(p.param_count, net::sss::sss_params(w, 10)) << i;
    ASSERT_EQ(p.flops / 2 + 10, net::sss::sss_macs(w, 10)) << i;
    ASSERT_EQ(p.weighted_units(), expected_hooked_units(w)) << i;
    ASSERT_EQ(p.num_blocks, 6);
    int blocks = 0;
    for (const net::Step& st : p.steps) {
      blocks += st.kind == net::StepKind::kBlockEnd;
      if (st.kind != net::StepKind::kConv && st.kind != net::StepKind::kLinear) continue;
      ASSERT_TRUE(net::slot_used(st.slot)) << i << " " << net::slot_name(st.slot);
      ASSERT_EQ(net::slot_space(st.slot), net::Space::kNatsSss);
      if (st.kind == net::StepKind::kConv) {
        const net::SlotInfo info = net::slot_info(st.slot, 10);
        ASSERT_EQ(info.cin, p.values[st.in0].c) << net::slot_name(st.slot);
        ASSERT_EQ(info.cout, p.values[st.out].c) << net::slot_name(st.slot);
      }
    }
    ASSERT_EQ(blocks, 6);
  }
  EXPECT_THROW(net::build_sss_plan(Widths{{8, 8, 12, 8, 8}}, 10), std::invalid_argument);
  EXPECT_THROW(net::build_sss_plan(net::sss::parse_widths("8:8:8:8:8"), 0), std::invalid_argument);
}

// The same (layer, edge, widths) slot has the same weights in every network, and a narrower slot
// holds a corner of a wider one's draws (N(0,1) banks: no fan-in scale to tell them apart).
TEST(NatsSssPlan, NarrowerSlotsHoldACornerOfTheWiderOnesDraws) {
  const auto bank = net::WeightBank::generate(net::InitScheme::kEntropy, 7, 10, 0, net::Space::kNatsSss);
  EXPECT_EQ(bank.space(), net::Space::kNatsSss);
  EXPECT_TRUE(bank.slot(net::kSlotStem).empty()) << "an SSS bank holds no NB201 slot";
  const int family = net::sss_family_cell_edge(1, 0);  // cells.2, edge 0 -> 1: C_in -> C_out, 3 x 3
  const auto& narrow = bank.slot(net::sss_slot(family, 1, 2));  // 16 -> 24
  const auto& wide = bank.slot(net::sss_slot(family, 3, 5));    // 32 -> 48
  ASSERT_EQ(narrow.size(), 24u * 16 * 9);
  ASSERT_EQ(wide.size(), 48u * 32 * 9);
  for (int o = 0; o < 24; ++o)
    for (int c = 0; c < 16; ++c)
      for (int k = 0; k < 9; ++k) ASSERT_EQ(narrow[(o * 16 + c) * 9 + k], wide[(o * 32 + c) * 9 + k]);
  // Another family draws other numbers; another seed too.
  EXPECT_NE(bank.slot(net::sss_slot(net::sss_family_cell_edge(1, 1), 1, 2)), narrow);
  const auto other = net::WeightBank::generate(net::InitScheme::kEntropy, 8, 10, 0, net::Space::kNatsSss);
  EXPECT_NE(other.slot(net::sss_slot(family, 1, 2)), narrow);
  // Default init: U(-1/sqrt(fan_in), +1/sqrt(fan_in)) per slot.
  const auto def = net::WeightBank::generate(net::InitScheme::kDefault, 7, 10, 0, net::Space::kNatsSss);
  double most = 0;
  for (float v : def.slot(net::sss_slot(family, 1, 2))) most = std::max(most, double(std::abs(v)));
  EXPECT_LE(most, 1.0 / std::sqrt(16.0 * 9));
  EXPECT_GT(most, 0.9 / std::sqrt(16.0 * 9));
}

namespace {
// tools/nats_sss_official_forward.py's formulas.
int name_key(const std::string& name) {
  int64_t k = 0;
  for (size_t j = 0; j < name.size(); ++j) k += static_cast<int64_t>(j + 1) * static_cast<unsigned char>(name[j]);
  return static_cast<int>(k % 997);
}
std::string xautodl_name(int slot) {  // our slot name without its "(widths)"
  const std::string n = net::slot_name(slot);
  return n.substr(0, n.find(" ("));
}
}  // namespace

// The plan in FP64 against xautodl's own DynamicShapeTinyNet in FP64 on the same formula weights
// and input (tests/reference/nats_sss_official_forward.json, tools/nats_sss_official_forward.py):
// every block output's sum and sum of squares, the pooled features and the logits.
TEST(NatsSssPlan, ForwardEqualsXautodlsNetworkInFp64) {
  std::ifstream in(std::string(HYBRIDNAS_SOURCE_DIR) + "/tests/reference/nats_sss_official_forward.json");
  ASSERT_TRUE(in.good());
  const auto j = nlohmann::json::parse(in);
  ASSERT_GE(j["archs"].size(), 4u);
  std::vector<double> x(2 * net::kImageNumel);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.0137 * static_cast<double>(i) + 0.5);
  for (const auto& a : j["archs"]) {
    const std::string arch = a["arch"].get<std::string>();
    SCOPED_TRACE(arch);
    const net::Plan plan = net::build_sss_plan(net::sss::parse_widths(arch), 10);
    engine::TypedBank<double> bank(net::WeightBank::zeros(10, net::Space::kNatsSss));
    std::set<std::string> set;
    for (const net::Step& st : plan.steps) {
      if (st.kind != net::StepKind::kConv && st.kind != net::StepKind::kLinear) continue;
      for (int slot : {st.slot, st.kind == net::StepKind::kLinear ? net::linear_bias_slot(st.slot) : -1}) {
        if (slot < 0) continue;
        const std::string name = xautodl_name(slot);
        const net::SlotInfo info = net::slot_info(slot, 10);
        const bool bias = info.kind == net::SlotKind::kLinearBias;
        const double fan = static_cast<double>(info.numel()) / info.cout;
        double* w = bank.mutable_slot(slot);
        for (int64_t i = 0; i < info.numel(); ++i) {
          const double v = std::sin(0.61 * static_cast<double>(i) + 0.37 * name_key(name));
          w[i] = bias ? 0.1 * v : v / std::sqrt(fan);
        }
        set.insert(name);
      }
    }
    std::set<std::string> theirs;
    for (const auto& n : a["weights"]) theirs.insert(n.get<std::string>());
    EXPECT_EQ(set, theirs) << "the plan's weights are xautodl's parameters (BN affine aside)";
    engine::ForwardOptions opt;
    opt.keep_values = true;
    const auto res = engine::cpu_forward<double>(plan, bank, x.data(), 2, opt);
    const auto L = engine::lower_plan(plan, opt);
    // Block outputs: the stem, the five layers, then the head's ReLU (lastact).
    std::vector<int> outs;
    int pooled = -1;
    for (const net::Step& st : plan.steps) {
      if (st.kind == net::StepKind::kBlockEnd) outs.push_back(L.rep[st.in0]);
      if (st.kind == net::StepKind::kRelu && net::pos_section(st.pos) == 6) outs.push_back(st.out);
      if (st.kind == net::StepKind::kGlobalAvgPool) pooled = st.out;
    }
    ASSERT_EQ(outs.size(), a["blocks"].size());
    for (size_t b = 0; b < outs.size(); ++b) {
      const int64_t n = 2 * plan.values[outs[b]].numel();
      double sum = 0, sq = 0;
      for (int64_t i = 0; i < n; ++i) {
        sum += res.values[outs[b]][i];
        sq += res.values[outs[b]][i] * res.values[outs[b]][i];
      }
      EXPECT_NEAR(sum, a["blocks"][b][0].get<double>(), 1e-9 * (1 + std::sqrt(sq))) << "block " << b;
      EXPECT_NEAR(sq, a["blocks"][b][1].get<double>(), 1e-9 * sq) << "block " << b;
    }
    const int c5 = plan.widths.c[4];
    for (int img = 0; img < 2; ++img) {
      for (int c = 0; c < c5; ++c)
        EXPECT_NEAR(res.values[pooled][img * c5 + c], a["features"][img][c].get<double>(), 1e-10);
      for (int k = 0; k < 10; ++k)
        EXPECT_NEAR(res.logits[img * 10 + k], a["logits"][img][k].get<double>(), 1e-10) << img << " " << k;
    }
  }
}

// Members of different widths run as one population (grouped by position and widths): each gets
// bit for bit what it gets alone.
TEST(NatsSssPlan, MixedWidthPopulationsGiveEachMemberItsOwnResult) {
  const char* archs[] = {"8:8:8:8:8", "16:32:48:24:56", "16:32:32:24:56", "8:8:8:8:16", "64:8:64:8:64"};
  std::vector<net::Plan> plans;
  for (const char* a : archs) plans.push_back(net::build_sss_plan(net::sss::parse_widths(a), 10));
  std::vector<const net::Plan*> pp;
  for (const auto& p : plans) pp.push_back(&p);
  const engine::TypedBank<float> bank(net::WeightBank::generate(net::InitScheme::kDefault, 0, 10, 0, net::Space::kNatsSss));
  const auto xd = net::gaussian_images(0, Purpose::kGaussianInput, 0, 4);
  const std::vector<float> x(xd.begin(), xd.end());
  engine::ForwardOptions opt;
  const engine::PopulationSchedule schedule(pp, opt);
  const auto together = engine::cpu_forward_population<float>(schedule, bank, x.data(), 4, opt);
  for (size_t m = 0; m < plans.size(); ++m) {
    const auto alone = engine::cpu_forward<float>(plans[m], bank, x.data(), 4, opt);
    ASSERT_EQ(alone.logits.size(), together[m].logits.size());
    for (size_t i = 0; i < alone.logits.size(); ++i) ASSERT_EQ(alone.logits[i], together[m].logits[i]) << archs[m];
  }
  // An NB201 bank refuses an SSS network.
  const engine::TypedBank<float> nb201(net::WeightBank::generate(net::InitScheme::kDefault, 0, 10));
  EXPECT_THROW(engine::cpu_forward<float>(plans[0], nb201, x.data(), 4, opt), std::invalid_argument);
}

// The scorer on NATS-SSS: every proxy finite on a few networks, params / flops xautodl's, a
// population's values equal one-at-a-time values, the cache key names the space, and an NB201 cell
// given to an SSS scorer is refused.
TEST(NatsSssScorer, EveryProxyScoresTheSizeSpace) {
  engine::ScoreSettings s;
  s.space = net::Space::kNatsSss;
  s.proxies = engine::parse_proxy_list(
      "naswot,naswot_once,ni,entropy,entropy_seed,ntk_fast,params,flops,synflow,logsynflow,zico,swap,swap_reg,meco,"
      "az_expressivity,az_progressivity,az_trainability");
  s.batch = 8;
  s.entropy_batch = 4;
  s.entropy_repeats = 1;
  s.swap_repeats = 1;
  s.threads = 2;
  s.data_path = test::data_path("cifar10/cifar10_sample.bin");
  s.image_offset = 1000;
  const auto in = engine::load_inputs(s);
  std::vector<net::Arch> archs;
  for (const char* a : {"8:8:8:8:8", "16:32:48:24:56", "64:64:64:64:64"}) archs.push_back(net::Arch(net::sss::parse_widths(a)));
  const auto all = engine::make_cpu_scorer(s, in)->score_all(archs);
  ASSERT_EQ(all.size(), 3u);
  for (size_t i = 0; i < archs.size(); ++i) {
    EXPECT_TRUE(all[i].arch == archs[i]);
    for (Proxy p : engine::raw_proxies(s.proxies)) {
      ASSERT_TRUE(all[i][p].has_value()) << engine::proxy_name(p);
      EXPECT_TRUE(std::isfinite(all[i][p]->value)) << net::arch_string(archs[i]) << " " << engine::proxy_name(p);
      EXPECT_EQ(all[i][p]->flag, "") << engine::proxy_name(p);
    }
    EXPECT_DOUBLE_EQ(all[i][Proxy::kParams]->value, net::sss::sss_params(archs[i].widths, 10) / 1e6);
    EXPECT_DOUBLE_EQ(all[i][Proxy::kFlops]->value, net::sss::sss_macs(archs[i].widths, 10) / 1e6);
    const auto one = engine::make_cpu_scorer(s, in)->score_all(std::vector<net::Arch>{archs[i]});
    for (Proxy p : engine::raw_proxies(s.proxies))
      EXPECT_EQ(one[0][p]->value, all[i][p]->value) << engine::proxy_name(p);
  }
  // 8 images have at most 2^8 distinct patterns; the size factor is in (0, 1].
  for (const auto& a : all) {
    EXPECT_LE(a[Proxy::kSwap]->value, 256.0);
    EXPECT_GT(a[Proxy::kSwapReg]->value, 0.0);
    EXPECT_LE(a[Proxy::kSwapReg]->value, a[Proxy::kSwap]->value);
  }
  EXPECT_NE(engine::settings_key(Proxy::kNaswot, s, in.identity).find(";space=nats-sss"), std::string::npos);
  engine::ScoreSettings nb = s;
  nb.space = net::Space::kNb201;
  EXPECT_EQ(engine::settings_key(Proxy::kNaswot, nb, in.identity).find("space"), std::string::npos);
  EXPECT_THROW(engine::make_cpu_scorer(s, in)->score_all(std::vector<net::Genes>{net::genes_from_code(5)}),
               std::invalid_argument);
}

TEST(NatsSssInput, ArchInputsTableAndScoreFiles) {
  const auto r = net::parse_arch_input(" 16:32:48:24:56 ", nullptr, net::Space::kNatsSss);
  EXPECT_EQ(net::arch_string(r.arch), "16:32:48:24:56");
  EXPECT_EQ(r.index, 5974);
  EXPECT_EQ(net::arch_string(net::parse_arch_input("5974", nullptr, net::Space::kNatsSss).arch), "16:32:48:24:56");
  EXPECT_EQ(net::arch_string(net::parse_arch_input("00011", nullptr, net::Space::kNatsSss).arch), "8:8:8:16:32");
  for (const char* bad : {"32768", "-1", "8:8:8:8", "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|",
                          "[1, 2, 3, 4, 5]", "8:8:8:8:9"})
    EXPECT_THROW(net::parse_arch_input(bad, nullptr, net::Space::kNatsSss), net::ArchInputError) << bad;
  try {
    net::parse_arch_input("8:8:8:8:9", nullptr, net::Space::kNatsSss);
  } catch (const net::ArchInputError& e) {
    EXPECT_NE(std::string(e.what()).find("0..32767"), std::string::npos) << "the message names the formats";
  }
  // The likeliest mistake, the other space's encoding, is named with the option that fixes it; a
  // wrong count of widths is reported as a count.
  const auto message = [](const char* text, net::Space space) -> std::string {
    try {
      net::parse_arch_input(text, nullptr, space);
    } catch (const net::ArchInputError& e) {
      return e.what();
    }
    return "accepted";
  };
  EXPECT_NE(message("8:8:8:8:8", net::Space::kNb201).find("--space nats-sss"), std::string::npos);
  EXPECT_NE(message("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|", net::Space::kNatsSss)
                .find("--space nb201"),
            std::string::npos);
  EXPECT_NE(message("[1, 2, 3, 4, 5, 0]", net::Space::kNatsSss).find("--space nb201"), std::string::npos);
  EXPECT_NE(message("8:8:8:8:8:", net::Space::kNatsSss).find("6 colon-separated fields"), std::string::npos);
  EXPECT_NE(message("0:0", net::Space::kNatsSss).find("2 colon-separated fields"), std::string::npos);
  EXPECT_EQ(message("8:8:8:8:8", net::Space::kNatsSss), "accepted");
  const auto table = net::ArchTable::load(test::data_path("nats_sss/nats_sss_cifar10.csv"));
  EXPECT_EQ(table.space(), net::Space::kNatsSss);
  EXPECT_EQ(table.size(), 32768u);
  EXPECT_EQ(table.index_of(net::Arch(net::sss::parse_widths("8:8:40:32:40"))), 284);
  EXPECT_EQ(net::arch_string(table.arch_of(11)), "8:8:8:16:32");
  EXPECT_FALSE(table.index_of(net::genes_from_code(3)).has_value()) << "an NB201 cell is not in an SSS table";
  EXPECT_THROW(table.genes_of(3), std::out_of_range);
  EXPECT_TRUE(table.has_column("cifar10_valid"));
  EXPECT_THROW(net::parse_arch_input("5", &table, net::Space::kNb201), net::ArchInputError);
  // Score files: SSS records parse with their space; the two spaces do not mix in one file.
  const std::string sss = R"({"arch":"8:8:8:8:8","index":0,"params":0.011714})" "\n";
  const std::string nb = R"({"arch":"|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|","params":1})" "\n";
  const auto f = engine::parse_score_file(sss, "f");
  EXPECT_EQ(f.space, net::Space::kNatsSss);
  EXPECT_EQ(net::arch_string(f.records.at(0).score.arch), "8:8:8:8:8");
  EXPECT_THROW(engine::parse_score_file(sss + nb, "f"), engine::ScoreFileError);
  EXPECT_THROW(engine::parse_score_file(R"({"arch":"8:8:8:8:8","index":32768})" "\n", "f"), engine::ScoreFileError);
}

// ---- searching the size space ---------------------------------------------------------------------

// The GA's operators on the 5-layer genome: two-point crossover on layers (one-point when a cut
// is at an end), and a mutation that moves one layer to another of the 8 widths.
TEST(NatsSssSearch, GaOperatorsKeepEveryGenomeAValidWidthConfiguration) {
  std::vector<uint8_t> pop;
  std::vector<double> fit;
  for (int i = 0; i < 8; ++i) {
    uint8_t g[5];
    engine::encode_genome(net::arch_from_code(net::Space::kNatsSss, i * 4093 + 7), g);
    pop.insert(pop.end(), g, g + 5);
    fit.push_back(std::cos(i));
  }
  for (const double cross : {0.0, 1.0}) {
    const engine::GaParams params = engine::genome_params(net::Space::kNatsSss, engine::GaParams{cross, 1.0});
    EXPECT_EQ(params.genes, 5u);
    EXPECT_EQ(params.ops, 8u);
    std::vector<uint8_t> kids;
    std::set<int> moved_layers;
    for (uint32_t gen = 0; gen < 100; ++gen) {
      engine::ga_generation_host(pop, fit, gen, philox_key(3), params, kids);
      ASSERT_EQ(kids.size(), pop.size());
      for (size_t i = 0; i < kids.size(); ++i) ASSERT_LT(kids[i], 8) << "a width index 0..7";
      if (cross == 0.0) {  // copies of a parent with exactly one layer moved
        for (size_t c = 0; c < kids.size() / 5; ++c) {
          int best_diff = 99, layer = -1;
          for (size_t p = 0; p < pop.size() / 5; ++p) {
            int d = 0, l = -1;
            for (int g = 0; g < 5; ++g)
              if (kids[c * 5 + g] != pop[p * 5 + g]) ++d, l = g;
            if (d < best_diff) best_diff = d, layer = l;
          }
          ASSERT_EQ(best_diff, 1);
          moved_layers.insert(layer);
        }
      }
    }
    if (cross == 0.0) {
      EXPECT_EQ(moved_layers.size(), 5u) << "every layer gets moved";
    }
  }
  const auto a = net::Arch(net::sss::parse_widths("16:32:48:24:56"));
  uint8_t g[5];
  engine::encode_genome(a, g);
  EXPECT_EQ(std::vector<int>(g, g + 5), (std::vector<int>{1, 3, 5, 2, 6}));
  EXPECT_TRUE(engine::decode_genome(net::Space::kNatsSss, g) == a);
}

namespace {
engine::ScoreSettings params_only() {
  engine::ScoreSettings s;
  s.space = net::Space::kNatsSss;
  s.proxies = {Proxy::kParams};
  s.threads = 2;
  return s;
}
}  // namespace

// GA, REA, random and exhaustive search over the size space with a fitness (params) whose optimum
// is known: exhaustive finds 64:64:64:64:64 in 32,768 evaluations; the others spend their budget
// on distinct networks and find one in the top 2%; a seed gives the same visit order; a GA
// checkpoint holds width genes (values NB201's op codes could not take).
TEST(NatsSssSearch, EveryStrategySearchesTheSizeSpace) {
  const auto s = params_only();
  std::vector<double> all_params;
  for (int64_t i = 0; i < net::sss::kNumArchs; ++i)
    all_params.push_back(net::sss::sss_params(net::sss::widths_from_index(i), 10) / 1e6);
  std::vector<double> sorted = all_params;
  std::sort(sorted.begin(), sorted.end());
  const double top2 = sorted[static_cast<size_t>(0.98 * sorted.size())];
  test::TempDir dir;
  for (const auto strategy : {engine::Strategy::kGa, engine::Strategy::kRea, engine::Strategy::kRandom}) {
    engine::SearchConfig c;
    c.space = net::Space::kNatsSss;
    c.strategy = strategy;
    c.budget = 400;
    c.population = 20;
    c.generations = 100;
    c.fitness.proxies = {Proxy::kParams};
    c.fitness.mode = engine::FitnessMode::kRank;
    c.search_seed = 5;
    if (strategy == engine::Strategy::kGa) c.checkpoint = dir.path() + "/ga.json";
    auto scorer = engine::make_cpu_scorer(s, engine::load_inputs(s));
    const auto res = engine::run_search(c, *scorer, nullptr);
    SCOPED_TRACE(engine::strategy_name(strategy));
    EXPECT_EQ(res.best.space, net::Space::kNatsSss);
    if (strategy == engine::Strategy::kGa) {
      // A GA whose population has converged stops finding new networks (its children are the
      // parents or their single-layer moves): it ends by generations before the budget.
      EXPECT_GT(res.evaluations, 100);
      EXPECT_LE(res.evaluations, 400);
    } else {
      EXPECT_EQ(res.evaluations, 400);
    }
    std::set<int> distinct(res.visited.begin(), res.visited.end());
    EXPECT_EQ(distinct.size(), res.visited.size());
    for (int v : res.visited) ASSERT_TRUE(v >= 0 && v < net::sss::kNumArchs);
    if (strategy != engine::Strategy::kRandom) {
      EXPECT_GE(all_params[static_cast<size_t>(net::arch_code(res.best))], top2) << net::arch_string(res.best);
    }
    auto again = engine::make_cpu_scorer(s, engine::load_inputs(s));
    c.checkpoint.clear();
    EXPECT_EQ(engine::run_search(c, *again, nullptr).visited, res.visited);
  }
  const auto cp = engine::parse_checkpoint(engine::read_file(dir.path() + "/ga.json"), "cp", net::Space::kNatsSss);
  EXPECT_EQ(cp.population.size(), 20u * 5);
  EXPECT_EQ(cp.archive.front().arch.space, net::Space::kNatsSss);
  EXPECT_GT(*std::max_element(cp.population.begin(), cp.population.end()), 4) << "widths above NB201's op codes";
  EXPECT_THROW(engine::parse_checkpoint(engine::read_file(dir.path() + "/ga.json"), "cp", net::Space::kNb201),
               engine::CheckpointError);
  engine::SearchConfig ex;
  ex.space = net::Space::kNatsSss;
  ex.strategy = engine::Strategy::kExhaustive;
  ex.fitness.proxies = {Proxy::kParams};
  ex.fitness.mode = engine::FitnessMode::kRank;
  auto scorer = engine::make_cpu_scorer(s, engine::load_inputs(s));
  const auto res = engine::run_search(ex, *scorer, nullptr);
  EXPECT_EQ(res.evaluations, net::sss::kNumArchs);
  EXPECT_EQ(net::arch_string(res.best), "64:64:64:64:64");
  ex.dedup_isomorphic = true;  // no NATS-SSS pair is isomorphic: nothing changes
  ex.budget = 1000;
  ex.strategy = engine::Strategy::kRandom;
  auto scorer2 = engine::make_cpu_scorer(s, engine::load_inputs(s));
  EXPECT_EQ(engine::run_search(ex, *scorer2, nullptr).evaluations, 1000);
}
