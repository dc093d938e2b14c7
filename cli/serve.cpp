#include "cli/serve.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <deque>
#include <iostream>
#include <list>
#include <unordered_map>

#include "cli/serve_protocol.hpp"
#include "engine/devices.hpp"
#include "net/text.hpp"

namespace hn::cli {

using engine::Proxy;
using nlohmann::json;

namespace {

volatile sig_atomic_t g_stop_signal = 0;
int g_wake_fd = -1;  // the write end of a self-pipe: a signal wakes poll()

extern "C" void on_stop_signal(int sig) {
  if (g_stop_signal) {  // a second Ctrl-C: stop now, without finishing the work in flight
    signal(sig, SIG_DFL);
    raise(sig);
    return;
  }
  g_stop_signal = sig;
  if (g_wake_fd >= 0) {
    const char c = 1;
    const ssize_t n = write(g_wake_fd, &c, 1);
    (void)n;
  }
}

// One connection: stdin/stdout, or one socket client.
struct Client {
  int in_fd = -1;
  int out_fd = -1;
  bool socket = false;
  std::string in;            // bytes read, not yet a complete line
  std::string out;           // responses not yet written (socket clients)
  bool discarding = false;   // inside a line longer than the limit
  std::string long_head;     // the first bytes of that line (for its id)
  bool read_closed = false;  // EOF or read error: no more requests
  bool dead = false;         // cannot be written to: responses are dropped
};

struct Pending {
  std::shared_ptr<Client> client;
  ServeRequest request;
  bool failed = false;  // answered by `error`
  json error_id;
  std::string error;
};

void set_nonblocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

constexpr size_t kMaxUnsentBytes = size_t{16} << 20;  // per client, before it is read from again
constexpr size_t kMaxReadPerRound = size_t{1} << 20;  // per client and poll round

class Server {
 public:
  Server(const ServeCommand& cmd, const engine::ScoreSettings& s, std::string backend,
         const engine::ScoreInputs& inputs, engine::ZStats stats, const net::ArchTable* table,
         engine::Scorer& scorer, engine::CachedScorer* cached)
      : cmd_(cmd), s_(s), backend_(std::move(backend)), inputs_(inputs), stats_(std::move(stats)),
        table_(table), scorer_(scorer), cached_(cached), start_(std::chrono::steady_clock::now()) {
    want_ninaswot_ = std::find(s_.proxies.begin(), s_.proxies.end(), Proxy::kNinaswot) != s_.proxies.end();
  }

  json describe() const {
    json proxies = json::array();
    for (Proxy p : s_.proxies) proxies.push_back(engine::proxy_name(p));
    std::string device = cpu_model_name();
    if (backend_ == "cuda") {
      const auto devs = engine::list_gpus();
      if (s_.device >= 0 && static_cast<size_t>(s_.device) < devs.size()) device = devs[s_.device].name;
    }
    json j = {{"protocol", kServeProtocol},
              {"version", HYBRIDNAS_VERSION},
              {"backend", backend_},
              {"device", device},
              {"space", net::space_name(s_.space)},
              {"proxies", proxies},
              {"input", inputs_.identity},
              {"settings", score_settings_json(s_, inputs_, stats_)},
              {"max_request_bytes", cmd_.max_request_bytes},
              {"max_archs", cmd_.max_archs},
              {"pid", static_cast<int64_t>(getpid())}};
    if (!cmd_.socket_path.empty()) j["socket"] = cmd_.socket_path;
    if (!cmd_.cache.empty()) j["cache"] = cmd_.cache;
    return j;
  }

  int run(int listen_fd) {
    listen_fd_ = listen_fd;
    json ready = describe();
    ready["ready"] = true;
    ready_line_ = ready.dump() + "\n";
    if (listen_fd_ < 0) {
      auto c = std::make_shared<Client>();
      c->in_fd = 0;
      c->out_fd = 1;
      clients_.push_back(c);
      write_blocking(*c, ready_line_);
    } else {
      // The ready record on stdout tells a launching process that the socket accepts; every
      // client also gets it as its first line.
      std::cout << ready_line_ << std::flush;
    }
    if (!cmd_.scoring.quiet)
      std::cerr << "[serve] ready: backend " << backend_ << ", proxies " << engine::proxy_list_string(s_.proxies)
                << (listen_fd_ >= 0 ? ", socket " + cmd_.socket_path : std::string(", stdin/stdout")) << "\n";
    loop();
    flush_all(std::chrono::seconds(10));
    if (!cmd_.scoring.quiet)
      std::cerr << "[serve] stopped (" << stop_reason_ << "): " << requests_ << " requests, "
                << archs_scored_ << " architectures scored\n";
    return kExitOk;
  }

 private:
  void loop() {
    std::vector<char> buf(1 << 16);
    while (true) {
      if (g_stop_signal && !stopping_) stop(std::string("signal ") + strsignal(g_stop_signal));
      if (stopping_ && pending_.empty()) return;
      std::vector<pollfd> fds;
      std::vector<std::shared_ptr<Client>> polled;
      fds.push_back({wake_read_fd_, POLLIN, 0});
      if (listen_fd_ >= 0 && !stopping_) fds.push_back({listen_fd_, POLLIN, 0});
      const size_t first_client = fds.size();
      for (auto& c : clients_) {
        short ev = 0;
        // Back-pressure: a client whose answers pile up unread is not read from until they drain.
        if (!c->read_closed && !stopping_ && c->out.size() < kMaxUnsentBytes) ev |= POLLIN;
        if (c->socket && !c->out.empty() && !c->dead) ev |= POLLOUT;
        if (!ev) continue;
        // stdio: one fd for input; its output is written blocking.
        fds.push_back({ev & POLLIN ? c->in_fd : c->out_fd, ev, 0});
        polled.push_back(c);
      }
      const int timeout = pending_.empty() ? -1 : 0;
      const int n = poll(fds.data(), fds.size(), timeout);
      if (n < 0 && errno != EINTR) {
        stop(std::string("poll failed: ") + std::strerror(errno));
        continue;
      }
      if (n > 0) {
        if (fds[0].revents) {
          char drain[64];
          while (read(wake_read_fd_, drain, sizeof drain) > 0) {
          }
        }
        if (listen_fd_ >= 0 && !stopping_ && fds[1].revents & POLLIN) accept_clients();
        for (size_t i = first_client; i < fds.size(); ++i) {
          auto& c = polled[i - first_client];
          const short re = fds[i].revents;
          if (re & POLLOUT) flush(*c);
          // A hang-up is read too: read() then returns what is left, and the end of input.
          if ((fds[i].events & POLLIN) && (re & (POLLIN | POLLHUP | POLLERR))) read_from(*c, c, buf);
          if (re & POLLNVAL) c->dead = c->read_closed = true;
        }
      }
      if (!pending_.empty()) process();
      // Forget finished clients; stdio's EOF ends the server.
      for (auto it = clients_.begin(); it != clients_.end();) {
        Client& c = **it;
        if (!c.socket && c.read_closed && !stopping_) stop("end of input");
        const bool has_pending = std::any_of(pending_.begin(), pending_.end(),
                                             [&](const Pending& p) { return p.client.get() == &c; });
        if (c.socket && (c.dead || (c.read_closed && c.out.empty())) && !has_pending) {
          close(c.in_fd);
          it = clients_.erase(it);
        } else {
          ++it;
        }
      }
    }
  }

  void stop(const std::string& why) {
    if (stopping_) return;
    stopping_ = true;
    stop_reason_ = why;
  }

  void accept_clients() {
    while (true) {
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;  // EAGAIN: none left (other errors: try again at the next poll)
      auto c = std::make_shared<Client>();
      c->in_fd = c->out_fd = fd;
      c->socket = true;
      if (static_cast<int>(clients_.size()) >= cmd_.max_clients) {
        c->out = json({{"id", nullptr},
                       {"error", "the server has " + std::to_string(cmd_.max_clients) +
                                     " clients already (--max-clients); try again later"}})
                     .dump() + "\n";
        flush(*c);
        close(fd);
        continue;
      }
      c->out = ready_line_;
      flush(*c);
      clients_.push_back(c);
    }
  }

  void read_from(Client& c, const std::shared_ptr<Client>& self, std::vector<char>& buf) {
    size_t taken = 0;
    while (taken < kMaxReadPerRound) {
      const ssize_t n = read(c.in_fd, buf.data(), buf.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        c.read_closed = true;
        if (c.socket) c.dead = true;  // reset by the peer
        return;
      }
      if (n == 0) {
        c.read_closed = true;
        if (!c.in.empty() || c.discarding) {  // a last request without its newline
          std::string last = std::move(c.in);
          c.in.clear();
          take_line(self, last);
        }
        return;
      }
      c.in.append(buf.data(), static_cast<size_t>(n));
      taken += static_cast<size_t>(n);
      split_lines(self);
      if (!c.socket) return;  // stdin is blocking: read again only when poll says so
    }
  }

  void split_lines(const std::shared_ptr<Client>& self) {
    Client& c = *self;
    size_t from = 0;
    while (true) {
      const size_t nl = c.in.find('\n', from);
      if (nl == std::string::npos) break;
      std::string line = c.in.substr(from, nl - from);
      from = nl + 1;
      take_line(self, line);
      if (stop_requested_) {
        c.in.clear();
        return;
      }
    }
    c.in.erase(0, from);
    const size_t limit = static_cast<size_t>(cmd_.max_request_bytes);
    if (c.in.size() > limit) {
      if (!c.discarding) c.long_head = c.in.substr(0, 256);
      c.discarding = true;
      c.in.clear();
    }
  }

  // One complete line from a client: queued in arrival order (responses go out in that order).
  void take_line(const std::shared_ptr<Client>& c, std::string line) {
    if (stop_requested_) return;  // after a shutdown request nothing more is taken
    if (c->discarding) {
      c->discarding = false;
      Pending p;
      p.client = c;
      p.failed = true;
      p.error_id = leading_request_id(c->long_head);
      p.error = "the request is longer than " + std::to_string(cmd_.max_request_bytes) +
                " bytes (--max-request-bytes); send fewer architectures per request";
      c->long_head.clear();
      pending_.push_back(std::move(p));
      ++requests_;
      return;
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) return;  // blank lines are no request
    if (line.size() > static_cast<size_t>(cmd_.max_request_bytes)) {
      c->discarding = true;
      c->long_head = line.substr(0, 256);
      take_line(c, "");
      return;
    }
    Pending p;
    p.client = c;
    ++requests_;
    try {
      p.request = parse_serve_request(line, s_.proxies, static_cast<size_t>(cmd_.max_archs));
      if (p.request.op == ServeOp::kShutdown) stop_requested_ = true;
    } catch (const RequestError& e) {
      p.failed = true;
      p.error_id = e.id;
      p.error = e.what();
    }
    pending_.push_back(std::move(p));
  }

  // Answers every queued request: the architectures of all score requests are scored as one
  // population (each distinct cell once), then the responses go out in arrival order.
  void process() {
    std::deque<Pending> batch;
    batch.swap(pending_);
    std::vector<net::Arch> work;
    std::unordered_map<int, size_t> slot_of;
    std::vector<std::vector<ArchItem>> items(batch.size());
    std::vector<std::vector<long>> slots(batch.size());
    for (size_t b = 0; b < batch.size(); ++b) {
      const Pending& p = batch[b];
      if (p.failed || p.request.op != ServeOp::kScore || p.client->dead) continue;
      for (size_t i = 0; i < p.request.archs.size(); ++i) {
        ArchItem it;
        if (!p.request.arch_is_text[i]) {
          it.input = net::printable(p.request.archs[i]);
          it.error = s_.space == net::Space::kNatsSss
                         ? "'" + it.input + "' is not an architecture: give NATS-SSS widths c1:c2:c3:c4:c5 (a string) "
                           "or a NATS-SSS index 0..32767 (an integer)"
                         : "'" + it.input + "' is not an architecture: give an NB201 arch string, an NB201 "
                           "index (an integer), or NASLib op indices / one-hot values (a list of numbers)";
        } else {
          it = resolve_arch_text(p.request.archs[i], 0, table_, s_.space);
        }
        long slot = -1;
        if (it.arch) {
          const int code = static_cast<int>(net::arch_code(*it.arch));
          auto [pos, fresh] = slot_of.emplace(code, work.size());
          if (fresh) work.push_back(*it.arch);
          slot = static_cast<long>(pos->second);
        }
        items[b].push_back(std::move(it));
        slots[b].push_back(slot);
      }
    }
    std::vector<std::optional<engine::ArchScore>> scores(work.size());
    std::string failure;
    if (!work.empty()) {
      const auto t0 = std::chrono::steady_clock::now();
      try {
        scorer_.score(work, [&](size_t i, engine::ArchScore&& a) {
          if (want_ninaswot_)
            a[Proxy::kNinaswot] = engine::ninaswot_value(*a[Proxy::kNaswot], *a[Proxy::kNi], stats_);
          scores[i] = std::move(a);
        });
      } catch (const std::bad_alloc&) {
        failure = "out of memory scoring " + std::to_string(work.size()) +
                  " architectures; send fewer per request";
      } catch (const std::exception& e) {
        failure = std::string("scoring failed: ") + net::printable(e.what(), 400);
      }
      archs_scored_ += work.size();
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (!cmd_.scoring.quiet && secs >= 2.0)
        std::cerr << "[serve] scored " << work.size() << " architectures for " << batch.size()
                  << " requests in " << secs << " s\n";
    }
    for (size_t b = 0; b < batch.size(); ++b) {
      Pending& p = batch[b];
      json r;
      if (p.failed) {
        r = {{"id", p.error_id}, {"error", p.error}};
      } else if (p.request.op == ServeOp::kPing) {
        r = {{"id", p.request.id}, {"pong", true}};
      } else if (p.request.op == ServeOp::kInfo) {
        json info = describe();
        info["uptime_s"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
        info["requests"] = requests_;
        info["archs_scored"] = archs_scored_;
        info["clients"] = listen_fd_ >= 0 ? clients_.size() : 1;
        if (cached_) info["cache_hits"] = cached_->cache_hits();
        r = {{"id", p.request.id}, {"info", info}};
      } else if (p.request.op == ServeOp::kShutdown) {
        stop("shutdown request");
        r = {{"id", p.request.id}, {"shutdown", true}};
      } else if (!failure.empty() && std::any_of(slots[b].begin(), slots[b].end(), [](long s) { return s >= 0; })) {
        r = {{"id", p.request.id}, {"error", failure}};
      } else {
        json results = json::array();
        for (size_t i = 0; i < items[b].size(); ++i) {
          Record rec;
          const ArchItem& it = items[b][i];
          if (!it.error.empty()) {
            rec.input = it.input;
            rec.error = it.error;
          } else {
            rec.score = *scores[static_cast<size_t>(slots[b][i])];
            rec.score->arch = *it.arch;
            rec.index = it.index;
          }
          results.push_back(record_json(rec, p.request.proxies));
        }
        r = {{"id", p.request.id}, {"results", std::move(results)}};
      }
      send(p.client, r.dump() + "\n");
    }
  }

  void send(const std::shared_ptr<Client>& c, const std::string& line) {
    if (c->dead) return;
    if (!c->socket) {
      write_blocking(*c, line);
      return;
    }
    c->out += line;
    if (c->out.size() > 64 * kMaxUnsentBytes) {  // one huge answer nobody reads
      c->dead = true;
      c->out.clear();
      return;
    }
    flush(*c);
  }

  void write_blocking(Client& c, const std::string& line) {
    size_t done = 0;
    while (done < line.size()) {
      const ssize_t n = write(c.out_fd, line.data() + done, line.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        c.dead = true;
        stop("stdout closed");
        return;
      }
      done += static_cast<size_t>(n);
    }
  }

  void flush(Client& c) {
    while (!c.out.empty() && !c.dead) {
      const ssize_t n = ::send(c.out_fd, c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (n <= 0) {
        c.dead = true;  // the client went away: its responses are dropped
        c.out.clear();
        return;
      }
      c.out.erase(0, static_cast<size_t>(n));
    }
  }

  // At exit: what is still buffered for socket clients goes out, for at most `limit`.
  void flush_all(std::chrono::seconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      std::vector<pollfd> fds;
      for (auto& c : clients_)
        if (c->socket && !c->dead && !c->out.empty()) fds.push_back({c->out_fd, POLLOUT, 0});
      if (fds.empty()) break;
      poll(fds.data(), fds.size(), 100);
      for (auto& c : clients_)
        if (c->socket) flush(*c);
    }
    for (auto& c : clients_)
      if (c->socket) close(c->in_fd);
    clients_.clear();
  }

 public:
  int wake_read_fd_ = -1;

 private:
  const ServeCommand& cmd_;
  const engine::ScoreSettings& s_;
  std::string backend_;
  const engine::ScoreInputs& inputs_;
  engine::ZStats stats_;
  const net::ArchTable* table_;
  engine::Scorer& scorer_;
  engine::CachedScorer* cached_;
  std::chrono::steady_clock::time_point start_;
  bool want_ninaswot_ = false;
  int listen_fd_ = -1;
  std::string ready_line_;
  std::list<std::shared_ptr<Client>> clients_;
  std::deque<Pending> pending_;
  bool stopping_ = false;
  bool stop_requested_ = false;
  std::string stop_reason_;
  uint64_t requests_ = 0;
  uint64_t archs_scored_ = 0;
};

// Listens on a Unix domain socket at `path`, mode 0600. A stale socket file (no server answers
// on it) is replaced; anything else at the path is refused.
int listen_unix(const std::string& path, ino_t* inode) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path))
    throw CliError(kExitUsage, "--socket '" + path + "' is " + std::to_string(path.size()) +
                                   " bytes long; a Unix socket path holds at most " +
                                   std::to_string(sizeof(addr.sun_path) - 1));
  std::memcpy(addr.sun_path, path.data(), path.size());
  struct stat st{};
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode))
      throw CliError(kExitData, "--socket '" + path + "' exists and is not a socket; refusing to replace it");
    const int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const bool live = probe >= 0 && connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    if (probe >= 0) close(probe);
    if (live) throw CliError(kExitData, "--socket '" + path + "': another server is listening on it");
    unlink(path.c_str());  // stale: left by a server that was killed
  }
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw CliError(kExitData, std::string("cannot create a socket: ") + std::strerror(errno));
  const mode_t old = umask(0177);  // the socket file is created 0600: only this user may connect
  const int rc = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  const int bind_errno = errno;
  umask(old);
  if (rc != 0) {
    close(fd);
    throw CliError(kExitData, "--socket '" + path + "': cannot bind (" + std::strerror(bind_errno) + ")");
  }
  if (listen(fd, 64) != 0) {
    close(fd);
    unlink(path.c_str());
    throw CliError(kExitData, "--socket '" + path + "': cannot listen (" + std::strerror(errno) + ")");
  }
  set_nonblocking(fd);
  if (lstat(path.c_str(), &st) == 0) *inode = st.st_ino;
  return fd;
}

}  // namespace

void ServeCommand::add_to(CLI::App& app) {
  scoring.add_to(app);
  app.add_option("--cache", cache, "SQLite score cache shared with score and search (see score --cache)");
  ninaswot.add_to(app, &scoring.space);
  app.add_option("--socket", socket_path,
                 "Listen on this Unix domain socket (mode 0600) for several clients, instead of "
                 "answering stdin on stdout");
  app.add_option("--max-request-bytes", max_request_bytes,
                 "Longest request line accepted (16 MiB); longer ones get an error response")
      ->transform(int_range(1024, int64_t{1} << 30));
  app.add_option("--max-archs", max_archs, "Most architectures in one request (100000)")
      ->transform(int_range(1, 10000000));
  app.add_option("--max-clients", max_clients, "With --socket: most clients at once (64)")
      ->transform(int_range(1, 4096));
}

int ServeCommand::run() {
  std::string backend;
  const engine::ScoreSettings s = scoring.settings(&backend, nullptr);
  check_distinct({{"--cache", cache}, {"--stats", ninaswot.stats_file}, {"--data", scoring.data},
                  {"--table", scoring.table}, {"--socket", socket_path}});
  std::unique_ptr<engine::ScoreCache> db;
  if (!cache.empty()) db = open_cache(cache);
  const auto table = load_table(scoring.table, false, scoring.quiet, s.space);
  const engine::ScoreInputs inputs = load_inputs_or_fail(s);
  engine::ZStats stats;
  if (std::find(s.proxies.begin(), s.proxies.end(), Proxy::kNinaswot) != s.proxies.end())
    stats = ninaswot_stats(s, inputs, backend, ninaswot.stats_file, ninaswot.reference_sample,
                           ninaswot.search_seed, scoring.quiet);
  else if (!ninaswot.stats_file.empty())
    throw CliError(kExitUsage, "--stats is for ninaswot, which --proxies does not include");
  engine::CachedScorer* cached = nullptr;
  auto scorer = make_cached_scorer(backend, s, inputs, db.get(), &cached);

  int wake[2];
  if (pipe2(wake, O_CLOEXEC | O_NONBLOCK) != 0) throw CliError(kExitInternal, "cannot create a pipe");
  g_wake_fd = wake[1];
  struct sigaction sa{};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a client that goes away is an EPIPE, not the end of the server

  int listen_fd = -1;
  ino_t inode = 0;
  if (!socket_path.empty()) listen_fd = listen_unix(socket_path, &inode);
  Server server(*this, s, backend, inputs, stats, table.get(), *scorer, cached);
  server.wake_read_fd_ = wake[0];
  int rc = kExitOk;
  try {
    rc = server.run(listen_fd);
  } catch (...) {
    if (listen_fd >= 0) {
      struct stat st{};
      if (lstat(socket_path.c_str(), &st) == 0 && st.st_ino == inode) unlink(socket_path.c_str());
    }
    throw;
  }
  if (listen_fd >= 0) {
    close(listen_fd);
    struct stat st{};
    // Removed only when it is still ours (not replaced by another server meanwhile).
    if (lstat(socket_path.c_str(), &st) == 0 && st.st_ino == inode) unlink(socket_path.c_str());
  }
  g_wake_fd = -1;
  close(wake[0]);
  close(wake[1]);
  return rc;
}

}  // namespace hn::cli
