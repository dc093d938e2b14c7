// The CPU executor of a network plan: the semantic reference every other backend is checked
// against. Templated on the activation type (float: the default; double: --precision fp64).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "net/plan.hpp"
#include "net/weight_bank.hpp"

namespace hn::engine {

// One init scheme's weights converted to T once per run (all slots, shared by all architectures).
template <typename T>
class TypedBank {
 public:
  explicit TypedBank(const net::WeightBank& bank);
  const T* slot(int s) const { return slots_[s].data(); }
  T* mutable_slot(int s) { return slots_[s].data(); }  // finite-difference tests
  int num_classes() const { return num_classes_; }
  net::Space space() const { return space_; }

 private:
  int num_classes_;
  net::Space space_;
  std::vector<std::vector<T>> slots_;
};

struct ForwardOptions {
  bool batch_norm = true;       // false: BN steps are the identity (entropy)
  bool relu = true;             // false: ReLU steps are the identity and report no site (entropy)
  bool rescale_blocks = false;  // entropy: at each block end, s = std, output /= s
  bool need_logits = true;      // false: the head runs only as far as sites need it
  bool report_sites = true;     // call on_site for every ReLU site (codes, entropy_seed)
  bool keep_values = false;     // keep every activation and BN statistic (for a backward pass)
  bool all_steps = false;       // run steps that feed nothing too (MeCo hooks every module a forward calls)
  // BN gammas other than 1 (finite-difference tests): bn_gamma[layer][channel]; null = all 1.
  const std::vector<std::vector<double>>* bn_gamma = nullptr;
};

// A plan lowered for one set of options: skipped BN / ReLU steps become aliases (rep), and steps
// that feed neither the logits, a reported site nor an entropy block end are dropped.
struct LoweredPlan {
  std::vector<net::Step> steps;   // inputs renamed to their representatives
  std::vector<int> rep;           // value id -> the value id holding its data
  std::vector<int> last_use;      // by value id: index into steps, -1 if unused
  std::vector<char> materialize;  // per step: does its output need to exist
};
LoweredPlan lower_plan(const net::Plan& plan, const ForwardOptions& opt);

template <typename T>
struct SiteView {
  int site;
  const T* pre;   // batch x units pre-activations
  int batch;
  int64_t units;
};

template <typename T>
struct ForwardResult {
  std::vector<T> logits;          // batch x num_classes (when need_logits)
  std::vector<double> block_std;  // rescale_blocks: the s of each block end reached
  bool zero_variance = false;     // rescale_blocks: some s was 0 or not finite (stopped there)
  // keep_values: activations by value id (null where a value was never produced) and, per BN
  // layer, its FP64 mean and invstd.
  std::vector<std::unique_ptr<T[]>> values;
  std::vector<std::vector<double>> bn_mean, bn_invstd;
};

// MAE-DET entropy's network: no BN, no ReLU, std-rescaled block outputs, no head.
inline ForwardOptions entropy_options() {
  ForwardOptions o;
  o.batch_norm = false;
  o.relu = false;
  o.rescale_blocks = true;
  o.need_logits = false;
  o.report_sites = false;
  return o;
}

template <typename T>
using SiteCallback = std::function<void(const SiteView<T>&)>;

// One architecture: a population of one (cpu_forward_population).
template <typename T>
ForwardResult<T> cpu_forward(const net::Plan& plan, const TypedBank<T>& bank, const T* x, int batch,
                             const ForwardOptions& opt, const SiteCallback<T>& on_site = {});

// Runs f(i) for every i in [0, n) over the OpenMP threads, one index at a time (dynamic schedule:
// members of unequal cost balance out), then rethrows the first exception a call threw.
void parallel_each(size_t n, const std::function<void(size_t)>& f);

// f(m) for every member m of a population of n: with at least a member per thread, members over
// the threads (parallel_each, each call on one thread); with fewer, one after another, each call
// free to run its own parallel regions. Rethrows the first exception a call threw.
void each_member(size_t n, const std::function<void(size_t)>& f);

class PopulationSchedule;  // engine/population.hpp

// Site callback of a population run: `member` indexes the schedule's members. Calls for different
// members may run concurrently; calls for one member come in its site order.
template <typename T>
using MemberSiteCallback = std::function<void(size_t member, const SiteView<T>&)>;

// Runs every member of `schedule` (built with the same options) on the same `batch` input images
// `x`. With fewer members than threads, in lockstep: one grouped convolution call per conv group
// over all its members' images (parallel over every image), the other steps per member. With at
// least a member per thread, each thread walks the schedule for whole members (the faster order on
// a CPU, measured). A member's results are bit-identical whatever
// the other members and the thread count. All members' live activations exist at once: size
// populations to memory (PopulationSchedule::counts). Throws std::invalid_argument for batch < 1
// or a bank of another num_classes.
template <typename T>
std::vector<ForwardResult<T>> cpu_forward_population(const PopulationSchedule& schedule,
                                                     const TypedBank<T>& bank, const T* x, int batch,
                                                     const ForwardOptions& opt,
                                                     const MemberSiteCallback<T>& on_site = {});

}  // namespace hn::engine
