// The RaftEngine's edges: bootstrap, open over a contradictory store,
// malformed input to step(), and the Ready bookkeeping.
#include "raft/raft_test_support.hpp"

namespace nodenomad {
namespace {

using raft_test::Cluster;
using raft_test::make_cluster;
using raft_test::node;
using raft_test::nodes;

RaftConfig config_for(const char* id) {
  RaftConfig c = raft_test::default_config();
  c.id = NodeId(id);
  return c;
}

TEST_CASE("raft engine: bootstrap writes the first configuration once", "[raft][engine]") {
  MemoryLogStore store;
  ConfState conf;
  conf.voters = {NodeId("a"), NodeId("b")};
  REQUIRE(RaftEngine::bootstrap(store, conf).is_ok());
  CHECK(store.snapshot_meta().conf_state == conf);
  CHECK(RaftEngine::bootstrap(store, conf).is(StatusCode::kAlreadyExists));
  MemoryLogStore other;
  CHECK(RaftEngine::bootstrap(other, ConfState{}).is(StatusCode::kInvalidArgument));
  Result<std::unique_ptr<RaftEngine>> engine =
      RaftEngine::open(config_for("a"), store, nullptr, Rng(1));
  REQUIRE(engine.is_ok());
  CHECK((*engine)->conf_state() == conf);
  CHECK((*engine)->role() == RaftRole::kFollower);
}

TEST_CASE("raft engine: open refuses a bad config and a contradictory store",
          "[raft][engine]") {
  MemoryLogStore store;
  RaftConfig bad = config_for("a");
  bad.election_timeout_ticks = 1;
  CHECK(RaftEngine::open(bad, store, nullptr, Rng(1)).status().is(StatusCode::kInvalidArgument));
  bad = config_for("");
  CHECK(RaftEngine::open(bad, store, nullptr, Rng(1)).status().is(StatusCode::kInvalidArgument));
  REQUIRE(store.set_hard_state(HardState{Term(1), NodeId(), LogIndex(5)}).is_ok());
  const Result<std::unique_ptr<RaftEngine>> engine =
      RaftEngine::open(config_for("a"), store, nullptr, Rng(1));
  REQUIRE_FALSE(engine.is_ok());
  CHECK(engine.status().is(StatusCode::kCorruption));
}

TEST_CASE("raft engine: step refuses misaddressed and malformed messages",
          "[raft][engine]") {
  Cluster cluster = make_cluster(nodes(1, 3));
  RaftEngine& engine = cluster.engine(node(2));
  Message m;
  m.type = MessageType::kAppend;
  m.from = node(1);
  m.to = node(3);
  m.term = Term(1);
  CHECK(engine.step(m).is(StatusCode::kInvalidArgument));  // not for n2
  m.to = node(2);
  m.from = node(2);
  CHECK(engine.step(m).is(StatusCode::kInvalidArgument));  // from itself
  m.from = node(1);
  m.entries = {Entry{Term(1), LogIndex(2), EntryType::kNormal, "gap"}};  // should be index 1
  CHECK(engine.step(m).is(StatusCode::kInvalidArgument));
  m.entries = {Entry{Term(2), LogIndex(1), EntryType::kNormal, "future term"}};
  CHECK(engine.step(m).is(StatusCode::kInvalidArgument));
  m.entries = {Entry{Term(1), LogIndex(1), EntryType::kNormal, "ok"}};
  CHECK(engine.step(m).is_ok());
  m.type = MessageType::kHeartbeat;
  CHECK(engine.step(m).is(StatusCode::kInvalidArgument));  // entries on a heartbeat
  Message garbage;
  garbage.type = static_cast<MessageType>(99);
  garbage.from = node(1);
  garbage.to = node(2);
  CHECK(engine.step(garbage).is(StatusCode::kInvalidArgument));
  // Nothing malformed reached the log.
  CHECK(engine.last_index() == LogIndex(1));
}

TEST_CASE("raft engine: one Ready at a time", "[raft][engine]") {
  Cluster cluster = make_cluster({node(1)});
  RaftEngine& engine = cluster.engine(node(1));
  REQUIRE(engine.campaign().is_ok());
  REQUIRE(engine.has_ready());
  Ready rd = engine.ready();
  // While it is outstanding, the engine reports nothing new.
  CHECK_FALSE(engine.has_ready());
  cluster.complete_ready(node(1), rd);
  CHECK(engine.role() == RaftRole::kLeader);
  CHECK(engine.has_ready());  // the leader's no-op
  cluster.process_ready(node(1));
  cluster.process_ready(node(1));
  CHECK(engine.commit_index() == LogIndex(1));
  CHECK_FALSE(engine.has_ready());
}

TEST_CASE("raft engine: committed entries per Ready are bounded by max_apply_bytes_per_ready",
          "[raft][engine]") {
  RaftConfig config = raft_test::default_config();
  config.max_apply_bytes_per_ready = 250;
  Cluster cluster = make_cluster({node(1)}, {}, config);
  cluster.elect(node(1));
  cluster.stabilize();
  for (int i = 0; i < 10; ++i) REQUIRE(cluster.propose(node(1), std::string(100, 'x')).is_ok());
  cluster.process_ready(node(1));  // persists; commit follows in advance()
  std::size_t readies = 0;
  while (cluster.engine(node(1)).has_ready() && readies < 20) {
    Ready rd = cluster.engine(node(1)).ready();
    std::size_t bytes = 0;
    for (const Entry& e : rd.committed_entries) bytes += e.data.size();
    CHECK((bytes <= 250 || rd.committed_entries.size() == 1));
    cluster.complete_ready(node(1), rd);
    ++readies;
  }
  CHECK(readies >= 4);
  CHECK(cluster.state_machine(node(1)).commands().size() == 10);
}

}  // namespace
}  // namespace nodenomad
