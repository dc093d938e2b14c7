#include "engine/cluster.hpp"

#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>

#ifdef HYBRIDNAS_MPI
#include <mpi.h>
#endif

namespace hn::engine {

namespace {
ClusterInfo g_cluster;

[[maybe_unused]] bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"})
    if (std::getenv(v)) return true;
  return false;
}
}  // namespace

bool mpi_built() {
#ifdef HYBRIDNAS_MPI
  return true;
#else
  return false;
#endif
}

const ClusterInfo& cluster() { return g_cluster; }

#ifdef HYBRIDNAS_MPI

namespace {
void check(int rc, const char* what) {
  if (rc != MPI_SUCCESS) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    throw std::runtime_error(std::string(what) + ": " + std::string(msg, len));
  }
}
}  // namespace

void cluster_init(int* argc, char*** argv) {
  if (!launched_by_mpi()) return;
  int provided = 0;
  check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  if (provided < MPI_THREAD_FUNNELED)
    throw std::runtime_error("this MPI library does not provide MPI_THREAD_FUNNELED");
  g_cluster.mpi = true;
  MPI_Comm_rank(MPI_COMM_WORLD, &g_cluster.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_cluster.size);
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_cluster.rank, MPI_INFO_NULL, &node);
  MPI_Comm_rank(node, &g_cluster.local_rank);
  MPI_Comm_size(node, &g_cluster.local_size);
  MPI_Comm_free(&node);
}

void cluster_finalize() {
  if (!g_cluster.mpi) return;
  cluster_flush();
  MPI_Finalize();
  g_cluster.mpi = false;
}

void cluster_abort(int code) {
  if (g_cluster.mpi) MPI_Abort(MPI_COMM_WORLD, code);
  std::exit(code);
}

void cluster_send(int dest, Tag tag, const std::string& bytes) {
  check(MPI_Send(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, dest, static_cast<int>(tag),
                 MPI_COMM_WORLD),
        "MPI_Send");
}

namespace {
struct Posted {
  std::unique_ptr<std::string> bytes;
  MPI_Request request;
};
std::vector<Posted> g_posted;
}  // namespace

void cluster_post(int dest, Tag tag, std::string bytes) {
  Posted p{std::make_unique<std::string>(std::move(bytes)), MPI_REQUEST_NULL};
  check(MPI_Isend(p.bytes->data(), static_cast<int>(p.bytes->size()), MPI_BYTE, dest, static_cast<int>(tag),
                  MPI_COMM_WORLD, &p.request),
        "MPI_Isend");
  g_posted.push_back(std::move(p));
}

void cluster_progress() {
  for (size_t i = 0; i < g_posted.size();) {
    int done = 0;
    check(MPI_Test(&g_posted[i].request, &done, MPI_STATUS_IGNORE), "MPI_Test");
    if (done) {
      g_posted[i] = std::move(g_posted.back());
      g_posted.pop_back();
    } else {
      ++i;
    }
  }
}

void cluster_flush() {
  for (auto& p : g_posted) check(MPI_Wait(&p.request, MPI_STATUS_IGNORE), "MPI_Wait");
  g_posted.clear();
}

std::string cluster_recv(int source, const Tag* tag, int* from, Tag* tag_out) {
  MPI_Status st;
  const int src = source < 0 ? MPI_ANY_SOURCE : source;
  check(MPI_Probe(src, tag ? static_cast<int>(*tag) : MPI_ANY_TAG, MPI_COMM_WORLD, &st), "MPI_Probe");
  int n = 0;
  MPI_Get_count(&st, MPI_BYTE, &n);
  std::string b(static_cast<size_t>(n), '\0');
  check(MPI_Recv(b.data(), n, MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE),
        "MPI_Recv");
  if (from) *from = st.MPI_SOURCE;
  if (tag_out) *tag_out = static_cast<Tag>(st.MPI_TAG);
  return b;
}

bool cluster_waiting(int source, Tag tag) {
  int flag = 0;
  MPI_Status st;
  check(MPI_Iprobe(source < 0 ? MPI_ANY_SOURCE : source, static_cast<int>(tag), MPI_COMM_WORLD, &flag, &st),
        "MPI_Iprobe");
  return flag != 0;
}

bool cluster_all(bool mine) {
  if (g_cluster.size == 1) return mine;
  int in = mine ? 1 : 0, out = 0;
  check(MPI_Allreduce(&in, &out, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD), "MPI_Allreduce");
  return out != 0;
}

std::string cluster_broadcast(const std::string& s) {
  if (g_cluster.size == 1) return s;
  long long n = static_cast<long long>(s.size());
  check(MPI_Bcast(&n, 1, MPI_LONG_LONG, 0, MPI_COMM_WORLD), "MPI_Bcast");
  std::string b = g_cluster.rank == 0 ? s : std::string(static_cast<size_t>(n), '\0');
  check(MPI_Bcast(b.data(), static_cast<int>(n), MPI_BYTE, 0, MPI_COMM_WORLD), "MPI_Bcast");
  return b;
}

std::vector<std::string> cluster_gather(const std::string& s) {
  if (g_cluster.size == 1) return {s};
  const int size = g_cluster.size;
  int n = static_cast<int>(s.size());
  std::vector<int> counts(size), displs(size);
  check(MPI_Gather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, MPI_COMM_WORLD), "MPI_Gather");
  std::string all;
  if (g_cluster.rank == 0) {
    int total = 0;
    for (int r = 0; r < size; ++r) {
      displs[r] = total;
      total += counts[r];
    }
    all.resize(static_cast<size_t>(total));
  }
  check(MPI_Gatherv(s.data(), n, MPI_BYTE, all.data(), counts.data(), displs.data(), MPI_BYTE, 0,
                    MPI_COMM_WORLD),
        "MPI_Gatherv");
  std::vector<std::string> out;
  if (g_cluster.rank == 0)
    for (int r = 0; r < size; ++r) out.push_back(all.substr(static_cast<size_t>(displs[r]), static_cast<size_t>(counts[r])));
  return out;
}

std::string cluster_ring_shift(const std::string& s) {
  if (g_cluster.size == 1) return s;
  const int next = (g_cluster.rank + 1) % g_cluster.size;
  const int prev = (g_cluster.rank + g_cluster.size - 1) % g_cluster.size;
  long long n = static_cast<long long>(s.size()), m = 0;
  const int tag = static_cast<int>(Tag::kRing);
  check(MPI_Sendrecv(&n, 1, MPI_LONG_LONG, next, tag, &m, 1, MPI_LONG_LONG, prev, tag, MPI_COMM_WORLD,
                     MPI_STATUS_IGNORE),
        "MPI_Sendrecv");
  std::string b(static_cast<size_t>(m), '\0');
  check(MPI_Sendrecv(s.data(), static_cast<int>(n), MPI_BYTE, next, tag, b.data(), static_cast<int>(m), MPI_BYTE,
                     prev, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE),
        "MPI_Sendrecv");
  return b;
}

#else  // no MPI in this build: one process

void cluster_init(int*, char***) {}
void cluster_finalize() {}
void cluster_abort(int code) { std::exit(code); }
void cluster_send(int, Tag, const std::string&) { throw std::logic_error("cluster_send: built without MPI"); }
std::string cluster_recv(int, const Tag*, int*, Tag*) { throw std::logic_error("cluster_recv: built without MPI"); }
bool cluster_waiting(int, Tag) { return false; }
void cluster_post(int, Tag, std::string) { throw std::logic_error("cluster_post: built without MPI"); }
void cluster_progress() {}
void cluster_flush() {}
bool cluster_all(bool mine) { return mine; }
std::string cluster_broadcast(const std::string& s) { return s; }
std::vector<std::string> cluster_gather(const std::string& s) { return {s}; }
std::string cluster_ring_shift(const std::string& s) { return s; }

#endif

// ---- encoding ---------------------------------------------------------------------------------

template <typename V>
void ByteWriter::put(V v) {
  b_.append(reinterpret_cast<const char*>(&v), sizeof v);
}
void ByteWriter::u32(uint32_t v) { put(v); }
void ByteWriter::f64(double v) { put(v); }
void ByteWriter::str(const std::string& s) {
  u32(static_cast<uint32_t>(s.size()));
  b_ += s;
}

void ByteReader::need(size_t n) const {
  if (b_.size() - pos_ < n) throw std::runtime_error("a hybridnas MPI message ended early");
}
template <typename V>
V ByteReader::take() {
  need(sizeof(V));
  V v;
  std::memcpy(&v, b_.data() + pos_, sizeof(V));
  pos_ += sizeof(V);
  return v;
}
uint32_t ByteReader::u32() { return take<uint32_t>(); }
double ByteReader::f64() { return take<double>(); }
std::string ByteReader::str() {
  const uint32_t n = u32();
  need(n);
  std::string s = b_.substr(pos_, n);
  pos_ += n;
  return s;
}

}  // namespace hn::engine
