#include "engine/distributed_scorer.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <chrono>

#include "engine/cluster.hpp"

namespace hn::engine {

int work_chunk(size_t n, int workers, int max_chunk) {
  const size_t per = n / (4 * static_cast<size_t>(std::max(workers, 1)));
  return static_cast<int>(std::clamp<size_t>(per, 1, static_cast<size_t>(std::max(max_chunk, 1))));
}

// ---- ShardedScorer ----------------------------------------------------------------------------

ShardedScorer::ShardedScorer(std::vector<std::unique_ptr<Scorer>> shards, int max_chunk)
    : shards_(std::move(shards)), max_chunk_(max_chunk), per_shard_(shards_.size(), 0) {
  if (shards_.empty()) throw std::invalid_argument("ShardedScorer: no shards");
  for (const auto& s : shards_)
    if (!s) throw std::invalid_argument("ShardedScorer: a null shard");
}

void ShardedScorer::score(const std::vector<net::Arch>& archs,
                          const std::function<void(size_t, ArchScore&&)>& done) {
  const size_t n = archs.size();
  if (n == 0) return;
  if (shards_.size() == 1) {
    shards_[0]->score(archs, done);
    per_shard_[0] += static_cast<int64_t>(n);
    return;
  }
  const size_t chunk = static_cast<size_t>(work_chunk(n, static_cast<int>(shards_.size()), max_chunk_));
  const size_t chunks = (n + chunk - 1) / chunk;
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex m;
  std::condition_variable cv;
  std::vector<std::optional<ArchScore>> got(n);
  std::exception_ptr error;
  size_t running = shards_.size();
  std::vector<std::thread> threads;
  for (size_t s = 0; s < shards_.size(); ++s)
    threads.emplace_back([&, s] {
      try {
        for (size_t c; !failed && (c = next++) < chunks;) {
          const size_t b = c * chunk, e = std::min(n, b + chunk);
          const std::vector<net::Arch> part(archs.begin() + static_cast<std::ptrdiff_t>(b),
                                             archs.begin() + static_cast<std::ptrdiff_t>(e));
          shards_[s]->score(part, [&](size_t i, ArchScore&& a) {
            std::lock_guard<std::mutex> g(m);
            got[b + i] = std::move(a);
            ++per_shard_[s];
            cv.notify_one();
          });
        }
      } catch (...) {
        std::lock_guard<std::mutex> g(m);
        if (!error) error = std::current_exception();
        failed = true;
      }
      std::lock_guard<std::mutex> g(m);
      --running;
      cv.notify_one();
    });
  // Deliver in order on this thread; an exception from `done` stops the shards too.
  std::exception_ptr done_error;
  size_t emitted = 0;
  {
    std::unique_lock<std::mutex> g(m);
    while (emitted < n) {
      cv.wait(g, [&] { return got[emitted].has_value() || running == 0 || failed; });
      if (failed || (running == 0 && !got[emitted])) break;
      while (emitted < n && got[emitted]) {
        ArchScore a = std::move(*got[emitted]);
        got[emitted].reset();
        g.unlock();
        try {
          done(emitted, std::move(a));
        } catch (...) {
          done_error = std::current_exception();
          failed = true;
        }
        g.lock();
        ++emitted;
        if (done_error) break;
      }
      if (done_error) break;
    }
  }
  for (auto& t : threads) t.join();
  if (done_error) std::rethrow_exception(done_error);
  if (error) std::rethrow_exception(error);
  if (emitted < n) throw std::logic_error("ShardedScorer: a shard delivered fewer results than asked");
}

// ---- encoding ---------------------------------------------------------------------------------

// An architecture on the wire: its space in bits 16.., its code below (NB201's codes unchanged).
uint32_t wire_code(const net::Arch& a) {
  return (static_cast<uint32_t>(a.space) << 16) | static_cast<uint32_t>(net::arch_code(a));
}
net::Arch arch_of_wire(uint32_t w, const char* message) {
  const uint32_t space = w >> 16, code = w & 0xFFFFu;
  if (space > static_cast<uint32_t>(net::Space::kNatsSss) ||
      code >= static_cast<uint32_t>(net::space_size(static_cast<net::Space>(space))))
    throw std::runtime_error(std::string("a ") + message + " message names no architecture");
  return net::arch_from_code(static_cast<net::Space>(space), code);
}

std::string encode_scores(const std::vector<ArchScore>& scores) {
  ByteWriter w;
  w.u32(static_cast<uint32_t>(scores.size()));
  for (const auto& a : scores) {
    w.u32(wire_code(a.arch));
    for (int p = 0; p < kNumProxies; ++p) {
      if (!a.values[p]) {
        w.u32(0);
        continue;
      }
      w.u32(1);
      w.f64(a.values[p]->value);
      w.str(a.values[p]->flag);
      w.f64(a.values[p]->seconds);
    }
  }
  return w.bytes();
}

std::vector<ArchScore> decode_scores(const std::string& bytes) {
  ByteReader r(bytes);
  const uint32_t n = r.u32();
  if (n > net::sss::kNumArchs * 16u) throw std::runtime_error("a scores message is too long");
  std::vector<ArchScore> out(n);
  for (auto& a : out) {
    a.arch = arch_of_wire(r.u32(), "scores");
    for (int p = 0; p < kNumProxies; ++p) {
      if (r.u32() == 0) continue;
      ProxyValue v;
      v.value = r.f64();
      v.flag = r.str();
      v.seconds = r.f64();
      a.values[p] = std::move(v);
    }
  }
  if (!r.done()) throw std::runtime_error("a scores message has trailing bytes");
  return out;
}

// ---- DistributedScorer ------------------------------------------------------------------------

namespace {
int g_next_id = 1;
std::atomic<int> g_in_flight{0};
}  // namespace

std::vector<int64_t> g_totals;
bool distributed_work_in_flight() { return g_in_flight > 0; }
std::vector<int64_t> distributed_totals() { return g_totals; }

DistributedScorer::DistributedScorer(std::unique_ptr<Scorer> local, const std::string& spec, int max_chunk)
    : local_(std::move(local)), id_(g_next_id++), max_chunk_(max_chunk), per_rank_(cluster().size, 0) {
  if (!local_) throw std::invalid_argument("DistributedScorer: no local scorer");
  g_totals.resize(static_cast<size_t>(cluster().size), 0);
  ByteWriter w;
  w.u32(static_cast<uint32_t>(id_));
  w.str(spec);
  for (int r = 1; r < cluster().size; ++r) cluster_post(r, Tag::kOpen, w.bytes());
}

DistributedScorer::~DistributedScorer() {
  if (g_in_flight > 0) return;  // the job is ending in an error: no more messages
  try {
    ByteWriter w;
    w.u32(static_cast<uint32_t>(id_));
    for (int r = 1; r < cluster().size; ++r) cluster_post(r, Tag::kClose, w.bytes());
  } catch (...) {
  }
}

void DistributedScorer::score(const std::vector<net::Arch>& archs,
                              const std::function<void(size_t, ArchScore&&)>& done) {
  const int ranks = cluster().size;
  const size_t n = archs.size();
  if (ranks == 1 || n == 0) {
    local_->score(archs, done);
    per_rank_[0] += static_cast<int64_t>(n);
    return;
  }
  const size_t chunk = static_cast<size_t>(work_chunk(n, ranks, max_chunk_));
  const size_t chunks = (n + chunk - 1) / chunk;
  std::vector<std::optional<ArchScore>> got(n);
  size_t emitted = 0, next = 0;
  auto emit = [&] {
    while (emitted < n && got[emitted]) {
      ArchScore a = std::move(*got[emitted]);
      got[emitted].reset();
      done(emitted++, std::move(a));
    }
  };
  auto part_of = [&](size_t c) {
    const size_t b = c * chunk, e = std::min(n, b + chunk);
    return std::vector<net::Arch>(archs.begin() + static_cast<std::ptrdiff_t>(b),
                                   archs.begin() + static_cast<std::ptrdiff_t>(e));
  };
  // Work goes out without waiting (a worker busy scoring is not inside MPI to take it).
  auto send_chunk = [&](int rank) {
    ByteWriter w;
    w.u32(static_cast<uint32_t>(id_));
    w.u32(static_cast<uint32_t>(next));
    const auto part = part_of(next);
    w.u32(static_cast<uint32_t>(part.size()));
    for (const auto& g : part) w.u32(wire_code(g));
    cluster_post(rank, Tag::kWork, w.bytes());
    ++g_in_flight;
    ++next;
  };
  auto receive = [&] {
    int from = 0;
    const Tag t = Tag::kResult;
    const std::string m = cluster_recv(-1, &t, &from);
    --g_in_flight;
    ByteReader r(m);
    const size_t c = r.u32();
    const std::vector<ArchScore> scores = decode_scores(r.str());
    const size_t b = c * chunk;
    if (c >= chunks || scores.size() != std::min(n, b + chunk) - b)
      throw std::runtime_error("rank " + std::to_string(from) + " answered a chunk that was not asked");
    for (size_t i = 0; i < scores.size(); ++i) {
      if (scores[i].arch != archs[b + i])
        throw std::runtime_error("rank " + std::to_string(from) + " scored another architecture");
      got[b + i] = scores[i];
    }
    per_rank_[from] += static_cast<int64_t>(scores.size());
    g_totals[static_cast<size_t>(from)] += static_cast<int64_t>(scores.size());
    if (next < chunks) send_chunk(from);
  };
  // Rank 0's own share runs on a thread of its own, so that this (MPI) thread answers the
  // workers at once whatever rank 0 is scoring.
  struct Local {
    std::thread thread;
    std::atomic<bool> busy{false};
    size_t chunk = 0;
    std::vector<ArchScore> out;
    std::exception_ptr error;
    ~Local() {
      if (thread.joinable()) thread.join();
    }
  } local;
  auto start_local = [&] {
    local.chunk = next++;
    local.busy = true;
    local.thread = std::thread([this, &local, part = part_of(local.chunk)] {
      try {
        local.out.assign(part.size(), ArchScore{});
        local_->score(part, [&](size_t i, ArchScore&& a) { local.out[i] = std::move(a); });
      } catch (...) {
        local.error = std::current_exception();
      }
      local.busy = false;
    });
  };
  for (int k = 0; k < 2; ++k)
    for (int r = 1; r < ranks && next < chunks; ++r) send_chunk(r);
  if (next < chunks) start_local();
  while (emitted < n) {
    bool progressed = false;
    while (cluster_waiting(-1, Tag::kResult)) {
      receive();
      progressed = true;
    }
    if (local.thread.joinable() && !local.busy) {
      local.thread.join();
      if (local.error) std::rethrow_exception(local.error);
      const size_t b = local.chunk * chunk;
      for (size_t i = 0; i < local.out.size(); ++i) got[b + i] = std::move(local.out[i]);
      per_rank_[0] += static_cast<int64_t>(local.out.size());
      g_totals[0] += static_cast<int64_t>(local.out.size());
      if (next < chunks) start_local();
      progressed = true;
    }
    emit();
    cluster_progress();
    if (!progressed) std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

// ---- workers ----------------------------------------------------------------------------------

void serve_scoring_work(const ScorerFactory& make) {
  std::map<uint32_t, std::string> specs;
  std::map<uint32_t, std::unique_ptr<Scorer>> scorers;
  for (;;) {
    Tag tag;
    const std::string m = cluster_recv(0, nullptr, nullptr, &tag);
    ByteReader r(m);
    switch (tag) {
      case Tag::kOpen: {
        const uint32_t id = r.u32();
        specs[id] = r.str();
        break;
      }
      case Tag::kClose: {
        const uint32_t id = r.u32();
        specs.erase(id);
        scorers.erase(id);
        break;
      }
      case Tag::kWork: {
        const uint32_t id = r.u32(), chunk = r.u32(), count = r.u32();
        std::vector<net::Arch> archs;
        for (uint32_t i = 0; i < count; ++i) {
          archs.push_back(arch_of_wire(r.u32(), "work"));
        }
        auto& scorer = scorers[id];
        if (!scorer) {
          const auto spec = specs.find(id);
          if (spec == specs.end()) throw std::runtime_error("work for a scorer rank 0 never opened");
          scorer = make(spec->second);
        }
        std::vector<ArchScore> out(archs.size());
        scorer->score(archs, [&](size_t i, ArchScore&& a) { out[i] = std::move(a); });
        ByteWriter w;
        w.u32(chunk);
        w.str(encode_scores(out));
        cluster_send(0, Tag::kResult, w.bytes());
        break;
      }
      case Tag::kStop:
        return;
      default:
        throw std::runtime_error("an unexpected message from rank 0 (tag " + std::to_string(static_cast<int>(tag)) + ")");
    }
  }
}

void stop_workers() {
  if (cluster().rank != 0) return;
  for (int r = 1; r < cluster().size; ++r) cluster_post(r, Tag::kStop, std::string());
  cluster_flush();
}

}  // namespace hn::engine
