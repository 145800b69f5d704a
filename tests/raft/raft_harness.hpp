// A deterministic in-process harness for RaftEngine tests: several engines,
// each over a MemoryLogStore and a small state machine, wired through one
// message queue the test controls (deliver, drop, cut links, partition,
// crash and restart by hand). No thread, no clock, no sleep: time moves only
// when the test ticks, and every scenario replays exactly.
//
// After every step (a delivered message, a tick, a Ready cycle) the harness
// runs the Invariants checker over the live engines and reports a violation
// through on_violation (by default an abort with the message). Hosts and the
// later whole-cluster simulator can reuse it: nothing here depends on Catch2.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "nodenomad/memory_log_store.hpp"
#include "nodenomad/raft/invariants.hpp"
#include "nodenomad/raft/raft_engine.hpp"

namespace nodenomad::raft_test {

// NODENOMAD_SEED when set (decimal or 0x-hex), else `fallback`; printed so a
// failing run can be replayed.
std::uint64_t test_seed(std::string_view test_name, std::uint64_t fallback = 20240611);

NodeId node(int i);                        // "n<i>"
std::vector<NodeId> nodes(int first, int last);  // n<first> .. n<last>

// A state machine that records every command, and snapshots as the list of
// commands (length-prefixed), streamed in chunks.
class TestStateMachine final : public StateMachine {
 public:
  Result<std::string> apply(LogIndex index, std::string_view command) override;
  LogIndex last_applied_index() const override { return applied_; }
  Result<std::unique_ptr<SnapshotSource>> open_snapshot() override;
  Result<std::unique_ptr<SnapshotSink>> begin_restore(LogIndex index) override;

  const std::vector<std::string>& commands() const { return commands_; }
  std::size_t restores() const { return restores_; }
  // The largest chunk a restore sink was handed (bounded-memory checks).
  std::size_t largest_restore_chunk() const { return largest_restore_chunk_; }

  // Snapshot sources opened from now on are ready only while *open is true
  // (SnapshotSource::chunk_ready; a source reading ahead on another thread).
  void gate_snapshots(std::shared_ptr<const bool> open) { snapshot_gate_ = std::move(open); }

  // Used by the restore sink.
  void replace(LogIndex index, std::vector<std::string> commands);
  void note_restore_chunk(std::size_t bytes);

 private:
  LogIndex applied_;
  std::vector<std::string> commands_;
  std::size_t restores_ = 0;
  std::size_t largest_restore_chunk_ = 0;
  std::shared_ptr<const bool> snapshot_gate_;
};

RaftConfig default_config();

struct TestNode {
  NodeId id;
  RaftConfig config;
  std::unique_ptr<MemoryLogStore> store;
  std::unique_ptr<TestStateMachine> state_machine;
  std::unique_ptr<RaftEngine> engine;  // null while crashed
  std::uint64_t rng_seed = 0;
  std::uint32_t restarts = 0;
  std::vector<ReadState> read_states;  // every ReadState the node produced
};

class Cluster {
 public:
  // Voters and learners of the bootstrapped first configuration.
  Cluster(const std::vector<NodeId>& voters, const std::vector<NodeId>& learners = {},
          RaftConfig base = default_config(), std::uint64_t seed = 1);

  // A node with an empty store and no configuration, to be added by a
  // membership change.
  void add_empty_node(const NodeId& id);

  RaftEngine& engine(const NodeId& id);
  TestStateMachine& state_machine(const NodeId& id);
  MemoryLogStore& store(const NodeId& id);
  TestNode& test_node(const NodeId& id);
  bool up(const NodeId& id) const;
  std::vector<NodeId> ids() const;

  // --- time and the Ready cycle ---
  void tick(const NodeId& id, int times = 1);
  void tick_all(int times = 1);
  // One Ready cycle of a node: send, persist, send after persist, apply,
  // advance. False when it had nothing ready.
  bool process_ready(const NodeId& id);
  bool process_all_ready();
  // The rest of a Ready cycle for a Ready the test took itself.
  void complete_ready(const NodeId& id, Ready& rd);

  // --- the network ---
  std::deque<Message>& queue() { return queue_; }
  // Delivers every queued message once (those sent meanwhile wait for the
  // next call); returns how many reached a live node.
  std::size_t deliver_all();
  // Delivers the first queued message matching `match`; false if none.
  bool deliver_first(const std::function<bool(const Message&)>& match);
  // Delivers the queued message at position `i` (reordering at will).
  void deliver_index(std::size_t i);
  // Drops queued messages matching `match`; returns how many.
  std::size_t drop_queued(const std::function<bool(const Message&)>& match);
  void cut(const NodeId& a, const NodeId& b);          // both directions
  void cut_one_way(const NodeId& from, const NodeId& to);
  void isolate(const NodeId& id);
  void partition(const std::vector<std::vector<NodeId>>& groups);
  void heal();
  // Extra drop rule (e.g. "no appends to n3"); empty to clear.
  std::function<bool(const Message&)> drop_rule;
  // Called on every message that is delivered, before step() (tracing).
  std::function<void(const Message&)> on_deliver;

  // Ready cycles and deliveries until nothing moves; false if still busy
  // after max_rounds.
  bool stabilize(int max_rounds = 1000);

  // --- faults ---
  void crash(const NodeId& id);
  // Crashes in the middle of a Ready cycle: the messages that may leave at
  // once have left, nothing of the Ready was persisted.
  void crash_mid_ready(const NodeId& id);
  void restart(const NodeId& id);
  // Starts a crashed node again with an empty store and state machine, as a
  // node that dropped its replica and is given a new one under the same id.
  void restart_empty(const NodeId& id);

  // --- conveniences ---
  // Campaigns on `id` and stabilizes; the node must end up leader.
  void elect(const NodeId& id);
  // The live leader of the highest term, or empty.
  NodeId leader() const;
  Result<ProposeResult> propose(const NodeId& id, std::string command);

  Invariants& invariants() { return invariants_; }
  std::function<void(const Status&)> on_violation;
  void check_invariants();

 private:
  bool link_up(const NodeId& from, const NodeId& to) const;
  void persist(TestNode& n, const Ready& rd);
  void apply(TestNode& n, const Ready& rd);
  void open_engine(TestNode& n);
  void report(const Status& status);

  std::uint64_t seed_;
  RaftConfig base_;
  std::map<NodeId, TestNode> nodes_;
  std::deque<Message> queue_;
  std::set<std::pair<NodeId, NodeId>> cut_links_;  // (from, to)
  Invariants invariants_;
};

}  // namespace nodenomad::raft_test
