// KvWorkload: client threads that put, get, delete and compare-and-set a
// small key set through every node of a real cluster over HTTP, recording
// each request in a HistoryRecorder for the linearizability checker.
//
// Each answer is recorded as docs/linearizability.md maps it: 200, 404 on a
// get, 412 = ok with what was observed; 503 = fail (not applied); 504, a
// broken connection after a byte of the request left, or the client's own
// deadline = unknown; a connection that could not be opened = fail (nothing
// was sent). Every write's value is unique in the run, so a read names the
// write it saw.
//
// Answers API.md does not allow for these well-formed requests (a 400, a
// 500, a PUT answered 404, a 200 without its version) are counted as
// unexpected and kept for the report; the test requires none.
//
// Randomness: each client draws its choices (node, key, operation, value
// size) from its own Rng seeded from the workload's seed, so a seed replays
// every client's sequence of choices. What the cluster answers, and so the
// versions a compare-and-set names, still depends on timing.
//
// Thread safety: start(), stop() and wait_until() from one thread (the
// test's); counts() from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cluster/http_client.hpp"
#include "nodenomad/testing/history.hpp"

namespace nodenomad::process_testing {

struct WorkloadOptions {
  std::uint64_t seed = 0;
  std::size_t clients = 4;
  std::vector<std::string> keys;
  std::vector<std::uint16_t> ports;
  // This share of writes carries a value padded to `large_value_bytes`, so
  // that a crash finds large records in flight in the logs.
  std::uint64_t large_value_percent = 5;
  std::size_t large_value_bytes = 32 * 1024;
  // The client's own deadline for one request; past it the outcome is unknown.
  std::chrono::milliseconds request_timeout{10'000};
  // When set, one line per request is appended here: the history's op id,
  // the client, the node's port, the request, the answer and the wall-clock
  // times, so that a checker's verdict ("#4319 ...") can be traced to the
  // node that answered it and to the nodes' logs.
  std::string trace_path;
};

struct OutcomeCounts {
  std::uint64_t ok = 0;
  std::uint64_t fail = 0;
  std::uint64_t unknown = 0;
  std::uint64_t ok_writes = 0;  // PUT or DELETE answered 200
  std::uint64_t unexpected = 0;
  std::vector<std::uint64_t> ok_writes_by_key;  // in WorkloadOptions::keys order

  std::string describe() const;  // "ok 812 (writes 400), fail 3, unknown 1, unexpected 0"
};

// What one answer means for the history (pure; tested on its own).
struct ClassifiedAnswer {
  testing::Completion completion = testing::Completion::kFail;
  testing::KvResult result;  // when kOk
  std::string unexpected;    // non-empty: an answer API.md does not allow here
  int http_status = 0;       // 0 without an answer
};
ClassifiedAnswer classify_answer(const testing::KvOp& op, const HttpResult& answer);

// Sends `op` on `connection`, recording it in `recorder` as `client`:
// invoked before the request leaves, completed as classify_answer() says.
ClassifiedAnswer perform_recorded(testing::HistoryRecorder& recorder, testing::ClientId client,
                                  HttpConnection& connection, const testing::KvOp& op);

// The request line target and method of `op` ("/v1/kv/k?if_version=3").
std::string kv_target(const testing::KvOp& op);
const char* kv_method(const testing::KvOp& op);

class KvWorkload {
 public:
  KvWorkload(WorkloadOptions options, testing::HistoryRecorder& recorder);
  ~KvWorkload();
  KvWorkload(const KvWorkload&) = delete;
  KvWorkload& operator=(const KvWorkload&) = delete;

  void start();
  // Asks the clients to finish their request in flight and joins them.
  void stop();

  OutcomeCounts counts() const;
  // The first few unexpected answers, described.
  std::vector<std::string> unexpected_answers() const;
  // Why outcomes were unknown, e.g. {"504": 3, "no answer: the peer closed the connection": 1}.
  std::map<std::string, std::uint64_t> unknown_reasons() const;
  // Why requests failed (not applied), e.g. {"503": 12, "not sent: connect:
  // Connection refused": 40}.
  std::map<std::string, std::uint64_t> fail_reasons() const;

  // Polls counts() every few milliseconds until `enough` holds; false if
  // `timeout` passed first.
  bool wait_until(const std::function<bool(const OutcomeCounts&)>& enough,
                  std::chrono::milliseconds timeout) const;

 private:
  void run_client(std::size_t client, std::uint64_t client_seed);
  void record(testing::OpId id, std::size_t key_index, const testing::KvOp& op,
              const HttpResult& answer, std::map<std::string, std::uint64_t>& versions_seen);
  void trace(testing::OpId id, std::size_t client, std::uint16_t port, const testing::KvOp& op,
             const HttpResult& answer, std::chrono::system_clock::time_point sent);

  WorkloadOptions options_;
  testing::HistoryRecorder& recorder_;
  std::atomic<bool> stopping_{false};
  std::vector<std::thread> threads_;
  std::atomic<std::uint64_t> ok_{0};
  std::atomic<std::uint64_t> fail_{0};
  std::atomic<std::uint64_t> unknown_{0};
  std::atomic<std::uint64_t> ok_writes_{0};
  std::atomic<std::uint64_t> unexpected_{0};
  std::unique_ptr<std::atomic<std::uint64_t>[]> ok_writes_by_key_;
  mutable std::mutex unexpected_mutex_;
  std::vector<std::string> unexpected_answers_;           // bounded by kMaxUnexpectedKept
  std::map<std::string, std::uint64_t> unknown_reasons_;  // bounded by kMaxUnknownReasons
  std::map<std::string, std::uint64_t> fail_reasons_;     // bounded by kMaxUnknownReasons
  std::mutex trace_mutex_;
  std::FILE* trace_ = nullptr;  // options_.trace_path, open while running
};

// A linearizable GET of `key`, retried through the nodes in turn until one
// answers 200 or 404 (each attempt recorded as client `client`); nullopt
// if `timeout` passed first. Used after the load stops, so that the history
// ends with what every key holds.
std::optional<testing::KvResult> final_read(testing::HistoryRecorder& recorder,
                                            testing::ClientId client,
                                            const std::vector<std::uint16_t>& ports,
                                            const std::string& key,
                                            std::chrono::milliseconds timeout);

// Acknowledged writes that the final reads contradict: a write answered 200
// with a version above the version finally read, or a key read as absent
// with no delete that could have come after the write. One line each; empty
// when every acknowledged write is visible or was superseded. A second,
// simpler opinion beside the checker's, with a plainer message.
std::vector<std::string> find_lost_writes(
    const testing::History& history, const std::map<std::string, testing::KvResult>& final_reads);

}  // namespace nodenomad::process_testing
