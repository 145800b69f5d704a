// LeaderHints: a peer's hint naming this node is dropped; the node's own
// replica is believed (src/node/leader_hints.hpp).
#include <catch2/catch.hpp>

#include "node/leader_hints.hpp"

namespace nodenomad::node {
namespace {

TEST_CASE("leader hints: a peer naming this node is stale news", "[node][leader_hints]") {
  const NodeId self("node-1");
  LeaderHints hints(self);
  const ShardId shard(2);

  hints.from_peer(shard, NodeId("node-3"));
  CHECK(hints.get(shard) == NodeId("node-3"));

  // node-4 still believes node-1 leads (it did not hear the transfer): the
  // old hint is dropped too, so the caller asks the ShardMap's replicas
  // instead of itself.
  hints.from_peer(shard, self);
  CHECK(hints.get(shard).empty());

  hints.from_peer(shard, NodeId("node-2"));
  hints.from_peer(shard, NodeId());
  CHECK(hints.get(shard).empty());
}

TEST_CASE("leader hints: this node's own replica is believed, self included",
          "[node][leader_hints]") {
  const NodeId self("node-1");
  LeaderHints hints(self);
  const ShardId a(0);
  const ShardId b(1);

  hints.from_replica(a, self);
  hints.from_replica(b, NodeId("node-2"));
  CHECK(hints.get(a) == self);
  CHECK(hints.get(b) == NodeId("node-2"));

  hints.from_replica(a, NodeId());  // stepped down, no leader known yet
  CHECK(hints.get(a).empty());
  hints.forget(b);
  CHECK(hints.get(b).empty());
}

}  // namespace
}  // namespace nodenomad::node
