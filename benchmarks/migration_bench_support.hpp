// What migration_bench needs around a Node: a host that runs one Node on
// AsioTransport + AsioEventLoop over one io_context on one named thread (as
// nodenomad-node does), a probe of that loop's stalls, the target node as a
// child process re-executing this binary, a write client over the callback
// API that keeps answers honest (retries only "not applied"); the /proc
// readers (peak RSS, CPU time per thread) are in migration_bench_proc.hpp.
//
// Threads, in each process: "nn-loop" runs the io_context (the node, the
// transport, the probe); the node names its own: "nn-sync" (fsyncs),
// "nn-digest", "nn-snapshot" (outgoing snapshot chunks read ahead),
// "nn-disk-work" (compaction files, dropped shards) and "nn-restore" (an
// incoming snapshot's file); the parent's open-loop client is "nn-client".
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#pragma GCC diagnostic pop

#include <fmt/format.h>

#include "bench_common.hpp"
#include "migration_bench_proc.hpp"
#include "nodenomad/net/asio_event_loop.hpp"
#include "nodenomad/net/asio_transport.hpp"
#include "nodenomad/node.hpp"

namespace nodenomad::migration_bench {

using bench::check;
using bench::fail;
using SteadyClock = std::chrono::steady_clock;

inline double seconds_since(SteadyClock::time_point t) {
  return std::chrono::duration<double>(SteadyClock::now() - t).count();
}

// Polls `done` every `poll_ms` until it holds; fails naming `what` after
// `timeout_s`.
inline void wait_for(const std::function<bool()>& done, double timeout_s, const std::string& what,
                     int poll_ms = 20) {
  const auto start = SteadyClock::now();
  while (!done()) {
    if (seconds_since(start) > timeout_s)
      fail(fmt::format("timed out after {} s waiting for {}", timeout_s, what));
    std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms));
  }
}

// --- the loop's stalls -----------------------------------------------------------

// A timer on the loop every kPeriodMs; how late it fires is how long the
// loop was busy with something else (a client's write waits as long).
class LoopStallProbe {
 public:
  static constexpr int kPeriodMs = 10;

  explicit LoopStallProbe(boost::asio::io_context& io) : timer_(io) { arm(); }

  // The largest lateness since the last call, in ms, and how many firings
  // were more than 50 ms late; resets both.
  std::pair<double, std::uint64_t> take() {
    return {static_cast<double>(max_late_us_.exchange(0)) / 1000.0, over_50ms_.exchange(0)};
  }
  // On the loop thread.
  void cancel() { timer_.cancel(); }

 private:
  void arm() {
    expected_ = SteadyClock::now() + std::chrono::milliseconds(kPeriodMs);
    timer_.expires_at(expected_);
    timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      const auto late =
          std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - expected_);
      const auto us = static_cast<std::uint64_t>(std::max<std::int64_t>(late.count(), 0));
      std::uint64_t seen = max_late_us_.load();
      while (us > seen && !max_late_us_.compare_exchange_weak(seen, us)) {
      }
      if (us > 50'000) ++over_50ms_;
      arm();
    });
  }

  boost::asio::steady_timer timer_;
  SteadyClock::time_point expected_;
  std::atomic<std::uint64_t> max_late_us_{0};
  std::atomic<std::uint64_t> over_50ms_{0};
};

// --- one node on its own loop ----------------------------------------------------

// A free TCP port on 127.0.0.1 right now (bound, read, closed). Another
// process may take it before the node binds it; the caller retries.
inline std::uint16_t pick_free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) fail("socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    fail("cannot find a free port on 127.0.0.1");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

class NodeHost {
 public:
  // Opens the node (options.transport and options.loop are filled in) on
  // `listen_address` ("127.0.0.1:0" for any port).
  static Result<std::unique_ptr<NodeHost>> open(NodeOptions options,
                                                const std::string& listen_address) {
    std::unique_ptr<NodeHost> host(new NodeHost());
    net::AsioTransportOptions t;
    t.self = options.id;
    t.cluster_id = options.cluster_id;
    t.listen_address = listen_address;
    host->transport_ = std::make_unique<net::AsioTransport>(host->io_, t);
    options.transport = host->transport_.get();
    options.loop = &host->loop_;
    // The node opens on its loop's thread, as nodenomad-node's does (it runs
    // the loop on the thread that opened the node): the records it loads
    // are then allocated in the arena of the thread that later frees them
    // when they are overwritten. Opened here, they were in this thread's
    // arena, and every overwrite's free took that arena's lock against
    // this thread's own allocations (the bench's polling).
    std::promise<Status> opened;
    std::future<Status> opened_future = opened.get_future();
    host->thread_ = std::thread([h = host.get(), &options, &opened] {
      ::pthread_setname_np(::pthread_self(), "nn-loop");
      h->loop_tid_ = current_tid();
      Result<std::unique_ptr<Node>> node = Node::open(std::move(options));
      if (!node.is_ok()) {
        opened.set_value(node.status());
        return;
      }
      h->node_ = std::move(node).value();
      h->probe_ = std::make_unique<LoopStallProbe>(h->io_);
      opened.set_value(Status::ok());
      h->io_.run();
    });
    if (Status status = opened_future.get(); !status.ok()) {
      host->thread_.join();
      return status;
    }
    return host;
  }

  ~NodeHost() {
    if (node_) node_->stop();  // posts onto the running loop and waits
    if (thread_.joinable()) {
      std::promise<void> cancelled;
      boost::asio::post(io_, [this, &cancelled] {
        probe_->cancel();
        cancelled.set_value();
      });
      cancelled.get_future().wait();
    }
    node_.reset();
    guard_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
    transport_.reset();
  }
  NodeHost(const NodeHost&) = delete;
  NodeHost& operator=(const NodeHost&) = delete;

  Node& node() { return *node_; }
  net::AsioTransport& transport() { return *transport_; }
  LoopStallProbe& probe() { return *probe_; }
  std::uint16_t port() const { return transport_->local_port(); }
  pid_t loop_tid() const { return loop_tid_; }

 private:
  NodeHost() : loop_(io_), guard_(boost::asio::make_work_guard(io_)) {}

  boost::asio::io_context io_;
  net::AsioEventLoop loop_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard_;
  std::unique_ptr<net::AsioTransport> transport_;
  std::unique_ptr<Node> node_;
  std::unique_ptr<LoopStallProbe> probe_;
  std::thread thread_;
  pid_t loop_tid_ = 0;
};

// A counter of one Prometheus text line ("name value"); 0 if absent.
inline double metric_value(const std::string& text, const std::string& name) {
  std::size_t at = 0;
  while ((at = text.find(name + " ", at)) != std::string::npos) {
    if (at == 0 || text[at - 1] == '\n')
      return std::strtod(text.c_str() + at + name.size() + 1, nullptr);
    at += name.size();
  }
  return 0;
}

// --- the target node: this binary again, as a child -------------------------------

// Protocol on the child's stdin/stdout, one line each way:
//   child -> "ready <port> <loop tid>" once its node listens;
//   "stats" -> "stats <snapshot bytes sent> <stall max ms> <stalls over 50 ms>";
//   "quit" (or EOF) -> the node stops gracefully and the child exits 0.
// The child dies with the parent (PR_SET_PDEATHSIG) and is reaped by
// the destructor.
class TargetProcess {
 public:
  // cpu >= 0: the child runs on that CPU only.
  explicit TargetProcess(const std::vector<std::string>& args, int cpu = -1) {
    int to_child[2];
    int from_child[2];
    if (::pipe2(to_child, O_CLOEXEC) != 0 || ::pipe2(from_child, O_CLOEXEC) != 0) fail("pipe2");
    std::vector<char*> argv;
    std::vector<std::string> storage = args;
    storage.insert(storage.begin(), "/proc/self/exe");
    for (std::string& a : storage) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t parent = ::getpid();
    std::fflush(stdout);
    pid_ = ::fork();
    if (pid_ < 0) fail("fork");
    if (pid_ == 0) {
      // Only async-signal-safe calls until exec.
      ::dup2(to_child[0], STDIN_FILENO);
      ::dup2(from_child[1], STDOUT_FILENO);
      // Asio's sockets are not close-on-exec: without this the child would
      // keep node-1's listening port bound after node-1 closed it.
      if (::syscall(SYS_close_range, 3u, ~0u, 0u) != 0) {
        for (int fd = 3; fd < 4096; ++fd) ::close(fd);
      }
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(3);
      if (cpu >= 0 && !pin_to_cpu(cpu)) ::_exit(5);
      ::execv("/proc/self/exe", argv.data());
      ::_exit(4);
    }
    ::close(to_child[0]);
    ::close(from_child[1]);
    to_child_ = to_child[1];
    from_child_ = from_child[0];
  }

  ~TargetProcess() { stop(); }
  TargetProcess(const TargetProcess&) = delete;
  TargetProcess& operator=(const TargetProcess&) = delete;

  pid_t pid() const { return pid_; }

  // The next line from the child; fails after `timeout_s`.
  std::string read_line(double timeout_s) {
    const auto start = SteadyClock::now();
    while (true) {
      const std::size_t nl = buffer_.find('\n');
      if (nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return line;
      }
      const double left = timeout_s - seconds_since(start);
      if (left <= 0) fail("the target process did not answer in time");
      pollfd p{from_child_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left * 1000) + 1) <= 0) continue;
      char chunk[4096];
      const ssize_t n = ::read(from_child_, chunk, sizeof chunk);
      if (n <= 0) fail("the target process exited (see its messages above)");
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  std::string ask(const std::string& command, double timeout_s = 10) {
    const std::string line = command + "\n";
    if (::write(to_child_, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      fail("cannot write to the target process");
    }
    return read_line(timeout_s);
  }

  // Asks the child to stop, waits up to 20 s, then kills it; reaps it.
  void stop() {
    if (pid_ <= 0) return;
    const std::string quit = "quit\n";
    (void)!::write(to_child_, quit.data(), quit.size());
    ::close(to_child_);
    int status = 0;
    const auto start = SteadyClock::now();
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (seconds_since(start) > 20) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::close(from_child_);
    pid_ = 0;
  }

 private:
  pid_t pid_ = 0;
  int to_child_ = -1;
  int from_child_ = -1;
  std::string buffer_;
};

// --- writes through the callback API ------------------------------------------------

// What a value is made of. Snapshot chunks may be compressed on the wire
// (EnvelopeEncodeOptions), so the content decides what a move costs.
enum class ValueKind : std::uint8_t {
  kRandomBytes,    // uniform bytes: incompressible
  kRandomLetters,  // uniform 'a'..'z' (4.7 bits of entropy a byte)
};

// `bytes` pseudo-random bytes from `seed` (xorshift64*), fresh for every
// value so that no two values share a substring a compressor could find.
inline std::string make_value(std::uint64_t seed, std::size_t bytes, ValueKind kind) {
  std::string out(bytes, '\0');
  std::uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL;
  for (std::size_t i = 0; i < bytes; i += 8) {
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    std::uint64_t r = x * 0x2545f4914f6cdd1dULL;
    const std::size_t n = std::min<std::size_t>(8, bytes - i);
    if (kind == ValueKind::kRandomBytes) {
      std::memcpy(out.data() + i, &r, n);
      continue;
    }
    for (std::size_t j = i; j < i + n; ++j, r >>= 8)
      out[j] = static_cast<char>('a' + (r & 0xff) % 26);
  }
  return out;
}

// Puts of key i ("k" + 10 digits) with a fresh value of value_bytes. An
// answer "not applied" (kUnavailable) is sent again, up to kMaxAttempts,
// and counted in not_applied; kTimeout ("outcome unknown") and every other
// error are failures, except for a loader (retry_unknown): writing the same
// value again is harmless there, so it sends those again too and counts them
// in unknown_retried. Latencies run from the request's scheduled time to its
// final answer (so an open-loop client that falls behind is charged for
// it), per phase; phase < 0 records none.
class WriteClient {
 public:
  static constexpr int kMaxAttempts = 20;
  static constexpr int kPhases = 7;  // impact: before, the five stages, after

  WriteClient(Node& node, std::size_t value_bytes, ValueKind kind, bool retry_unknown = false)
      : node_(node), value_bytes_(value_bytes), kind_(kind), retry_unknown_(retry_unknown) {}

  static std::string key_of(std::uint64_t i) { return fmt::format("k{:010}", i); }

  void put(std::uint64_t key, SteadyClock::time_point scheduled, int phase) {
    in_flight_.fetch_add(1);
    const std::uint64_t seed = key ^ (sent_.fetch_add(1) << 32);
    send(std::make_shared<const std::string>(make_value(seed, value_bytes_, kind_)),
         Attempt{key, scheduled, phase, 1});
  }

  std::uint64_t in_flight() const { return in_flight_.load(); }
  // Blocks until fewer than `limit` are in flight.
  void wait_below(std::uint64_t limit) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return in_flight_.load() < limit; });
  }
  void drain(double timeout_s) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, std::chrono::duration<double>(timeout_s),
                      [&] { return in_flight_.load() == 0; })) {
      fail(fmt::format("{} writes still unanswered after {} s", in_flight_.load(), timeout_s));
    }
  }

  std::uint64_t ok() const { return ok_.load(); }
  std::uint64_t not_applied() const { return not_applied_.load(); }
  std::uint64_t failed() const { return failed_.load(); }
  std::uint64_t unknown_retried() const { return unknown_retried_.load(); }
  std::string first_failure() const {
    std::lock_guard lock(mu_);
    return first_failure_;
  }
  std::vector<double> take_latencies_ms(int phase) {
    std::lock_guard lock(mu_);
    return std::exchange(latencies_ms_[phase], {});
  }
  // Every acknowledged write's scheduled time and latency, in the order answered.
  struct Answered {
    SteadyClock::time_point scheduled;
    double ms;
  };
  std::vector<Answered> take_timeline() {
    std::lock_guard lock(mu_);
    return std::exchange(timeline_, {});
  }
  std::uint64_t failed_in_phase(int phase) const { return failed_by_phase_[phase].load(); }
  std::uint64_t not_applied_in_phase(int phase) const {
    return not_applied_by_phase_[phase].load();
  }

 private:
  struct Attempt {
    std::uint64_t key;
    SteadyClock::time_point scheduled;
    int phase;
    int attempt;
  };

  // The value is kept (shared) only for a retry.
  void send(std::shared_ptr<const std::string> value, Attempt a) {
    node_.put(key_of(a.key), *value, PutOptions{}, [this, a, value](KvReply reply) {
      on_answer(std::move(value), a, std::move(reply));
    });
  }

  void on_answer(std::shared_ptr<const std::string> value, Attempt a, KvReply reply) {
    if (reply.status.is(StatusCode::kUnavailable) && a.attempt < kMaxAttempts) {
      not_applied_.fetch_add(1);
      if (a.phase >= 0) not_applied_by_phase_[a.phase].fetch_add(1);
      ++a.attempt;
      send(std::move(value), a);
      return;
    }
    if (reply.status.is(StatusCode::kTimeout) && retry_unknown_ && a.attempt < kMaxAttempts) {
      unknown_retried_.fetch_add(1);
      ++a.attempt;
      send(std::move(value), a);
      return;
    }
    const double ms =
        std::chrono::duration<double, std::milli>(SteadyClock::now() - a.scheduled).count();
    {
      std::lock_guard lock(mu_);
      if (reply.status.is_ok()) {
        ok_.fetch_add(1);
        if (a.phase >= 0) {
          latencies_ms_[a.phase].push_back(ms);
          timeline_.push_back({a.scheduled, ms});
        }
      } else {
        failed_.fetch_add(1);
        if (a.phase >= 0) failed_by_phase_[a.phase].fetch_add(1);
        if (first_failure_.empty()) first_failure_ = reply.status.to_string();
      }
      in_flight_.fetch_sub(1);
    }
    cv_.notify_all();
  }

  Node& node_;
  std::size_t value_bytes_;
  ValueKind kind_;
  bool retry_unknown_;
  std::atomic<std::uint64_t> sent_{0};
  std::atomic<std::uint64_t> in_flight_{0};
  std::atomic<std::uint64_t> ok_{0};
  std::atomic<std::uint64_t> not_applied_{0};
  std::atomic<std::uint64_t> failed_{0};
  std::atomic<std::uint64_t> unknown_retried_{0};
  std::atomic<std::uint64_t> failed_by_phase_[kPhases] = {};
  std::atomic<std::uint64_t> not_applied_by_phase_[kPhases] = {};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<double> latencies_ms_[kPhases];
  std::vector<Answered> timeline_;
  std::string first_failure_;
};

// Calls an asynchronous API and waits for its one answer.
template <typename T, typename Call>
T await_answer(Call call, double timeout_s, const std::string& what) {
  auto promise = std::make_shared<std::promise<T>>();
  std::future<T> future = promise->get_future();
  call([promise](T value) { promise->set_value(std::move(value)); });
  if (future.wait_for(std::chrono::duration<double>(timeout_s)) != std::future_status::ready) {
    fail(fmt::format("no answer to {} within {} s", what, timeout_s));
  }
  return future.get();
}

// --- the two nodes ----------------------------------------------------------------

inline constexpr const char* kClusterId = "migration-bench";
// A compaction period no run reaches.
inline constexpr std::uint64_t kNeverCompact = 1ull << 62;

inline const NodeId& node1() {
  static const NodeId id("node-1");
  return id;
}
inline const NodeId& node2() {
  static const NodeId id("node-2");
  return id;
}

inline NodeOptions node_options(const NodeId& id, const std::string& dir, std::uint64_t chunk_bytes,
                                std::uint64_t compact_every) {
  NodeOptions n;
  n.id = id;
  n.cluster_id = kClusterId;
  n.data_dir = dir;
  n.shard_count = 1;
  n.replication_factor = 1;
  n.compact_every_entries = compact_every;
  n.migration_chunk_bytes = chunk_bytes;
  n.rebalance_on_join = false;
  return n;
}

struct ChildStats {
  double snapshot_bytes_sent = 0;
  double stall_ms = 0;
  std::uint64_t stalls_over_50ms = 0;
  bool ready = false;
};

struct ClusterSettings {
  std::string parent_dir;
  std::string target_parent_dir;  // node-2's; empty: parent_dir
  std::uint64_t chunk_bytes = 0;
  ValueKind values = ValueKind::kRandomBytes;
  std::uint64_t compact_every = 0;  // node-1's, while it loads the shard
  int target_cpu = -1;  // >= 0: node-2's process runs on that CPU only
};

// node-1 in this process, founding a one-shard cluster (R = 1) in a fresh
// directory under settings.parent_dir; node-2 in a child process started by
// spawn_target() and made a member by add_target().
class Cluster {
 public:
  Cluster(ClusterSettings settings, const std::string& name)
      : settings_(std::move(settings)),
        scratch_(settings_.parent_dir, "migration-bench"),
        target_scratch_(settings_.target_parent_dir.empty() ? settings_.parent_dir
                                                            : settings_.target_parent_dir,
                        "migration-bench-target") {
    for (int attempt = 0; attempt < 5 && !source_; ++attempt) {
      address1_ = fmt::format("127.0.0.1:{}", pick_free_port());
      if (!open_node1(settings_.compact_every)) {
        check(PosixFileSystem::instance().remove_all(dir1()), "clear node-1's directory");
      }
    }
    if (!source_) fail("node-1 could not start");
    wait_for([&] { return leads_shard(); }, 30, "node-1 to lead shard 0");
    std::fprintf(stderr, "[%s] node-1 leads shard 0 on %s (data in %s)\n", name.c_str(),
                 address1_.c_str(), scratch_.path().c_str());
  }

  // Stops node-1 and opens it again from its directory with another
  // compaction period (the impact run: no compaction inside its windows).
  void restart_node1(std::uint64_t compact_every) {
    source_.reset();
    if (!open_node1(compact_every)) fail("node-1 did not restart");
    wait_for([&] { return leads_shard(); }, 60, "node-1 to lead shard 0 after its restart");
  }
  ~Cluster() {
    target_.reset();
    source_.reset();
  }

  const std::string& dir() const { return scratch_.path(); }
  std::string dir1() const { return join_path(scratch_.path(), "node-1"); }
  NodeHost& source() { return *source_; }
  Node& node() { return source_->node(); }
  TargetProcess& target() { return *target_; }
  pid_t child_loop_tid() const { return child_loop_tid_; }

  // Starts node-2's process. Call it while this process is small: fork()
  // write-protects every page of the parent, and the first write to each
  // then faults (a 1 GiB shard's first capture would pay for it).
  void spawn_target() {
    ::malloc_trim(0);  // an earlier cluster's freed heap goes back first
    target_ = std::make_unique<TargetProcess>(std::vector<std::string>{
        "--role", "target", "--node-dir", join_path(target_scratch_.path(), "node-2"), "--join-address",
        address1_, "--chunk", std::to_string(settings_.chunk_bytes)}, settings_.target_cpu);
    const std::string ready = target_->read_line(60);
    int tid = 0;
    if (std::sscanf(ready.c_str(), "ready %u %d", &port2_, &tid) != 2) {
      fail("node-2 said '" + ready + "' instead of ready");
    }
    child_loop_tid_ = tid;
  }

  // Adds the spawned node-2 to the cluster and waits until it knows it.
  void add_target() {
    const Status added = await_answer<Status>(
        [&](auto done) { node().add_node(node2(), fmt::format("127.0.0.1:{}", port2_), done); }, 60,
        "add_node");
    check(added, "add_node(node-2)");
    wait_for([&] { return child_stats().ready; }, 60, "node-2 to catch up with the metadata", 100);
  }

  ChildStats child_stats() {
    ChildStats s;
    unsigned long long stalls = 0;
    int ready = 0;
    const std::string line = target_->ask("stats");
    if (std::sscanf(line.c_str(), "stats %lf %lf %llu %d", &s.snapshot_bytes_sent, &s.stall_ms,
                    &stalls, &ready) != 4) {
      fail("node-2 answered '" + line + "' to stats");
    }
    s.stalls_over_50ms = stalls;
    s.ready = ready == 1;
    return s;
  }

  double snapshot_bytes_sent(const NodeId& id) {
    if (id == node2()) return child_stats().snapshot_bytes_sent;
    return metric_value(node().metrics_text(), "nodenomad_migration_snapshot_bytes_sent_total");
  }

  std::uint64_t compact_every() const { return settings_.compact_every; }
  std::uint64_t chunk_bytes() const { return settings_.chunk_bytes; }
  ValueKind values() const { return settings_.values; }

 private:
  bool open_node1(std::uint64_t compact_every) {
    NodeOptions n = node_options(node1(), dir1(), settings_.chunk_bytes, compact_every);
    n.initial_members = {{node1(), address1_}};
    Result<std::unique_ptr<NodeHost>> host = NodeHost::open(std::move(n), address1_);
    if (!host.is_ok()) {
      std::fprintf(stderr, "node-1 on %s: %s\n", address1_.c_str(),
                   host.status().to_string().c_str());
      return false;
    }
    source_ = std::move(host).value();
    return true;
  }

  bool leads_shard() {
    for (const NodeGroupStatus& g : node().group_status()) {
      if (g.group == group_of_shard(ShardId(0)) && g.role == RaftRole::kLeader) return true;
    }
    return false;
  }

  ClusterSettings settings_;
  bench::ScratchDir scratch_;
  bench::ScratchDir target_scratch_;
  std::string address1_;
  std::unique_ptr<NodeHost> source_;
  std::unique_ptr<TargetProcess> target_;
  pid_t child_loop_tid_ = 0;
  unsigned port2_ = 0;
};

}  // namespace nodenomad::migration_bench
