#include "cli/commands.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <set>
#include <thread>

#include "cli/bench.hpp"
#include "cli/common.hpp"
#include "engine/files.hpp"
#include "engine/score_file.hpp"
#include "engine/cluster.hpp"
#include "engine/devices.hpp"
#include "engine/distributed_scorer.hpp"
#include "engine/search.hpp"
#include "net/arch_input.hpp"
#include "net/text.hpp"
#include "engine/fitness.hpp"
#include "cli/search_cmd.hpp"
#include "cli/serve.hpp"
#include "net/sampling.hpp"

namespace hn::cli {

using engine::Proxy;

namespace {

// The lines of stdin for a streaming `score --archs -`, read by a detached thread (it may be
// blocked in read() when the command ends) into a queue the command takes batches from.
class StdinLines {
 public:
  static std::shared_ptr<StdinLines> start() {
    auto q = std::shared_ptr<StdinLines>(new StdinLines);
    std::thread([q] {
      net::read_arch_lines(std::cin, [&](net::ArchLine&& l) {
        std::lock_guard<std::mutex> g(q->m_);
        q->lines_.push_back(std::move(l));
        ++q->entries_;
        q->cv_.notify_one();
      });
      std::lock_guard<std::mutex> g(q->m_);
      q->failed_ = std::cin.bad();
      q->eof_ = true;
      q->cv_.notify_one();
    }).detach();
    return q;
  }
  // Blocks until a line or the end of input; returns every line waiting. `*eof` once all is read.
  std::vector<net::ArchLine> take(bool* eof) {
    std::unique_lock<std::mutex> g(m_);
    cv_.wait(g, [&] { return !lines_.empty() || eof_; });
    std::vector<net::ArchLine> out(std::make_move_iterator(lines_.begin()), std::make_move_iterator(lines_.end()));
    lines_.clear();
    *eof = eof_;
    return out;
  }
  size_t entries() {
    std::lock_guard<std::mutex> g(m_);
    return entries_;
  }
  bool failed() {
    std::lock_guard<std::mutex> g(m_);
    return failed_;
  }

 private:
  StdinLines() = default;
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<net::ArchLine> lines_;
  size_t entries_ = 0;
  bool eof_ = false;
  bool failed_ = false;
};

// Every line waiting on stdin as architecture items (at least one unless the input has ended).
std::vector<ArchItem> take_lines(StdinLines& in, const net::ArchTable* table, net::Space space, bool* eof) {
  std::vector<ArchItem> items;
  for (auto& l : in.take(eof)) items.push_back(resolve_arch_line(std::move(l), table, space));
  return items;
}

struct ScoreCommand {
  ScoringOptions scoring;
  ArchOptions archs;
  std::string format = "jsonl";
  std::string out;
  bool resume = false;
  bool force = false;
  NinaswotOptions ninaswot;
  std::string cache;

  void add_to(CLI::App& app) {
    archs.add_to(app);
    app.add_option("--cache", cache,
                   "SQLite score cache: reuse scores of earlier runs with the same settings and "
                   "store new ones (safe to share between processes)");
    scoring.add_to(app);
    app.add_option("--format", format, "Output format: jsonl or csv")
        ->check(CLI::IsMember({"jsonl", "csv"}));
    app.add_option("--out", out,
                   "Output file (default: stdout); its settings are recorded beside it in "
                   "FILE.settings.json");
    app.add_flag("--resume", resume,
                 "With --out (jsonl): keep the records already there, score only the rest, append "
                 "(refused when the file was made with other settings)");
    app.add_flag("--force", force, "With --out: overwrite an existing non-empty file");
    ninaswot.add_to(app, &scoring.space);
  }

  // What gives the records their meaning; a resume must match it exactly (engine::score_file).
  nlohmann::json settings_json(const engine::ScoreSettings& s, const engine::ScoreInputs& in,
                               const engine::ZStats& stats) const {
    nlohmann::json j = score_settings_json(s, in, stats);
    j["format"] = format;
    return j;
  }

  // The order in which a --resume refusal looks for the setting that differs: the options a user
  // sets first, then what is derived from them.
  static const std::vector<std::string>& settings_order() {
    static const std::vector<std::string> order = {
        "space", "proxies", "batch", "entropy_batch", "entropy_repeats", "num_classes", "score_seed",
        "precision", "input", "format", "proxy_settings", "ninaswot_statistics"};
    return order;
  }

  // The settings recorded beside a non-empty output (for --resume), or null when there is no
  // output yet.
  nlohmann::json recorded_settings() const {
    std::error_code ec;
    if (!std::filesystem::exists(out, ec) || std::filesystem::file_size(out, ec) == 0) return nullptr;
    const std::string side = engine::settings_file_path(out);
    try {
      return engine::parse_json_strict(engine::read_file(side)).at("settings");
    } catch (const engine::OutputFileError&) {
      throw CliError(kExitData, "--resume: '" + out + "' has no settings file beside it (" + side +
                                    "), so nothing says which settings made its records; score into "
                                    "a new file, or give --force to overwrite it");
    } catch (const std::exception&) {
      throw CliError(kExitData, "--resume: the settings file " + side + " is not valid; score into a "
                                    "new file, or give --force to overwrite both");
    }
  }

  void require_recorded(const nlohmann::json& recorded, const nlohmann::json& now) const {
    if (recorded.is_null()) return;
    // The space first, in plain words (NB201's files record none).
    if (recorded.is_object()) {
      const std::string was = recorded.contains("space") && recorded["space"].is_string() ? recorded["space"].get<std::string>() : "nb201";
      const std::string is = now.value("space", std::string("nb201"));
      if (was != is)
        throw CliError(kExitUsage, "--resume: '" + out + "' holds " + net::printable(was, 40) + " scores, this run scores --space " +
                                       is + "; score into a new file");
    }
    nlohmann::json rec = recorded;
    // The early check comes before ninaswot's statistics exist: everything else must match.
    if (!now.contains("ninaswot_statistics") && rec.is_object()) rec.erase("ninaswot_statistics");
    try {
      engine::require_same_settings(rec, now, "--resume: '" + out + "' was made with other settings",
                                    settings_order());
    } catch (const engine::ScoreFileError& e) {
      throw CliError(kExitUsage, std::string(e.what()) +
                                     "; score into a new file, or give --force to overwrite it");
    }
  }

  // What is already in the output (for --resume): scored architectures, and error records by
  // (line, input) so that a resume does not repeat them. A run killed mid-write leaves at most a
  // partial last line: it is cut off so that appending starts on a fresh line. Each record's index
  // must be the one `table` gives its architecture now (null without a table): a table edited or
  // swapped between the runs would otherwise leave one file with two index maps.
  struct Done {
    std::set<int> archs;
    std::set<std::pair<int, std::string>> errors;
  };
  void require_table_index(const engine::ScoreRecord& r, const net::ArchTable* table) const {
    const std::optional<int> now = table ? table->index_of(r.score.arch) : std::nullopt;
    if (r.index == now) return;
    const auto shown = [](const std::optional<int>& i) { return i ? std::to_string(*i) : std::string("none"); };
    throw CliError(kExitData, "--resume: line " + std::to_string(r.line) + " of '" + out + "' gives " +
                                  net::space_name(r.score.arch.space) + " architecture " +
                                  net::printable(net::arch_string(r.score.arch), 120) + " index " + shown(r.index) +
                                  ", the table of this run " +
                                  (table ? "('" + net::printable(table->path(), 200) + "') gives " + shown(now)
                                         : std::string("(none found) gives none")) +
                                  ": the file was made with another table; give that one with --table, or score "
                                  "into a new file");
  }
  Done already_scored(const net::ArchTable* table) const {
    Done done;
    std::error_code ec;
    if (!std::filesystem::exists(out, ec)) return done;
    std::string text;
    try {
      text = engine::read_file(out);
    } catch (const engine::OutputFileError& e) {
      throw CliError(kExitData, std::string("--resume: ") + e.what());
    }
    if (text.empty()) return done;
    engine::ScoreFile f;
    try {
      f = engine::parse_score_file(text, out);
    } catch (const engine::ScoreFileError& e) {
      throw CliError(kExitData, std::string("--resume: ") + e.what() + "; refusing to append to it");
    }
    if (f.format != engine::ScoreFormat::kJsonl)
      throw CliError(kExitData, "--resume: '" + out + "' is not JSON lines");
    for (const auto& r : f.records) {
      if (r.error_record) done.errors.insert({r.input_line, r.input});
      else if (r.score.arch.space != scoring.space_value())
        throw CliError(kExitUsage, "--resume: '" + out + "' holds " + net::space_name(r.score.arch.space) +
                                       " architectures, this run scores --space " + scoring.space);
      else {
        require_table_index(r, table);
        done.archs.insert(static_cast<int>(net::arch_code(r.score.arch)));
      }
    }
    if (f.partial_last_line) {
      std::filesystem::resize_file(out, f.complete_bytes, ec);
      if (ec) throw CliError(kExitData, "--resume: cannot trim the partial last line of '" + out + "'");
      if (!scoring.quiet)
        std::cerr << "[score] --resume: dropped a partial last line of " << out << "\n";
    }
    return done;
  }

  int run() {
    std::string backend;
    const engine::ScoreSettings s = scoring.settings(&backend, nullptr);
    if (archs.empty())
      throw CliError(kExitUsage, "no architectures given: use --arch, --index, --archs or --all");
    if (resume && out.empty()) throw CliError(kExitUsage, "--resume needs --out FILE");
    if (resume && format != "jsonl") throw CliError(kExitUsage, "--resume works with --format jsonl");
    if (force && out.empty()) throw CliError(kExitUsage, "--force applies to --out FILE");
    if (resume && force)
      throw CliError(kExitUsage, "--resume keeps the records in --out, --force overwrites them: give one");
    // Every output is checked before any work starts.
    OutputLock lock;
    if (!out.empty()) {
      check_output(out, "--out");
      check_output(engine::settings_file_path(out), "--out's settings file");
      check_distinct({{"--out", out},
                      {"--out's settings file", engine::settings_file_path(out)},
                      {"--cache", cache},
                      {"--archs", archs.archs_file == "-" ? "" : archs.archs_file},
                      {"--stats", ninaswot.stats_file},
                      {"--data", scoring.data},
                      {"--table", scoring.table}});
      lock = lock_output(out);  // two runs writing one file would interleave their records
      std::error_code ec;
      if (!resume && !force && std::filesystem::exists(out, ec) && std::filesystem::file_size(out, ec) > 0)
        throw CliError(kExitUsage, "--out '" + out + "' exists and is not empty: give --resume to continue "
                                   "it (same settings) or --force to overwrite it");
    }
    std::unique_ptr<engine::ScoreCache> db;
    if (!cache.empty()) db = open_cache(cache);
    const auto table = load_table(scoring.table, false, scoring.quiet, s.space);
    archs.space = s.space;
    // --archs - streams: stdin is read by its own thread while the rest is set up, and each line is
    // scored and written as soon as it has been read (lines waiting together, together).
    const bool stream = archs.archs_file == "-";
    std::shared_ptr<StdinLines> stdin_lines;
    std::vector<ArchItem> items, tail_items;  // tail: --all, which comes after --archs
    {
      ArchOptions head = archs, tail;
      tail.space = s.space;
      if (stream) {
        head.archs_file.clear();
        head.all = false;
        tail.all = archs.all;
        stdin_lines = StdinLines::start();
      }
      if (!head.empty()) items = resolve_archs(head, table.get());
      if (!tail.empty()) tail_items = resolve_archs(tail, table.get());
    }
    const engine::ScoreInputs inputs = load_inputs_or_fail(s);
    const nlohmann::json recorded = resume ? recorded_settings() : nlohmann::json();
    require_recorded(recorded, settings_json(s, inputs, {}));  // before any network runs
    const bool want_ninaswot =
        std::find(s.proxies.begin(), s.proxies.end(), Proxy::kNinaswot) != s.proxies.end();
    engine::ZStats stats;
    if (want_ninaswot)
      stats = ninaswot_stats(s, inputs, backend, ninaswot.stats_file, ninaswot.reference_sample,
                             ninaswot.search_seed, scoring.quiet);
    const nlohmann::json settings = settings_json(s, inputs, stats);
    require_recorded(recorded, settings);
    // An empty stdin list is an error before anything is written.
    std::vector<ArchItem> first_lines;
    bool stdin_done = !stream;
    if (stream) {
      first_lines = take_lines(*stdin_lines, table.get(), s.space, &stdin_done);
      if (first_lines.empty() && stdin_lines->entries() == 0)
        throw CliError(kExitData, "--archs (stdin) names no architecture (it is empty, or holds only "
                                  "comments and blank lines)");
    }
    Done skip;
    if (resume) skip = already_scored(table.get());
    std::ofstream file;
    std::ostream* os = &std::cout;
    if (!out.empty()) {
      write_output(engine::settings_file_path(out),
                   nlohmann::json({{"format", "hybridnas-score-settings-1"},
                                   {"settings", settings},
                                   {"backend", backend},
                                   {"version", HYBRIDNAS_VERSION},
                                   {"written", utc_timestamp()}})
                           .dump(1) +
                       "\n");
      file.open(engine::resolve_output(out),
                resume ? std::ios::app | std::ios::binary : std::ios::trunc | std::ios::binary);
      if (!file) throw CliError(kExitData, "cannot write --out file '" + out + "'");
      os = &file;
    }
    RecordWriter writer(*os, format == "csv" ? Format::kCsv : Format::kJsonl, s.proxies);
    if (!scoring.quiet)
      std::cerr << "[score] " << (s.space == net::Space::kNb201 ? "" : "space nats-sss, ") << "backend " << backend
                << ", proxies " << engine::proxy_list_string(s.proxies)
                << ", batch " << s.batch << ", entropy " << s.entropy_batch << "x" << s.entropy_repeats
                << ", " << engine::precision_name(s.precision) << ", score seed " << s.score_seed
                << ", input " << inputs.identity << (stream ? ", reading stdin line by line" : "") << "\n";
    engine::CachedScorer* cached = nullptr;
    auto scorer = make_cached_scorer(backend, s, inputs, db.get(), &cached);

    size_t errors = 0, resumed = 0, total = 0;
    // Scores one batch of items and writes their records in input order (error records ahead of
    // the architecture that follows them).
    auto score_batch = [&](std::vector<ArchItem>& batch, bool progress_lines) {
      std::vector<net::Arch> work;
      std::vector<size_t> work_item;
      total += batch.size();
      for (size_t i = 0; i < batch.size(); ++i) {
        if (!batch[i].error.empty()) {
          ++errors;
          if (skip.errors.count({batch[i].line, batch[i].input})) batch[i].already_written = true;
          continue;
        }
        if (skip.archs.count(static_cast<int>(net::arch_code(*batch[i].arch)))) {
          ++resumed;
          continue;
        }
        work.push_back(*batch[i].arch);
        work_item.push_back(i);
      }
      size_t next_item = 0;
      auto flush_errors_before = [&](size_t item) {
        for (; next_item < item; ++next_item)
          if (!batch[next_item].error.empty() && !batch[next_item].already_written) {
            Record r;
            r.input = batch[next_item].input;
            r.line = batch[next_item].line;
            r.error = batch[next_item].error;
            writer.write(r);
          }
      };
      Progress progress("score", work.size(), scoring.quiet || !progress_lines);
      scorer->score(work, [&](size_t w, engine::ArchScore&& a) {
        const size_t item = work_item[w];
        flush_errors_before(item);
        next_item = item + 1;
        if (want_ninaswot) a[Proxy::kNinaswot] = engine::ninaswot_value(*a[Proxy::kNaswot], *a[Proxy::kNi], stats);
        Record r;
        r.index = batch[item].index;
        r.score = std::move(a);
        writer.write(r);
        progress.step(w + 1);
      });
      flush_errors_before(batch.size());
      progress.finish(work.size());
      os->flush();
      if (!*os) throw CliError(kExitData, "writing the output failed");
    };
    score_batch(items, true);
    while (!first_lines.empty() || !stdin_done) {
      if (first_lines.empty()) first_lines = take_lines(*stdin_lines, table.get(), s.space, &stdin_done);
      score_batch(first_lines, false);
      first_lines.clear();
    }
    if (stream && stdin_lines->failed()) throw CliError(kExitData, "reading --archs (stdin) failed");
    score_batch(tail_items, true);
    if (resume && !scoring.quiet)
      std::cerr << "[score] --resume: " << resumed << " of the requested architectures were in " << out
                << " already\n";
    if (cached && !scoring.quiet)
      std::cerr << "[score] cache " << cache << ": " << cached->cache_hits() << " served, "
                << cached->network_evaluations() << " scored\n";
    if (errors) {
      std::cerr << "hybridnas score: " << errors << " of " << total
                << " inputs could not be scored (see their error records)\n";
      return kExitBadInput;
    }
    return kExitOk;
  }
};

struct StatsCommand {
  ScoringOptions scoring;
  ArchOptions archs;
  int reference_sample = 50;
  uint64_t search_seed = 0;
  std::string out;

  void add_to(CLI::App& app) {
    scoring.add_to(app);
    archs.add_to(app);
    app.add_option("--reference-sample", reference_sample,
                   "Architectures to sample (without --arch/--index/--archs/--all) (50)")
        ->transform(space_range(2, &scoring.space));
    app.add_option("--search-seed", search_seed, "Seed of the sample (0)")->transform(unsigned64());
    app.add_option("--out", out, "Statistics file to write (JSON); default: stdout");
  }

  int run() {
    std::string backend, preset_name;
    engine::ScoreSettings s = scoring.settings(&backend, &preset_name);
    // Statistics are of t(value): log for the NTK proxies under presets whose fitness takes it.
    engine::FitnessSpec spec;
    spec.log_ntk = engine::run_preset(preset_name).log_ntk;
    if (!out.empty()) check_output(out, "--out");
    check_distinct({{"--out", out}, {"--archs", archs.archs_file == "-" ? "" : archs.archs_file},
                    {"--data", scoring.data}, {"--table", scoring.table}});
    const engine::ScoreInputs inputs = load_inputs_or_fail(s);
    std::vector<net::Arch> sample;
    if (archs.empty()) {
      if (reference_sample < 2) throw CliError(kExitUsage, "--reference-sample must be at least 2");
      try {
        sample = net::sample_distinct(s.space, reference_sample, search_seed, Purpose::kReferenceSample, true);
      } catch (const std::invalid_argument& e) {
        throw CliError(kExitUsage, std::string("--reference-sample: ") + e.what() + " (the space's runnable networks)");
      }
    } else {
      const auto table = load_table(scoring.table, false, scoring.quiet, s.space);
      archs.space = s.space;
      std::set<int> seen;
      for (const auto& it : resolve_archs(archs, table.get())) {
        // Statistics over a sample with a hole in it would be wrong without a word: refuse.
        if (!it.error.empty()) throw CliError(kExitUsage, it.error);
        // SPEC.md 4: degenerate cells are not in a reference sample; each architecture once.
        if (!net::is_degenerate(*it.arch) && seen.insert(static_cast<int>(net::arch_code(*it.arch))).second)
          sample.push_back(*it.arch);
      }
    }
    std::vector<Proxy> raw = engine::raw_proxies(s.proxies);
    raw.erase(std::remove(raw.begin(), raw.end(), Proxy::kNinaswot), raw.end());
    engine::ScoreSettings rs = s;
    rs.proxies = raw;
    auto scorer = make_scorer(backend, rs, inputs);
    std::vector<std::vector<double>> values(raw.size());
    Progress progress("stats", sample.size(), scoring.quiet);
    scorer->score(sample, [&](size_t i, engine::ArchScore&& a) {
      for (size_t k = 0; k < raw.size(); ++k) {
        double t;
        values[k].push_back(engine::fitness_transformed(spec, raw[k], a, &t) ? t : NAN);
      }
      progress.step(i + 1);
    });
    progress.finish(sample.size());
    engine::ZStats stats;
    try {
      for (size_t k = 0; k < raw.size(); ++k)
      {
        stats[raw[k]] = engine::compute_zstat(raw[k], values[k],
                                              engine::settings_key(raw[k], s, inputs.identity),
                                              s.score_seed);
        stats[raw[k]].transform = engine::fitness_transform(spec, raw[k]);
      }
      if (out.empty()) {
        nlohmann::json j;
        for (const auto& [p, st] : stats)
          j[engine::proxy_name(p)] = {{"mean", st.mean}, {"std", st.std}, {"n", st.n},
                                      {"settings", st.settings}, {"score_seed", st.score_seed},
                                      {"transform", st.transform}};
        std::cout << j.dump(1) << "\n";
      } else {
        engine::write_stats_file(out, stats);
      }
    } catch (const std::runtime_error& e) {
      throw CliError(kExitData, e.what());
    }
    return kExitOk;
  }
};

// Lists the GPUs, or says plainly that there is none (exit code 4) and that the CPU backend works.
struct DevicesCommand {
  bool json = false;
  void add_to(CLI::App& app) { app.add_flag("--json", json, "Print JSON"); }
  int run() {
    std::string why;
    const int n = engine::gpu_count(&why);
    nlohmann::json j = {{"driver", engine::gpu_driver_version()}, {"devices", nlohmann::json::array()}};
    if (n == 0) {
      if (json) {
        j["error"] = why;
        std::cout << j.dump(1) << "\n";
      }
      std::cerr << "hybridnas: no GPU: " << why << ". The CPU backend works: --backend cpu (or auto).\n";
      return kExitBackend;
    }
    for (const auto& d : engine::list_gpus()) {
      j["devices"].push_back({{"index", d.index}, {"name", d.name},
                              {"compute_capability", std::to_string(d.cc_major) + "." + std::to_string(d.cc_minor)},
                              {"multiprocessors", d.multiprocessors}, {"memory_bytes", d.memory_bytes},
                              {"peak_fp32_tflops_estimate", d.peak_fp32_tflops}});
      if (!json)
        std::printf("%d: %s, compute capability %d.%d, %d SMs, %.1f GiB, ~%.0f FP32 TFLOP/s peak\n", d.index,
                    d.name.c_str(), d.cc_major, d.cc_minor, d.multiprocessors, d.memory_bytes / 1073741824.0,
                    d.peak_fp32_tflops);
    }
    if (json) std::cout << j.dump(1) << "\n";
    else std::printf("driver %s\n", engine::gpu_driver_version().c_str());
    return kExitOk;
  }
};

}  // namespace

namespace {

// What CLI11 would get wrong: "--out=" (an empty value) makes it take the next argument as the
// value, and an unknown first word gives "A subcommand is required".
std::optional<std::string> argv_problem(int argc, char** argv) {
  static const char* kCommands[] = {"score", "stats", "bench", "devices", "search", "eval", "serve"};
  if (argc > 1 && argv[1][0] != '-') {
    bool known = false;
    for (const char* c : kCommands) known = known || std::string(argv[1]) == c;
    if (!known)
      return "unknown command '" + net::printable(argv[1], 60) +
             "' (commands: score, serve, stats, search, eval, bench, devices; see --help)";
  }
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.size() > 2 && a.compare(0, 2, "--") == 0 && a.back() == '=' &&
        a.find('=') == a.size() - 1)
      return a.substr(0, a.size() - 1) + ": an empty value (give a value after '=')";
    // No command takes positional arguments: an empty word is an option's empty value
    // (`--socket ""`, an unset shell variable), never something to ignore.
    if (a.empty())
      return (i > 1 && argv[i - 1][0] == '-' ? std::string(argv[i - 1]) : std::string("an argument")) +
             ": an empty value";
  }
  return std::nullopt;
}
}  // namespace

namespace {
int run_command(int argc, char** argv) {
  if (const std::string isa = engine::cpu_isa_problem(); !isa.empty()) {
    report_failure({kExitBackend, isa});
    return kExitBackend;
  }
  if (const auto problem = argv_problem(argc, argv)) {
    report_failure({kExitUsage, *problem + "\nRun with --help for more information.", true});
    return kExitUsage;
  }
  CLI::App app{
      "hybridnas: training-free neural architecture search on NAS-Bench-201.\n"
      "Scores architectures with proxies computed on randomly initialised networks."};
  app.require_subcommand(1);
  app.set_version_flag("--version", [] {
    return std::string("hybridnas ") + HYBRIDNAS_VERSION + "\n" + engine::backends_description();
  });
  ScoreCommand score;
  score.add_to(*app.add_subcommand("score", "Score architectures with training-free proxies"));
  ServeCommand serve;
  serve.add_to(*app.add_subcommand(
      "serve", "Long-running scorer: JSON-lines requests on stdin/stdout or a Unix socket (docs/serve.md)"));
  StatsCommand stats;
  stats.add_to(*app.add_subcommand(
      "stats", "z statistics (mean, std) of proxies over a reference sample, for ninaswot"));
  BenchCommand bench;
  bench.add_to(*app.add_subcommand("bench", "Time each proxy (archs/s) on this machine"));
  DevicesCommand devices;
  devices.add_to(*app.add_subcommand("devices", "List the GPUs the CUDA backend can use"));
  SearchCommand search;
  search.add_to(*app.add_subcommand("search", "Search the space: GA, random, REA or exhaustive"));
  EvalCommand eval;
  eval.add_to(*app.add_subcommand(
      "eval", "Rank correlation of proxies and fitness modes with trained accuracy"));
  one_value_per_option(app);
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return "hybridnas: error: " + std::string(e.what()) + "\nRun with --help for more information.\n";
  });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help, --version and parse errors: every rank meets them; rank 0 prints them.
    const int rc = engine::cluster().rank == 0 ? app.exit(e) : e.get_exit_code();
    return rc == 0 ? kExitOk : kExitUsage;
  }
  // An MPI job of several ranks (docs/scale-out.md): rank 0 runs the command; the others serve
  // its scoring work, or each runs one island (search --islands).
  const auto& job = engine::cluster();
  if (app.got_subcommand("search") && search.islands) set_islands_mode(true);
  // Only these commands hand scoring to the other ranks (bench, serve and the rest run on rank 0).
  const bool scoring_command =
      app.got_subcommand("score") || app.got_subcommand("stats") || app.got_subcommand("search");
  set_distributed_command(scoring_command);
  if (job.size > 1 && job.rank != 0 && !islands_mode()) {
    if (scoring_command) {
      try {
        return serve_as_worker();
      } catch (...) {
        // Rank 0 waits for this rank's work: report (with the rank) and end the job.
        Failure f = classify_failure(std::current_exception());
        f.same_everywhere = false;
        report_failure(f);
        engine::cluster_abort(f.code);
      }
    }
    return kExitOk;  // bench, eval, serve, devices: rank 0 alone
  }
  if (job.size > 1 && !scoring_command)
    std::cerr << "[mpi] " << job.size << " ranks: this command runs on rank 0 alone\n";
  try {
    if (app.got_subcommand("score")) return score.run();
    if (app.got_subcommand("serve")) return serve.run();
    if (app.got_subcommand("stats")) return stats.run();
    if (app.got_subcommand("bench")) return bench.run();
    if (app.got_subcommand("search")) return search.run();
    if (app.got_subcommand("devices")) return devices.run();
    if (app.got_subcommand("eval")) return eval.run();
  } catch (const SilentExit& e) {
    return e.code;  // another rank's error, printed by rank 0
  } catch (...) {
    // search --islands: a rank that fails before its islands agreed to start tells the others at
    // the agreement they are waiting in, and the job ends together (rank 0 prints the errors).
    if (islands_mode() && job.size > 1 && islands_agreements_passed() == 0) return islands_agree(std::current_exception());
    const Failure f = classify_failure(std::current_exception());
    if (f.collective) set_islands_ended_together();
    report_failure(f);
    return f.code;
  }
  return kExitUsage;
}
}  // namespace

int run(int argc, char** argv) {
  try {
    engine::cluster_init(&argc, &argv);
  } catch (const std::exception& e) {
    std::cerr << "hybridnas: error: MPI: " << e.what() << "\n";
    return kExitInternal;
  }
  const int rc = run_command(argc, argv);
  const auto& job = engine::cluster();
  if (job.size > 1) {
    // A rank that fails while others wait for it (scoring work out, an island's collective)
    // ends the whole job; otherwise rank 0 releases the workers and every rank ends normally.
    if (rc != kExitOk && rc != kExitBadInput &&
        (engine::distributed_work_in_flight() || (islands_mode() && !islands_ended_together())))
      engine::cluster_abort(rc);
    if (job.rank == 0) engine::stop_workers();
  }
  if (job.size > 1 && job.rank == 0) {
    const auto totals = engine::distributed_totals();
    if (!totals.empty() && rc == kExitOk) {
      std::cerr << "[mpi] " << job.size << " ranks scored";
      for (size_t r = 0; r < totals.size(); ++r) std::cerr << (r ? ", " : " ") << totals[r];
      std::cerr << " architectures (rank 0, 1, ...)\n";
    }
  }
  engine::cluster_finalize();
  return rc;
}

}  // namespace hn::cli
