#include "cli/common.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "engine/cuda_scorer.hpp"
#include "engine/cluster.hpp"
#include "engine/devices.hpp"
#include "engine/distributed_scorer.hpp"
#include "engine/files.hpp"
#include "engine/score_file.hpp"
#include "engine/search.hpp"
#include "net/arch_input.hpp"
#include "net/sampling.hpp"

namespace hn::cli {

using engine::Proxy;

void ScoringOptions::add_to(CLI::App& app, bool with_preset) {
  o_proxies = app.add_option("--proxies", proxies,
                             "Comma-separated proxies: naswot, naswot_once, ni, ninaswot, entropy, "
                             "entropy_seed, ntk, ntk_fast, params, flops, synflow, logsynflow, zico, swap, "
                             "swap_reg, meco, az_expressivity, az_progressivity, az_trainability (default: "
                             "the preset's; docs/proxies.md defines them)");
  app.add_option("--data", data, "CIFAR binary data: a file or a directory of batch files");
  app.add_option("--dataset", dataset, "Data format and normalisation: cifar10 or cifar100")
      ->check(CLI::IsMember({"cifar10", "cifar100"}));
  o_image_offset = app.add_option("--image-offset", image_offset, "First record of the data to use (0)")
      ->transform(int_range(0, INT64_MAX / 2));
  app.add_flag("--gaussian-input", gaussian_input, "Use N(0,1) images instead of --data");
  o_batch = app.add_option("--batch", batch,
                           "Images of naswot, naswot_once and ni (real images, or Gaussian with "
                           "--gaussian-input), of entropy_seed (always Gaussian, SPEC.md 3), of "
                           "ntk / ntk_fast (min(64, batch)), of zico (real images only, its two "
                           "mini-batches the halves: at least 4), swap / swap_reg (the first min(16, "
                           "batch)), meco (the first image) and the az_* proxies (min(64, batch) "
                           "Gaussian images) (128)")
                ->transform(int_range(2, 4096));
  o_entropy_batch = app.add_option("--entropy-batch", entropy_batch, "Gaussian images of entropy (32)")
                        ->transform(int_range(1, 4096));
  o_entropy_repeats =
      app.add_option("--entropy-repeats", entropy_repeats, "Repeats of entropy (4)")->transform(int_range(1, 1000));
  app.add_option("--swap-repeats", swap_repeats,
                 "Forwards of swap / swap_reg, each with fresh N(0,1) weights, averaged (32, the authors' default)")
      ->transform(int_range(1, 1000));
  app.add_option("--swap-mu", swap_mu,
                 "swap_reg's regulariser exp(-(params/1e3 - mu)^2 / sigma): mu in thousands of parameters, "
                 "0..1e12 (0 or absent: the space's largest network's count: NB201 1531.546, NATS-SSS 713.674 "
                 "at 10 classes)")
      ->check(CLI::Range(0.0, 1e12));
  app.add_option("--swap-sigma", swap_sigma, "swap_reg's sigma, 0..1e24 (0 or absent: mu^2)")
      ->check(CLI::Range(0.0, 1e24));
  o_num_classes = app.add_option("--num-classes", num_classes,
                                 "Logits of the head (default: 10 for cifar10, 100 for cifar100; "
                                 "1 = the NASWOT convention; zico needs every label below it)")
                    ->transform(int_range(1, 1000));
  app.add_option("--score-seed", score_seed, "Seed of every random tensor of scoring (0)")->transform(unsigned64());
  app.add_option("--precision", precision, "Activations: fp32 or fp64 (CPU only)")
      ->check(CLI::IsMember({"fp32", "fp64"}));
  app.add_option("--backend", backend, "cpu, cuda or auto (the GPU when there is one)")
      ->check(CLI::IsMember({"cpu", "cuda", "auto"}));
  if (with_preset)
    app.add_option("--preset", preset,
                   "Preset: full, hybrid, hybrid-logrank, seed, cpu-quick, az-nas, az-meco-zico, synflow-rank, or auto (NB201: cpu-quick on the CPU "
                   "backend, full for score and hybrid for search on CUDA; NATS-SSS: synflow-rank); flags override it");
  app.add_option("--threads", threads, "CPU threads (0 = all cores)")->transform(int_range(0, 4096));
  app.add_option("--population-batch", population_batch,
                 "Architectures run together as one population (0 = sized from memory); scores "
                 "do not depend on it")
      ->transform(int_range(0, 100000));
  o_device = app.add_option("--device", device, "CUDA device index (after CUDA_VISIBLE_DEVICES): one device")
                 ->transform(int_range(0, 1023));
  o_devices = app.add_option("--devices", devices,
                             "CUDA devices to split populations across, e.g. 0,1 (default: every visible "
                             "device; under mpirun each rank takes one by its local rank)");
  app.add_option("--gpu-streams", gpu_streams, "CUDA backend: population slices scored concurrently, one stream each (8)")
      ->transform(int_range(1, 64));
  app.add_flag("--tf32", tf32, "CUDA backend: TF32 tensor cores for convolutions and GEMMs (faster, "
                               "less exact; reported in the settings)");
  app.add_option("--space", space,
                 "Search space: nb201 (NAS-Bench-201's 15,625 cells) or nats-sss (NATS-Bench's 32,768 "
                 "channel widths c1:c2:c3:c4:c5)")
      ->check(CLI::IsMember({"nb201", "nats-sss"}));
  app.add_option("--table", table,
                 "Benchmark table of the space (CSV with arch_index,arch_str) for indices and accuracies "
                 "(default: $HYBRIDNAS_TABLE, nats-sss: $HYBRIDNAS_SSS_TABLE, or the build's data directory)");
  app.add_flag("-q,--quiet", quiet, "No progress lines on stderr");
}

namespace {
// The CUDA devices of a run (empty on the CPU backend): --device, --devices, or every visible one;
// in an MPI job of several ranks, the rank's own (local rank modulo the devices it sees).
std::vector<int> device_list(const std::string& backend, int device, bool device_given, const std::string& list,
                             bool list_given) {
  if (device_given && list_given) throw CliError(kExitUsage, "give --device or --devices, not both");
  if (backend != "cuda") {
    if (list_given || device_given)
      throw CliError(kExitUsage, std::string(list_given ? "--devices" : "--device") + " applies to the CUDA backend");
    return {};
  }
  const int count = engine::gpu_count();
  const auto& job = engine::cluster();
  if (job.size > 1) {
    if (list_given || device_given)
      throw CliError(kExitUsage, "under mpirun each rank takes one GPU by its local rank: leave out "
                                 "--device / --devices (choose GPUs with CUDA_VISIBLE_DEVICES)");
    return {job.local_rank % count};
  }
  if (device_given) return {device};
  if (!list_given) {
    std::vector<int> all(static_cast<size_t>(count));
    for (int d = 0; d < count; ++d) all[static_cast<size_t>(d)] = d;
    return all;
  }
  std::vector<int> out;
  std::string item;
  for (size_t i = 0; i <= list.size(); ++i) {
    if (i < list.size() && list[i] != ',') {
      item += list[i];
      continue;
    }
    int d = -1;
    size_t used = 0;
    try {
      d = std::stoi(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size() || d < 0)
      throw CliError(kExitUsage, "--devices: '" + net::printable(list, 60) + "' is not a list of device indices such as 0,1");
    if (d >= count)
      throw CliError(kExitBackend, "--devices names device " + std::to_string(d) + " but " + std::to_string(count) +
                                       " GPU(s) are visible (indices after CUDA_VISIBLE_DEVICES)");
    if (std::find(out.begin(), out.end(), d) != out.end())
      throw CliError(kExitUsage, "--devices names device " + std::to_string(d) + " twice");
    out.push_back(d);
    item.clear();
  }
  return out;
}
}  // namespace

engine::ScoreSettings ScoringOptions::settings(std::string* backend_out,
                                               std::string* preset_out) const {
  engine::ScoreSettings s;
  s.space = space_value();
  const std::string be = select_backend(backend);
  std::string pname = preset;
  // auto: the size space's recommended preset (README, search quality on NATS-SSS); on NB201
  // cpu-quick on the CPU and the command's GPU preset on CUDA.
  if (pname == "auto")
    pname = s.space == net::Space::kNatsSss ? "synflow-rank" : be == "cpu" ? "cpu-quick" : gpu_auto_preset;
  const engine::RunPreset* pre = nullptr;
  try {
    pre = &engine::run_preset(pname);
    s.proxies = engine::parse_proxy_list(o_proxies && o_proxies->count() ? proxies : pre->proxies);
  } catch (const std::invalid_argument& e) {
    throw CliError(kExitUsage, e.what());
  }
  s.batch = o_batch && o_batch->count() ? batch : pre->batch;
  s.entropy_batch = o_entropy_batch && o_entropy_batch->count() ? entropy_batch : pre->entropy_batch;
  s.entropy_repeats =
      o_entropy_repeats && o_entropy_repeats->count() ? entropy_repeats : pre->entropy_repeats;
  s.swap_repeats = swap_repeats;
  s.swap_mu = swap_mu;
  s.swap_sigma = swap_sigma;
  s.dataset = dataset == "cifar100" ? net::DatasetKind::kCifar100 : net::DatasetKind::kCifar10;
  s.num_classes = o_num_classes && o_num_classes->count() ? num_classes
                  : pre->num_classes > 0                 ? pre->num_classes
                                                         : net::dataset_classes(s.dataset);
  s.score_seed = score_seed;
  s.precision = precision == "fp64" ? engine::Precision::kFp64 : engine::Precision::kFp32;
  s.threads = threads;
  // Several ranks on one node share its cores: unless OMP_NUM_THREADS says otherwise or the
  // launcher bound the rank to some cores (then OpenMP uses those), each takes its part of the node.
  if (s.threads == 0 && engine::cluster().local_size > 1 && !std::getenv("OMP_NUM_THREADS")) {
    cpu_set_t mask;
    const int node = static_cast<int>(std::thread::hardware_concurrency());
    if (sched_getaffinity(0, sizeof mask, &mask) == 0 && CPU_COUNT(&mask) >= node)
      s.threads = std::max(1, node / engine::cluster().local_size);
  }
  s.population_batch = population_batch;
  s.device = device;
  s.devices = device_list(be, device, o_device && o_device->count(), devices, o_devices && o_devices->count());
  if (!s.devices.empty()) s.device = s.devices.front();
  s.gpu_streams = gpu_streams;
  s.tf32 = tf32;
  if (tf32 && be == "cpu") throw CliError(kExitUsage, "--tf32 applies to the CUDA backend only");
  s.data_path = data;
  s.image_offset = image_offset;
  s.gaussian_input = gaussian_input;
  if (s.gaussian_input && !data.empty())
    throw CliError(kExitUsage, "give either --data or --gaussian-input, not both");
  if (o_image_offset && o_image_offset->count() && data.empty())
    throw CliError(kExitUsage, "--image-offset selects records of --data; there is no --data");
  if (be == "cuda" && s.precision == engine::Precision::kFp64)
    throw CliError(kExitUsage, "--precision fp64 is a CPU-backend reference mode");
  try {
    s.validate();
  } catch (const std::invalid_argument& e) {
    throw CliError(kExitUsage, e.what());
  }
  if (backend_out) *backend_out = be;
  if (preset_out) *preset_out = pname;
  return s;
}

void ArchOptions::add_to(CLI::App& app) {
  app.add_option("--arch", arch,
                 "An architecture: NB201 arch string, NB201 index, NASLib op indices '[4, 0, 3, 1, 4, "
                 "3]' or a NASLib one-hot list of 30 values; with --space nats-sss, widths c1:c2:c3:c4:c5 "
                 "or an index 0..32767 (repeatable)");
  app.add_option("--index", index, "An NB201 index 0..15624 (needs the NB201 table) or, with --space nats-sss, a "
                                   "NATS-SSS index 0..32767 (repeatable)");
  app.add_option("--archs", archs_file,
                 "File with one architecture per line, in any --arch format ('-' = stdin; # starts a "
                 "comment)");
  app.add_flag("--all", all, "Every architecture of the space (in the benchmark's index order with a table)");
}

engine::ScoreInputs load_inputs_or_fail(const engine::ScoreSettings& s) {
  try {
    // --data is checked even when these proxies read no images: a wrong path is never ignored.
    if (!s.data_path.empty() && !engine::needs_images(engine::raw_proxies(s.proxies)))
      net::CifarReader(s.data_path, s.dataset).identity(s.image_offset, 1);
    return engine::load_inputs(s);
  } catch (const net::DataError& e) {
    throw CliError(kExitData, e.what());
  } catch (const std::invalid_argument& e) {
    throw CliError(kExitUsage, e.what());
  }
}

CLI::Validator int_range(int64_t lo, int64_t hi) {
  return CLI::Validator(
      [lo, hi](std::string& v) -> std::string {
        const std::string msg = "must be an integer from " + std::to_string(lo) + " to " +
                                std::to_string(hi) + ", got '" + net::printable(v, 40) + "'";
        size_t i = (v.size() > 1 && (v[0] == '-' || v[0] == '+')) ? 1 : 0;
        if (i == v.size() || v.find_first_not_of("0123456789", i) != std::string::npos) return msg;
        errno = 0;
        char* end = nullptr;
        const long long x = std::strtoll(v.c_str(), &end, 10);
        if (errno == ERANGE || *end != '\0' || x < lo || x > hi) return msg;
        v = std::to_string(x);  // decimal for CLI11, which would read a leading 0 as octal
        return {};
      },
      "INT in [" + std::to_string(lo) + " - " + std::to_string(hi) + "]");
}

CLI::Validator space_range(int64_t lo, const std::string* space) {
  return CLI::Validator(
      [lo, space](std::string& v) -> std::string {
        // CLI11 runs validators after parsing, in the order the options were added: --space (added
        // by ScoringOptions before these) holds the command line's value by then.
        const int64_t hi = net::space_size(*space == "nats-sss" ? net::Space::kNatsSss : net::Space::kNb201);
        return int_range(lo, hi)(v);
      },
      "INT in [" + std::to_string(lo) + " - the space's size]");
}

CLI::Validator real_range(double lo, double hi) {
  return CLI::Validator(
      [lo, hi](std::string& v) -> std::string {
        char buf[128];
        std::snprintf(buf, sizeof buf, "must be a number from %g to %g, got '", lo, hi);
        const std::string msg = buf + net::printable(v, 40) + "'";
        double x = 0;
        if (!net::parse_decimal(v, &x) || x < lo || x > hi) return msg;
        return {};
      },
      "NUMBER");
}

CLI::Validator unsigned64() {
  return CLI::Validator(
      [](std::string& v) -> std::string {
        const std::string msg =
            "must be an integer from 0 to 18446744073709551615, got '" + net::printable(v, 40) + "'";
        if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos) return msg;
        errno = 0;
        char* end = nullptr;
        const unsigned long long x = std::strtoull(v.c_str(), &end, 10);
        if (errno == ERANGE || *end != '\0') return msg;
        v = std::to_string(x);  // decimal for CLI11, which would read a leading 0 as octal
        return {};
      },
      "UINT64");
}

void one_value_per_option(CLI::App& app) {
  for (CLI::Option* o : app.get_options()) o->allow_extra_args(false);
  for (CLI::App* sub : app.get_subcommands({})) one_value_per_option(*sub);
}

std::unique_ptr<net::ArchTable> load_table(const std::string& path, bool required, bool quiet, net::Space space) {
  const std::string p = path.empty() ? net::default_table_path(space) : path;
  const bool sss = space == net::Space::kNatsSss;
  if (p.empty()) {
    if (required)
      throw CliError(kExitUsage, std::string("this needs the ") + (sss ? "NATS-SSS" : "NB201") +
                                     " table (CSV with arch_index, arch_str and accuracy columns): give --table FILE or set " +
                                     (sss ? "HYBRIDNAS_SSS_TABLE" : "HYBRIDNAS_TABLE"));
    return nullptr;
  }
  try {
    auto t = std::make_unique<net::ArchTable>(net::ArchTable::load(p));
    if (t->space() != space)
      throw std::runtime_error("table '" + p + "' is of space " + net::space_name(t->space()) + ", not --space " +
                               net::space_name(space));
    return t;
  } catch (const std::exception& e) {
    if (!path.empty() || required) throw CliError(kExitData, e.what());
    (void)quiet;  // a warning, not progress: -q does not hide it
    if (sss)
      std::cerr << "hybridnas: warning: the NATS-SSS table (" << (std::getenv("HYBRIDNAS_SSS_TABLE") ? "$HYBRIDNAS_SSS_TABLE" : "the build's default")
                << ") is unusable (" << e.what() << "); accuracies are unavailable, widths and indices still work\n";
    else
      std::cerr << "hybridnas: warning: the " << (std::getenv("HYBRIDNAS_TABLE") ? "$HYBRIDNAS_TABLE" : "default")
                << " NB201 table is unusable (" << e.what()
                << "); NB201 indices and accuracies are unavailable, arch strings still work\n";
    return nullptr;
  }
}

ArchItem resolve_arch_text(const std::string& raw, int line, const net::ArchTable* table, net::Space space) {
  ArchItem it;
  it.input = net::printable(raw);
  it.line = line;
  try {
    const net::ArchRef r = net::parse_arch_input(raw, table, space);
    it.arch = r.arch;
    it.index = r.index;
  } catch (const net::ArchInputError& e) {
    it.error = e.what();
  }
  return it;
}

ArchItem resolve_arch_line(net::ArchLine&& l, const net::ArchTable* table, net::Space space) {
  if (l.error.empty()) return resolve_arch_text(l.text, l.line, table, space);
  ArchItem it;
  it.input = std::move(l.text);
  it.line = l.line;
  it.error = std::move(l.error);
  return it;
}

std::vector<ArchItem> resolve_archs(const ArchOptions& o, const net::ArchTable* table) {
  std::vector<ArchItem> items;
  const net::Space space = o.space;
  const bool sss = space == net::Space::kNatsSss;
  for (const auto& a : o.arch) items.push_back(resolve_arch_text(a, 0, table, space));
  for (const auto& i : o.index) {
    // --index takes NB201 indices only: a whole number, optionally signed (so that -1 is
    // reported as negative rather than as a malformed string).
    const size_t digits_from = (!i.empty() && (i[0] == '-' || i[0] == '+')) ? 1 : 0;
    if (i.size() == digits_from || i.find_first_not_of("0123456789", digits_from) != std::string::npos) {
      ArchItem it;
      it.input = net::printable(i);
      it.error = sss ? "--index '" + it.input + "' is not a NATS-SSS index (a whole number 0..32767); give "
                       "widths c1:c2:c3:c4:c5 with --arch"
                     : "--index '" + it.input + "' is not an NB201 index (a whole number 0..15624); give "
                       "arch strings and NASLib encodings with --arch";
      items.push_back(std::move(it));
      continue;
    }
    items.push_back(resolve_arch_text(i, 0, table, space));
  }
  if (!o.archs_file.empty()) {
    std::ifstream file;
    std::istream* in = &std::cin;
    if (o.archs_file != "-") {
      std::error_code ec;
      if (std::filesystem::is_directory(o.archs_file, ec))
        throw CliError(kExitData, "--archs '" + o.archs_file + "' is a directory; give a file with one "
                                  "architecture per line, or '-' for stdin");
      file.open(o.archs_file, std::ios::binary);
      if (!file) throw CliError(kExitData, "cannot open --archs file '" + o.archs_file + "'");
      in = &file;
    }
    size_t entries = 0;
    net::read_arch_lines(*in, [&](net::ArchLine&& l) {
      ++entries;
      items.push_back(resolve_arch_line(std::move(l), table, space));
    });
    if (in->bad()) throw CliError(kExitData, "reading --archs '" + o.archs_file + "' failed");
    if (entries == 0)
      throw CliError(kExitData, "--archs " + std::string(o.archs_file == "-" ? "(stdin)" : "'" + o.archs_file + "'") +
                                    " names no architecture (it is empty, or holds only comments and blank lines)");
  }
  if (o.all) {
    const int n = static_cast<int>(net::space_size(space));
    if (table && table->size() == static_cast<size_t>(n)) {
      for (int i = 0; i < n; ++i) {
        ArchItem it;
        it.index = i;
        it.arch = table->arch_of(i);
        it.input = std::to_string(i);
        items.push_back(it);
      }
    } else {
      for (int c = 0; c < n; ++c) {
        ArchItem it;
        it.arch = net::arch_from_code(space, c);
        if (table) it.index = table->index_of(*it.arch);
        else if (sss) it.index = c;  // NATS-SSS's index is its code
        it.input = net::arch_string(*it.arch);
        items.push_back(it);
      }
    }
  }
  return items;
}

std::string select_backend(const std::string& requested) {
  if (requested == "cpu") return "cpu";
  std::string why;
  const int gpus = engine::gpu_count(&why);
  if (requested == "auto") return gpus > 0 ? "cuda" : "cpu";
  if (gpus == 0) throw CliError(kExitBackend, "--backend cuda: " + why + "; --backend cpu works on this machine");
  return "cuda";
}

namespace {
bool g_islands = false;

// One backend scorer on this rank (several CUDA devices: a ShardedScorer over one scorer each).
std::unique_ptr<engine::Scorer> make_local_scorer(const std::string& backend, const engine::ScoreSettings& s,
                                                  const engine::ScoreInputs& in) {
  try {
    if (backend == "cpu") return engine::make_cpu_scorer(s, in);
    if (backend == "cuda") {
      if (s.devices.size() <= 1) return engine::make_cuda_scorer(s, in);
      std::vector<std::unique_ptr<engine::Scorer>> shards;
      for (int d : s.devices) {
        engine::ScoreSettings one = s;
        one.device = d;
        one.devices = {d};
        shards.push_back(engine::make_cuda_scorer(one, in));
      }
      return std::make_unique<engine::ShardedScorer>(std::move(shards));
    }
  } catch (const engine::BackendUnavailable& e) {
    throw CliError(kExitBackend, e.what());
  } catch (const std::invalid_argument& e) {
    throw CliError(kExitUsage, e.what());
  }
  throw CliError(kExitBackend, "unknown backend '" + backend + "'");
}

// What a worker rank needs to build the scorer rank 0 built: the backend and every setting.
std::string scorer_spec(const std::string& backend, const engine::ScoreSettings& s, const std::string& identity) {
  return nlohmann::json({{"backend", backend},
                         {"space", net::space_name(s.space)},
                         {"proxies", engine::proxy_list_string(s.proxies)},
                         {"batch", s.batch},
                         {"entropy_batch", s.entropy_batch},
                         {"entropy_repeats", s.entropy_repeats},
                         {"swap_repeats", s.swap_repeats},
                         {"swap_mu", s.swap_mu},
                         {"swap_sigma", s.swap_sigma},
                         {"num_classes", s.num_classes},
                         {"score_seed", s.score_seed},
                         {"precision", engine::precision_name(s.precision)},
                         {"threads", s.threads},
                         {"population_batch", s.population_batch},
                         {"gpu_streams", s.gpu_streams},
                         {"tf32", s.tf32},
                         {"data_path", s.data_path},
                         {"cifar100", s.dataset == net::DatasetKind::kCifar100},
                         {"image_offset", s.image_offset},
                         {"gaussian_input", s.gaussian_input},
                         {"input", identity}})
      .dump();
}

std::unique_ptr<engine::Scorer> scorer_from_spec(const std::string& text) {
  const nlohmann::json j = nlohmann::json::parse(text);
  engine::ScoreSettings s;
  s.space = net::parse_space(j.at("space").get<std::string>());
  s.proxies = engine::parse_proxy_list(j.at("proxies").get<std::string>());
  s.batch = j.at("batch");
  s.entropy_batch = j.at("entropy_batch");
  s.entropy_repeats = j.at("entropy_repeats");
  s.swap_repeats = j.at("swap_repeats");
  s.swap_mu = j.at("swap_mu");
  s.swap_sigma = j.at("swap_sigma");
  s.num_classes = j.at("num_classes");
  s.score_seed = j.at("score_seed");
  s.precision = j.at("precision") == "fp64" ? engine::Precision::kFp64 : engine::Precision::kFp32;
  s.threads = j.at("threads");
  s.population_batch = j.at("population_batch");
  s.gpu_streams = j.at("gpu_streams");
  s.tf32 = j.at("tf32");
  s.data_path = j.at("data_path");
  s.dataset = j.at("cifar100").get<bool>() ? net::DatasetKind::kCifar100 : net::DatasetKind::kCifar10;
  s.image_offset = j.at("image_offset");
  s.gaussian_input = j.at("gaussian_input");
  const std::string backend = j.at("backend");
  if (backend == "cuda") {
    const int count = engine::gpu_count();
    if (count == 0) throw CliError(kExitBackend, "rank 0 scores on CUDA but this rank sees no GPU");
    s.device = engine::cluster().local_rank % count;
    s.devices = {s.device};
  }
  const engine::ScoreInputs in = load_inputs_or_fail(s);
  if (in.identity != j.at("input").get<std::string>())
    throw CliError(kExitData, "this rank reads other input images than rank 0 (" + in.identity + " against " +
                                  j.at("input").get<std::string>() + "): give every node the same --data file");
  return make_local_scorer(backend, s, in);
}
}  // namespace

namespace {
int g_agreements = 0;
bool g_ended_together = false;
}  // namespace

bool islands_ended_together() { return g_ended_together; }
void set_islands_ended_together() { g_ended_together = true; }

Failure classify_failure(std::exception_ptr e) {
  Failure f;
  try {
    std::rethrow_exception(e);
  } catch (const CliError& x) {
    f = {x.code, x.what(), x.code == kExitUsage, false, false};
  } catch (const net::DataError& x) {
    f = {kExitData, x.what(), false, false, false};
  } catch (const engine::CacheError& x) {  // files read or written mid-run
    f = {kExitData, x.what(), false, false, false};
  } catch (const engine::IslandsError& x) {
    f = {kExitData, x.what(), x.reported_elsewhere, false, true};
  } catch (const engine::CheckpointError& x) {
    f = {kExitData, x.what(), false, false, false};
  } catch (const engine::ScoreFileError& x) {
    f = {kExitData, x.what(), false, false, false};
  } catch (const engine::OutputFileError& x) {
    f = {kExitData, x.what(), false, false, false};
  } catch (const std::bad_alloc&) {
    f = {kExitInternal,
         "out of memory; lower --batch, --entropy-batch or the number of architectures scored at once", false,
         false, false};
  } catch (const std::exception& x) {
    f = {kExitInternal, x.what(), false, true, false};
  } catch (...) {
    f = {kExitInternal, "an unknown exception", false, true, false};
  }
  return f;
}

void report_failure(const Failure& f) {
  const auto& job = engine::cluster();
  if (job.size > 1 && job.rank != 0 && f.same_everywhere) return;
  std::cerr << "hybridnas: " << (f.internal ? "internal error" : "error");
  if (job.size > 1 && job.rank != 0) std::cerr << " (rank " << job.rank << " of " << job.size << ")";
  std::cerr << ": " << f.message << "\n";
}

int islands_agreements_passed() { return g_agreements; }

int islands_agree(std::exception_ptr error) {
  ++g_agreements;
  const auto& job = engine::cluster();
  if (engine::cluster_all(!error)) return kExitOk;
  g_ended_together = true;
  std::string mine;
  if (error) {
    const Failure f = classify_failure(error);
    mine = std::to_string(f.code) + "\t" + f.message;
  }
  const std::vector<std::string> all = engine::cluster_gather(mine);
  std::string code = "0";
  if (job.rank == 0) {
    // Each distinct message once, in rank order, with its ranks when not every rank met it.
    std::vector<std::pair<std::string, std::vector<int>>> seen;
    for (int r = 0; r < static_cast<int>(all.size()); ++r) {
      const std::string& m = all[static_cast<size_t>(r)];
      if (m.empty()) continue;
      const size_t tab = m.find('\t');
      if (code == "0") code = m.substr(0, tab);
      const std::string text = m.substr(tab + 1);
      auto it = std::find_if(seen.begin(), seen.end(), [&](const auto& p) { return p.first == text; });
      if (it == seen.end()) seen.push_back({text, {r}});
      else it->second.push_back(r);
    }
    for (const auto& [text, ranks] : seen) {
      std::cerr << "hybridnas: error";
      if (static_cast<int>(ranks.size()) < job.size) {
        std::cerr << " (rank" << (ranks.size() > 1 ? "s" : "");
        for (size_t i = 0; i < ranks.size(); ++i) std::cerr << (i ? ", " : " ") << ranks[i];
        std::cerr << " of " << job.size << ")";
      }
      std::cerr << ": " << text << "\n";
    }
  }
  const int rc = std::stoi(engine::cluster_broadcast(code));
  if (!error) throw SilentExit{rc};
  return rc;
}

bool g_distributed_command = false;
bool distribute_scoring() {
  return engine::cluster().size > 1 && engine::cluster().rank == 0 && g_distributed_command && !g_islands;
}
void set_distributed_command(bool on) { g_distributed_command = on; }
void set_islands_mode(bool on) { g_islands = on; }
bool islands_mode() { return g_islands; }

int serve_as_worker() {
  engine::serve_scoring_work(scorer_from_spec);
  return kExitOk;
}

std::unique_ptr<engine::Scorer> make_scorer(const std::string& backend,
                                            const engine::ScoreSettings& s,
                                            const engine::ScoreInputs& in) {
  auto local = make_local_scorer(backend, s, in);
  if (!distribute_scoring()) return local;
  return std::make_unique<engine::DistributedScorer>(std::move(local), scorer_spec(backend, s, in.identity));
}

std::unique_ptr<engine::Scorer> make_cached_scorer(const std::string& backend, const engine::ScoreSettings& s,
                                                   const engine::ScoreInputs& in, engine::ScoreCache* cache,
                                                   engine::CachedScorer** cached) {
  *cached = nullptr;
  if (!cache) return make_scorer(backend, s, in);
  auto c = std::make_unique<engine::CachedScorer>(
      *cache, [backend, s, &in] { return make_scorer(backend, s, in); }, s, in.identity);
  *cached = c.get();
  return c;
}

nlohmann::json score_settings_json(const engine::ScoreSettings& s, const engine::ScoreInputs& in,
                                   const engine::ZStats& stats) {
  nlohmann::json keys = nlohmann::json::object();
  for (Proxy p : engine::raw_proxies(s.proxies))
    if (p != Proxy::kNinaswot) keys[engine::proxy_name(p)] = engine::settings_key(p, s, in.identity);
  nlohmann::json j = {{"proxies", engine::proxy_list_string(s.proxies)},
                      {"batch", s.batch},
                      {"entropy_batch", s.entropy_batch},
                      {"entropy_repeats", s.entropy_repeats},
                      {"num_classes", s.num_classes},
                      {"score_seed", s.score_seed},
                      {"precision", std::string(engine::precision_name(s.precision)) + (s.tf32 ? "+tf32" : "")},
                      {"input", in.identity},
                      {"proxy_settings", keys}};
  // NB201's files carry no space (they predate the second one, and --resume compares every key).
  if (s.space != net::Space::kNb201) j["space"] = net::space_name(s.space);
  if (!stats.empty()) {
    nlohmann::json z = nlohmann::json::object();
    for (const auto& [p, st] : stats) z[engine::proxy_name(p)] = {st.mean, st.std, st.n};
    j["ninaswot_statistics"] = z;
  }
  return j;
}

void NinaswotOptions::add_to(CLI::App& app, const std::string* space) {
  app.add_option("--stats", stats_file, "ninaswot: z statistics from `hybridnas stats`");
  app.add_option("--reference-sample", reference_sample,
                 "ninaswot without --stats: z statistics over R sampled architectures (50)")
      ->transform(space_range(2, space));
  app.add_option("--search-seed", search_seed, "Seed of the reference sample (0)")->transform(unsigned64());
}

engine::ZStats ninaswot_stats(const engine::ScoreSettings& s, const engine::ScoreInputs& in,
                              const std::string& backend, const std::string& stats_file,
                              int reference_sample, uint64_t search_seed, bool quiet) {
  const std::string key_naswot = engine::settings_key(Proxy::kNaswot, s, in.identity);
  const std::string key_ni = engine::settings_key(Proxy::kNi, s, in.identity);
  engine::ZStats stats;
  if (!stats_file.empty()) {
    try {
      const engine::ZStats file = engine::read_stats_file(stats_file);
      stats[Proxy::kNaswot] = engine::require_stat(file, Proxy::kNaswot, key_naswot, s.score_seed);
      stats[Proxy::kNi] = engine::require_stat(file, Proxy::kNi, key_ni, s.score_seed);
    } catch (const std::runtime_error& e) {
      throw CliError(kExitData, "--stats " + stats_file + ": " + e.what());
    }
    return stats;
  }
  if (reference_sample < 2) throw CliError(kExitUsage, "--reference-sample must be at least 2");
  std::vector<net::Arch> sample;
  try {
    sample = net::sample_distinct(s.space, reference_sample, search_seed, Purpose::kReferenceSample, true);
  } catch (const std::invalid_argument& e) {
    throw CliError(kExitUsage, std::string("--reference-sample: ") + e.what() + " (the space's runnable networks)");
  }
  engine::ScoreSettings rs = s;
  rs.proxies = {Proxy::kNaswot, Proxy::kNi};
  auto scorer = make_scorer(backend, rs, in);
  std::vector<double> naswot, ni;
  Progress progress("reference sample", sample.size(), quiet);
  scorer->score(sample, [&](size_t i, engine::ArchScore&& a) {
    naswot.push_back(a[Proxy::kNaswot]->value);
    ni.push_back(a[Proxy::kNi]->value);
    progress.step(i + 1);
  });
  progress.finish(sample.size());
  try {
    stats[Proxy::kNaswot] = engine::compute_zstat(Proxy::kNaswot, naswot, key_naswot, s.score_seed);
    stats[Proxy::kNi] = engine::compute_zstat(Proxy::kNi, ni, key_ni, s.score_seed);
  } catch (const std::runtime_error& e) {
    throw CliError(kExitData, e.what());
  }
  return stats;
}

Progress::Progress(std::string what, size_t total, bool quiet)
    : what_(std::move(what)), total_(total), quiet_(quiet || total < 2) {
  start_ = last_ = std::chrono::steady_clock::now();
}

namespace {
std::string duration_text(double s) {
  char buf[64];
  if (s < 60) std::snprintf(buf, sizeof buf, "%.0fs", s);
  else if (s < 3600) std::snprintf(buf, sizeof buf, "%dm%02ds", int(s) / 60, int(s) % 60);
  else std::snprintf(buf, sizeof buf, "%dh%02dm", int(s) / 3600, (int(s) % 3600) / 60);
  return buf;
}
}  // namespace

void Progress::step(size_t done) {
  if (quiet_) return;
  const auto now = std::chrono::steady_clock::now();
  if (std::chrono::duration<double>(now - last_).count() < 2.0) return;
  last_ = now;
  const double el = std::chrono::duration<double>(now - start_).count();
  const double rate = done / std::max(el, 1e-9);
  std::fprintf(stderr, "[%s] %zu/%zu architectures, %.2f archs/s, elapsed %s, ETA %s\n",
               what_.c_str(), done, total_, rate, duration_text(el).c_str(),
               duration_text((total_ - done) / std::max(rate, 1e-9)).c_str());
}

void Progress::finish(size_t done) {
  if (quiet_) return;
  const double el =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::fprintf(stderr, "[%s] %zu/%zu architectures in %s (%.2f archs/s)\n", what_.c_str(), done,
               total_, duration_text(el).c_str(), done / std::max(el, 1e-9));
}

std::unique_ptr<engine::ScoreCache> open_cache(const std::string& path) {
  check_output(path, "--cache");
  try {
    return std::make_unique<engine::ScoreCache>(path);
  } catch (const engine::CacheError& e) {
    throw CliError(kExitData, e.what());
  }
}

void check_output(const std::string& path, const std::string& option) {
  try {
    engine::check_output_path(path, option);
  } catch (const engine::OutputFileError& e) {
    throw CliError(kExitData, e.what());
  }
}

void check_distinct(const std::vector<std::pair<std::string, std::string>>& options) {
  namespace fs = std::filesystem;
  auto same = [](const std::string& a, const std::string& b) {
    std::error_code ec;
    if (fs::exists(a, ec) && fs::exists(b, ec)) return fs::equivalent(a, b, ec);
    return fs::weakly_canonical(a, ec) == fs::weakly_canonical(b, ec);
  };
  for (size_t i = 0; i < options.size(); ++i)
    for (size_t j = i + 1; j < options.size(); ++j) {
      const auto& [na, pa] = options[i];
      const auto& [nb, pb] = options[j];
      if (!pa.empty() && !pb.empty() && same(pa, pb))
        throw CliError(kExitUsage, na + " and " + nb + " name the same file ('" + pa + "'); give them different files");
    }
}

OutputLock& OutputLock::operator=(OutputLock&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

OutputLock::~OutputLock() {
  if (fd_ >= 0) ::close(fd_);
}

OutputLock lock_output(const std::string& path) {
  const std::string target = engine::resolve_output(path);
  const int fd = ::open(target.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);  // never truncates
  if (fd < 0) throw CliError(kExitData, "cannot open '" + path + "': " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    throw CliError(kExitData, "'" + path + "' is being written by another hybridnas process; wait for it, "
                              "or give another --out");
  }
  return OutputLock(fd);
}

void write_output(const std::string& path, const std::string& content) {
  try {
    engine::write_file_atomic(path, content);
  } catch (const engine::OutputFileError& e) {
    throw CliError(kExitData, e.what());
  }
}

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) {
      const auto c = line.find(':');
      if (c != std::string::npos) return line.substr(line.find_first_not_of(" \t", c + 1));
    }
  return "unknown CPU";
}

std::string utc_timestamp() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

}  // namespace hn::cli
