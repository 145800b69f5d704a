// Leadership transfer: TimeoutNow once the target has caught up.
#include <algorithm>

#include "raft/raft_test_support.hpp"

namespace nodenomad {
namespace {

using raft_test::Cluster;
using raft_test::make_cluster;
using raft_test::node;
using raft_test::nodes;

TEST_CASE("raft transfer: leadership moves to a caught-up voter through TimeoutNow",
          "[raft][transfer]") {
  Cluster cluster = make_cluster(nodes(1, 3));  // pre-vote and check-quorum on
  cluster.elect(node(1));
  cluster.stabilize();
  const Term term = cluster.engine(node(1)).term();
  REQUIRE(cluster.engine(node(1)).transfer_leadership(node(2)).is_ok());
  Ready rd = cluster.engine(node(1)).ready();
  REQUIRE(std::count_if(rd.messages.begin(), rd.messages.end(), [](const Message& m) {
            return m.type == MessageType::kTimeoutNow && m.to == node(2);
          }) == 1);
  cluster.complete_ready(node(1), rd);
  cluster.stabilize();
  // The target campaigns at once; leases do not hold it back.
  CHECK(cluster.engine(node(2)).role() == RaftRole::kLeader);
  CHECK(cluster.engine(node(2)).term() == term + 1);
  CHECK(cluster.engine(node(1)).role() == RaftRole::kFollower);
  CHECK(cluster.engine(node(1)).leader() == node(2));
}

TEST_CASE("raft transfer: a lagging target is caught up before TimeoutNow",
          "[raft][transfer]") {
  Cluster cluster = make_cluster(nodes(1, 3));
  cluster.elect(node(1));
  cluster.isolate(node(3));
  for (int i = 0; i < 5; ++i) REQUIRE(cluster.propose(node(1), "t").is_ok());
  cluster.stabilize();
  cluster.heal();
  bool timeout_now_before_catch_up = false;
  cluster.on_deliver = [&](const Message& m) {
    if (m.type == MessageType::kTimeoutNow &&
        cluster.engine(node(3)).last_index() < cluster.engine(node(1)).last_index()) {
      timeout_now_before_catch_up = true;
    }
  };
  REQUIRE(cluster.engine(node(1)).transfer_leadership(node(3)).is_ok());
  for (int i = 0; i < 5 && cluster.engine(node(3)).role() != RaftRole::kLeader; ++i) {
    cluster.tick(node(1));
    cluster.stabilize();
  }
  CHECK_FALSE(timeout_now_before_catch_up);
  CHECK(cluster.engine(node(3)).role() == RaftRole::kLeader);
  CHECK(cluster.state_machine(node(3)).commands().size() == 5);
}

TEST_CASE("raft transfer: proposals wait during a transfer, which is abandoned after an "
          "election timeout",
          "[raft][transfer]") {
  Cluster cluster = make_cluster(nodes(1, 3));
  cluster.elect(node(1));
  cluster.isolate(node(3));
  REQUIRE(cluster.propose(node(1), "x").is_ok());
  cluster.stabilize();
  REQUIRE(cluster.engine(node(1)).transfer_leadership(node(3)).is_ok());
  CHECK(cluster.engine(node(1)).transfer_target() == node(3));
  CHECK(cluster.propose(node(1), "y").status().is(StatusCode::kBusy));
  for (int i = 0; i < 10; ++i) {
    cluster.tick(node(1));
    cluster.tick(node(2));
    cluster.stabilize();
  }
  CHECK(cluster.engine(node(1)).transfer_target().empty());
  CHECK(cluster.engine(node(1)).role() == RaftRole::kLeader);
  CHECK(cluster.propose(node(1), "y").is_ok());
}

TEST_CASE("raft transfer: only voters can receive leadership", "[raft][transfer]") {
  Cluster cluster = make_cluster(nodes(1, 2), {node(3)});
  cluster.elect(node(1));
  CHECK(cluster.engine(node(1)).transfer_leadership(node(3)).is(StatusCode::kInvalidArgument));
  CHECK(cluster.engine(node(1)).transfer_leadership(node(9)).is(StatusCode::kInvalidArgument));
  CHECK(cluster.engine(node(2)).transfer_leadership(node(1)).is(StatusCode::kNotLeader));
  CHECK(cluster.engine(node(1)).transfer_leadership(node(1)).is_ok());
}

}  // namespace
}  // namespace nodenomad
