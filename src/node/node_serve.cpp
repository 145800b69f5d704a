// Serving a request on the node that holds the shard: writes proposed to
// the shard's Raft group, reads confirmed by ReadIndex (or the lease) and
// answered from the shard's StorageEngine.
#include <fmt/format.h>

#include "node/node_impl.hpp"
#include "nodenomad/storage/command.hpp"

namespace nodenomad {

namespace {

// How long a served request's id is remembered, and how many at most (about
// 100 bytes each). A duplicate that arrives later than this is served again:
// transports duplicate within moments (TCP never), not after seconds.
constexpr std::uint64_t kServedMemoryMs = 10'000;
constexpr std::size_t kMaxServedRemembered = 200'000;

// A request is relayed at most this many times by nodes that hold no
// replica of its shard.
constexpr std::uint8_t kMaxRelayHops = 2;

node::RpcResponse response_with(Status status, NodeId hint = NodeId()) {
  node::RpcResponse response;
  response.reply.status = std::move(status);
  response.leader_hint = std::move(hint);
  return response;
}

node::RpcResponse from_write_result(const WriteResult& result) {
  node::RpcResponse response;
  KvReply& reply = response.reply;
  if (result.status.is(StatusCode::kVersionMismatch)) {
    reply.status = Status::version_mismatch(fmt::format(
        "if_version did not match: the key is at version {}", result.current_version));
    reply.current_version = result.current_version;
    return response;
  }
  if (result.status.is(StatusCode::kFailed)) {
    // Logged and committed, but this replica could not apply it.
    reply.status = Status::timeout(std::string(result.status.message()));
    return response;
  }
  reply.status = result.status;
  reply.version = result.version;
  reply.deleted = result.deleted;
  return response;
}

}  // namespace

void Node::Impl::serve_forwarded(const Envelope& envelope) {
  const NodeId from = envelope.from;
  const std::uint64_t request_id = envelope.request_id;
  // A duplicate of a request served lately is dropped: the sender never
  // reuses an id (a retry is a new request), so this is the network's copy,
  // and serving it again would apply a write twice.
  const std::uint64_t now = now_ms();
  while (!served_order_.empty() && (served_order_.front().first <= now ||
                                    served_order_.size() > kMaxServedRemembered)) {
    served_.erase(served_order_.front().second);
    served_order_.pop_front();
  }
  if (!served_.emplace(from, request_id).second) return;
  served_order_.emplace_back(now + kServedMemoryMs, std::make_pair(from, request_id));
  auto answer = [this, from, request_id](node::RpcResponse response) {
    Envelope out;
    out.from = options_.id;
    out.to = from;
    out.kind = EnvelopeKind::kResponse;
    out.request_id = request_id;
    out.payload = node::encode_rpc_response(response);
    options_.transport->send(std::move(out));
  };
  Result<node::RpcRequest> rpc = node::decode_rpc_request(envelope.payload);
  if (!rpc.is_ok()) return;  // nothing to answer: the sender's deadline decides
  ++requests_served_for_peers_;
  if (const Status f = failure(); !f.is_ok()) {
    answer(response_with(Status::unavailable("the node is failed: " + std::string(f.message()))));
    return;
  }
  if (rpc->op == node::RpcOp::kAddNode || rpc->op == node::RpcOp::kNodeStats) {
    serve_admin(*rpc, std::move(answer));
    return;
  }
  if (rpc->op >= node::RpcOp::kMigrateShard) {
    serve_migration(*rpc, std::move(answer));
    return;
  }
  if (Status v = validate(*rpc); !v.is_ok()) {
    answer(response_with(std::move(v)));
    return;
  }
  std::shared_ptr<const ClusterMetadata> view;
  {
    std::lock_guard lock(view_mu_);
    view = view_;
  }
  if (!view || view->shard_map().shard_count() == 0) {
    // A peer may route to a replica here before this node knows the cluster.
    answer(response_with(Status::unavailable("this node has not joined a cluster yet")));
    return;
  }
  const ShardId shard = view->shard_map().shard_for_key(rpc->key);
  node::GroupReplica* replica = shard_replica(shard);
  if (replica == nullptr) {
    // A stale route (the shard moved away, or never was here): relay the
    // request along this node's own view when it is at least as new as the
    // sender's, so the client never sees the move. The hop bound stops two
    // nodes with crossed views from bouncing it for long.
    const Epoch mine = view->shard_map().placement(shard).epoch;
    const NodeId hinted = leader_hints_.get(shard);
    if (rpc->shard_epoch > mine.value() || rpc->hops >= kMaxRelayHops) {
      answer(response_with(
          Status::unavailable(fmt::format(
              "{} holds no replica of shard {} (its view is at epoch {}, the sender's at {})",
              options_.id.str(), shard.value(), mine.value(), rpc->shard_epoch)),
          hinted));
      return;
    }
    node::RpcRequest relayed = std::move(*rpc);
    ++relayed.hops;
    ++requests_relayed_;
    start_request(std::move(relayed), [answer](KvReply reply) {
      node::RpcResponse response;
      response.reply = std::move(reply);
      answer(std::move(response));
    });
    return;
  }
  execute_locally(*replica, *rpc, std::move(answer));
}

void Node::Impl::execute_locally(node::GroupReplica& replica, const node::RpcRequest& rpc,
                                 std::function<void(node::RpcResponse)> done) {
  const bool stale_read =
      rpc.op == node::RpcOp::kGet && rpc.consistency == ReadConsistency::kStale;
  if (!stale_read && !replica.is_leader()) {
    done(response_with(Status::unavailable(fmt::format("{} does not lead shard {}",
                                                       options_.id.str(),
                                                       shard_of_group(replica.group()).value())),
                       replica.engine().leader()));
    return;
  }
  if (rpc.op == node::RpcOp::kGet) {
    execute_read(replica, rpc, std::move(done));
  } else {
    execute_write(replica, rpc, std::move(done));
  }
}

void Node::Impl::execute_write(node::GroupReplica& replica, const node::RpcRequest& rpc,
                               std::function<void(node::RpcResponse)> done) {
  const WallTime now = clock_->wall_now();
  KvCommand command;
  command.type = rpc.op == node::RpcOp::kPut ? KvCommandType::kSet : KvCommandType::kRemove;
  command.issued_at = now;
  command.key = rpc.key;
  if (command.type == KvCommandType::kSet) command.value = rpc.value;
  if (rpc.ttl_ms) command.expiry = now + std::chrono::milliseconds(*rpc.ttl_ms);
  command.if_version = rpc.if_version;
  auto* storage = static_cast<StorageEngine*>(&replica.state_machine());
  if (Status valid = storage->validate_command(command); !valid.is_ok()) {
    done(response_with(std::move(valid)));
    return;
  }
  replica.propose(encode_kv_command(command), [done = std::move(done)](Result<std::string> r) {
    if (!r.is_ok()) {
      done(response_with(r.status()));
      return;
    }
    Result<WriteResult> result = decode_write_result(*r);
    if (!result.is_ok()) {
      done(response_with(Status::timeout("the state machine's answer is unreadable: " +
                                         std::string(result.status().message()))));
      return;
    }
    done(from_write_result(*result));
  });
}

void Node::Impl::execute_read(node::GroupReplica& replica, const node::RpcRequest& rpc,
                              std::function<void(node::RpcResponse)> done) {
  const ShardId shard = shard_of_group(replica.group());
  if (rpc.consistency == ReadConsistency::kStale) {
    node::RpcResponse response;
    response.reply = read_now(shard, rpc.key);
    done(std::move(response));
    return;
  }
  const bool allow_lease = rpc.consistency == ReadConsistency::kLease;
  replica.read(allow_lease, [this, shard, key = rpc.key, done = std::move(done)](Status s) {
    if (!s.is_ok()) {
      done(response_with(Status::unavailable(std::string(s.message()))));
      return;
    }
    node::RpcResponse response;
    response.reply = read_now(shard, key);
    done(std::move(response));
  });
}

KvReply Node::Impl::read_now(ShardId shard, const std::string& key) {
  KvReply reply;
  auto it = storage_.find(shard);
  if (it == storage_.end()) {
    reply.status = Status::unavailable(fmt::format("shard {} is not held here", shard.value()));
    return reply;
  }
  const WallTime now = clock_->wall_now();
  Result<ReadResult> read = it->second->get(key, now);
  if (!read.is_ok()) {
    reply.status = read.status().is(StatusCode::kNotFound) ? Status::not_found("no such key")
                                                           : read.status();
    return reply;
  }
  reply.value = std::move(read->value);
  reply.version = read->version;
  if (read->expiry) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*read->expiry - now);
    reply.expires_in_ms = static_cast<std::uint64_t>(std::max<std::int64_t>(left.count(), 0));
  }
  return reply;
}

}  // namespace nodenomad
