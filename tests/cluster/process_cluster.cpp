// ProcessCluster (process_cluster.hpp): fork/exec of real nodes, readiness
// polling, and the log tails printed when a test fails.
#define CATCH_CONFIG_EXTERNAL_INTERFACES
#include "cluster/process_cluster.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "nodenomad/rng.hpp"

extern char** environ;

namespace nodenomad::process_testing {
namespace {

// Ports are drawn from here: below Linux's default ephemeral range
// (32768-60999), so the nodes' own outgoing connections never take them.
constexpr std::uint16_t kFirstPort = 20'000;
constexpr std::uint16_t kLastPort = 32'000;
constexpr int kMaxStartAttempts = 5;
constexpr std::size_t kFailureLogTailLines = 40;

// Every setting of docs/configuration.md: removed from the inherited
// environment so that only what the test sets reaches a node.
constexpr const char* kConfigVariables[] = {"NODE_ID",
                                            "NODE_PORT",
                                            "BIND_HOST",
                                            "CLUSTER_NODES",
                                            "CLUSTER_ID",
                                            "JOIN",
                                            "DATA_DIR",
                                            "WAL_DIR",
                                            "MAX_WAL_SIZE",
                                            "MAX_CONCURRENT_MIGRATIONS",
                                            "MAX_NODE_MIGRATIONS",
                                            "MIGRATION_BANDWIDTH",
                                            "MIGRATION_CHUNK_SIZE",
                                            "MIGRATION_TIMEOUT",
                                            "SHARD_COUNT",
                                            "REPLICATION_FACTOR",
                                            "LOG_LEVEL",
                                            "MAX_VALUE_SIZE",
                                            "MAX_CONNECTIONS",
                                            "REQUEST_TIMEOUT",
                                            "HTTP_IDLE_TIMEOUT",
                                            "CONFIG_FILE"};

// Set by the listener below when an assertion of the running test fails.
std::atomic<bool> g_test_failed{false};

struct FailureWatcher : Catch::TestEventListenerBase {
  using TestEventListenerBase::TestEventListenerBase;
  void testCaseStarting(const Catch::TestCaseInfo& info) override {
    g_test_failed = false;
    TestEventListenerBase::testCaseStarting(info);
  }
  bool assertionEnded(const Catch::AssertionStats& stats) override {
    if (!stats.assertionResult.isOk()) g_test_failed = true;
    return TestEventListenerBase::assertionEnded(stats);
  }
};

bool port_is_free(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool free = ::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return free;
}

bool is_config_variable(std::string_view entry) {
  for (const char* name : kConfigVariables) {
    const std::string_view prefix(name);
    if (entry.size() > prefix.size() && entry.substr(0, prefix.size()) == prefix &&
        entry[prefix.size()] == '=') {
      return true;
    }
  }
  return false;
}

std::string make_temp_dir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern =
      std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/nodenomad-cluster-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    FAIL("mkdtemp(" << pattern << "): " << std::strerror(errno));
  }
  return pattern;
}

// In the forked child, after a failed execve: only async-signal-safe calls.
void write_exec_failure(const std::string& message, int error) {
  char digits[16];
  int at = sizeof digits;
  digits[--at] = '\n';
  do {
    digits[--at] = static_cast<char>('0' + error % 10);
    error /= 10;
  } while (error > 0 && at > 0);
  [[maybe_unused]] ssize_t ignored = ::write(STDERR_FILENO, message.data(), message.size());
  ignored = ::write(STDERR_FILENO, digits + at, sizeof digits - static_cast<std::size_t>(at));
}

// fork + execve of the server with `environment`; stdout and stderr append
// to `log_path`. Everything the child touches is prepared before fork(),
// since a multi-threaded process may only make async-signal-safe calls there.
pid_t spawn_server(const std::vector<std::string>& environment, const std::string& log_path) {
  const int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  REQUIRE(log_fd >= 0);
  REQUIRE(null_fd >= 0);
  std::vector<char*> envp;
  for (const std::string& entry : environment) envp.push_back(const_cast<char*>(entry.c_str()));
  envp.push_back(nullptr);
  char* argv[] = {const_cast<char*>(server_binary()), nullptr};
  const std::string exec_failed =
      std::string("[process cluster] execve(") + server_binary() + ") failed with errno ";
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(null_fd, STDIN_FILENO);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the test died before prctl took effect
    ::execve(argv[0], argv, envp.data());
    write_exec_failure(exec_failed, errno);
    ::_exit(127);
  }
  const int fork_error = errno;
  ::close(log_fd);
  ::close(null_fd);
  if (pid < 0) FAIL("fork: " << std::strerror(fork_error));
  return pid;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(std::move(line));
  return lines;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace

CATCH_REGISTER_LISTENER(FailureWatcher)

const char* server_binary() { return NODENOMAD_SERVER_BINARY; }

ExitStatus ExitStatus::from_wait_status(int status) {
  ExitStatus result;
  if (WIFEXITED(status)) {
    result.exited = true;
    result.code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
  }
  return result;
}

std::string ExitStatus::describe() const {
  if (exited) return "exit " + std::to_string(code);
  return "killed by signal " + std::to_string(signal) + " (" + ::strsignal(signal) + ")";
}

ProcessCluster::ProcessCluster(ClusterOptions options)
    : options_(std::move(options)), temp_dir_(make_temp_dir()) {
  REQUIRE(options_.nodes >= 1);
  nodes_.resize(options_.nodes);
  unexpected_exits_.resize(options_.nodes);
}

ProcessCluster::~ProcessCluster() {
  stop_everything_quietly();
  if (g_test_failed || std::uncaught_exceptions() > 0) {
    std::printf("%s\n[process cluster] the test failed; logs and data kept in %s\n",
                all_log_tails(kFailureLogTailLines).c_str(), temp_dir_.c_str());
    std::fflush(stdout);
    return;
  }
  if (const char* keep = std::getenv("NODENOMAD_KEEP_CLUSTER_DIRS");
      keep != nullptr && *keep == '1') {
    std::printf("[process cluster] logs and data kept in %s (NODENOMAD_KEEP_CLUSTER_DIRS=1)\n",
                temp_dir_.c_str());
    std::fflush(stdout);
    return;
  }
  std::error_code ignored;
  std::filesystem::remove_all(temp_dir_, ignored);
}

namespace {

// Draws ports until one is free and not in `taken`; 0 if none in 1000 draws
// (a range this wide is never mostly taken on a test machine).
std::uint16_t draw_free_port(Rng& rng, const std::set<std::uint16_t>& taken) {
  for (int tries = 0; tries < 1000; ++tries) {
    const auto candidate = static_cast<std::uint16_t>(rng.uniform_in(kFirstPort, kLastPort));
    if (!taken.contains(candidate) && port_is_free(candidate)) return candidate;
  }
  return 0;
}

Rng port_rng(std::uint64_t salt) {
  const auto now = static_cast<std::uint64_t>(SteadyClock::now().time_since_epoch().count());
  return Rng(salt ^ (static_cast<std::uint64_t>(::getpid()) << 32) ^ now);
}

}  // namespace

std::uint16_t pick_free_port(std::uint64_t salt) {
  Rng rng = port_rng(salt);
  const std::uint16_t port = draw_free_port(rng, {});
  REQUIRE(port != 0);
  return port;
}

void ProcessCluster::assign_ports_and_dirs(std::uint64_t attempt) {
  Rng rng = port_rng(options_.seed ^ (attempt * 0x9E3779B97F4A7C15ULL));
  const std::string dir = temp_dir_ + "/attempt-" + std::to_string(attempt);
  std::filesystem::create_directories(dir);
  attempt_dir_ = dir;
  std::set<std::uint16_t> taken;
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    const std::uint16_t port = draw_free_port(rng, taken);
    REQUIRE(port != 0);
    taken.insert(port);
    nodes_[i] = Node{"node-" + std::to_string(i + 1), port, dir + "/node-" + std::to_string(i + 1),
                     dir + "/node-" + std::to_string(i + 1) + ".log", -1, std::nullopt};
  }
}

std::string ProcessCluster::members() const {
  std::string list;
  for (const Node& node : nodes_) {
    if (node.joins_through) continue;
    if (!list.empty()) list += ",";
    list += node.id + "@127.0.0.1:" + std::to_string(node.port);
  }
  return list;
}

std::vector<std::string> ProcessCluster::node_environment(std::size_t node) const {
  std::vector<std::string> environment;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    if (!is_config_variable(*entry)) environment.emplace_back(*entry);
  }
  const Node& n = nodes_.at(node);
  environment.push_back("NODE_ID=" + n.id);
  environment.push_back("NODE_PORT=" + std::to_string(n.port));
  environment.push_back("CLUSTER_NODES=" + members());
  environment.push_back("DATA_DIR=" + n.data_dir);
  environment.push_back("LOG_LEVEL=" + options_.log_level);
  environment.push_back("SHARD_COUNT=" + options_.shard_count);
  environment.push_back("REQUEST_TIMEOUT=" + options_.request_timeout);
  if (n.joins_through) {
    environment.push_back("JOIN=127.0.0.1:" + std::to_string(nodes_.at(*n.joins_through).port));
    environment.push_back("BIND_HOST=127.0.0.1");
  }
  for (const auto& [name, value] : options_.extra_env) environment.push_back(name + "=" + value);
  return environment;
}

void ProcessCluster::spawn(std::size_t node) {
  Node& n = nodes_.at(node);
  REQUIRE(n.pid < 0);
  n.pid = spawn_server(node_environment(node), n.log_path);
  unexpected_exits_.at(node).reset();
}

void ProcessCluster::start() {
  for (int attempt = 1; attempt <= kMaxStartAttempts; ++attempt) {
    assign_ports_and_dirs(static_cast<std::uint64_t>(attempt));
    for (std::size_t i = 0; i < nodes_.size(); ++i) spawn(i);
    std::printf("[process cluster] started %zu nodes: %s (attempt %d, dir %s)\n", nodes_.size(),
                members().c_str(), attempt, temp_dir_.c_str());
    std::fflush(stdout);
    // A port taken between our check and the node's bind shows up as an
    // early exit; anything else is a real failure.
    const Deadline deadline = deadline_after(scaled(kReadyTimeout));
    bool port_taken = false;
    std::string gap = "nothing probed yet";
    for (std::uint64_t round = 0; SteadyClock::now() < deadline && !port_taken; ++round) {
      for (std::size_t i = 0; i < nodes_.size(); ++i) {
        if (const std::optional<ExitStatus> exit = poll_exit(i)) {
          if (read_log(i).find("Address already in use") == std::string::npos) {
            FAIL(nodes_[i].id << " exited while starting (" << exit->describe() << "):\n"
                              << log_tail(i, kFailureLogTailLines));
          }
          port_taken = true;
        }
      }
      if (port_taken) break;
      const std::optional<std::string> missing = readiness_gap(round);
      if (!missing) return;
      gap = *missing;
      std::this_thread::sleep_for(kPollInterval);
    }
    if (!port_taken) {
      FAIL("the cluster was not ready within " << scaled(kReadyTimeout).count()
                                               << " ms; last missing: " << gap);
    }
    std::printf("[process cluster] a port was taken meanwhile; starting again on fresh ports\n");
    stop_everything_quietly();
  }
  FAIL("could not start the cluster on free ports in " << kMaxStartAttempts << " attempts");
}

std::optional<std::string> ProcessCluster::readiness_gap(std::uint64_t round) {
  for (const Node& node : nodes_) {
    if (node.pid < 0) continue;
    const HttpResult ready = http_once(node.port, "GET", "/ready", {}, kProbeTimeout);
    if (!ready.reply) return node.id + " GET /ready: " + ready.error;
    if (ready.reply->status != 200) {
      return node.id + " GET /ready: " + std::to_string(ready.reply->status) + " " +
             ready.reply->body;
    }
  }
  for (const Node& node : nodes_) {
    if (node.pid < 0) continue;
    const std::string target = "/v1/kv/nodenomad-test%3Aready%3A" + node.id;
    const HttpResult write =
        http_once(node.port, "PUT", target, std::to_string(round), kProbeTimeout);
    if (!write.reply) return node.id + " PUT " + target + ": " + write.error;
    if (write.reply->status != 200) {
      return node.id + " PUT " + target + ": " + std::to_string(write.reply->status) + " " +
             write.reply->body;
    }
  }
  return std::nullopt;
}

void ProcessCluster::wait_ready(std::chrono::milliseconds timeout) {
  const auto started = SteadyClock::now();
  const Deadline deadline = started + timeout;
  std::string gap = "nothing probed yet";
  for (std::uint64_t round = 0;; ++round) {
    require_running();
    const std::optional<std::string> missing = readiness_gap(round);
    if (!missing) break;
    gap = *missing;
    if (SteadyClock::now() >= deadline) {
      FAIL("waited " << timeout.count() << " ms for every running node to answer GET /ready 200 "
                     << "and take a write; last missing: " << gap);
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  const auto took =
      std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - started);
  std::printf("[process cluster] ready after %lld ms\n", static_cast<long long>(took.count()));
  std::fflush(stdout);
}

std::optional<ExitStatus> ProcessCluster::poll_exit(std::size_t node) {
  Node& n = nodes_.at(node);
  if (n.pid < 0) return std::nullopt;
  int status = 0;
  const pid_t reaped = ::waitpid(n.pid, &status, WNOHANG);
  if (reaped != n.pid) return std::nullopt;
  n.pid = -1;
  unexpected_exits_.at(node) = ExitStatus::from_wait_status(status);
  return unexpected_exits_.at(node);
}

void ProcessCluster::require_running() {
  std::string problems;
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    poll_exit(i);
    if (const std::optional<ExitStatus>& exit = unexpected_exits_[i]) {
      problems += nodes_[i].id + " exited on its own (" + exit->describe() + "); its log ends:\n" +
                  log_tail(i, kFailureLogTailLines) + "\n";
    }
  }
  if (!problems.empty()) FAIL(problems);
}

ExitStatus ProcessCluster::wait_exit(std::size_t node, std::chrono::milliseconds timeout) {
  Node& n = nodes_.at(node);
  const Deadline deadline = deadline_after(timeout);
  for (;;) {
    int status = 0;
    const pid_t reaped = ::waitpid(n.pid, &status, WNOHANG);
    if (reaped == n.pid) {
      n.pid = -1;
      return ExitStatus::from_wait_status(status);
    }
    if (SteadyClock::now() >= deadline) {
      ::kill(n.pid, SIGKILL);
      ::waitpid(n.pid, &status, 0);
      n.pid = -1;
      FAIL(n.id << " did not exit within " << timeout.count() << " ms; killed it. Log ends:\n"
                << log_tail(node, kFailureLogTailLines));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void ProcessCluster::kill9(std::size_t node) {
  require_running();
  Node& n = nodes_.at(node);
  REQUIRE(n.pid > 0);
  ::kill(n.pid, SIGKILL);
  const ExitStatus exit = wait_exit(node, scaled(kExitTimeout));
  std::printf("[process cluster] kill -9 %s: %s\n", n.id.c_str(), exit.describe().c_str());
  std::fflush(stdout);
  CHECK(exit.signal == SIGKILL);
}

void ProcessCluster::kill9_all() {
  require_running();
  for (const Node& node : nodes_) {
    if (node.pid > 0) ::kill(node.pid, SIGKILL);
  }
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i].pid < 0) continue;
    const ExitStatus exit = wait_exit(i, scaled(kExitTimeout));
    CHECK(exit.signal == SIGKILL);
  }
  std::printf("[process cluster] kill -9 of all %zu nodes\n", nodes_.size());
  std::fflush(stdout);
}

ExitStatus ProcessCluster::terminate(std::size_t node) {
  Node& n = nodes_.at(node);
  REQUIRE(n.pid > 0);
  ::kill(n.pid, SIGTERM);
  const ExitStatus exit = wait_exit(node, scaled(kExitTimeout));
  std::printf("[process cluster] SIGTERM %s: %s\n", n.id.c_str(), exit.describe().c_str());
  std::fflush(stdout);
  return exit;
}

void ProcessCluster::restart(std::size_t node) {
  spawn(node);
  std::printf("[process cluster] restarted %s on port %u\n", nodes_.at(node).id.c_str(),
              static_cast<unsigned>(nodes_.at(node).port));
  std::fflush(stdout);
}

std::size_t ProcessCluster::add_joining_node(std::size_t join_through) {
  REQUIRE_FALSE(attempt_dir_.empty());  // after start(): the founders have their ports
  REQUIRE(join_through < nodes_.size());
  REQUIRE_FALSE(nodes_.at(join_through).joins_through.has_value());
  std::set<std::uint16_t> taken;
  for (const Node& node : nodes_) taken.insert(node.port);
  Rng rng = port_rng(options_.seed ^ (nodes_.size() * 0xD1B54A32D192ED03ULL));
  const std::uint16_t port = draw_free_port(rng, taken);
  REQUIRE(port != 0);
  const std::string name = "node-" + std::to_string(nodes_.size() + 1);
  nodes_.push_back(Node{name, port, attempt_dir_ + "/" + name, attempt_dir_ + "/" + name + ".log",
                        -1, join_through});
  unexpected_exits_.emplace_back();
  return nodes_.size() - 1;
}

void ProcessCluster::start_node(std::size_t node) {
  spawn(node);
  const Node& n = nodes_.at(node);
  std::printf("[process cluster] started %s on port %u%s\n", n.id.c_str(),
              static_cast<unsigned>(n.port),
              n.joins_through ? (" (JOIN through " + nodes_.at(*n.joins_through).id + ")").c_str()
                              : "");
  std::fflush(stdout);
}

void ProcessCluster::stop_everything_quietly() {
  for (const Node& node : nodes_) {
    if (node.pid > 0) ::kill(node.pid, SIGKILL);
  }
  for (Node& node : nodes_) {
    if (node.pid <= 0) continue;
    int status = 0;
    ::waitpid(node.pid, &status, 0);
    node.pid = -1;
  }
}

std::vector<std::uint16_t> ProcessCluster::ports() const {
  std::vector<std::uint16_t> result;
  for (const Node& node : nodes_) result.push_back(node.port);
  return result;
}

std::optional<std::size_t> ProcessCluster::index_of(const std::string& node_id) const {
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i].id == node_id) return i;
  }
  return std::nullopt;
}

std::optional<ClusterView> ProcessCluster::cluster_view() {
  for (const Node& node : nodes_) {
    if (node.pid < 0) continue;
    const HttpResult answer = http_once(node.port, "GET", "/v1/cluster", {}, kProbeTimeout);
    if (answer.reply && answer.reply->status == 200) return parse_cluster_view(answer.reply->body);
  }
  return std::nullopt;
}

ClusterView ProcessCluster::wait_cluster_view(const std::function<bool(const ClusterView&)>& wanted,
                                              const std::string& what,
                                              std::chrono::milliseconds timeout) {
  const Deadline deadline = deadline_after(timeout);
  std::string last = "no answer to GET /v1/cluster";
  for (;;) {
    require_running();
    if (std::optional<ClusterView> view = cluster_view()) {
      if (wanted(*view)) return *view;
      last = "leaders:";
      for (const ShardView& shard : view->shards) {
        last +=
            " " + std::to_string(shard.id) + "=" + (shard.leader.empty() ? "none" : shard.leader);
      }
    }
    if (SteadyClock::now() >= deadline) {
      FAIL("waited " << timeout.count() << " ms for GET /v1/cluster to show " << what
                     << "; last seen: " << last);
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

ClusterView ProcessCluster::wait_cluster_with_leaders(std::chrono::milliseconds timeout) {
  return wait_cluster_view([](const ClusterView& view) { return view.every_shard_has_leader(); },
                           "a leader for every shard", timeout);
}

std::string ProcessCluster::read_log(std::size_t node) const { return read_file(log_path(node)); }

std::string ProcessCluster::log_tail(std::size_t node, std::size_t lines) const {
  const std::vector<std::string> all = split_lines(read_log(node));
  std::string tail;
  for (std::size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) {
    tail += "  " + all[i] + "\n";
  }
  return tail;
}

std::size_t ProcessCluster::count_log_lines(std::size_t node, std::string_view text) const {
  std::size_t count = 0;
  for (const std::string& line : split_lines(read_log(node))) {
    if (line.find(text) != std::string::npos) ++count;
  }
  return count;
}

std::string ProcessCluster::all_log_tails(std::size_t lines) const {
  std::string out;
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i].log_path.empty()) continue;
    out += "---- " + nodes_[i].id + " (" + nodes_[i].log_path + "), last " + std::to_string(lines) +
           " lines ----\n" + log_tail(i, lines);
  }
  return out;
}

ExitStatus run_server_to_exit(const std::vector<std::string>& environment,
                              const std::string& log_path, std::chrono::milliseconds timeout) {
  const pid_t pid = spawn_server(environment, log_path);
  const Deadline deadline = deadline_after(timeout);
  for (;;) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) return ExitStatus::from_wait_status(status);
    if (SteadyClock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      FAIL("the server was expected to exit by itself, but still ran after "
           << timeout.count() << " ms; log:\n"
           << read_file(log_path));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace nodenomad::process_testing
