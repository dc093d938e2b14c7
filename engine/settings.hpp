// What a scoring run computes and on which inputs (SPEC.md 2-3).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/proxy.hpp"
#include "net/cifar.hpp"
#include "net/space.hpp"

namespace hn::engine {

enum class Precision : uint8_t { kFp32, kFp64 };
const char* precision_name(Precision p);

struct ScoreSettings {
  net::Space space = net::Space::kNb201;  // the architectures' search space (weight banks, cache keys)
  std::vector<Proxy> proxies;  // what to report; dependencies (ninaswot -> naswot, ni) are implied
  int batch = 128;             // naswot, naswot_once, ni, entropy_seed; ntk: min(64, batch)
  int entropy_batch = 32;
  int entropy_repeats = 4;
  // SWAP: forwards of the first min(16, batch) images, each with fresh N(0,1) weights, averaged
  // (the authors' default: 32); swap_reg's regulariser exp(-(params / 1e3 - mu)^2 / sigma), mu in
  // thousands of parameters, in 0..1e12 and sigma in 0..1e24; 0 = the defaults (swap_reg_mu_sigma).
  int swap_repeats = 32;
  double swap_mu = 0.0, swap_sigma = 0.0;
  int num_classes = 10;
  uint64_t score_seed = 0;
  Precision precision = Precision::kFp32;
  int threads = 0;             // 0: all cores
  // Architectures run together as one population (engine/population.hpp); 0: sized from memory.
  // Scores never depend on it.
  int population_batch = 0;
  // CUDA backend: device, concurrent streams (lanes), and TF32 for convolutions and GEMMs.
  int device = 0;
  // Every CUDA device of the run (the command line builds one scorer per device and splits
  // populations across them, engine/distributed_scorer.hpp); empty on the CPU backend.
  std::vector<int> devices;
  int gpu_streams = 8;
  bool tf32 = false;
  // Real images (records [image_offset, image_offset + batch) of data_path), or N(0,1) images.
  std::string data_path;
  net::DatasetKind dataset = net::DatasetKind::kCifar10;
  int64_t image_offset = 0;
  bool gaussian_input = false;

  // Throws std::invalid_argument naming the bad setting.
  void validate() const;
};

// swap_reg's mu and sigma: the settings', or by default mu = the parameter count of the space's largest
// network (NB201: every edge a 3x3 convolution; NATS-SSS: 64:64:64:64:64) at num_classes, in
// thousands, and sigma = mu^2 (a size prior
// that grows towards the largest network: e^-1 at zero parameters; the SWAP paper's NB201 values
// are not in its authors' code).
// The images of SWAP (the first min(16, batch) of the run's: the authors' default sample) and of
// AZ-NAS (min(64, batch) Gaussian ones: its authors' batch).
inline int swap_samples(int batch) { return batch < 16 ? batch : 16; }
inline int az_images(int batch) { return batch < 64 ? batch : 64; }
struct SwapRegParameters {
  double mu, sigma;
};
SwapRegParameters swap_reg_mu_sigma(const ScoreSettings& s);

// The proxies a backend must compute to report `wanted` (ninaswot needs naswot and ni).
std::vector<Proxy> raw_proxies(const std::vector<Proxy>& wanted);
bool needs_images(const std::vector<Proxy>& raw);

// The images a run feeds its networks, normalised, batch x 3 x 32 x 32 in double.
struct ScoreInputs {
  std::vector<double> images;
  std::vector<int> labels;   // the images' classes (real data; empty for Gaussian input)
  std::string identity;  // data content hash + offset, or "gaussian"; part of settings_key
};
// Reads the data (or draws Gaussian images). Throws net::DataError, or std::invalid_argument
// when the proxies need images and neither --data nor --gaussian-input was given.
ScoreInputs load_inputs(const ScoreSettings& s);

// zico's labels: one per image of the batch, each below num_classes; throws std::invalid_argument
// saying which is not.
void check_zico_labels(const std::vector<int>& labels, const ScoreSettings& s);

// Everything that determines proxy p's value besides the architecture: compared by statistics
// files and used as the score cache key.
std::string settings_key(Proxy p, const ScoreSettings& s, const std::string& input_identity);

}  // namespace hn::engine

namespace hn::engine {

// Named configurations (SPEC.md 4 presets plus our speed presets). A preset fixes the proxies,
// the batch sizes and, for searches, the fitness; explicit flags override each part.
//   full       every proxy at SPEC.md's batch sizes (scoring)
//   hybrid     z fitness over naswot, ni, ntk, entropy with t = log (the default search)
//   seed       z fitness over naswot, ni, ntk, entropy_seed, num_classes 1, t = identity
//   cpu-quick  hybrid's fitness at CPU-affordable cost: batch 32 (ntk_fast on those 32
//              images), entropy 16 x 2, search budget 500
//   hybrid-logrank  hybrid's proxies with the logrank fitness (AZ-NAS's archive-relative ranks):
//              on the full-space table (README, quality) it beats hybrid's z with REA and GA
//   az-nas     AZ-NAS (Lee & Ham, CVPR 2024) as its authors rank: logrank over its expressivity,
//              progressivity, trainability and flops; 64 Gaussian images, no data needed
//   az-meco-zico  AZ-NAS's four plus MeCo and ZiCo under the same logrank: the two recent
//              proxies that measure what AZ-NAS's do not (channel correlation of one real image;
//              the gradient signal-to-noise of two labelled mini-batches), equal weights; chosen
//              on NB201's CIFAR-10 validation column (README, quality); batch 128 = ZiCo's 2 x 64
//   synflow-rank  SynFlow alone, rank fitness: recommended for NATS-Bench's size space, where it
//              ranks best of the proxies measured there (chosen on its CIFAR-10 validation column;
//              README, quality on NATS-SSS); no images
struct RunPreset {
  const char* name;
  const char* proxies;
  int batch;
  int entropy_batch;
  int entropy_repeats;
  int num_classes;  // 0: the dataset's
  bool log_ntk;     // z fitness: t = log for ntk / ntk_fast
  int budget;       // default search budget
  const char* fitness = "z";  // default search fitness mode (z, rank, logrank)
};
// Throws std::invalid_argument for an unknown name.
const RunPreset& run_preset(const std::string& name);
std::vector<std::string> run_preset_names();

}  // namespace hn::engine
