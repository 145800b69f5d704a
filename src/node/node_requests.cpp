// Client calls: validation, routing to the shard leader, forwarding over the
// transport, retries and deadlines.
//
// The rule that keeps answers honest: a write is retried (on this node or
// another) only after a definite "not applied" (kUnavailable: no leader, not
// the leader, a lost log slot). A write that reached a log and got no
// decision before its deadline answers kTimeout, "outcome unknown"; one
// that never reached a log answers kUnavailable. Reads have no effect, so
// a read attempt with no answer is simply tried again elsewhere.
#include <fmt/format.h>

#include "node/node_impl.hpp"
#include "nodenomad/storage/command.hpp"

namespace nodenomad {

namespace {

constexpr std::uint64_t kMaxRetryDelayMs = 200;
// A forwarded read with no answer after this long is tried elsewhere.
constexpr std::uint64_t kReadAttemptMs = 1'000;
// A peer the transport could not reach is skipped for this long (unless
// something arrives from it first).
constexpr std::uint64_t kUnreachableSkipMs = 2'000;

KvReply reply_with(Status status) {
  KvReply reply;
  reply.status = std::move(status);
  return reply;
}

bool is_write(node::RpcOp op) { return op == node::RpcOp::kPut || op == node::RpcOp::kRemove; }

}  // namespace

Status Node::Impl::validate(const node::RpcRequest& rpc) const {
  if (rpc.key.empty() || rpc.key.size() > options_.max_key_bytes) {
    return Status::invalid_argument(fmt::format(
        "key is {} bytes; a key is 1 to {} bytes", rpc.key.size(), options_.max_key_bytes));
  }
  if (rpc.value.size() > options_.max_value_bytes) {
    return Status::invalid_argument(fmt::format("value is {} bytes; the limit is {} bytes",
                                                rpc.value.size(), options_.max_value_bytes));
  }
  if (rpc.ttl_ms && *rpc.ttl_ms == 0) {
    return Status::invalid_argument("ttl must be greater than 0");
  }
  return Status::ok();
}

node::GroupReplica* Node::Impl::shard_replica(ShardId shard) {
  auto it = groups_.find(group_of_shard(shard));
  return it == groups_.end() ? nullptr : it->second.get();
}

void Node::Impl::start_request(node::RpcRequest rpc, KvCallback done) {
  if (const Status f = failure(); !f.is_ok()) {
    done(reply_with(Status::failed(std::string(f.message()))));
    return;
  }
  if (Status v = validate(rpc); !v.is_ok()) {
    done(reply_with(std::move(v)));
    return;
  }
  std::shared_ptr<const ClusterMetadata> view;
  {
    std::lock_guard lock(view_mu_);
    view = view_;
  }
  if (!view || view->shard_map().shard_count() == 0) {
    done(reply_with(Status::unavailable("this node has not joined a cluster yet")));
    return;
  }
  if (requests_.size() >= options_.max_inflight_requests) {
    done(reply_with(Status::unavailable(
        fmt::format("{} requests are in flight on this node", requests_.size()))));
    return;
  }
  const std::uint64_t id = next_id_++;
  Request& request = requests_[id];
  request.shard = view->shard_map().shard_for_key(rpc.key);
  request.rpc = std::move(rpc);
  request.done = std::move(done);
  request.deadline_ms = now_ms() + options_.request_timeout_ms;
  ++requests_local_;
  request_deadlines_.emplace_back(request.deadline_ms, id);
  route(id);
}

NodeId Node::Impl::pick_target(const Request& request) const {
  const auto local = groups_.find(group_of_shard(request.shard));
  const bool hosted = local != groups_.end();
  if (request.rpc.op == node::RpcOp::kGet &&
      request.rpc.consistency == ReadConsistency::kStale && hosted) {
    return options_.id;
  }
  if (hosted && local->second->is_leader()) return options_.id;
  const std::uint64_t now = now_ms();
  auto reachable = [&](const NodeId& n) {
    auto it = unreachable_since_ms_.find(n);
    return n == options_.id || it == unreachable_since_ms_.end() ||
           now - it->second > kUnreachableSkipMs;
  };
  if (NodeId hint = leader_hints_.get(request.shard); !hint.empty() && reachable(hint)) {
    return hint;
  }
  std::shared_ptr<const ClusterMetadata> view;
  {
    std::lock_guard lock(view_mu_);
    view = view_;
  }
  const std::vector<NodeId>& replicas = view->shard_map().placement(request.shard).replicas;
  for (std::size_t i = 0; i < replicas.size(); ++i) {
    const NodeId& candidate = replicas[(request.attempt + i) % replicas.size()];
    if (reachable(candidate)) return candidate;
  }
  return replicas.empty() ? NodeId() : replicas[request.attempt % replicas.size()];
}

void Node::Impl::route(std::uint64_t id) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return;
  const NodeId target = pick_target(it->second);
  if (target.empty()) {
    retry_later(id, NodeId());
    return;
  }
  if (target == options_.id) {
    node::GroupReplica* replica = shard_replica(it->second.shard);
    if (replica == nullptr) {
      retry_later(id, NodeId());
      return;
    }
    attempt_local(id, *replica);
    return;
  }
  attempt_remote(id, target);
}

void Node::Impl::attempt_local(std::uint64_t id, node::GroupReplica& replica) {
  Request& request = requests_.at(id);
  if (is_write(request.rpc.op)) request.maybe_applied = true;
  execute_locally(replica, request.rpc, [this, id](node::RpcResponse response) {
    auto it = requests_.find(id);
    if (it == requests_.end()) return;
    if (response.reply.status.is(StatusCode::kUnavailable)) {
      it->second.maybe_applied = false;  // a definite "not applied"
      retry_later(id, response.leader_hint);
      return;
    }
    finish(id, std::move(response.reply));
  });
}

void Node::Impl::attempt_remote(std::uint64_t id, const NodeId& target) {
  Request& request = requests_.at(id);
  const std::uint64_t wire_id = next_id_++;
  forwarded_[wire_id] = id;
  request.in_flight_id = wire_id;
  request.in_flight_to = target;
  if (is_write(request.rpc.op)) request.maybe_applied = true;
  const std::uint64_t now = now_ms();
  node::RpcRequest rpc = request.rpc;
  rpc.timeout_ms = request.deadline_ms > now ? request.deadline_ms - now : 1;
  rpc.shard_epoch = view()->shard_map().placement(request.shard).epoch.value();
  Envelope envelope;
  envelope.from = options_.id;
  envelope.to = target;
  envelope.group = group_of_shard(request.shard);
  envelope.kind = EnvelopeKind::kRequest;
  envelope.request_id = wire_id;
  envelope.payload = node::encode_rpc_request(rpc);
  ++requests_forwarded_;
  options_.transport->send(std::move(envelope));
  if (!is_write(request.rpc.op)) {
    post_after(kReadAttemptMs, [id, wire_id](Impl& self) {
      auto it = self.requests_.find(id);
      if (it == self.requests_.end() || it->second.in_flight_id != wire_id) return;
      self.forwarded_.erase(wire_id);
      it->second.in_flight_id = 0;
      self.leader_hints_.forget(it->second.shard);
      self.retry_later(id, NodeId());
    });
  }
}

void Node::Impl::on_response(const Envelope& envelope) {
  auto f = forwarded_.find(envelope.request_id);
  if (f == forwarded_.end()) return;  // late: the request was answered already
  const std::uint64_t id = f->second;
  forwarded_.erase(f);
  auto it = requests_.find(id);
  if (it == requests_.end() || it->second.in_flight_id != envelope.request_id) return;
  it->second.in_flight_id = 0;
  Result<node::RpcResponse> response = node::decode_rpc_response(envelope.payload);
  if (!response.is_ok()) {
    // A garbled answer says nothing about the write: leave it to the deadline.
    return;
  }
  if (response->reply.status.is(StatusCode::kUnavailable)) {
    it->second.maybe_applied = false;
    retry_later(id, response->leader_hint);
    return;
  }
  finish(id, std::move(response->reply));
}

void Node::Impl::retry_later(std::uint64_t id, const NodeId& hint) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return;
  Request& request = it->second;
  ++request.attempt;
  ++retries_;
  const bool new_hint = !hint.empty() && hint != request.in_flight_to;
  leader_hints_.from_peer(request.shard, hint);
  if (new_hint && request.attempt <= 3) {
    route(id);
    return;
  }
  request.waiting = true;
  const std::uint32_t attempt = request.attempt;
  // A replica here hears of the shard's next leader (on_soft_state): a
  // request refused during a leadership transfer or an election goes on
  // then, not a retry delay later.
  if (hint.empty() && shard_replica(request.shard) != nullptr) {
    awaiting_leader_[request.shard].push_back(id);
  }
  const std::uint64_t delay =
      std::min<std::uint64_t>(kMaxRetryDelayMs, options_.tick_ms * request.attempt);
  post_after(delay, [id, attempt](Impl& self) { self.resume(id, attempt); });
}

// Both the retry timer and a new leader may wake a request; only the first
// wake-up of its current attempt routes it (twice would send a write twice).
void Node::Impl::resume(std::uint64_t id, std::uint32_t attempt) {
  auto it = requests_.find(id);
  if (it == requests_.end() || !it->second.waiting || it->second.attempt != attempt) return;
  it->second.waiting = false;
  route(id);
}

// Answers, at most a tick late, every request past its deadline. Finished
// requests leave the front of the queue as they reach it, so it holds
// little more than the requests in flight.
void Node::Impl::expire_requests() {
  const std::uint64_t now = now_ms();
  while (!request_deadlines_.empty()) {
    const auto [deadline_ms, id] = request_deadlines_.front();
    const bool open = requests_.count(id) != 0;
    if (open && deadline_ms > now) break;
    request_deadlines_.pop_front();
    if (open) on_deadline(id);
  }
  // Requests that went on by their timer, or finished, leave the lists of
  // shards whose leader does not change (a busy leader refuses without one).
  for (auto it = awaiting_leader_.begin(); it != awaiting_leader_.end();) {
    std::erase_if(it->second, [this](std::uint64_t id) {
      auto r = requests_.find(id);
      return r == requests_.end() || !r->second.waiting;
    });
    it = it->second.empty() ? awaiting_leader_.erase(it) : std::next(it);
  }
}

void Node::Impl::on_deadline(std::uint64_t id) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return;
  ++timeouts_;
  finish(id, reply_with(it->second.maybe_applied
                            ? Status::timeout("no decision before the deadline; the write may or "
                                              "may not have been applied")
                            : Status::unavailable("no leader for the shard answered before the "
                                                  "deadline; not applied")));
}

void Node::Impl::finish(std::uint64_t id, KvReply reply) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return;
  KvCallback done = std::move(it->second.done);
  if (it->second.in_flight_id != 0) forwarded_.erase(it->second.in_flight_id);
  requests_.erase(it);
  done(std::move(reply));
}

}  // namespace nodenomad
