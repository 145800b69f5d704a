// A node left alone (its two peers killed) can commit nothing. It must still
// answer every write honestly: 503 only if the write never reached a log
// ("not applied"), 504 if it may have. The same holds when it is stopped
// with SIGTERM while writes are in flight, and it must exit 0. Once all
// three nodes are back on their data, a write answered 504 may appear (the
// lone node's log can win the next election), one answered 503 never may:
// the final reads and the linearizability checker hold every answer to
// that (a read of a failed write's value is illegal).
#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <map>
#include <thread>

#include "cluster/history_checks.hpp"
#include "cluster/kv_workload.hpp"
#include "cluster/process_cluster.hpp"

namespace nodenomad::process_testing {
namespace {

using namespace std::chrono_literals;
using testing::KvOp;

constexpr std::size_t kWritesPerBatch = 16;
constexpr auto kClientTimeout = 10'000ms;  // scaled; the node's REQUEST_TIMEOUT is 2 s

// One PUT per thread, all at once, through `port`, each recorded. Keys are
// "<prefix>-<i>"; answers are tallied as "503", "504", "no answer" (sent,
// then the connection closed) or "not sent".
class WriteBatch {
 public:
  WriteBatch(testing::HistoryRecorder& recorder, std::uint16_t port, std::string prefix,
             testing::ClientId first_client)
      : answers_(kWritesPerBatch) {
    for (std::size_t i = 0; i < kWritesPerBatch; ++i) {
      keys_.push_back(fmt::format("{}-{}", prefix, i));
    }
    // keys_ and answers_ are complete before any thread reads or writes them.
    for (std::size_t i = 0; i < kWritesPerBatch; ++i) {
      threads_.emplace_back([&recorder, port, i, first_client, this] {
        HttpConnection connection(port, scaled(kClientTimeout));
        const KvOp op = KvOp::set(keys_[i], fmt::format("{}-value", keys_[i]));
        const ClassifiedAnswer answer =
            perform_recorded(recorder, first_client + i, connection, op);
        answers_[i] = answer.http_status != 0 ? std::to_string(answer.http_status)
                      : answer.completion == testing::Completion::kFail ? "not sent"
                                                                        : "no answer";
      });
    }
  }
  ~WriteBatch() { join(); }
  WriteBatch(const WriteBatch&) = delete;
  WriteBatch& operator=(const WriteBatch&) = delete;

  void join() {
    for (std::thread& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
  }
  const std::vector<std::string>& keys() const { return keys_; }
  // {"503": 11, "504": 5}
  std::map<std::string, std::size_t> tally() const {
    std::map<std::string, std::size_t> counts;
    for (const std::string& answer : answers_) ++counts[answer];
    return counts;
  }

 private:
  std::vector<std::string> keys_;
  std::vector<std::string> answers_;  // one slot per thread
  std::vector<std::thread> threads_;
};

std::string describe(const std::map<std::string, std::size_t>& tally) {
  std::string out;
  for (const auto& [answer, count] : tally)
    out += fmt::format("{}{} {}", out.empty() ? "" : ", ", count, answer);
  return out;
}

// nodenomad_http_open_connections from GET /metrics (the probe included).
std::optional<std::uint64_t> open_connections(std::uint16_t port) {
  const HttpResult metrics = http_once(port, "GET", "/metrics", {}, scaled(kProbeTimeout));
  if (!metrics.reply || metrics.reply->status != 200) return std::nullopt;
  const std::string name = "\nnodenomad_http_open_connections ";
  const std::size_t at = metrics.reply->body.find(name);
  if (at == std::string::npos) return std::nullopt;
  return std::strtoull(metrics.reply->body.c_str() + at + name.size(), nullptr, 10);
}

// Polls until the node serves at least `connections` HTTP connections.
void wait_open_connections(std::uint16_t port, std::uint64_t connections) {
  const Deadline deadline = deadline_after(scaled(kClientTimeout));
  std::optional<std::uint64_t> seen;
  while (!(seen = open_connections(port)) || *seen < connections) {
    INFO("waited for GET /metrics to show " << connections << " open HTTP connections; last seen "
                                            << (seen ? std::to_string(*seen) : "no answer"));
    REQUIRE(SteadyClock::now() < deadline);
    std::this_thread::sleep_for(kPollInterval);
  }
}

}  // namespace

TEST_CASE(
    "a node without quorum answers every write honestly, also when stopped with writes in flight",
    "[cluster][process]") {
  ClusterOptions options;
  options.nodes = 3;
  ProcessCluster cluster(options);
  cluster.start();
  cluster.kill9(1);
  cluster.kill9(2);
  testing::HistoryRecorder recorder;
  std::vector<std::string> keys;

  // Each write ends at the node's deadline (REQUEST_TIMEOUT 2 s).
  WriteBatch timed_out(recorder, cluster.port(0), "deadline", 1);
  timed_out.join();
  std::printf("[no quorum] writes at the deadline: %s\n", describe(timed_out.tally()).c_str());
  CHECK(timed_out.tally().count("200") == 0);
  keys.insert(keys.end(), timed_out.keys().begin(), timed_out.keys().end());

  // SIGTERM once every write of the batch is being served.
  WriteBatch stopped(recorder, cluster.port(0), "stopped", 100);
  wait_open_connections(cluster.port(0), kWritesPerBatch + 1);
  CHECK(cluster.terminate(0).describe() == "exit 0");
  stopped.join();
  std::printf("[no quorum] writes in flight at SIGTERM: %s\n", describe(stopped.tally()).c_str());
  CHECK(stopped.tally().count("200") == 0);
  keys.insert(keys.end(), stopped.keys().begin(), stopped.keys().end());

  for (std::size_t i = 0; i < cluster.size(); ++i) cluster.restart(i);
  cluster.wait_ready();
  const std::map<std::string, testing::KvResult> final_reads =
      check_history_with_final_reads(cluster, recorder, keys);
  std::size_t applied = 0;
  for (const auto& [key, read] : final_reads) applied += read.kind == testing::KvResultKind::kFound;
  std::printf(
      "[no quorum] after the restart, %zu of the %zu writes were applied (each must have "
      "been answered 504 or not at all)\n",
      applied, keys.size());
  for (std::size_t i = 0; i < cluster.size(); ++i)
    CHECK(cluster.terminate(i).describe() == "exit 0");
}

}  // namespace nodenomad::process_testing
