// The whole-node simulation's parts on their own: the scheduler and its
// loops, the simulated network, and the invariants catching broken views.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "node/migration_wire.hpp"
#include "nodenomad/sharding/cluster_metadata.hpp"
#include "sim_cluster/cluster_invariants.hpp"
#include "sim_cluster/cluster_trace.hpp"
#include "sim_cluster/scheduler.hpp"
#include "sim_cluster/sim_transport.hpp"

namespace nodenomad::sim_cluster {
namespace {

using namespace std::chrono_literals;

// --- the scheduler and its loops ---

TEST_CASE("tasks run in time order, FIFO within one instant, with the clock moved",
          "[sim_cluster]") {
  ManualClock clock;
  Scheduler scheduler(clock);
  std::vector<std::string> ran;
  std::vector<MonoTime> seen;
  auto task = [&](std::string name) {
    return [&, name] {
      ran.push_back(name);
      seen.push_back(clock.monotonic_now());
    };
  };
  REQUIRE(scheduler.at(2'000, 0, task("c")));
  REQUIRE(scheduler.at(1'000, 1, task("a")));
  REQUIRE(scheduler.at(1'000, kNoOwner, task("b")));
  while (scheduler.run_next()) {
  }
  CHECK(ran == std::vector<std::string>{"a", "b", "c"});
  CHECK(seen == std::vector<MonoTime>{MonoTime(1ms), MonoTime(1ms), MonoTime(2ms)});
  CHECK(scheduler.now() == 2'000);
  CHECK(scheduler.steps() == 3);
}

TEST_CASE("a crashed node's tasks are dropped and its loop refuses more", "[sim_cluster]") {
  ManualClock clock;
  Scheduler scheduler(clock);
  SimLoop loop(scheduler, 3);
  int ran = 0;
  bool inside = false;
  loop.post([&] {
    ++ran;
    inside = loop.in_loop();
  });
  REQUIRE(scheduler.run_next());
  CHECK(ran == 1);
  CHECK(inside);
  CHECK_FALSE(loop.in_loop());  // not while no task of node 3 runs
  scheduler.as_owner(3, [&] { inside = loop.in_loop(); });
  CHECK(inside);

  loop.post_after(5ms, [&] { ++ran; });
  scheduler.at(0, kNoOwner, [&] { ++ran; });
  REQUIRE(scheduler.pending() == 2);
  loop.kill();
  scheduler.drop_owner(3);
  CHECK(scheduler.pending() == 1);  // only the task owned by nobody is left
  loop.post([&] { ++ran; });
  CHECK(loop.refused() == 1);
  while (scheduler.run_next()) {
  }
  CHECK(ran == 2);
  CHECK_FALSE(loop.in_loop());
}

TEST_CASE("a loop's timers run late by its clock skew; background posts by their delay",
          "[sim_cluster]") {
  ManualClock clock;
  Scheduler scheduler(clock);
  SimLoop slow(scheduler, 0);
  slow.set_skew(0.04);
  SimLoop disk(scheduler, 1, [] { return SimTime{700}; });
  std::vector<SimTime> at;
  slow.post_after(100ms, [&] { at.push_back(scheduler.now()); });
  disk.post([&] { at.push_back(scheduler.now()); });
  while (scheduler.run_next()) {
  }
  CHECK(at == std::vector<SimTime>{700, 104'000});
}

TEST_CASE("the task order hash tells two schedules apart", "[sim_cluster]") {
  auto run = [](SimTime second) {
    ManualClock clock;
    Scheduler scheduler(clock);
    scheduler.at(10, 0, [] {});
    scheduler.at(second, 1, [] {});
    while (scheduler.run_next()) {
    }
    return scheduler.order_hash();
  };
  CHECK(run(20) == run(20));
  CHECK(run(20) != run(30));
}

// --- the network ---

class Recorder final : public TransportHandler {
 public:
  void on_envelope(Envelope envelope) override { got.push_back(std::move(envelope)); }
  void on_peer_unreachable(const NodeId& peer) override { unreachable.push_back(peer); }
  std::vector<Envelope> got;
  std::vector<NodeId> unreachable;
};

Envelope request_from(std::uint64_t id) {
  Envelope e;
  e.from = NodeId("a");
  e.to = NodeId("b");
  e.kind = EnvelopeKind::kRequest;
  e.request_id = id;
  e.payload = "payload";
  return e;
}

struct Net {
  explicit Net(testing::ClusterFaultProfile profile)
      : scheduler(clock),
        trace(0, nullptr),
        network(scheduler, Rng(7), std::move(profile), trace, {NodeId("a"), NodeId("b")}),
        a(network.connect(0)),
        b(network.connect(1)) {
    REQUIRE(a->start(at_a).is_ok());
    REQUIRE(b->start(at_b).is_ok());
  }
  void run() {
    while (scheduler.run_next()) {
    }
  }
  ManualClock clock;
  Scheduler scheduler;
  ClusterTrace trace;
  SimNetwork network;
  Recorder at_a;
  Recorder at_b;
  std::unique_ptr<Transport> a;
  std::unique_ptr<Transport> b;
};

TEST_CASE("the network delivers what was sent, as a task of the receiver, after a latency",
          "[sim_cluster]") {
  Net net(testing::ClusterFaultProfile::calm());
  net.a->send(request_from(1));
  CHECK(net.at_b.got.empty());  // nothing arrives inside send()
  net.run();
  REQUIRE(net.at_b.got.size() == 1);
  CHECK(net.at_b.got[0] == request_from(1));
  CHECK(net.scheduler.now() >= 200);
  CHECK(net.network.stats().delivered == 1);
}

TEST_CASE("a cut link loses messages and tells the sender once; healing restores it",
          "[sim_cluster]") {
  Net net(testing::ClusterFaultProfile::calm());
  net.network.cut(0, 1);
  net.a->send(request_from(1));
  net.a->send(request_from(2));
  net.b->send([] {
    Envelope e = request_from(3);
    e.from = NodeId("b");
    e.to = NodeId("a");
    return e;
  }());
  net.run();
  CHECK(net.at_b.got.empty());
  CHECK(net.at_a.got.size() == 1);  // one way only
  CHECK(net.at_a.unreachable == std::vector<NodeId>{NodeId("b")});
  // A message in flight when the cut starts is lost too.
  net.network.heal();
  net.a->send(request_from(4));
  net.network.cut(0, 1);
  net.run();
  CHECK(net.at_b.got.empty());
  net.network.heal();
  net.a->send(request_from(5));
  net.run();
  REQUIRE(net.at_b.got.size() == 1);
  CHECK(net.at_b.got[0].request_id == 5);
}

TEST_CASE("requests are duplicated only when asked; other envelopes whenever drawn",
          "[sim_cluster]") {
  testing::ClusterFaultProfile always = testing::ClusterFaultProfile::calm();
  always.duplicate_probability = 1.0;
  Net net(always);
  net.network.set_duplicate_requests(false);
  net.a->send(request_from(1));
  Envelope response = request_from(2);
  response.kind = EnvelopeKind::kResponse;
  net.a->send(response);
  net.run();
  CHECK(net.at_b.got.size() == 3);  // the request once, the response twice
  net.network.set_duplicate_requests(true);
  net.a->send(request_from(3));
  net.run();
  CHECK(net.at_b.got.size() == 5);
}

TEST_CASE("a stopped transport receives nothing, and its peers hear it is unreachable",
          "[sim_cluster]") {
  Net net(testing::ClusterFaultProfile::calm());
  net.b->stop();
  net.a->send(request_from(1));
  net.run();
  CHECK(net.at_b.got.empty());
  CHECK(net.at_a.unreachable.size() == 1);
  CHECK(net.network.stats().dropped == 1);
}

// --- the invariants ---

ClusterMetadata bootstrapped() {
  ClusterMetadata m;
  std::vector<Member> members;
  for (int i = 1; i <= 4; ++i) {
    members.push_back(Member{NodeId("node-" + std::to_string(i)), "sim:" + std::to_string(i)});
  }
  const MetadataResult r = m.apply(metadata::Bootstrap{"c", members, 2, 3});
  REQUIRE(r.ok());
  return m;
}

void apply_ok(ClusterMetadata& m, const MetadataCommand& command) {
  const MetadataResult r = m.apply(command);
  INFO(r.status.to_string());
  REQUIRE(r.ok());
}

// The one member of the 4 that holds no replica of the placement.
NodeId outsider(const ShardPlacement& p) {
  for (int i = 1; i <= 4; ++i) {
    NodeId id("node-" + std::to_string(i));
    if (!p.hosts(id)) return id;
  }
  FAIL("every member hosts the shard");
  return NodeId();
}

node::MigrationRecord record(MigrationStage stage, const ShardPlacement& p) {
  node::MigrationRecord r;
  r.id = "m1-s0";
  r.batch_id = "m1";
  r.shard = ShardId(0);
  r.source = p.replicas.front();
  r.target = outsider(p);
  r.expected_epoch = p.epoch;
  r.stage = stage;
  r.started = true;
  return r;
}

void put_record(ClusterMetadata& m, const node::MigrationRecord& r) {
  apply_ok(m, metadata::PutRecord{std::string(node::kMigrationNamespace), r.id,
                                  node::encode_migration_record(r), std::nullopt});
}

TEST_CASE("the invariants accept a move done by the book", "[sim_cluster]") {
  ClusterInvariants invariants(3);
  ClusterMetadata m = bootstrapped();
  const ShardPlacement p = m.shard_map().placement(ShardId(0));
  REQUIRE(p.replicas.size() == 3);
  std::vector<NodeId> voters = p.replicas;
  node::MigrationRecord r = record(MigrationStage::kPrepare, p);
  CHECK(invariants.observe(0, 1, m).empty());
  put_record(m, r);
  apply_ok(m, metadata::UpdateShardPlacement{ShardId(0), p.epoch, voters, {r.target}});
  CHECK(invariants.observe(0, 1, m).empty());
  voters.front() = r.target;
  apply_ok(m, metadata::UpdateShardPlacement{ShardId(0), p.epoch + 1, voters, {}});
  r.stage = MigrationStage::kUpdate;
  put_record(m, r);
  CHECK(invariants.observe(1, 1, m).empty());
  r.stage = MigrationStage::kDone;
  put_record(m, r);
  CHECK(invariants.observe(2, 1, m).empty());
  CHECK(invariants.newest().at("m1-s0").stage == MigrationStage::kDone);
}

TEST_CASE("two owner sets for one shard at one epoch are caught", "[sim_cluster]") {
  ClusterInvariants invariants(3);
  ClusterMetadata a = bootstrapped();
  ClusterMetadata b = bootstrapped();
  const ShardPlacement p = a.shard_map().placement(ShardId(1));
  std::vector<NodeId> other = p.replicas;
  std::reverse(other.begin(), other.end());
  apply_ok(a, metadata::UpdateShardPlacement{ShardId(1), p.epoch, p.replicas, {}});
  apply_ok(b, metadata::UpdateShardPlacement{ShardId(1), p.epoch, other, {}});
  CHECK(invariants.observe(0, 1, a).empty());
  const std::string v = invariants.observe(1, 1, b);
  CHECK(v.find("two owner sets for shard 1") != std::string::npos);
}

TEST_CASE("a view going back within one incarnation is caught, across a restart it is not",
          "[sim_cluster]") {
  ClusterMetadata old_view = bootstrapped();
  ClusterMetadata new_view = old_view;
  const ShardPlacement p = new_view.shard_map().placement(ShardId(0));
  apply_ok(new_view, metadata::UpdateShardPlacement{ShardId(0), p.epoch, p.replicas, {}});
  ClusterInvariants invariants(3);
  CHECK(invariants.observe(0, 1, new_view).empty());
  CHECK(invariants.observe(0, 2, old_view).empty());  // restarted from an older snapshot
  CHECK(invariants.observe(0, 2, new_view).empty());
  CHECK(invariants.observe(0, 2, old_view).find("went back") != std::string::npos);
}

TEST_CASE("a learner with no running operation is caught", "[sim_cluster]") {
  ClusterInvariants invariants(3);
  ClusterMetadata m = bootstrapped();
  const ShardPlacement p = m.shard_map().placement(ShardId(0));
  apply_ok(m, metadata::UpdateShardPlacement{ShardId(0), p.epoch, p.replicas, {outsider(p)}});
  CHECK(invariants.observe(0, 1, m).find("no running operation") != std::string::npos);
}

TEST_CASE("a move's stage going back, or a done move that left the source in, is caught",
          "[sim_cluster]") {
  SECTION("stage back") {
    ClusterInvariants invariants(3);
    ClusterMetadata m = bootstrapped();
    const ShardPlacement p = m.shard_map().placement(ShardId(0));
    put_record(m, record(MigrationStage::kVerify, p));
    CHECK(invariants.observe(0, 1, m).empty());
    put_record(m, record(MigrationStage::kTransfer, p));
    CHECK(invariants.observe(0, 1, m).find("stage went back") != std::string::npos);
  }
  SECTION("done with the source a voter") {
    ClusterInvariants invariants(3);
    ClusterMetadata m = bootstrapped();
    const ShardPlacement p = m.shard_map().placement(ShardId(0));
    put_record(m, record(MigrationStage::kDone, p));
    CHECK(invariants.observe(0, 1, m).find("ended done") != std::string::npos);
  }
  SECTION("a rollback at Update") {
    ClusterInvariants invariants(3);
    ClusterMetadata m = bootstrapped();
    node::MigrationRecord r = record(MigrationStage::kUpdate, m.shard_map().placement(ShardId(0)));
    r.rolling_back = true;
    put_record(m, r);
    CHECK(invariants.observe(0, 1, m).find("rolls back at or after Update") != std::string::npos);
  }
}

TEST_CASE("one version of a record with two contents is caught", "[sim_cluster]") {
  ClusterInvariants invariants(3);
  ClusterMetadata a = bootstrapped();
  ClusterMetadata b = bootstrapped();
  const ShardPlacement p = a.shard_map().placement(ShardId(0));
  node::MigrationRecord r = record(MigrationStage::kPrepare, p);
  r.started = false;
  put_record(a, r);
  r.paused = true;
  put_record(b, r);  // the same (first) version, another value
  CHECK(invariants.observe(0, 1, a).empty());
  CHECK(invariants.observe(1, 1, b).find("two different records") != std::string::npos);
}

TEST_CASE("batch sequence numbers come out of operation ids", "[sim_cluster]") {
  CHECK(migration_batch_seq("m17-s3") == 17);
  CHECK(migration_batch_seq("m3-s10") == 3);
  CHECK(migration_batch_seq("op-1") == 0);
}

}  // namespace
}  // namespace nodenomad::sim_cluster
