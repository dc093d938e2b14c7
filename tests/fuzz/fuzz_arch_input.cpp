// Fuzzes the architecture parsers: net::parse_arch_input (every accepted encoding, with and
// without an NB201 table; and the NATS-SSS space's widths and indices) and the strict arch-string
// parser net::parse_arch.
// Expected failures: ArchInputError (whose message must be valid UTF-8) and ArchParseError.
// A parsed architecture must print back to an arch string that parses to the same genes.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "net/arch_input.hpp"
#include "net/arch_table.hpp"
#include "net/nb201.hpp"
#include "tests/fuzz/fuzz_util.hpp"

using namespace hn;

namespace {

// The NB201 table, loaded once when the build's data directory has it.
const net::ArchTable* table() {
  static const std::unique_ptr<net::ArchTable> t = []() -> std::unique_ptr<net::ArchTable> {
    const std::string path = std::string(HYBRIDNAS_DATA_DIR) + "/nb201/nb201_cifar10.csv";
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) return nullptr;
    return std::make_unique<net::ArchTable>(net::ArchTable::load(path));
  }();
  return t.get();
}

void check_round_trip(const net::Genes& g, const char* api) {
  const std::string s = net::arch_string(g);
  if (net::parse_arch(s) != g) fuzz::finding(std::string(api) + ": arch string does not round-trip: " + s);
}

void parse_input(std::string_view text, const net::ArchTable* t) {
  try {
    const net::ArchRef r = net::parse_arch_input(text, t);
    check_round_trip(r.arch.genes, "parse_arch_input");
    if (r.index) {
      if (*r.index < 0 || *r.index >= net::kNumArchs)
        fuzz::finding("parse_arch_input: index " + std::to_string(*r.index) + " out of range");
      if (t && t->genes_of(*r.index) != r.arch.genes)
        fuzz::finding("parse_arch_input: index " + std::to_string(*r.index) + " names other genes");
    }
  } catch (const net::ArchInputError& e) {
    if (!net::is_valid_utf8(e.what())) fuzz::finding("ArchInputError message is not valid UTF-8");
  } catch (const std::exception& e) {
    fuzz::unexpected_exception("parse_arch_input", e);
  }
}

// The size space: widths c1:c2:c3:c4:c5 that print back to themselves, the index their code.
void parse_sss_input(std::string_view text) {
  try {
    const net::ArchRef r = net::parse_arch_input(text, nullptr, net::Space::kNatsSss);
    if (r.arch.space != net::Space::kNatsSss) fuzz::finding("parse_arch_input (nats-sss): an NB201 architecture");
    const std::string s = net::arch_string(r.arch);
    if (net::parse_arch_input(s, nullptr, net::Space::kNatsSss).arch != r.arch)
      fuzz::finding("parse_arch_input (nats-sss): widths do not round-trip: " + s);
    if (!r.index || *r.index != net::arch_code(r.arch))
      fuzz::finding("parse_arch_input (nats-sss): the index is not the widths' index");
  } catch (const net::ArchInputError& e) {
    if (!net::is_valid_utf8(e.what())) fuzz::finding("ArchInputError message is not valid UTF-8");
  } catch (const std::exception& e) {
    fuzz::unexpected_exception("parse_arch_input (nats-sss)", e);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  parse_input(text, nullptr);
  parse_sss_input(text);
  if (const net::ArchTable* t = table()) parse_input(text, t);
  try {
    const net::Genes g = net::parse_arch(text);
    check_round_trip(g, "parse_arch");
    if (net::genes_code(g) < 0 || net::genes_code(g) >= net::kNumArchs) fuzz::finding("parse_arch: bad genes");
  } catch (const net::ArchParseError& e) {
    if (e.position() > size) fuzz::finding("ArchParseError position past the end of the input");
  } catch (const std::exception& e) {
    fuzz::unexpected_exception("parse_arch", e);
  }
  return 0;
}
