// The node-to-node request layer: a client call forwarded to the node that
// leads its shard (or, for membership, the metadata group), carried in an
// Envelope's payload (kRequest / kResponse).
//
// Layout (integers are unsigned LEB128 varints unless marked u8; strings are
// a varint length and the bytes; `opt` is u8 0/1 then the value):
//
//   request:  u8 version (= 2) | u8 op | u8 consistency | u8 hops | key | value
//             | opt ttl_ms | opt if_version | timeout_ms | shard_epoch
//   response: u8 version (= 2) | u8 status code | message | version
//             | current_version | u8 deleted | value | opt expires_in_ms
//             | leader_hint
//
// Decoding reads untrusted bytes: every length is bounded by what remains,
// and anything malformed answers kCorruption.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "nodenomad/client_api.hpp"
#include "nodenomad/status.hpp"

namespace nodenomad::node {

enum class RpcOp : std::uint8_t {
  kPut = 1,
  kGet = 2,
  kRemove = 3,
  kAddNode = 4,    // key = node id, value = address; served by the metadata leader
  kNodeStats = 5,  // this node's replicas: keys, bytes, leadership (NodeStats)
  // Migration (value = an encoded call of migration_wire.hpp; the reply's
  // value an encoded report):
  kMigrateShard = 6,    // coordinator -> the shard's leader (ShardCall)
  kMigrateTarget = 7,   // the shard's leader -> the target (TargetCall)
  kDropShard = 8,       // coordinator -> a node: key = shard id, if_version =
                        // the epoch its view must have reached; reply version
                        // = bytes freed
  kMigrationAdmin = 9,  // any node -> the metadata leader (AdminCall)
};

struct RpcRequest {
  RpcOp op = RpcOp::kGet;
  ReadConsistency consistency = ReadConsistency::kLinearizable;
  // How many times the request was forwarded already; bounded so that two
  // nodes with stale views can never bounce a request forever.
  std::uint8_t hops = 0;
  std::string key;
  std::string value;
  std::optional<std::uint64_t> ttl_ms;
  std::optional<std::uint64_t> if_version;
  std::uint64_t timeout_ms = 0;  // the caller's remaining budget
  // The epoch of the key's shard in the sender's ShardMap: a node whose view
  // is older cannot route the request better than the sender (0: none).
  std::uint64_t shard_epoch = 0;
  bool operator==(const RpcRequest&) const = default;
};

struct RpcResponse {
  KvReply reply;
  NodeId leader_hint;  // kUnavailable from a non-leader: where to try next
};

std::string encode_rpc_request(const RpcRequest& request);
Result<RpcRequest> decode_rpc_request(std::string_view bytes);
std::string encode_rpc_response(const RpcResponse& response);
Result<RpcResponse> decode_rpc_response(std::string_view bytes);

// One replica's figures, for GET /v1/cluster.
struct ReplicaStats {
  ShardId shard;
  std::uint64_t keys = 0;
  std::uint64_t bytes = 0;
  bool leader = false;
};
std::string encode_replica_stats(const std::vector<ReplicaStats>& stats);
Result<std::vector<ReplicaStats>> decode_replica_stats(std::string_view bytes);

}  // namespace nodenomad::node
