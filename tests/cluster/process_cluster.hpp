// ProcessCluster: N real `nodenomad-node` processes on loopback, for tests
// that kill, restart and abuse the actual server (docs/testing-real-processes.md).
//
// Each node gets a free loopback port (below the kernel's ephemeral range,
// checked by binding it), its own DATA_DIR under one temporary directory, and
// a log file that takes its stderr (JSON lines). The nodes are configured by
// environment variables only; inherited NodeNomad variables are removed, so a
// developer's shell does not change the test.
//
// Waiting is always polling with a deadline that names what it waited for;
// deadlines are scaled up when the tests are built with a sanitizer (the
// server binary then is instrumented too and starts several times slower).
//
// Failures: every method that can fail FAILs the current Catch2 test with the
// reason (a node that exited, a deadline passed). When the test has failed,
// the destructor prints the last lines of every node's log and keeps the
// temporary directory; otherwise it removes it. Processes still running at
// destruction are killed (SIGKILL) and reaped.
//
// Thread safety: none. Call it from the test's main thread only: Catch2's
// assertions are not thread-safe, and the processes are started with
// PR_SET_PDEATHSIG, which fires when the *thread* that forked them exits.
// A node also dies with the test process, so a crashed or timed-out test
// leaves no server behind.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cluster/http_client.hpp"
#include "cluster/json_reader.hpp"

namespace nodenomad::process_testing {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr int kSanitizerSlowdown = 4;
#else
inline constexpr int kSanitizerSlowdown = 1;
#endif

// A deadline of `base` on a plain build, longer under sanitizers.
inline std::chrono::milliseconds scaled(std::chrono::milliseconds base) {
  return base * kSanitizerSlowdown;
}

inline constexpr std::chrono::milliseconds kReadyTimeout{15'000};  // scaled: 60 s under ASan
inline constexpr std::chrono::milliseconds kExitTimeout{15'000};   // SIGTERM to exit
inline constexpr std::chrono::milliseconds kProbeTimeout{3'000};   // one probe request
inline constexpr std::chrono::milliseconds kPollInterval{25};      // between probes

struct ClusterOptions {
  std::size_t nodes = 3;
  // Mixed with the process id to choose ports; the ports are not part of a
  // replay, only the workload's choices are.
  std::uint64_t seed = 0;
  std::string shard_count = "8";
  std::string request_timeout = "2s";
  std::string log_level = "info";
  // Further settings for every node, e.g. {"REPLICATION_FACTOR", "3"}.
  std::vector<std::pair<std::string, std::string>> extra_env;
};

// How a process ended.
struct ExitStatus {
  bool exited = false;  // normal exit: `code`; otherwise killed by `signal`
  int code = 0;
  int signal = 0;

  static ExitStatus from_wait_status(int status);
  std::string describe() const;  // "exit 0", "killed by signal 9 (Killed)"
};

class ProcessCluster {
 public:
  explicit ProcessCluster(ClusterOptions options);
  ~ProcessCluster();
  ProcessCluster(const ProcessCluster&) = delete;
  ProcessCluster& operator=(const ProcessCluster&) = delete;

  // Starts every node and waits until the cluster is ready (wait_ready()).
  // A node that exits because its port was taken meanwhile makes the whole
  // cluster start again on fresh ports, a few times at most.
  void start();
  // GET /ready answers 200 on every running node, then a write through each
  // running node succeeds.
  void wait_ready(std::chrono::milliseconds timeout = scaled(kReadyTimeout));

  void kill9(std::size_t node);
  // SIGKILL to every running node first, then reaps them: "all at once".
  void kill9_all();
  // SIGTERM and wait for the exit; answers how it ended (a graceful stop is
  // "exit 0"). FAILs if it does not end within kExitTimeout.
  ExitStatus terminate(std::size_t node);
  // Starts a node that was killed or terminated, on its port and data.
  void restart(std::size_t node);

  // Adds a node that is not a founder: it gets a free port, a data
  // directory and a log now, and is started by start_node(). It starts with
  // JOIN=<`join_through`'s address> and BIND_HOST=127.0.0.1, and is not in
  // CLUSTER_NODES (the founders' list), as docs/configuration.md's
  // "Joining a running cluster" says; the member it joins through adds it,
  // and once it holds a DATA_DIR its restarts ignore JOIN. Answers its index.
  // Precondition: start() returned. The port was free when drawn; nothing
  // listens on it until start_node().
  std::size_t add_joining_node(std::size_t join_through);
  // Starts a node that is not running (a joiner's first start, or a restart).
  void start_node(std::size_t node);

  // FAILs naming every node that should be running but exited.
  void require_running();

  std::size_t size() const { return nodes_.size(); }
  bool running(std::size_t node) const { return nodes_.at(node).pid > 0; }
  std::uint16_t port(std::size_t node) const { return nodes_.at(node).port; }
  std::vector<std::uint16_t> ports() const;
  const std::string& node_id(std::size_t node) const { return nodes_.at(node).id; }
  std::optional<std::size_t> index_of(const std::string& node_id) const;
  const std::string& log_path(std::size_t node) const { return nodes_.at(node).log_path; }
  // The node's DATA_DIR (its shard groups live under raft/ and shards/).
  const std::string& data_dir(std::size_t node) const { return nodes_.at(node).data_dir; }
  const std::string& temp_dir() const { return temp_dir_; }

  // GET /v1/cluster through a running node, once.
  std::optional<ClusterView> cluster_view();
  // Polls cluster_view() until `wanted` holds of it; FAILs naming `what`
  // after `timeout`.
  ClusterView wait_cluster_view(const std::function<bool(const ClusterView&)>& wanted,
                                const std::string& what,
                                std::chrono::milliseconds timeout = scaled(kReadyTimeout));
  // ... until every shard names a leader.
  ClusterView wait_cluster_with_leaders(std::chrono::milliseconds timeout = scaled(kReadyTimeout));

  // The node's whole log, its last `lines` lines, or how many lines hold `text`.
  std::string read_log(std::size_t node) const;
  std::string log_tail(std::size_t node, std::size_t lines) const;
  std::size_t count_log_lines(std::size_t node, std::string_view text) const;

  // The environment a node process gets (tests start odd processes with it).
  std::vector<std::string> node_environment(std::size_t node) const;
  // Every node's log tail, for a failure message.
  std::string all_log_tails(std::size_t lines) const;

 private:
  struct Node {
    std::string id;
    std::uint16_t port = 0;
    std::string data_dir;
    std::string log_path;
    pid_t pid = -1;  // -1 while not running
    // A joiner: started with JOIN through this node; nullopt for a founder.
    std::optional<std::size_t> joins_through;
  };

  void assign_ports_and_dirs(std::uint64_t attempt);
  void spawn(std::size_t node);
  // Reaps a node that exited on its own; its status, or nullopt if running.
  std::optional<ExitStatus> poll_exit(std::size_t node);
  ExitStatus wait_exit(std::size_t node, std::chrono::milliseconds timeout);
  // nullopt when every running node is ready; otherwise what is missing.
  std::optional<std::string> readiness_gap(std::uint64_t round);
  void stop_everything_quietly();
  // The founders' CLUSTER_NODES list.
  std::string members() const;
  std::string attempt_dir_;

  ClusterOptions options_;
  std::string temp_dir_;
  std::vector<Node> nodes_;
  std::vector<std::optional<ExitStatus>> unexpected_exits_;
};

// Starts `nodenomad-node` with `environment` and waits for it to exit (it
// must exit by itself, e.g. on a bad setting); its stderr goes to
// `log_path`. FAILs if it is still running after `timeout`, then kills it.
ExitStatus run_server_to_exit(const std::vector<std::string>& environment,
                              const std::string& log_path, std::chrono::milliseconds timeout);

// A loopback port nothing listens on now, below the ephemeral range.
std::uint16_t pick_free_port(std::uint64_t salt);

// The path of the server binary under test.
const char* server_binary();

}  // namespace nodenomad::process_testing
