// Each proxy is timed on its own (a scorer that computes only it), plus naswot+ni sharing the
// clean forward: one warm-up pass over the architectures, then `runs` timed passes; the median
// pass gives seconds per architecture. Without --data the networks see N(0,1) images (the time
// does not depend on the pixels).
#include "cli/bench.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <omp.h>

namespace hn::cli {

using engine::Proxy;

namespace {
// Fixed architectures spanning the cost range (the same list as bench/torch_bench.py): the
// CIFAR-10 optimum (6111), NB201 index 0, the fixture cell (3160, every op), and every edge a
// 3x3 conv (the most expensive cell).
const char* kDefaultArchs[] = {
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|",
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}
}  // namespace

void BenchCommand::add_to(CLI::App& app) {
  scoring.add_to(app, /*with_preset=*/false);
  archs.add_to(app);
  app.add_option("--warmup", warmup, "Untimed passes first (1)")->check(CLI::NonNegativeNumber);
  app.add_option("--runs", runs, "Timed passes; the median is reported (5)")->check(CLI::PositiveNumber);
  app.add_option("--max-seconds", max_seconds,
                 "Stop timing a proxy after this many seconds (at least one timed pass) (120)");
  app.add_flag("--once", once, "One pass, no warm-up (for profilers)");
  app.add_option("--json", json, "Also write the results as JSON to this file");
}

int BenchCommand::run() {
  scoring.preset = "full";  // the benchmark measures SPEC.md's default batch sizes
  std::string backend;
  engine::ScoreSettings base = scoring.settings(&backend, nullptr);
  if (scoring.data.empty()) base.gaussian_input = true;
  if (once) {
    warmup = 0;
    runs = 1;
  }
  std::vector<net::Genes> genes;
  if (archs.empty()) {
    for (const char* a : kDefaultArchs) genes.push_back(net::parse_arch(a));
  } else {
    const auto table = load_table(scoring.table);
    for (const auto& it : resolve_archs(archs, table.get())) {
      if (!it.error.empty()) throw CliError(kExitBadInput, it.error);
      genes.push_back(*it.genes);
    }
  }
  // Each listed proxy alone, then naswot+ni when both are listed.
  std::vector<std::pair<std::string, std::vector<Proxy>>> cases;
  for (Proxy p : base.proxies)
    if (p != Proxy::kNinaswot) cases.push_back({engine::proxy_name(p), {p}});
  const auto has = [&](Proxy p) {
    return std::find(base.proxies.begin(), base.proxies.end(), p) != base.proxies.end();
  };
  if (has(Proxy::kNaswot) && has(Proxy::kNi)) cases.push_back({"naswot+ni", {Proxy::kNaswot, Proxy::kNi}});

  const int threads = base.threads > 0 ? base.threads : omp_get_max_threads();
  nlohmann::json results = nlohmann::json::object();
  std::printf("hybridnas bench: backend %s, %s, %d threads, %zu architectures, batch %d, entropy %dx%d, %s\n",
              backend.c_str(), cpu_model_name().c_str(), threads, genes.size(), base.batch,
              base.entropy_batch, base.entropy_repeats, engine::precision_name(base.precision));
  std::printf("%-14s %14s %12s\n", "proxy", "s/arch (med)", "archs/s");
  for (const auto& [name, proxies] : cases) {
    engine::ScoreSettings s = base;
    s.proxies = proxies;
    engine::ScoreInputs inputs;
    try {
      inputs = engine::load_inputs(s);
    } catch (const std::exception& e) {
      throw CliError(kExitData, e.what());
    }
    auto scorer = make_scorer(backend, s, inputs);
    // Warm-up: one architecture per pass (allocations, page faults, BLAS buffers).
    for (int r = 0; r < warmup; ++r) scorer->score_all({genes[0]});
    std::vector<double> per_arch;
    const auto start = std::chrono::steady_clock::now();
    for (int r = 0; r < runs; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      scorer->score_all(genes);
      const auto t1 = std::chrono::steady_clock::now();
      per_arch.push_back(std::chrono::duration<double>(t1 - t0).count() / genes.size());
      if (std::chrono::duration<double>(t1 - start).count() > max_seconds) break;
    }
    const double med = median(per_arch);
    std::printf("%-14s %14.4f %12.2f\n", name.c_str(), med, 1.0 / med);
    results[name] = {{"median_s_per_arch", med}, {"archs_per_s", 1.0 / med}, {"runs_s_per_arch", per_arch}};
    std::fflush(stdout);
  }
  if (!json.empty()) {
    nlohmann::json j = {{"backend", backend},
                        {"device", cpu_model_name()},
                        {"threads", threads},
                        {"date", utc_timestamp()},
                        {"architectures", nlohmann::json::array()},
                        {"settings",
                         {{"batch", base.batch},
                          {"entropy_batch", base.entropy_batch},
                          {"entropy_repeats", base.entropy_repeats},
                          {"num_classes", base.num_classes},
                          {"precision", engine::precision_name(base.precision)},
                          {"input", base.gaussian_input ? "gaussian" : base.data_path}}},
                        {"warmup", warmup},
                        {"runs", runs},
                        {"proxies", results}};
    for (const auto& g : genes) j["architectures"].push_back(net::arch_string(g));
    std::ofstream out(json);
    if (!out) throw CliError(kExitData, "cannot write --json file '" + json + "'");
    out << j.dump(1) << "\n";
  }
  return kExitOk;
}

}  // namespace hn::cli
