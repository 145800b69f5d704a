// ClientDriver: the simulated clients. Each runs one operation at a time:
// it invokes the workload's next operation in the history, sends it to the
// node it believes leads, and completes it exactly once:
//   - ok with the node's answer;
//   - fail when every attempt was certainly not applied (NotLeader, Busy,
//     Unavailable, Lost, Refused) and the deadline passed;
//   - unknown when a write attempt might have been applied (no definite
//     answer came back before the deadline); a read that got no answer is
//     unknown too (the checker drops it either way).
// A write is retried on another node only after a definite "not applied"
// answer for the previous attempt, so no operation can take effect twice. A
// read is also retried when its attempt times out (a read changes nothing).
//
// Thread safety: none (the simulator's one thread).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "nodenomad/rng.hpp"
#include "nodenomad/testing/history.hpp"
#include "nodenomad/testing/sim_workload.hpp"
#include "sim/event_queue.hpp"
#include "sim/trace.hpp"

namespace nodenomad::sim {

class ClientHost {
 public:
  virtual ~ClientHost() = default;
  virtual SimTime now() const = 0;
  virtual void send_request(std::uint32_t node, const ClientRequest& request) = 0;
  virtual void schedule_client(EventKind kind, std::uint32_t client, std::uint64_t arg,
                               SimTime delay) = 0;
  virtual std::optional<std::uint32_t> node_index(const NodeId& id) const = 0;
  virtual TraceLog& trace() = 0;
};

struct ClientParams {
  std::uint32_t client_count = 4;
  std::uint32_t node_count = 3;
  SimTime op_timeout_us = 2'000'000;
  SimTime read_attempt_timeout_us = 300'000;
  SimTime max_think_us = 30'000;
  SimTime retry_backoff_us = 10'000;
};

struct ClientCounters {
  std::uint64_t ok = 0;
  std::uint64_t fail = 0;
  std::uint64_t unknown = 0;
  std::uint64_t attempts = 0;
};

class ClientDriver {
 public:
  ClientDriver(ClientParams params, testing::SimWorkload& workload, Rng rng, ClientHost& host);

  // Schedules every client's first operation.
  void start();
  // No new operations from now on; open ones run to completion.
  void stop_issuing() { issuing_ = false; }
  bool idle() const;

  void on_wake(std::uint32_t client, std::uint64_t token);
  void on_reply(std::uint32_t from_node, const ClientReply& reply);
  void on_deadline(std::uint32_t client, std::uint64_t serial);
  void on_attempt_timeout(std::uint32_t client, std::uint64_t request_id);

  testing::History history() const { return recorder_.snapshot(); }
  const ClientCounters& counters() const { return counters_; }

 private:
  struct Client {
    bool busy = false;
    testing::OpId op_id = 0;
    testing::KvOp op;
    std::uint64_t serial = 0;       // of the current operation, for its deadline
    std::uint64_t request_id = 0;   // of the current attempt
    bool awaiting_reply = false;
    bool maybe_applied = false;     // the current write attempt has no definite answer
    std::uint32_t target = 0;       // the node it believes leads
    SimTime deadline = 0;
    std::uint64_t wake_token = 0;   // only the newest scheduled wake counts
  };

  void begin_operation(std::uint32_t index);
  void send_attempt(std::uint32_t index);
  void retry_later(std::uint32_t index, SimTime backoff);
  void finish(std::uint32_t index, testing::Completion completion,
              const testing::KvResult* result);
  void schedule_wake(std::uint32_t index, SimTime delay);
  std::uint32_t other_node(std::uint32_t than);

  ClientParams params_;
  testing::SimWorkload& workload_;
  Rng rng_;
  ClientHost& host_;
  testing::HistoryRecorder recorder_;
  std::vector<Client> clients_;
  std::uint64_t next_request_id_ = 1;
  bool issuing_ = true;
  ClientCounters counters_;
};

}  // namespace nodenomad::sim
