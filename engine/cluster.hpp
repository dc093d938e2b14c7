// The processes of one job: an MPI job started by `mpirun` / `srun` (OpenMPI), or a single process.
//
// hybridnas uses MPI (the standard, through OpenMPI) for scale-out, never a network layer of its
// own. A build with HYBRIDNAS_MPI initialises MPI only when a launcher started the process (it
// sets OMPI_COMM_WORLD_SIZE, PMIX_RANK or PMI_SIZE), so the same binary runs as one process
// without `mpirun`. Only the main thread calls MPI (MPI_THREAD_FUNNELED).
//
// What runs where (docs/scale-out.md): rank 0 runs the command, reads and writes every file and
// hands scoring work to the other ranks (engine/distributed_scorer.hpp); with `search --islands`
// every rank runs one island of the GA (engine/search.hpp, IslandModel).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace hn::engine {

struct ClusterInfo {
  int rank = 0;        // MPI_COMM_WORLD rank (0 without MPI)
  int size = 1;        // MPI_COMM_WORLD size (1 without MPI)
  int local_rank = 0;  // rank among the processes of this node (MPI_COMM_TYPE_SHARED)
  int local_size = 1;
  bool mpi = false;    // MPI was initialised (a launcher started this process)
};

// Whether this build has MPI (CMake HYBRIDNAS_MPI).
bool mpi_built();
// Initialises MPI when a launcher started the process; call once, first thing in main().
// Throws std::runtime_error when MPI cannot start or lacks MPI_THREAD_FUNNELED.
void cluster_init(int* argc, char*** argv);
// MPI_Finalize (no-op without MPI). Every rank calls it once before exiting normally.
void cluster_finalize();
// The job (rank 0 of 1 before cluster_init, or without MPI).
const ClusterInfo& cluster();
// Ends every process of the job with exit code `code` (MPI_Abort; std::exit without MPI).
[[noreturn]] void cluster_abort(int code);

// Message tags of hybridnas's protocol (engine/distributed_scorer.cpp, engine/search.cpp).
enum class Tag : int { kOpen = 1, kClose, kWork, kResult, kStop, kRing, kIsland };

// Point-to-point byte strings over MPI_COMM_WORLD (size 1: never called). Blocking, in order
// between one pair of ranks for one tag, as MPI guarantees.
void cluster_send(int dest, Tag tag, const std::string& bytes);
// The same without waiting for the receiver (MPI_Isend; the bytes are kept until the send
// completes): a busy receiver that is not inside MPI cannot hold the sender up.
void cluster_post(int dest, Tag tag, std::string bytes);
// Frees the posted sends that have completed (MPI_Testsome); cluster_flush waits for all of them.
void cluster_progress();
void cluster_flush();
// Receives from `source` (-1: any rank) a message with `tag` (nullptr: any hybridnas tag); the
// sender and tag come back through `from` / `tag_out` when given.
std::string cluster_recv(int source, const Tag* tag, int* from = nullptr, Tag* tag_out = nullptr);
// Whether a message from `source` (-1: any) with `tag` is waiting (MPI_Iprobe).
bool cluster_waiting(int source, Tag tag);

// Collectives over every rank (size 1: identities).
bool cluster_all(bool mine);                             // logical and (MPI_Allreduce MPI_LAND)
std::string cluster_broadcast(const std::string& s);     // rank 0's string, at every rank
std::vector<std::string> cluster_gather(const std::string& s);  // at rank 0: every rank's, by rank
// Ring shift: sends `s` to rank+1 (mod size) and returns what rank-1 sent (MPI_Sendrecv).
std::string cluster_ring_shift(const std::string& s);

// Little binary encoding of the protocol's messages (doubles travel as their bits, so values
// arrive exactly as computed).
class ByteWriter {
 public:
  void u32(uint32_t v);
  void f64(double v);
  void str(const std::string& s);
  const std::string& bytes() const { return b_; }

 private:
  template <typename V>
  void put(V v);
  std::string b_;
};
class ByteReader {
 public:
  explicit ByteReader(const std::string& b) : b_(b) {}
  uint32_t u32();
  double f64();
  std::string str();
  bool done() const { return pos_ == b_.size(); }

 private:
  void need(size_t n) const;  // throws std::runtime_error on a short message
  template <typename V>
  V take();
  const std::string& b_;
  size_t pos_ = 0;
};

}  // namespace hn::engine
