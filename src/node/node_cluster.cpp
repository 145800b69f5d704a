// The cluster-level side of a node: the public client calls, cluster info
// gathered from every member, adding a member through the metadata group,
// TTL expiry by shard leaders, and metrics.
#include <fmt/format.h>

#include <future>

#include "node/migration_coordinator.hpp"
#include "node/node_impl.hpp"
#include "nodenomad/storage/command.hpp"

namespace nodenomad {

namespace {

constexpr std::uint64_t kStatsTimeoutMs = 1'000;
constexpr int kConfChangeAttempts = 20;
constexpr int kAddNodeAttempts = 20;

}  // namespace

// --- the public client calls ---

namespace {

// Answers "not applied" if the task carrying it is dropped unrun (the node
// stopped before the loop reached it), so every call is answered once.
struct AnswerOnce {
  KvCallback done;
  explicit AnswerOnce(KvCallback d) : done(std::move(d)) {}
  AnswerOnce(const AnswerOnce&) = delete;
  AnswerOnce& operator=(const AnswerOnce&) = delete;
  ~AnswerOnce() {
    if (!done) return;
    KvReply reply;
    reply.status = Status::unavailable("the node is stopping; not applied");
    done(std::move(reply));
  }
  KvCallback take() { return std::exchange(done, nullptr); }
};

void submit(Node::Impl& impl, bool stopped, node::RpcRequest rpc, KvCallback done) {
  auto answer = std::make_shared<AnswerOnce>(std::move(done));
  if (stopped) return;  // answered by AnswerOnce
  impl.post([rpc = std::move(rpc), answer](Node::Impl& self) mutable {
    self.start_request(std::move(rpc), answer->take());
  });
}

}  // namespace

void Node::put(std::string key, std::string value, PutOptions options, KvCallback done) {
  node::RpcRequest rpc;
  rpc.op = node::RpcOp::kPut;
  rpc.key = std::move(key);
  rpc.value = std::move(value);
  rpc.ttl_ms = options.ttl_ms;
  rpc.if_version = options.if_version;
  submit(*impl_, stopped_, std::move(rpc), std::move(done));
}

void Node::get(std::string key, GetOptions options, KvCallback done) {
  node::RpcRequest rpc;
  rpc.op = node::RpcOp::kGet;
  rpc.key = std::move(key);
  rpc.consistency = options.consistency;
  submit(*impl_, stopped_, std::move(rpc), std::move(done));
}

void Node::remove(std::string key, RemoveOptions options, KvCallback done) {
  node::RpcRequest rpc;
  rpc.op = node::RpcOp::kRemove;
  rpc.key = std::move(key);
  rpc.if_version = options.if_version;
  submit(*impl_, stopped_, std::move(rpc), std::move(done));
}

namespace {

// A promise shared by a callback (copyable, as std::function wants).
std::pair<KvCallback, std::future<KvReply>> future_callback() {
  auto promise = std::make_shared<std::promise<KvReply>>();
  std::future<KvReply> future = promise->get_future();
  return {[promise](KvReply reply) { promise->set_value(std::move(reply)); }, std::move(future)};
}

}  // namespace

std::future<KvReply> Node::put(std::string key, std::string value, PutOptions options) {
  auto [callback, future] = future_callback();
  put(std::move(key), std::move(value), options, std::move(callback));
  return std::move(future);
}

std::future<KvReply> Node::get(std::string key, GetOptions options) {
  auto [callback, future] = future_callback();
  get(std::move(key), options, std::move(callback));
  return std::move(future);
}

std::future<KvReply> Node::remove(std::string key, RemoveOptions options) {
  auto [callback, future] = future_callback();
  remove(std::move(key), options, std::move(callback));
  return std::move(future);
}

void Node::cluster_info(std::function<void(Result<ClusterInfo>)> done) {
  if (stopped_) return done(Status::unavailable("the node is stopping"));
  impl_->post([done = std::move(done)](Impl& self) mutable { self.cluster_info(std::move(done)); });
}

void Node::add_node(NodeId id, std::string address, std::function<void(Status)> done) {
  if (stopped_) return done(Status::unavailable("the node is stopping; not applied"));
  impl_->post([id = std::move(id), address = std::move(address),
               done = std::move(done)](Impl& self) mutable {
    self.add_node(std::move(id), std::move(address), std::move(done));
  });
}

// --- migrations: forwarded to the metadata leader's coordinator ---

namespace {

// Answers "unavailable" if the call is dropped unanswered (the node stopped
// with the call queued or in flight): a future waiting on it never hangs.
template <typename T>
struct AnswerOnceT {
  std::function<void(Result<T>)> done;
  explicit AnswerOnceT(std::function<void(Result<T>)> d) : done(std::move(d)) {}
  AnswerOnceT(const AnswerOnceT&) = delete;
  AnswerOnceT& operator=(const AnswerOnceT&) = delete;
  ~AnswerOnceT() {
    if (done) done(Status::unavailable("the node stopped before answering"));
  }
  void answer(Result<T> r) {
    if (auto d = std::exchange(done, nullptr)) d(std::move(r));
  }
};

template <typename T>
void run_admin(Node::Impl& impl, bool stopped, node::AdminCall call,
               std::function<void(Result<T>)> done,
               std::function<Result<T>(std::string_view)> decode) {
  auto once = std::make_shared<AnswerOnceT<T>>(std::move(done));
  if (stopped) return;  // answered by the guard
  impl.post([call = std::move(call), once, decode](Node::Impl& self) mutable {
    self.migration_admin(std::move(call), [once, decode](Result<std::string> r) {
      if (!r.is_ok()) return once->answer(r.status());
      once->answer(decode(*r));
    });
  });
}

Result<MigrationStatus> first_status(std::string_view bytes) {
  NN_ASSIGN_OR_RETURN(std::vector<MigrationStatus> all, node::decode_migration_statuses(bytes));
  if (all.size() != 1) return Status::corruption("expected one migration status");
  return std::move(all.front());
}

}  // namespace

void Node::run_migration_call(node::AdminCall call,
                              std::function<void(Result<std::string>)> done) {
  run_admin<std::string>(*impl_, stopped_, std::move(call), std::move(done),
                         [](std::string_view bytes) -> Result<std::string> {
                           return std::string(bytes);
                         });
}

void Node::create_migration(MigrationRequest request,
                            std::function<void(Result<MigrationBatch>)> done) {
  node::AdminCall call;
  call.action = node::AdminAction::kCreate;
  call.shards = std::move(request.shards);
  call.source = std::move(request.source);
  call.target = std::move(request.target);
  call.bandwidth_bytes_per_s = request.bandwidth_bytes_per_s;
  run_admin<MigrationBatch>(*impl_, stopped_, std::move(call), std::move(done),
                            node::decode_migration_batch);
}

void Node::rebalance(std::function<void(Result<MigrationBatch>)> done) {
  node::AdminCall call;
  call.action = node::AdminAction::kRebalance;
  run_admin<MigrationBatch>(*impl_, stopped_, std::move(call), std::move(done),
                            node::decode_migration_batch);
}

void Node::drain_node(NodeId id, std::function<void(Result<MigrationBatch>)> done) {
  node::AdminCall call;
  call.action = node::AdminAction::kDrain;
  call.source = std::move(id);
  run_admin<MigrationBatch>(*impl_, stopped_, std::move(call), std::move(done),
                            node::decode_migration_batch);
}

void Node::list_migrations(std::function<void(Result<std::vector<MigrationStatus>>)> done) {
  node::AdminCall call;
  call.action = node::AdminAction::kList;
  run_admin<std::vector<MigrationStatus>>(*impl_, stopped_, std::move(call), std::move(done),
                                          node::decode_migration_statuses);
}

void Node::get_migration(std::string id, std::function<void(Result<MigrationStatus>)> done) {
  node::AdminCall call;
  call.action = node::AdminAction::kGet;
  call.op_id = std::move(id);
  run_admin<MigrationStatus>(*impl_, stopped_, std::move(call), std::move(done), first_status);
}

void Node::control_migration(std::string id, MigrationControl control,
                             std::uint64_t bandwidth_bytes_per_s,
                             std::function<void(Result<MigrationStatus>)> done) {
  node::AdminCall call;
  call.action = node::AdminAction::kControl;
  call.op_id = std::move(id);
  call.control = control;
  call.bandwidth_bytes_per_s = bandwidth_bytes_per_s;
  run_admin<MigrationStatus>(*impl_, stopped_, std::move(call), std::move(done), first_status);
}

// --- admin calls between nodes ---

void Node::Impl::call_admin(const NodeId& to, node::RpcRequest rpc,
                            std::function<void(Result<node::RpcResponse>)> done) {
  if (to == options_.id) {
    // Served here: a transport has no route to its own node. As a task of
    // its own, so the caller never sees its callback run inside the call.
    post([rpc = std::move(rpc), done = std::move(done)](Impl& self) mutable {
      auto answer = [done = std::move(done)](node::RpcResponse r) { done(std::move(r)); };
      if (rpc.op >= node::RpcOp::kMigrateShard) {
        self.serve_migration(rpc, std::move(answer));
      } else {
        self.serve_admin(rpc, std::move(answer));
      }
    });
    return;
  }
  const std::uint64_t wire_id = next_id_++;
  admin_calls_[wire_id] = std::move(done);
  rpc.timeout_ms = rpc.op == node::RpcOp::kNodeStats ? kStatsTimeoutMs : options_.request_timeout_ms;
  Envelope envelope;
  envelope.from = options_.id;
  envelope.to = to;
  envelope.kind = EnvelopeKind::kRequest;
  envelope.request_id = wire_id;
  envelope.payload = node::encode_rpc_request(rpc);
  options_.transport->send(std::move(envelope));
  // Stats are wanted quickly (a down member must not hold up a status
  // page); a membership change gets the request's whole budget.
  const std::uint64_t timeout_ms =
      rpc.op == node::RpcOp::kNodeStats ? kStatsTimeoutMs : options_.request_timeout_ms;
  post_after(timeout_ms, [wire_id](Impl& self) {
    auto it = self.admin_calls_.find(wire_id);
    if (it == self.admin_calls_.end()) return;
    auto callback = std::move(it->second);
    self.admin_calls_.erase(it);
    callback(Status::timeout("no answer from the peer"));
  });
}

bool Node::Impl::on_admin_response(const Envelope& envelope) {
  auto it = admin_calls_.find(envelope.request_id);
  if (it == admin_calls_.end()) return false;
  auto callback = std::move(it->second);
  admin_calls_.erase(it);
  callback(node::decode_rpc_response(envelope.payload));
  return true;
}

void Node::Impl::serve_admin(const node::RpcRequest& rpc,
                             std::function<void(node::RpcResponse)> answer) {
  if (rpc.op == node::RpcOp::kNodeStats) {
    node::RpcResponse response;
    response.reply.value = node::encode_replica_stats(local_replica_stats());
    answer(std::move(response));
    return;
  }
  add_member_here(NodeId(rpc.key), rpc.value, [answer = std::move(answer)](Status s, NodeId hint) {
    node::RpcResponse response;
    response.reply.status = std::move(s);
    response.leader_hint = std::move(hint);
    answer(std::move(response));
  });
}

std::vector<node::ReplicaStats> Node::Impl::local_replica_stats() const {
  std::vector<node::ReplicaStats> out;
  for (const auto& [shard, storage] : storage_) {
    const StorageStats stats = storage->stats();
    auto g = groups_.find(group_of_shard(shard));
    out.push_back({shard, stats.keys, stats.bytes, g != groups_.end() && g->second->is_leader()});
  }
  return out;
}

// --- membership ---

void Node::Impl::add_node(NodeId id, std::string address, std::function<void(Status)> done) {
  if (Status s = check_node_id(id); !s.is_ok()) return done(s);
  if (Status s = check_member_address(address); !s.is_ok()) return done(s);
  add_node_attempt(std::move(id), std::move(address), 0, NodeId(), std::move(done));
}

// One try at adding a member through the metadata leader. "Not applied"
// answers (no leader yet, the founding state not yet logged) are retried a
// few times before the caller hears them.
void Node::Impl::add_node_attempt(NodeId id, std::string address, int tries, NodeId hint,
                                  std::function<void(Status)> done) {
  auto again = [this, id, address, tries, done](Status s, NodeId next_hint) {
    if (tries >= kAddNodeAttempts) return done(std::move(s));
    post_after(options_.tick_ms * 5, [id, address, tries, next_hint, done](Impl& self) {
      self.add_node_attempt(id, address, tries + 1, next_hint, done);
    });
  };
  const node::GroupReplica& meta = *groups_.at(kMetadataGroup);
  if (meta.is_leader()) {
    add_member_here(id, address, [done, again](Status s, NodeId) {
      if (s.is(StatusCode::kUnavailable)) return again(std::move(s), NodeId());
      done(std::move(s));
    });
    return;
  }
  const NodeId leader = !hint.empty() ? hint : meta.engine().leader();
  if (leader.empty()) {
    return again(Status::unavailable("no metadata leader is known right now; not applied"),
                 NodeId());
  }
  node::RpcRequest rpc;
  rpc.op = node::RpcOp::kAddNode;
  rpc.key = id.str();
  rpc.value = address;
  call_admin(leader, rpc, [done, again](Result<node::RpcResponse> r) {
    if (!r.is_ok()) return done(r.status());
    if (r->reply.status.is(StatusCode::kUnavailable)) return again(r->reply.status, r->leader_hint);
    done(r->reply.status);
  });
}

void Node::Impl::add_member_here(NodeId id, std::string address,
                                 std::function<void(Status, NodeId)> done) {
  node::GroupReplica& meta = *groups_.at(kMetadataGroup);
  if (!meta.is_leader()) {
    return done(Status::unavailable("not the metadata leader"), meta.engine().leader());
  }
  const std::string command = encode_metadata_command(metadata::AddMember{id, address});
  meta.propose(command, [this, id, done](Result<std::string> r) {
    if (!r.is_ok()) return done(r.status(), NodeId());
    Result<MetadataResult> result = decode_metadata_result(*r);
    if (!result.is_ok()) return done(result.status(), NodeId());
    if (!result->ok()) return done(result->status, NodeId());
    add_metadata_learner(id, kConfChangeAttempts, [this, done](Status s) {
      if (s.is_ok()) coordinator_->on_member_added();
      done(std::move(s), NodeId());
    });
  });
}

// The new member receives the metadata group's log (and so the ShardMap)
// as a learner. A pending change answers kBusy: try again shortly.
void Node::Impl::add_metadata_learner(NodeId id, int tries, std::function<void(Status)> done) {
  node::GroupReplica& meta = *groups_.at(kMetadataGroup);
  const ConfState conf = meta.engine().conf_state();
  auto has = [&](const std::vector<NodeId>& v) { return std::find(v.begin(), v.end(), id) != v.end(); };
  if (has(conf.voters) || has(conf.learners) || has(conf.learners_next)) return done(Status::ok());
  ConfChange change;
  change.changes.push_back(ConfChangeSingle{ConfChangeType::kAddLearner, id});
  Result<ProposeResult> proposed = meta.propose_conf_change(change);
  if (proposed.is_ok()) return done(Status::ok());
  if (tries <= 0 || !proposed.status().is(StatusCode::kBusy)) return done(proposed.status());
  post_after(options_.tick_ms * 2, [id, tries, done](Impl& self) {
    self.add_metadata_learner(id, tries - 1, done);
  });
}

// --- cluster info ---

void Node::Impl::cluster_info(std::function<void(Result<ClusterInfo>)> done) {
  std::shared_ptr<const ClusterMetadata> view;
  {
    std::lock_guard lock(view_mu_);
    view = view_;
  }
  if (!view || !view->initialized()) {
    return done(Status::unavailable("this node has not joined a cluster yet"));
  }
  struct Gather {
    std::shared_ptr<const ClusterMetadata> view;
    std::map<NodeId, std::vector<node::ReplicaStats>> stats;
    std::size_t waiting = 0;
    std::function<void(Result<ClusterInfo>)> done;
  };
  auto gather = std::make_shared<Gather>();
  gather->view = view;
  gather->done = std::move(done);
  gather->stats[options_.id] = local_replica_stats();
  for (const Member& m : view->members()) {
    if (m.id == options_.id) continue;
    ++gather->waiting;
    node::RpcRequest rpc;
    rpc.op = node::RpcOp::kNodeStats;
    call_admin(m.id, rpc, [this, gather, id = m.id](Result<node::RpcResponse> r) {
      if (r.is_ok() && r->reply.status.is_ok()) {
        auto stats = node::decode_replica_stats(r->reply.value);
        if (stats.is_ok()) gather->stats[id] = std::move(*stats);
      }
      if (--gather->waiting == 0) gather->done(assemble_cluster_info(*gather->view, gather->stats));
    });
  }
  if (gather->waiting == 0) gather->done(assemble_cluster_info(*view, gather->stats));
}

ClusterInfo Node::Impl::assemble_cluster_info(
    const ClusterMetadata& view, const std::map<NodeId, std::vector<node::ReplicaStats>>& stats) {
  ClusterInfo info;
  info.cluster_id = view.cluster_id();
  info.metadata_leader = groups_.at(kMetadataGroup)->engine().leader();
  for (const Member& m : view.members()) {
    ClusterNodeInfo n;
    n.id = m.id;
    n.address = m.address;
    n.status = stats.count(m.id) == 0 ? "down"
               : m.state == MemberState::kLeaving ? "leaving"
                                                  : "up";
    n.shards_hosted = static_cast<std::uint32_t>(view.shard_map().shards_on(m.id).size());
    if (auto it = stats.find(m.id); it != stats.end()) {
      for (const node::ReplicaStats& s : it->second) n.shards_led += s.leader ? 1 : 0;
    }
    info.nodes.push_back(std::move(n));
  }
  for (std::uint32_t s = 0; s < view.shard_count(); ++s) {
    const ShardPlacement& p = view.shard_map().placement(ShardId(s));
    ShardInfo shard{ShardId(s), p.epoch, p.replicas, p.learners, NodeId(), 0, 0};
    for (const auto& [node_id, replicas] : stats) {
      for (const node::ReplicaStats& r : replicas) {
        if (r.shard != shard.id) continue;
        // The leader's figures win; any replica's do until one is known.
        if (r.leader || (shard.leader.empty() && shard.keys == 0)) {
          shard.keys = r.keys;
          shard.bytes = r.bytes;
        }
        if (r.leader) shard.leader = node_id;
      }
    }
    info.shards.push_back(std::move(shard));
  }
  return info;
}

// --- TTL ---

void Node::Impl::expire_ttl() {
  post_after(options_.ttl_scan_interval_ms, [](Impl& self) { self.expire_ttl(); });
  if (!failure().is_ok()) return;
  const WallTime now = clock_->wall_now();
  for (auto& [shard, storage] : storage_) {
    node::GroupReplica* replica = shard_replica(shard);
    if (replica == nullptr || !replica->is_leader() || expiring_[replica->group()]) continue;
    const std::vector<DueKey> due = storage->find_due_keys(now, options_.max_expire_batch_keys);
    if (due.empty()) continue;
    const GroupId group = replica->group();
    expiring_[group] = true;
    replica->propose(encode_kv_command(make_expire_command(now, due)),
                     [this, group](Result<std::string> r) {
                       expiring_[group] = false;
                       if (!r.is_ok()) return;
                       Result<WriteResult> result = decode_write_result(*r);
                       if (result.is_ok()) keys_expired_ += result->expired_keys.size();
                     });
  }
}

// --- status and metrics ---

std::vector<NodeGroupStatus> Node::Impl::group_status_here() const {
  std::vector<NodeGroupStatus> out;
  for (const auto& [group, replica] : groups_) {
    const RaftEngine& e = replica->engine();
    out.push_back({group, e.role(), e.leader(), e.term(), e.commit_index(), e.applied_index()});
  }
  return out;
}

std::vector<NodeGroupStatus> Node::Impl::group_status() const {
  if (loop_->in_loop()) return group_status_here();
  auto promise = std::make_shared<std::promise<std::vector<NodeGroupStatus>>>();
  auto future = promise->get_future();
  const_cast<Impl*>(this)->post([promise](Impl& self) { promise->set_value(self.group_status_here()); });
  if (future.wait_for(std::chrono::seconds(5)) != std::future_status::ready) return {};
  return future.get();
}

std::string Node::Impl::metrics_text() const {
  std::string out;
  out += "# TYPE nodenomad_raft_term gauge\n# TYPE nodenomad_raft_commit_index gauge\n"
         "# TYPE nodenomad_raft_applied_index gauge\n# TYPE nodenomad_raft_leader gauge\n";
  std::uint32_t led = 0;
  const std::vector<NodeGroupStatus> groups = group_status();
  for (const NodeGroupStatus& g : groups) {
    const std::uint64_t id = g.group.value();
    const bool leader = g.role == RaftRole::kLeader;
    led += leader && id != 0 ? 1 : 0;
    out += fmt::format("nodenomad_raft_term{{group=\"{}\"}} {}\n", id, g.term.value());
    out += fmt::format("nodenomad_raft_commit_index{{group=\"{}\"}} {}\n", id, g.commit.value());
    out += fmt::format("nodenomad_raft_applied_index{{group=\"{}\"}} {}\n", id, g.applied.value());
    out += fmt::format("nodenomad_raft_leader{{group=\"{}\"}} {}\n", id, leader ? 1 : 0);
  }
  const std::size_t hosted = groups.empty() ? 0 : groups.size() - 1;
  out += fmt::format("# TYPE nodenomad_shards_hosted gauge\nnodenomad_shards_hosted {}\n", hosted);
  out += fmt::format("# TYPE nodenomad_shards_led gauge\nnodenomad_shards_led {}\n", led);
  const double fsync_seconds = static_cast<double>(syncer_->sync_micros_total()) / 1e6;
  out += fmt::format(
      "# TYPE nodenomad_wal_fsyncs_total counter\nnodenomad_wal_fsyncs_total {}\n"
      "# TYPE nodenomad_wal_fsync_batches_total counter\nnodenomad_wal_fsync_batches_total {}\n"
      "# TYPE nodenomad_wal_fsync_seconds_total counter\nnodenomad_wal_fsync_seconds_total {:.6f}\n"
      "# TYPE nodenomad_wal_fsync_seconds_max gauge\nnodenomad_wal_fsync_seconds_max {:.6f}\n",
      syncer_->syncs(), syncer_->batches(), fsync_seconds,
      static_cast<double>(syncer_->sync_micros_max()) / 1e6);
  out += fmt::format(
      "# TYPE nodenomad_node_requests_total counter\n"
      "nodenomad_node_requests_total{{path=\"local\"}} {}\n"
      "nodenomad_node_requests_total{{path=\"forwarded\"}} {}\n"
      "nodenomad_node_requests_total{{path=\"served_for_peer\"}} {}\n"
      "nodenomad_node_requests_total{{path=\"relayed\"}} {}\n"
      "# TYPE nodenomad_node_request_retries_total counter\nnodenomad_node_request_retries_total {}\n"
      "# TYPE nodenomad_node_requests_resumed_on_leader_total counter\n"
      "nodenomad_node_requests_resumed_on_leader_total {}\n"
      "# TYPE nodenomad_node_request_timeouts_total counter\n"
      "nodenomad_node_request_timeouts_total {}\n"
      "# TYPE nodenomad_ttl_keys_expired_total counter\nnodenomad_ttl_keys_expired_total {}\n"
      "# TYPE nodenomad_node_failed gauge\nnodenomad_node_failed {}\n",
      requests_local_.load(), requests_forwarded_.load(), requests_served_for_peers_.load(),
      requests_relayed_.load(), retries_.load(), resumed_on_leader_.load(), timeouts_.load(),
      keys_expired_.load(), failure().is_ok() ? 0 : 1);
  out += fmt::format(
      "# TYPE nodenomad_migration_snapshot_bytes_sent_total counter\n"
      "nodenomad_migration_snapshot_bytes_sent_total {}\n"
      "# TYPE nodenomad_migration_shards_dropped_total counter\n"
      "nodenomad_migration_shards_dropped_total {}\n"
      "# TYPE nodenomad_migration_bytes_freed_total counter\n"
      "nodenomad_migration_bytes_freed_total {}\n",
      snapshot_bytes_sent_.load(), shards_dropped_.load(), bytes_freed_.load());
  out += coordinator_->metrics_text(*metadata_->current());
  return out;
}

}  // namespace nodenomad
