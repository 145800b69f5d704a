// The node-to-node request encoding: round trips, and hostile bytes refused.
#include <catch2/catch.hpp>

#include "node/node_rpc.hpp"
#include "nodenomad/transport.hpp"

namespace nodenomad {
namespace {

TEST_CASE("node rpc: requests and responses round-trip", "[node][rpc]") {
  node::RpcRequest request;
  request.op = node::RpcOp::kPut;
  request.consistency = ReadConsistency::kLease;
  request.hops = 2;
  request.key = std::string("k\0y", 3);
  request.value = "value";
  request.ttl_ms = 1500;
  request.if_version = 0;
  request.timeout_ms = 4000;
  request.shard_epoch = 7;
  Result<node::RpcRequest> decoded = node::decode_rpc_request(node::encode_rpc_request(request));
  REQUIRE(decoded.is_ok());
  CHECK(*decoded == request);

  node::RpcResponse response;
  response.reply.status = Status::version_mismatch("at 3");
  response.reply.current_version = 3;
  response.reply.value = "x";
  response.reply.expires_in_ms = 9;
  response.leader_hint = NodeId("node-2");
  Result<node::RpcResponse> back = node::decode_rpc_response(node::encode_rpc_response(response));
  REQUIRE(back.is_ok());
  CHECK(back->reply.status.is(StatusCode::kVersionMismatch));
  CHECK(back->reply.status.message() == "at 3");
  CHECK(back->reply.current_version == 3);
  CHECK(back->reply.value == "x");
  CHECK(back->reply.expires_in_ms == std::optional<std::uint64_t>(9));
  CHECK(back->leader_hint == NodeId("node-2"));
}

TEST_CASE("node rpc: every truncation and a trailing byte are refused", "[node][rpc]") {
  node::RpcRequest request;
  request.key = "key";
  request.value = "value";
  request.ttl_ms = 5;
  const std::string bytes = node::encode_rpc_request(request);
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    CHECK_FALSE(node::decode_rpc_request(bytes.substr(0, n)).is_ok());
  }
  CHECK_FALSE(node::decode_rpc_request(bytes + "x").is_ok());
  const std::string stats = node::encode_replica_stats({{ShardId(3), 10, 200, true}});
  REQUIRE(node::decode_replica_stats(stats).is_ok());
  CHECK(node::decode_replica_stats(stats)->at(0).leader);
  // A count that the bytes could not hold is refused before allocating.
  CHECK_FALSE(node::decode_replica_stats(std::string("\xff\xff\xff\xff\x0f", 5)).is_ok());
}

TEST_CASE("envelope: raft and request envelopes round-trip; garbage is refused",
          "[node][envelope]") {
  Envelope raft;
  raft.from = NodeId("a");
  raft.to = NodeId("b");
  raft.group = GroupId(17);
  raft.message.type = MessageType::kAppend;
  raft.message.from = NodeId("a");
  raft.message.to = NodeId("b");
  raft.message.term = Term(4);
  raft.message.entries.push_back(Entry{Term(4), LogIndex(9), EntryType::kNormal, "cmd"});
  Result<Envelope> back = decode_envelope(encode_envelope(raft));
  REQUIRE(back.is_ok());
  CHECK(*back == raft);

  Envelope request;
  request.from = NodeId("a");
  request.to = NodeId("b");
  request.kind = EnvelopeKind::kRequest;
  request.request_id = 77;
  request.payload = "payload";
  const std::string bytes = encode_envelope(request);
  REQUIRE(decode_envelope(bytes).is_ok());
  CHECK(*decode_envelope(bytes) == request);
  for (std::size_t n = 0; n < bytes.size(); ++n) CHECK_FALSE(decode_envelope(bytes.substr(0, n)).is_ok());
  CHECK_FALSE(decode_envelope(bytes + "!").is_ok());
  std::string bad_kind = bytes;
  bad_kind[1] = 9;
  CHECK_FALSE(decode_envelope(bad_kind).is_ok());
}

}  // namespace
}  // namespace nodenomad
