// Seeded randomized runs: five nodes under random delivery order, drops,
// duplicates, partitions, crashes (also in the middle of a Ready cycle),
// restarts, compactions, leadership transfers and membership changes, with
// the Invariants checker after every step. Each run prints its seed;
// NODENOMAD_SEED replays it exactly.
#include <fmt/format.h>

#include "nodenomad/raft/message_codec.hpp"
#include "raft/raft_test_support.hpp"

namespace nodenomad {
namespace {

using raft_test::Cluster;
using raft_test::make_cluster;
using raft_test::node;
using raft_test::nodes;

// FNV-1a over the bytes of everything that happened, to compare two runs.
struct TraceHash {
  std::uint64_t value = 0xcbf29ce484222325ULL;
  void add(std::string_view bytes) {
    for (char c : bytes) {
      value ^= static_cast<unsigned char>(c);
      value *= 0x100000001b3ULL;
    }
  }
};

class RandomRun {
 public:
  RandomRun(std::uint64_t seed, RaftConfig config)
      : rng_(seed), cluster_(make_cluster(nodes(1, 5), {}, config, seed)) {
    cluster_.on_deliver = [this](const Message& m) {
      trace_.add(encode_message(m));
      if (m.type == MessageType::kSnapshot) ++snapshot_chunks_;
    };
  }

  void run(int steps) {
    for (int step = 0; step < steps; ++step) {
      const std::uint64_t dice = rng_.uniform(10000);
      trace_.add(std::to_string(dice));
      act(dice);
    }
  }

  // Heals everything, then checks the cluster elects an up-to-date leader,
  // commits a last command and agrees on every state machine.
  void converge() {
    cluster_.heal();
    cluster_.drop_rule = nullptr;
    for (const NodeId& id : cluster_.ids()) {
      if (!cluster_.up(id)) cluster_.restart(id);
    }
    Term proposed_in;
    for (int round = 0; round < 2000 && !converged(); ++round) {
      cluster_.tick_all();
      cluster_.stabilize();
      const NodeId leader = cluster_.leader();
      // Propose once per leadership, to the leader of the newest term only.
      if (!leader.empty() && cluster_.engine(leader).term() == max_term() &&
          proposed_in != max_term() && cluster_.propose(leader, "final").is_ok()) {
        proposed_in = max_term();
      }
    }
    REQUIRE(converged());
  }

  // A leader of the newest term whose voters all applied the same commands,
  // ending with "final".
  bool converged() {
    const NodeId leader = cluster_.leader();
    if (leader.empty() || cluster_.engine(leader).term() != max_term()) return false;
    const auto& expected = cluster_.state_machine(leader).commands();
    if (expected.empty() || expected.back() != "final") return false;
    for (const NodeId& id : cluster_.engine(leader).conf_state().voters) {
      if (cluster_.state_machine(id).commands() != expected) return false;
    }
    return true;
  }

  Term max_term() {
    Term t;
    for (const NodeId& id : cluster_.ids()) {
      if (cluster_.up(id)) t = std::max(t, cluster_.engine(id).term());
    }
    return t;
  }

  std::uint64_t trace() const { return trace_.value; }
  std::size_t proposals() const { return proposals_; }
  std::size_t snapshot_chunks() const { return snapshot_chunks_; }

 private:
  NodeId random_node() { return node(static_cast<int>(rng_.uniform_in(1, 5))); }

  NodeId random_live_node() {
    for (int tries = 0; tries < 10; ++tries) {
      const NodeId id = random_node();
      if (cluster_.up(id)) return id;
    }
    return NodeId();
  }

  void act(std::uint64_t dice) {
    if (dice < 4000) {
      if (!cluster_.queue().empty()) cluster_.deliver_index(rng_.uniform(cluster_.queue().size()));
    } else if (dice < 4300) {
      if (!cluster_.queue().empty()) {
        auto it = cluster_.queue().begin() + static_cast<std::ptrdiff_t>(rng_.uniform(cluster_.queue().size()));
        cluster_.queue().erase(it);
      }
    } else if (dice < 4500) {
      if (!cluster_.queue().empty()) {
        cluster_.queue().push_back(cluster_.queue()[rng_.uniform(cluster_.queue().size())]);
      }
    } else if (dice < 6500) {
      const NodeId id = random_live_node();
      if (!id.empty()) cluster_.tick(id);
    } else if (dice < 8500) {
      const NodeId id = random_live_node();
      if (!id.empty()) cluster_.process_ready(id);
    } else if (dice < 9500) {
      propose();
    } else {
      fault(dice);
    }
  }

  void propose() {
    const NodeId leader = cluster_.leader();
    if (leader.empty()) return;
    if (cluster_.propose(leader, fmt::format("c{}", proposals_)).is_ok()) ++proposals_;
  }

  void fault(std::uint64_t dice) {
    const NodeId id = random_node();
    if (dice < 9600) {
      if (cluster_.up(id)) (void)cluster_.engine(id).read_index("r");
    } else if (dice < 9650) {
      std::vector<NodeId> a;
      std::vector<NodeId> b;
      for (const NodeId& n : nodes(1, 5)) (rng_.chance(0.5) ? a : b).push_back(n);
      cluster_.heal();
      cluster_.partition({a, b});
    } else if (dice < 9750) {
      cluster_.heal();
    } else if (dice < 9780) {
      if (cluster_.up(id)) cluster_.crash(id);
    } else if (dice < 9800) {
      if (cluster_.up(id)) cluster_.crash_mid_ready(id);
    } else if (dice < 9900) {
      if (!cluster_.up(id)) cluster_.restart(id);
    } else if (dice < 9970) {
      if (cluster_.up(id)) {
        RaftEngine& e = cluster_.engine(id);
        const LogIndex target = cluster_.state_machine(id).last_applied_index();
        if (target > LogIndex(0)) (void)e.compact(target);
      }
    } else if (dice < 9990) {
      const NodeId leader = cluster_.leader();
      if (!leader.empty()) (void)cluster_.engine(leader).transfer_leadership(id);
    } else {
      toggle_n5();
    }
  }

  // Moves n5 between voter and learner.
  void toggle_n5() {
    const NodeId leader = cluster_.leader();
    if (leader.empty()) return;
    const bool voter = cluster_.engine(leader).conf_state().voters.size() == 5;
    // Half the time through a joint configuration, left automatically.
    const ConfChangeTransition transition =
        rng_.chance(0.5) ? ConfChangeTransition::kJoint : ConfChangeTransition::kAuto;
    const ConfChange cc{transition,
                        {{voter ? ConfChangeType::kAddLearner : ConfChangeType::kAddVoter, node(5)}}};
    (void)cluster_.engine(leader).propose_conf_change(cc);
  }

  Rng rng_;
  Cluster cluster_;
  TraceHash trace_;
  std::size_t proposals_ = 0;
  std::size_t snapshot_chunks_ = 0;
};

RaftConfig small_limits() {
  RaftConfig c = raft_test::default_config();
  c.max_inflight_messages = 4;
  c.max_append_bytes = 64;
  c.snapshot_chunk_bytes = 32;
  c.max_snapshot_chunks_in_flight = 2;
  return c;
}

TEST_CASE("raft randomized: safety holds and the cluster converges under faults",
          "[raft][randomized]") {
  const std::uint64_t base = raft_test::test_seed("raft randomized");
  const bool replay = std::getenv("NODENOMAD_SEED") != nullptr;
  const int runs = replay ? 1 : 24;
  constexpr int kSteps = 10000;
  for (int i = 0; i < runs; ++i) {
    const std::uint64_t seed = base + static_cast<std::uint64_t>(i);
    INFO("replay with NODENOMAD_SEED=" << seed);
    // Four flavours by seed: the defaults, lease reads, no pre-vote, plain Raft.
    RaftConfig config = small_limits();
    config.read_mode = (seed % 4 == 1) ? ReadMode::kLease : ReadMode::kReadIndex;
    config.pre_vote = seed % 4 < 2;
    config.check_quorum = seed % 4 != 3;
    RandomRun run(seed, config);
    run.run(kSteps);
    run.converge();
    CHECK(run.proposals() > 0);
    fmt::print("[raft randomized] seed {}: {} steps, {} proposals, {} snapshot chunks, term {}\n",
               seed, kSteps, run.proposals(), run.snapshot_chunks(), run.max_term().value());
  }
}

TEST_CASE("raft randomized: one seed replays the same run", "[raft][randomized]") {
  const std::uint64_t seed = raft_test::test_seed("raft replay", 7);
  RandomRun first(seed, small_limits());
  first.run(2000);
  RandomRun second(seed, small_limits());
  second.run(2000);
  CHECK(first.trace() == second.trace());
  RandomRun other(seed + 1, small_limits());
  other.run(2000);
  CHECK(other.trace() != first.trace());
}

}  // namespace
}  // namespace nodenomad
