// Each proxy is timed on its own (a scorer that computes only it), plus naswot+ni sharing the
// clean forward and, with --presets, the presets' proxy sets: one warm-up architecture, then
// `runs` timed passes over the architectures; the median pass gives seconds per architecture and
// archs/s (with the CUDA backend, a pass scores the architectures concurrently on its streams,
// as a search does). FLOP/s counts convolutions and the linear layer (net::Plan::flops) of the
// passes each proxy needs. Without --data the networks see N(0,1) images.
#include "cli/bench.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <omp.h>

#include "engine/devices.hpp"
#include "engine/population.hpp"
#include "net/plan.hpp"
#include "net/sampling.hpp"
#include "net/text.hpp"

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
// NATS-SSS: the smallest, a mixed and the largest network, and one in between (mean width 36).
const char* kDefaultSssArchs[] = {"8:8:8:8:8", "16:32:48:24:56", "40:40:40:40:40", "64:64:64:64:64"};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Forward-equivalent image passes of a proxy, times the plan's per-image FLOPs.
double proxy_flops(Proxy p, const engine::ScoreSettings& s, double per_image) {
  const double n = std::min(64, s.batch);
  switch (p) {
    case Proxy::kNaswot:
    case Proxy::kNaswotOnce:
    case Proxy::kEntropySeed: return s.batch * per_image;
    case Proxy::kNi: return 2.0 * s.batch * per_image;
    case Proxy::kEntropy: return double(s.entropy_repeats) * s.entropy_batch * per_image;
    case Proxy::kNtkFast: return 3.0 * n * per_image;             // forward, data and weight gradients
    case Proxy::kNtk: return n * per_image + 2.0 * n * n * per_image;  // every cotangent's backward
    case Proxy::kZico: return 3.0 * s.batch * per_image;  // two half batches: forward and backward
    case Proxy::kSynflow:
    case Proxy::kLogsynflow: return 3.0 * per_image;  // one image, forward and backward (FP64)
    case Proxy::kSwap:
    case Proxy::kSwapReg: return double(s.swap_repeats) * engine::swap_samples(s.batch) * per_image;
    case Proxy::kMeco: return per_image;  // one image (dead edges too, not counted)
    case Proxy::kAzExpressivity:  // one forward and one data backward of min(64, batch) images
    case Proxy::kAzProgressivity:
    case Proxy::kAzTrainability: return 3.0 * engine::az_images(s.batch) * per_image;
    default: return 0.0;
  }
}
}  // namespace

void BenchCommand::add_to(CLI::App& app) {
  scoring.add_to(app, /*with_preset=*/false);
  archs.add_to(app);
  app.add_option("--warmup", warmup, "Untimed warm-up passes over the first architecture (1)")
      ->transform(int_range(0, 1000));
  app.add_option("--runs", runs, "Timed passes; the median is reported (5)")->transform(int_range(1, 1000));
  app.add_option("--max-seconds", max_seconds,
                 "Stop timing a proxy after this many seconds (at least one timed pass) (120)")
      ->transform(real_range(0, 1e6));
  app.add_flag("--presets", presets, "Also time the presets hybrid, seed, cpu-quick, az-nas, az-meco-zico and synflow-rank as "
               "wholes (az-meco-zico's zico needs --data)");
  app.add_option("--repeat-archs", repeat_archs,
                 "Score each architecture this many times per pass (fills a GPU's streams) (1)")
      ->transform(int_range(1, 100000));
  app.add_flag("--once", once, "One pass, no warm-up (for profilers)");
  app.add_option("--population-sizes", population_sizes,
                 "Also time each case on random populations of these sizes (e.g. 1,10,100,1000; "
                 "random search's draws for search seed 0), one pass each: archs/s per size");
  app.add_option("--json", json,
                 "Also write the results as JSON to this file (rewritten atomically after every "
                 "case, so an interrupted run keeps what it measured)");
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
  if (!json.empty()) {
    check_output(json, "--json");
    check_distinct({{"--json", json}, {"--archs", archs.archs_file == "-" ? "" : archs.archs_file},
                    {"--data", scoring.data}, {"--table", scoring.table}});
  }
  // --population-sizes is checked before anything is timed: whole numbers 1..the space's runnable
  // (non-degenerate) architectures, which the populations are drawn from; no repeats.
  const int64_t space_archs = static_cast<int64_t>(net::runnable_archs(base.space).size());
  std::vector<int> sizes;
  for (size_t from = 0; !population_sizes.empty() && from <= population_sizes.size();) {
    const size_t comma = std::min(population_sizes.find(',', from), population_sizes.size());
    const std::string item = population_sizes.substr(from, comma - from);
    const bool digits = !item.empty() && item.size() <= 5 && item.find_first_not_of("0123456789") == std::string::npos;
    const int v = digits ? std::stoi(item) : 0;
    if (!digits || v < 1 || v > space_archs)
      throw CliError(kExitUsage, "--population-sizes: '" + net::printable(item, 40) +
                                     "' is not a population size (a whole number 1.." +
                                     std::to_string(space_archs) +
                                     ", the space's non-degenerate architectures; give a "
                                     "comma-separated list such as 1,10,100)");
    if (std::find(sizes.begin(), sizes.end(), v) != sizes.end())
      throw CliError(kExitUsage, "--population-sizes: " + item + " is given twice");
    sizes.push_back(v);
    from = comma + 1;
  }
  std::vector<net::Arch> genes;
  if (archs.empty()) {
    if (base.space == net::Space::kNatsSss)
      for (const char* a : kDefaultSssArchs) genes.push_back(net::Arch(net::sss::parse_widths(a)));
    else
      for (const char* a : kDefaultArchs) genes.push_back(net::parse_arch(a));
  } else {
    const auto table = load_table(scoring.table, false, scoring.quiet, base.space);
    archs.space = base.space;
    for (const auto& it : resolve_archs(archs, table.get())) {
      if (!it.error.empty()) throw CliError(kExitUsage, it.error);
      genes.push_back(*it.arch);
    }
  }
  if (genes.size() * static_cast<size_t>(repeat_archs) > 1000000)
    throw CliError(kExitUsage, "--repeat-archs " + std::to_string(repeat_archs) + " x " +
                                   std::to_string(genes.size()) +
                                   " architectures is more than 1,000,000 per pass");
  std::vector<net::Arch> pass;
  for (int r = 0; r < repeat_archs; ++r) pass.insert(pass.end(), genes.begin(), genes.end());

  struct Case {
    std::string name;
    engine::ScoreSettings settings;
  };
  std::vector<Case> cases;
  for (Proxy p : base.proxies)
    if (p != Proxy::kNinaswot) {
      Case c{engine::proxy_name(p), base};
      c.settings.proxies = {p};
      cases.push_back(c);
    }
  const auto has = [&](Proxy p) {
    return std::find(base.proxies.begin(), base.proxies.end(), p) != base.proxies.end();
  };
  if (has(Proxy::kNaswot) && has(Proxy::kNi)) {
    Case c{"naswot+ni", base};
    c.settings.proxies = {Proxy::kNaswot, Proxy::kNi};
    cases.push_back(c);
  }
  if (presets)
    for (const char* name : {"hybrid", "seed", "cpu-quick", "az-nas", "az-meco-zico", "synflow-rank"}) {
      const auto& pre = engine::run_preset(name);
      Case c{std::string("preset:") + name, base};
      c.settings.proxies = engine::parse_proxy_list(pre.proxies);
      c.settings.batch = pre.batch;
      c.settings.entropy_batch = pre.entropy_batch;
      c.settings.entropy_repeats = pre.entropy_repeats;
      if (pre.num_classes > 0) c.settings.num_classes = pre.num_classes;
      cases.push_back(c);
    }
  if (cases.empty())
    throw CliError(kExitUsage, "nothing to time: bench times the raw proxies (ninaswot is naswot + ni: "
                               "--proxies naswot,ni times both and their pair)");
  // Every case is checked before anything is timed (zico on bench's Gaussian input without --data,
  // ...): a run does not fail part-way.
  for (const Case& c : cases) {
    try {
      c.settings.validate();
    } catch (const std::invalid_argument& e) {
      throw CliError(kExitUsage, c.name + ": " + e.what());
    }
  }

  std::string device = cpu_model_name();
  double peak_tflops = 0.0;
  if (backend == "cuda") {
    const auto devs = engine::list_gpus();
    device = devs.at(base.device).name;
    peak_tflops = devs.at(base.device).peak_fp32_tflops;
  }
  const int threads = base.threads > 0 ? base.threads : omp_get_max_threads();
  nlohmann::json results = nlohmann::json::object();
  nlohmann::json schedule = nlohmann::json::object();
  std::printf("hybridnas bench: space %s, backend %s, %s, %s, %zu architectures x %d, batch %d, entropy %dx%d, %s%s\n",
              net::space_name(base.space), backend.c_str(), device.c_str(),
              backend == "cuda" ? (std::to_string(base.gpu_streams) + " streams").c_str()
                                : (std::to_string(threads) + " threads").c_str(),
              genes.size(), repeat_archs, base.batch, base.entropy_batch, base.entropy_repeats,
              engine::precision_name(base.precision), base.tf32 ? " +tf32" : "");
  // The JSON file, rewritten after every case so that an interrupted run keeps what it measured.
  auto write_json = [&](bool complete) {
    if (json.empty()) return;
    nlohmann::json j = {{"space", net::space_name(base.space)},
                        {"backend", backend},
                        {"device", device},
                        {"driver", backend == "cuda" ? engine::gpu_driver_version() : std::string("")},
                        {"peak_fp32_tflops_estimate", peak_tflops},
                        {"threads", threads},
                        {"gpu_streams", base.gpu_streams},
                        {"tf32", base.tf32},
                        {"date", utc_timestamp()},
                        {"architectures", nlohmann::json::array()},
                        {"repeat_archs", repeat_archs},
                        {"settings",
                         {{"batch", base.batch},
                          {"entropy_batch", base.entropy_batch},
                          {"entropy_repeats", base.entropy_repeats},
                          {"swap_repeats", base.swap_repeats},
                          {"num_classes", base.num_classes},
                          {"precision", engine::precision_name(base.precision)},
                          {"input", base.gaussian_input ? "gaussian" : base.data_path}}},
                        {"warmup", warmup},
                        {"runs", runs},
                        {"proxies", results},
                        {"schedule", schedule},
                        {"complete", complete}};
    for (const auto& g : genes) j["architectures"].push_back(net::arch_string(g));
    write_output(json, j.dump(1) + "\n");
  };
  // What a grouped (population) executor costs per architecture, from the schedule alone: random
  // populations (random search's draws for search seed 0) of 1 to 1,000 members.
  std::printf("population schedule (forward passes and the NTK's backward, random populations of P = 1 to 1,000, counted from the "
              "schedule, not timed; per architecture): launches, library calls, MB moved; one architecture at a "
              "time: launches\n");
  const int kScheduleSizes[] = {1, 10, 100, 1000};
  std::vector<std::vector<net::Arch>> populations;
  for (int P : kScheduleSizes) populations.push_back(net::sample_distinct(base.space, P, 0, Purpose::kRandomSearch, true));
  for (const auto& c : cases) {
    std::vector<engine::ScheduleCounts> counts;
    for (const auto& pop : populations) counts.push_back(engine::schedule_counts(pop, c.settings));
    if (counts.front().groups == 0) continue;  // only degenerate architectures
    std::printf("  %-16s", c.name.c_str());
    for (size_t i = 0; i < counts.size(); ++i) {
      const engine::ScheduleCounts& k = counts[i];
      const double n = kScheduleSizes[i];
      std::printf("  P=%-4d %6.1f %5.2f %6.1f (%5.0f)", kScheduleSizes[i], k.launches / n, k.library_calls / n,
                  k.bytes / n / 1e6, k.per_member_launches / n);
      schedule[c.name][std::to_string(kScheduleSizes[i])] = {
          {"launches_per_arch", k.launches / n},
          {"library_calls_per_arch", k.library_calls / n},
          {"bytes_per_arch", k.bytes / n},
          {"groups", k.groups},
          {"per_arch_executor_launches_per_arch", k.per_member_launches / n},
          {"per_arch_executor_library_calls_per_arch", k.per_member_library_calls / n}};
    }
    std::printf("\n");
  }
  std::printf("%-18s %14s %12s %12s %10s\n", "proxy", "s/arch (med)", "archs/s", "GFLOP/s", "proxy s");
  std::fflush(stdout);
  for (const auto& c : cases) {
    const engine::ScoreInputs inputs = load_inputs_or_fail(c.settings);
    auto scorer = make_scorer(backend, c.settings, inputs);
    for (int r = 0; r < warmup; ++r) scorer->score_all({pass[0]});
    std::vector<double> per_arch;
    double proxy_seconds = 0.0;
    int scored = 0;
    const auto start = std::chrono::steady_clock::now();
    for (int r = 0; r < runs; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      const auto res = scorer->score_all(pass);
      const auto t1 = std::chrono::steady_clock::now();
      per_arch.push_back(std::chrono::duration<double>(t1 - t0).count() / pass.size());
      for (const auto& a : res)
        for (Proxy p : engine::raw_proxies(c.settings.proxies))
          if (a[p]) proxy_seconds += a[p]->seconds;
      scored += static_cast<int>(res.size());
      if (std::chrono::duration<double>(t1 - start).count() > max_seconds) break;
    }
    const double med = median(per_arch);
    double flops = 0.0;
    for (const auto& g : genes) {
      if (net::is_degenerate(g)) continue;
      const double per_image = static_cast<double>(net::build_plan(g, c.settings.num_classes).flops);
      bool swap_counted = false, az_counted = false;  // one pass serves swap / swap_reg, one the az_* three
      for (Proxy p : engine::raw_proxies(c.settings.proxies)) {
        const bool swap = p == Proxy::kSwap || p == Proxy::kSwapReg;
        const bool az = p == Proxy::kAzExpressivity || p == Proxy::kAzProgressivity || p == Proxy::kAzTrainability;
        if ((swap && swap_counted) || (az && az_counted)) continue;
        swap_counted = swap_counted || swap;
        az_counted = az_counted || az;
        if (p == Proxy::kNi && std::find(c.settings.proxies.begin(), c.settings.proxies.end(), Proxy::kNaswot) !=
                                   c.settings.proxies.end())
          flops += c.settings.batch * per_image;  // the clean forward is naswot's
        else
          flops += proxy_flops(p, c.settings, per_image);
      }
    }
    flops /= genes.size();
    const double gflops = flops / med / 1e9;
    std::printf("%-18s %14.5f %12.2f %12.1f %10.5f\n", c.name.c_str(), med, 1.0 / med, gflops,
                proxy_seconds / std::max(scored, 1));
    std::fflush(stdout);
    nlohmann::json r = {{"median_s_per_arch", med},
                        {"archs_per_s", 1.0 / med},
                        {"runs_s_per_arch", per_arch},
                        {"proxy_seconds_per_arch", proxy_seconds / std::max(scored, 1)},
                        {"gflop_per_arch", flops / 1e9},
                        {"achieved_gflops", gflops},
                        {"batch", c.settings.batch},
                        {"entropy_batch", c.settings.entropy_batch},
                        {"entropy_repeats", c.settings.entropy_repeats},
                        {"swap_repeats", c.settings.swap_repeats},
                        {"num_classes", c.settings.num_classes}};
    if (peak_tflops > 0) r["fraction_of_fp32_peak"] = gflops / (peak_tflops * 1e3);
    results[c.name] = r;
    write_json(false);
  }
  // archs/s per population size: one pass over a random population of each size.
  if (!sizes.empty()) {
    std::printf("%-18s %10s %12s %12s\n", "proxy", "population", "s (pass)", "archs/s");
    for (const auto& c : cases) {
      const engine::ScoreInputs inputs = load_inputs_or_fail(c.settings);
      auto scorer = make_scorer(backend, c.settings, inputs);
      if (warmup > 0) scorer->score_all({pass[0]});
      for (int P : sizes) {
        const auto pop = net::sample_distinct(base.space, P, 0, Purpose::kRandomSearch, true);
        const auto t0 = std::chrono::steady_clock::now();
        scorer->score_all(pop);
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::printf("%-18s %10d %12.3f %12.2f\n", c.name.c_str(), P, secs, P / secs);
        std::fflush(stdout);
        results[c.name]["population_archs_per_s"][std::to_string(P)] = P / secs;
        write_json(false);
      }
    }
  }
  write_json(true);
  return kExitOk;
}

}  // namespace hn::cli
