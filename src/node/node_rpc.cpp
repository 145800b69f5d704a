// Encoding of the node-to-node requests (layout in node_rpc.hpp).
#include "node/node_rpc.hpp"

#include <fmt/format.h>

#include "raft/byte_io.hpp"

namespace nodenomad::node {

namespace {

// 2: requests carry the sender's shard epoch.
constexpr std::uint8_t kRpcFormat = 2;
constexpr std::uint8_t kMaxStatusCode = static_cast<std::uint8_t>(StatusCode::kAborted);

using raft_io::ByteReader;
using raft_io::ByteWriter;

void put_optional(ByteWriter& w, const std::optional<std::uint64_t>& v) {
  w.u8(v ? 1 : 0);
  if (v) w.varint(*v);
}

bool get_optional(ByteReader& r, std::optional<std::uint64_t>& v) {
  std::uint8_t present = 0;
  if (!r.u8(present) || present > 1) return false;
  if (present == 0) {
    v.reset();
    return true;
  }
  std::uint64_t value = 0;
  if (!r.varint(value)) return false;
  v = value;
  return true;
}

Status malformed(std::string_view what, std::string_view field) {
  return Status::corruption(fmt::format("node rpc {}: {} is missing or malformed", what, field));
}

bool read_header(ByteReader& r) {
  std::uint8_t version = 0;
  return r.u8(version) && version == kRpcFormat;
}

}  // namespace

std::string encode_rpc_request(const RpcRequest& request) {
  std::string out;
  ByteWriter w(out);
  w.u8(kRpcFormat);
  w.u8(static_cast<std::uint8_t>(request.op));
  w.u8(static_cast<std::uint8_t>(request.consistency));
  w.u8(request.hops);
  w.bytes(request.key);
  w.bytes(request.value);
  put_optional(w, request.ttl_ms);
  put_optional(w, request.if_version);
  w.varint(request.timeout_ms);
  w.varint(request.shard_epoch);
  return out;
}

Result<RpcRequest> decode_rpc_request(std::string_view bytes) {
  ByteReader r(bytes);
  if (!read_header(r)) return malformed("request", "the format version");
  RpcRequest request;
  std::uint8_t op = 0;
  std::uint8_t consistency = 0;
  if (!r.u8(op) || op < 1 || op > 9) return malformed("request", "the operation");
  if (!r.u8(consistency) || consistency > 2) return malformed("request", "the consistency");
  request.op = static_cast<RpcOp>(op);
  request.consistency = static_cast<ReadConsistency>(consistency);
  if (!r.u8(request.hops)) return malformed("request", "the hop count");
  if (!r.string(request.key)) return malformed("request", "the key");
  if (!r.string(request.value)) return malformed("request", "the value");
  if (!get_optional(r, request.ttl_ms)) return malformed("request", "ttl_ms");
  if (!get_optional(r, request.if_version)) return malformed("request", "if_version");
  if (!r.varint(request.timeout_ms)) return malformed("request", "timeout_ms");
  if (!r.varint(request.shard_epoch)) return malformed("request", "shard_epoch");
  if (!r.done()) return malformed("request", "the end (bytes follow)");
  return request;
}

std::string encode_rpc_response(const RpcResponse& response) {
  std::string out;
  ByteWriter w(out);
  const KvReply& reply = response.reply;
  w.u8(kRpcFormat);
  w.u8(static_cast<std::uint8_t>(reply.status.code()));
  w.bytes(reply.status.message());
  w.varint(reply.version);
  w.varint(reply.current_version);
  w.u8(reply.deleted ? 1 : 0);
  w.bytes(reply.value);
  put_optional(w, reply.expires_in_ms);
  w.bytes(response.leader_hint.str());
  return out;
}

Result<RpcResponse> decode_rpc_response(std::string_view bytes) {
  ByteReader r(bytes);
  if (!read_header(r)) return malformed("response", "the format version");
  RpcResponse response;
  KvReply& reply = response.reply;
  std::uint8_t code = 0;
  std::string message;
  std::uint8_t deleted = 0;
  std::string hint;
  if (!r.u8(code) || code > kMaxStatusCode) return malformed("response", "the status code");
  if (!r.string(message)) return malformed("response", "the message");
  if (code != 0) reply.status = Status(static_cast<StatusCode>(code), std::move(message));
  if (!r.varint(reply.version)) return malformed("response", "the version");
  if (!r.varint(reply.current_version)) return malformed("response", "current_version");
  if (!r.u8(deleted) || deleted > 1) return malformed("response", "deleted");
  reply.deleted = deleted == 1;
  if (!r.string(reply.value)) return malformed("response", "the value");
  if (!get_optional(r, reply.expires_in_ms)) return malformed("response", "expires_in_ms");
  if (!r.string(hint)) return malformed("response", "the leader hint");
  response.leader_hint = NodeId(std::move(hint));
  if (!r.done()) return malformed("response", "the end (bytes follow)");
  return response;
}

std::string encode_replica_stats(const std::vector<ReplicaStats>& stats) {
  std::string out;
  ByteWriter w(out);
  w.varint(stats.size());
  for (const ReplicaStats& s : stats) {
    w.varint(s.shard.value());
    w.varint(s.keys);
    w.varint(s.bytes);
    w.u8(s.leader ? 1 : 0);
  }
  return out;
}

Result<std::vector<ReplicaStats>> decode_replica_stats(std::string_view bytes) {
  ByteReader r(bytes);
  std::uint64_t count = 0;
  if (!r.count(count, 4)) return malformed("stats", "the count");
  std::vector<ReplicaStats> out(count);
  for (ReplicaStats& s : out) {
    std::uint64_t shard = 0;
    std::uint8_t leader = 0;
    if (!r.varint(shard) || !r.varint(s.keys) || !r.varint(s.bytes) || !r.u8(leader) ||
        leader > 1) {
      return malformed("stats", "a replica");
    }
    s.shard = ShardId(shard);
    s.leader = leader == 1;
  }
  if (!r.done()) return malformed("stats", "the end (bytes follow)");
  return out;
}

}  // namespace nodenomad::node
