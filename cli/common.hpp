// Shared pieces of the hybridnas subcommands: exit codes, the scoring options every command that
// runs networks takes, architecture inputs, backend selection and progress lines.
#pragma once
#include <CLI/CLI.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/output.hpp"
#include "engine/score_cache.hpp"
#include "engine/scorer.hpp"
#include "engine/settings.hpp"
#include "engine/zstats.hpp"
#include "net/arch_input.hpp"
#include "net/arch_table.hpp"

namespace hn::cli {

// Documented in README.md ("Exit codes").
enum ExitCode : int {
  kExitOk = 0,
  kExitBadInput = 1,       // some architectures could not be parsed; the rest were scored
  kExitUsage = 2,          // invalid command line or option value
  kExitData = 3,           // data, table, statistics or output file missing / malformed
  kExitBackend = 4,        // the requested backend is not available (no CUDA build / no GPU)
  kExitInternal = 5,       // an unexpected internal error
};

// Thrown by commands to leave with a given exit code and message.
struct CliError : std::runtime_error {
  CliError(int c, const std::string& m) : std::runtime_error(m), code(c) {}
  int code;
};

// Options of every command that scores networks.
struct ScoringOptions {
  std::string space = "nb201";
  std::string proxies;
  std::string data;
  std::string dataset = "cifar10";
  int64_t image_offset = 0;
  bool gaussian_input = false;
  int batch = 128;
  int entropy_batch = 32;
  int entropy_repeats = 4;
  int swap_repeats = 32;
  double swap_mu = 0.0, swap_sigma = 0.0;
  int num_classes = 10;
  uint64_t score_seed = 0;
  std::string precision = "fp32";
  std::string backend = "auto";
  std::string preset = "auto";
  int threads = 0;
  int population_batch = 0;
  int device = 0;
  std::string devices;  // --devices 0,1,...
  int gpu_streams = 8;
  bool tf32 = false;
  std::string table;
  bool quiet = false;
  std::string gpu_auto_preset = "full";  // what --preset auto means on CUDA

  CLI::Option* o_proxies = nullptr;
  CLI::Option* o_image_offset = nullptr;
  CLI::Option* o_batch = nullptr;
  CLI::Option* o_entropy_batch = nullptr;
  CLI::Option* o_entropy_repeats = nullptr;
  CLI::Option* o_num_classes = nullptr;
  CLI::Option* o_device = nullptr;
  CLI::Option* o_devices = nullptr;

  void add_to(CLI::App& app, bool with_preset = true);
  net::Space space_value() const { return net::parse_space(space); }  // checked by the option
  // Resolves backend and preset, applies the preset's values where no flag was given.
  engine::ScoreSettings settings(std::string* backend_out, std::string* preset_out) const;
};

// Range validators with plain messages ("must be an integer from 1 to 15625, got '0'"): every
// numeric option takes one, so no value is silently clamped, wrapped or reinterpreted.
CLI::Validator int_range(int64_t lo, int64_t hi);
CLI::Validator real_range(double lo, double hi);  // finite values only
CLI::Validator unsigned64();                      // 0 .. 2^64 - 1 (seeds)
// lo .. the size of the space named by *space (NB201 15,625, NATS-SSS 32,768), read when the
// validator runs (after --space's value is stored: add --space first).
CLI::Validator space_range(int64_t lo, const std::string* space);

// Every option of `app` and its subcommands takes exactly one value per occurrence: CLI11 would
// otherwise split a bracketed value such as '[4, 0, 3, 1, 4, 3]' into several.
void one_value_per_option(CLI::App& app);

// Architectures named on the command line.
struct ArchOptions {
  std::vector<std::string> arch;
  std::vector<std::string> index;
  std::string archs_file;
  bool all = false;
  net::Space space = net::Space::kNb201;  // set by the command (--space) before resolve_archs
  void add_to(CLI::App& app);
  bool empty() const { return arch.empty() && index.empty() && archs_file.empty() && !all; }
};

// One requested architecture, or why it could not be resolved.
struct ArchItem {
  std::optional<net::Arch> arch;
  std::optional<int> index;
  std::string input;
  int line = 0;
  std::string error;
  bool already_written = false;  // score --resume: this error record is in the output already
};

// engine::load_inputs with its errors as exit codes (data: kExitData; missing images: kExitUsage).
engine::ScoreInputs load_inputs_or_fail(const engine::ScoreSettings& s);

// Loads --table, or else the space's default table ($HYBRIDNAS_TABLE / $HYBRIDNAS_SSS_TABLE or the
// build's). An explicit --table that cannot be loaded, or that is of another space, is an error
// (kExitData); so is a default one when `required`. Otherwise a default table that cannot be
// loaded gives a warning (unless quiet) and nullptr: arch strings and NASLib encodings need no
// table, only NB201 indices and accuracies do.
std::unique_ptr<net::ArchTable> load_table(const std::string& path, bool required = false,
                                           bool quiet = false, net::Space space = net::Space::kNb201);
// Every requested architecture in order (--arch, --index, --archs, --all). Inputs that name no
// architecture become items with `error` set; an --archs path that is a directory or cannot be
// read, or a request that names no architecture at all, is a CliError.
std::vector<ArchItem> resolve_archs(const ArchOptions& o, const net::ArchTable* table);
// One architecture in any encoding score --arch takes (net::parse_arch_input); an input that names
// none gives an item with `error` set. `line`: its 1-based line in a list, 0 otherwise.
ArchItem resolve_arch_text(const std::string& text, int line, const net::ArchTable* table,
                           net::Space space = net::Space::kNb201);
// One entry of an architecture list (net::read_arch_lines): its error item, or its architecture.
ArchItem resolve_arch_line(net::ArchLine&& line, const net::ArchTable* table, net::Space space = net::Space::kNb201);

// "cpu" or "cuda" from --backend cpu|cuda|auto; throws CliError(kExitBackend) for cuda when
// this build or machine has no usable GPU.
std::string select_backend(const std::string& requested);
// The scorer of a command: the backend's (one ShardedScorer over s.devices on CUDA when there are
// several), and on rank 0 of an MPI job that shares scoring (distribute_scoring()) a
// DistributedScorer over every rank.
std::unique_ptr<engine::Scorer> make_scorer(const std::string& backend,
                                            const engine::ScoreSettings& s,
                                            const engine::ScoreInputs& in);

// MPI jobs (docs/scale-out.md). Whether this rank's scorers hand work to the other ranks: rank 0 of
// a job of several ranks, unless the command runs one island per rank (search --islands).
bool distribute_scoring();
void set_islands_mode(bool on);
bool islands_mode();
void set_distributed_command(bool on);  // score, stats and search: the commands workers serve
// A worker rank's part of a command that rank 0 runs: serves scoring work until rank 0 stops it.
int serve_as_worker();

// An error as the command line reports it: exit code, message, and whether every rank of an MPI
// job meets it alike (usage errors; island errors reported by island 0), so that only rank 0 prints it.
struct Failure {
  int code = kExitInternal;
  std::string message;
  bool same_everywhere = false;
  bool internal = false;    // printed as an internal error
  bool collective = false;  // every rank of an island job ended on it together (no abort needed)
};
Failure classify_failure(std::exception_ptr e);
// Prints it ("hybridnas: error: ...", with the rank on ranks other than 0; nothing there for an
// error every rank meets alike).
void report_failure(const Failure& f);

// search --islands in an MPI job: every rank calls this at the same points of its setup, with the
// error it met or null. When no rank failed it returns normally. Otherwise rank 0 prints each
// distinct error once (with the ranks that met it, when not all did), every rank learns the job's
// exit code (the first failing rank's), and: a rank that failed gets that code back, the others
// throw SilentExit (nothing more to print). No rank waits for another, so no abort is needed.
struct SilentExit {
  int code;
};
int islands_agree(std::exception_ptr error);
// Whether the job's ranks ended together on one error (an agreement that failed, or an island
// error every island met): nobody waits, so no abort is needed.
bool islands_ended_together();
void set_islands_ended_together();
// Agreement points passed by this rank (a rank failing before the first one joins it from the
// command line's error handler).
int islands_agreements_passed();

// make_scorer, behind the score cache when `cache` is given (then `cached` points at it): cached
// architectures are served from it, the rest scored by a backend created only when needed.
std::unique_ptr<engine::Scorer> make_cached_scorer(const std::string& backend, const engine::ScoreSettings& s,
                                                   const engine::ScoreInputs& in, engine::ScoreCache* cache,
                                                   engine::CachedScorer** cached);

// What gives score records their meaning (proxies, batches, seeds, precision, input hash, each
// proxy's settings key, ninaswot's statistics): recorded beside score's output, checked by
// --resume, and reported by serve's ready record.
nlohmann::json score_settings_json(const engine::ScoreSettings& s, const engine::ScoreInputs& in,
                                   const engine::ZStats& stats);

// score's and serve's options for ninaswot's z statistics: --stats FILE, or a reference sample
// (--reference-sample R, --search-seed S).
struct NinaswotOptions {
  std::string stats_file;
  int reference_sample = 50;
  uint64_t search_seed = 0;
  void add_to(CLI::App& app, const std::string* space);  // space: the command's --space (add it first)
};

// z statistics for ninaswot: from a statistics file, else from a reference sample of R
// architectures drawn with the search seed and scored with the run's settings.
engine::ZStats ninaswot_stats(const engine::ScoreSettings& s, const engine::ScoreInputs& in,
                              const std::string& backend, const std::string& stats_file,
                              int reference_sample, uint64_t search_seed, bool quiet);

// A progress line on stderr at most every 2 s (and a last one at the end).
class Progress {
 public:
  Progress(std::string what, size_t total, bool quiet);
  void step(size_t done);
  void finish(size_t done);

 private:
  std::string what_;
  size_t total_;
  bool quiet_;
  std::chrono::steady_clock::time_point start_, last_;
};

// Opens a score cache; a corrupt or foreign file is a CliError(kExitData).
std::unique_ptr<engine::ScoreCache> open_cache(const std::string& path);

// engine::check_output_path as a CliError(kExitData); call it before any work starts.
void check_output(const std::string& path, const std::string& option);
// Refuses two options naming the same file (e.g. eval --scores F --out F would replace the
// scores with the result); empty paths are skipped. CliError(kExitUsage).
void check_distinct(const std::vector<std::pair<std::string, std::string>>& options);

// An exclusive lock (flock) on an output file, held until destroyed: a second process writing the
// same file is refused (CliError kExitData) instead of interleaving records with the first.
class OutputLock {
 public:
  OutputLock() = default;
  explicit OutputLock(int fd) : fd_(fd) {}
  OutputLock(OutputLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  OutputLock& operator=(OutputLock&& o) noexcept;
  ~OutputLock();

 private:
  int fd_ = -1;
};
OutputLock lock_output(const std::string& path);

// engine::write_file_atomic as a CliError(kExitData).
void write_output(const std::string& path, const std::string& content);

std::string cpu_model_name();
std::string utc_timestamp();

}  // namespace hn::cli
