// Scoring spread over several scorers: the GPUs of one process (ShardedScorer, `--devices`) and the
// ranks of an MPI job (DistributedScorer). Both are Scorers, so every command that scores (score,
// stats, the searches, ninaswot's reference sample, the score cache in front) runs on them
// unchanged; both deliver results in input order, exactly the values each member would get
// alone (a member's scores never depend on the population it runs in: engine/population.hpp).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/scorer.hpp"

namespace hn::engine {

// Chunks of `n` architectures over `workers` scorers: n / (4 x workers), at least 1, at most
// `max_chunk`: small enough to balance, large enough to feed a population executor.
int work_chunk(size_t n, int workers, int max_chunk = 64);

// Several scorers in one process, one thread each (one per GPU: `--devices 0,1,...`). Chunks of
// the architectures go to whichever shard is free (dynamic, so a slower device takes fewer);
// results are delivered in order on the calling thread. An error in any shard is rethrown here
// once every shard has stopped. Shards must be independent objects (they run concurrently).
class ShardedScorer : public Scorer {
 public:
  // Throws std::invalid_argument without shards.
  explicit ShardedScorer(std::vector<std::unique_ptr<Scorer>> shards, int max_chunk = 64);
  const char* backend_name() const override { return shards_.front()->backend_name(); }
  using Scorer::score;
  void score(const std::vector<net::Arch>& archs,
             const std::function<void(size_t i, ArchScore&&)>& done) override;
  // Architectures each shard has scored so far (what the split did).
  const std::vector<int64_t>& per_shard() const { return per_shard_; }

 private:
  std::vector<std::unique_ptr<Scorer>> shards_;
  int max_chunk_;
  std::vector<int64_t> per_shard_;
};

// ArchScores as bytes and back, bit for bit (values, flags and times).
std::string encode_scores(const std::vector<ArchScore>& scores);
std::vector<ArchScore> decode_scores(const std::string& bytes);  // throws std::runtime_error

// Rank 0 of an MPI job: scores with its own scorer and every worker rank's. At construction every
// worker is told `spec` (what its ScorerFactory needs to build the same scorer: backend, settings).
// score() hands out chunks dynamically (two in flight per worker) and scores chunks itself in
// between; results are delivered in input order on the calling thread. In a job of one rank it is
// the local scorer. A worker that fails ends the job (serve_scoring_work's caller aborts).
class DistributedScorer : public Scorer {
 public:
  DistributedScorer(std::unique_ptr<Scorer> local, const std::string& spec, int max_chunk = 64);
  ~DistributedScorer() override;  // the workers drop their scorer
  const char* backend_name() const override { return local_->backend_name(); }
  using Scorer::score;
  void score(const std::vector<net::Arch>& archs,
             const std::function<void(size_t i, ArchScore&&)>& done) override;
  // Architectures each rank has scored so far.
  const std::vector<int64_t>& per_rank() const { return per_rank_; }

 private:
  std::unique_ptr<Scorer> local_;
  int id_;
  int max_chunk_;
  std::vector<int64_t> per_rank_;
};

// Architectures each rank has scored through every DistributedScorer of this process (rank 0),
// for the commands' closing lines; empty outside a job of several ranks.
std::vector<int64_t> distributed_totals();

// Whether a DistributedScorer has work out at the worker ranks now (rank 0: an error in this
// state must end the job with cluster_abort, since the workers would wait forever).
bool distributed_work_in_flight();

// A worker rank's whole job: builds scorers from rank 0's specs (lazily, on first work), scores
// the chunks it is sent and sends the results back, until rank 0 calls stop_workers(). Errors
// (a spec the factory refuses, a scoring failure) propagate: the caller reports them and ends
// the job.
using ScorerFactory = std::function<std::unique_ptr<Scorer>(const std::string& spec)>;
void serve_scoring_work(const ScorerFactory& make);
// Rank 0: every worker leaves serve_scoring_work (at the end of the command; no-op in a job of one).
void stop_workers();

}  // namespace hn::engine
