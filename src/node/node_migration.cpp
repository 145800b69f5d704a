// The node's side of shard migration (docs/migration.md, "Execution"): what a
// shard's leader does when the coordinator asks (add the learner, promote,
// roll back) and the calls clients make. Verify is node_migration_verify.cpp,
// Cleanup node_shard_drop.cpp, the stream's bandwidth limits
// node_snapshot_throttle.cpp; the coordinator itself is
// migration_coordinator.cpp.
#include <fmt/format.h>

#include "node/migration_coordinator.hpp"
#include "node/migration_support.hpp"
#include "node/node_impl.hpp"
#include "nodenomad/logging.hpp"
#include "nodenomad/storage/shard_digest.hpp"

namespace nodenomad {

using node::answer_with;
using node::contains;

namespace {

constexpr int kDropRetries = 200;

}  // namespace

// --- small helpers shared with the coordinator ---

std::shared_ptr<const ClusterMetadata> Node::Impl::view() const { return metadata_->current(); }

bool Node::Impl::leads_metadata() const { return groups_.at(kMetadataGroup)->is_leader(); }

NodeId Node::Impl::metadata_leader() const {
  return groups_.at(kMetadataGroup)->engine().leader();
}

std::uint64_t Node::Impl::wall_ms() const {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        clock_->wall_now().time_since_epoch())
                                        .count());
}

void Node::Impl::propose_metadata(const MetadataCommand& command,
                                  std::function<void(Result<MetadataResult>)> done) {
  node::GroupReplica& meta = *groups_.at(kMetadataGroup);
  if (!meta.is_leader()) return done(Status::unavailable("not the metadata leader"));
  meta.propose(encode_metadata_command(command), [done](Result<std::string> r) {
    if (!r.is_ok()) return done(r.status());
    done(decode_metadata_result(*r));
  });
}

// A replica appears here as soon as the ShardMap names this node a learner
// (Prepare); the shard's leader then fills it. It never bootstraps.
void Node::Impl::ensure_shard_groups() {
  const std::shared_ptr<const ClusterMetadata> current = metadata_->current();
  if (!current->initialized() || !failure().is_ok()) return;
  for (std::uint32_t s = 0; s < current->shard_count(); ++s) {
    const ShardPlacement& p = current->shard_map().placement(ShardId(s));
    if (!p.is_learner(options_.id) || groups_.contains(group_of_shard(ShardId(s)))) continue;
    if (Status opened = open_shard_group(ShardId(s), nullptr); !opened.is_ok()) {
      fail_node(opened.with_context(fmt::format("creating the replica of shard {}", s)));
      return;
    }
    nodenomad::log(LogLevel::kInfo, "migration",
                   fmt::format("{}: created an empty replica of shard {} (epoch {})",
                               options_.id.str(), s, p.epoch.value()));
  }
}

std::shared_ptr<const ClusterMetadata> Node::metadata() const { return impl_->view(); }

void Node::shard_digest(ShardId shard, std::function<void(Result<ShardDigest>)> done) {
  if (stopped_) return done(Status::unavailable("the node is stopping"));
  impl_->post([shard, done = std::move(done)](Impl& self) mutable {
    self.digest_replica(shard, std::move(done));
  });
}

void Node::Impl::digest_replica(ShardId shard, std::function<void(Result<ShardDigest>)> done) {
  auto it = storage_.find(shard);
  if (it == storage_.end()) {
    return done(Status::not_found(
        fmt::format("{} holds no replica of shard {}", options_.id.str(), shard.value())));
  }
  Result<std::shared_ptr<const StateCapture>> capture = it->second->capture();
  if (!capture.is_ok()) return done(capture.status());
  // For tests and checkers: the digest the engine keeps (what Verify
  // compares), checked against one recomputed from the records, off the loop.
  std::weak_ptr<Impl> weak = weak_from_this();
  worker_.submit([weak, shard, capture = *capture, done = std::move(done)]() mutable {
    Result<ShardDigest> digest = capture->digest();
    const ShardDigest scanned = capture->scan_digest();
    if (scanned != digest.value()) {
      digest = Status::corruption(fmt::format(
          "shard {}: the digest kept (root {:016x}, {} keys) differs from the records' "
          "(root {:016x}, {} keys) at index {}",
          shard.value(), digest->root(), digest->keys, scanned.root(), scanned.keys,
          scanned.index.value()));
    }
    if (auto self = weak.lock()) {
      self->post([digest = std::move(digest), done = std::move(done)](Impl&) mutable {
        done(std::move(digest));
      });
    }
  });
}

// --- serving the migration calls ---

void Node::Impl::serve_migration(const node::RpcRequest& rpc,
                                 std::function<void(node::RpcResponse)> answer) {
  switch (rpc.op) {
    case node::RpcOp::kMigrateShard: {
      Result<node::ShardCall> call = node::decode_shard_call(rpc.value);
      if (!call.is_ok()) return answer(answer_with(call.status()));
      return serve_migrate_shard(*call, std::move(answer));
    }
    case node::RpcOp::kMigrateTarget: {
      Result<node::TargetCall> call = node::decode_target_call(rpc.value);
      if (!call.is_ok()) return answer(answer_with(call.status()));
      return serve_migrate_target(*call, std::move(answer));
    }
    case node::RpcOp::kDropShard: {
      char* end = nullptr;
      const std::uint64_t shard = std::strtoull(rpc.key.c_str(), &end, 10);
      if (rpc.key.empty() || *end != '\0') {
        return answer(answer_with(Status::invalid_argument("drop: the key is not a shard id")));
      }
      return serve_drop_shard(ShardId(static_cast<std::uint32_t>(shard)),
                              Epoch(rpc.if_version.value_or(0)), std::move(answer), kDropRetries);
    }
    case node::RpcOp::kMigrationAdmin: {
      Result<node::AdminCall> call = node::decode_admin_call(rpc.value);
      if (!call.is_ok()) return answer(answer_with(call.status()));
      if (!leads_metadata()) {
        return answer(answer_with(Status::unavailable("not the metadata leader"), {},
                                  metadata_leader()));
      }
      coordinator_->handle(std::move(*call), [answer](Result<std::string> r) {
        if (!r.is_ok()) return answer(answer_with(r.status()));
        answer(answer_with(Status::ok(), std::move(*r)));
      });
      return;
    }
    default: answer(answer_with(Status::invalid_argument("not a migration call")));
  }
}

void Node::Impl::serve_migrate_shard(const node::ShardCall& call,
                                     std::function<void(node::RpcResponse)> answer) {
  node::GroupReplica* replica = shard_replica(call.shard);
  if (replica == nullptr || !replica->is_leader()) {
    NodeId hint;
    if (replica != nullptr) hint = replica->engine().leader();
    if (hint.empty()) hint = leader_hints_.get(call.shard);
    return answer(answer_with(Status::unavailable(fmt::format("{} does not lead shard {}",
                                                              options_.id.str(),
                                                              call.shard.value())),
                              {}, hint));
  }
  const GroupId group = replica->group();
  // Keep the throttle of the stream to the target current.
  if (!call.target.empty()) {
    auto& q = snapshot_queues_[{group, call.target}];
    if (!q) q = std::make_unique<SnapshotQueue>();
    const std::uint64_t now = now_ms();
    q->bucket.set_rate(call.bandwidth_bytes_per_s, now);
    q->refreshed_ms = now;
    const bool was_paused = q->paused;
    q->paused = call.paused;
    if (was_paused && !q->paused) pump_snapshot_queue(group, call.target);
  }
  const RaftEngine& engine = replica->engine();
  const ConfState conf = engine.conf_state();
  node::ShardReport report;
  report.voters = conf.voters;
  report.learners = conf.learners;
  for (const NodeId& n : conf.learners_next) {
    if (!contains(report.learners, n)) report.learners.push_back(n);
  }
  report.joint = is_joint(conf);
  auto member = [&](const NodeId& n) { return names_member(conf, n); };
  auto propose = [&](ConfChange change, std::string what) {
    Result<ProposeResult> p = replica->propose_conf_change(change);
    report.note = p.is_ok() ? what : fmt::format("{}: {}", what, p.status().message());
  };
  switch (call.action) {
    case node::ShardAction::kReport: break;
    case node::ShardAction::kAddLearner:
      if (!member(call.target)) {
        ConfChange change;
        change.changes.push_back({ConfChangeType::kAddLearner, call.target});
        propose(change, fmt::format("adding {} as a learner", call.target.str()));
      }
      break;
    case node::ShardAction::kVerify:
      if (contains(conf.voters, call.target) || contains(conf.voters_outgoing, call.target)) {
        // A late call of the Verify stage: the target already votes (Update
        // has promoted it), and a new digest would only hold its apply.
        report.note = fmt::format("{} is a voter; Verify has ended", call.target.str());
      } else {
        verify_step(*replica, call, report);
      }
      break;
    case node::ShardAction::kPromote: {
      {
        // Verify held the target at its index; the release sent after the
        // match may have been lost, or sent by a leader that is gone. Until
        // released, the target applies nothing (for MIGRATION_TIMEOUT),
        // which, as a voter or a leader, stalls the shard. Each promote
        // asks again; a release is idempotent.
        node::TargetCall release{call.op_id, call.shard, node::TargetAction::kRelease,
                                 LogIndex(0), {}, {}};
        node::RpcRequest release_rpc;
        release_rpc.op = node::RpcOp::kMigrateTarget;
        release_rpc.value = node::encode_target_call(release);
        call_admin(call.target, release_rpc, [](Result<node::RpcResponse>) {});
      }
      verify_sessions_.erase(call.shard);  // verified; its state is no longer needed
      const bool target_voter = contains(conf.voters, call.target);
      const bool source_in = member(call.source);
      if (report.joint) {
        report.note = "leaving the joint configuration";
      } else if (target_voter && !source_in) {
        report.note = "promoted";
      } else if (call.source == options_.id) {
        // The source leads: hand leadership to the most up-to-date other
        // voter first, so the group never waits out an election.
        NodeId best;
        LogIndex best_match;
        for (const NodeId& v : conf.voters) {
          if (v == call.source) continue;
          const auto p = engine.progress(v);
          if (p && (best.empty() || p->match > best_match)) {
            best = v;
            best_match = p->match;
          }
        }
        if (!best.empty()) {
          const Status t = replica->transfer_leadership(best);
          report.note = t.is_ok() ? fmt::format("transferring leadership to {}", best.str())
                                  : std::string(t.message());
        } else {
          ConfChange change;  // a one-voter group: promote the target first
          change.changes.push_back({ConfChangeType::kAddVoter, call.target});
          propose(change, "promoting the target before the source leaves");
        }
      } else {
        ConfChange change;
        if (!target_voter) change.changes.push_back({ConfChangeType::kAddVoter, call.target});
        if (source_in) change.changes.push_back({ConfChangeType::kRemoveNode, call.source});
        propose(change, "joint change: target in, source out");
      }
      break;
    }
    case node::ShardAction::kTransferLeader:
      if (!contains(conf.voters, call.target) || report.joint) {
        report.note = fmt::format("{} is not a voter of shard {}", call.target.str(),
                                  call.shard.value());
      } else if (call.target != options_.id) {
        const Status t = replica->transfer_leadership(call.target);
        report.note = t.is_ok() ? fmt::format("transferring leadership to {}", call.target.str())
                                : std::string(t.message());
      }
      break;
    case node::ShardAction::kRemoveLearner:
      if (contains(conf.voters, call.target) || contains(conf.voters_outgoing, call.target)) {
        report.note = fmt::format("{} is a voter; a rollback never removes a voter",
                                  call.target.str());
      } else if (member(call.target)) {
        ConfChange change;
        change.changes.push_back({ConfChangeType::kRemoveNode, call.target});
        propose(change, fmt::format("removing the learner {}", call.target.str()));
      }
      verify_sessions_.erase(call.shard);
      break;
  }
  report.last_index = engine.last_index();
  report.commit = engine.commit_index();
  if (const auto p = engine.progress(call.target)) {
    report.target_match = p->match;
    report.target_snapshotting = p->state == ProgressState::kSnapshot;
    report.snapshot_index = p->snapshot_index;
    report.snapshot_bytes_acked = p->snapshot_bytes_acked;
  }
  const StorageStats stats = storage_.at(call.shard)->stats();
  report.keys = stats.keys;
  report.bytes = stats.bytes;
  if (auto it = verify_sessions_.find(call.shard);
      it != verify_sessions_.end() && it->second->op_id == call.op_id) {
    const VerifySession& v = *it->second;
    report.verify = v.phase == VerifySession::Phase::kMatched  ? node::VerifyState::kMatched
                    : v.phase == VerifySession::Phase::kFailed ? node::VerifyState::kFailed
                                                               : node::VerifyState::kRunning;
    report.verify_index = v.index;
    report.verify_root = v.leader_digest ? v.leader_digest->root() : 0;
    report.verify_mismatches = v.mismatches;
    if (report.note.empty()) report.note = v.note;
  }
  answer(answer_with(Status::ok(), node::encode_shard_report(report)));
}

// --- migration calls from clients: run on the metadata leader ---

void Node::Impl::migration_admin(node::AdminCall call,
                                 std::function<void(Result<std::string>)> done) {
  migration_admin_attempt(std::move(call), 20, NodeId(), std::move(done));
}

void Node::Impl::migration_admin_attempt(node::AdminCall call, int tries, NodeId hint,
                                         std::function<void(Result<std::string>)> done) {
  if (!failure().is_ok()) return done(Status::failed("this node is failed"));
  if (leads_metadata()) return coordinator_->handle(std::move(call), std::move(done));
  auto again = [this, call, tries, done](Status why, NodeId next) {
    if (tries <= 0) return done(std::move(why));
    post_after(options_.tick_ms * 4, [call, tries, next, done](Impl& self) {
      self.migration_admin_attempt(call, tries - 1, next, done);
    });
  };
  const NodeId leader = !hint.empty() ? hint : metadata_leader();
  if (leader.empty()) return again(Status::unavailable("no metadata leader is known"), NodeId());
  node::RpcRequest rpc;
  rpc.op = node::RpcOp::kMigrationAdmin;
  rpc.value = node::encode_admin_call(call);
  call_admin(leader, rpc, [done, again](Result<node::RpcResponse> r) {
    if (!r.is_ok()) return again(r.status(), NodeId());
    if (r->reply.status.is(StatusCode::kUnavailable)) {
      return again(r->reply.status, r->leader_hint);
    }
    if (!r->reply.status.is_ok()) return done(r->reply.status);
    done(std::move(r->reply.value));
  });
}

void Node::Impl::call_shard_leader(const node::ShardCall& call,
                                   std::function<void(Result<node::ShardReport>)> done) {
  const std::shared_ptr<const ClusterMetadata> current = view();
  NodeId to;
  if (node::GroupReplica* local = shard_replica(call.shard); local && local->is_leader()) {
    to = options_.id;
  } else if (NodeId hint = leader_hints_.get(call.shard); !hint.empty()) {
    to = std::move(hint);
  } else {
    const auto& replicas = current->shard_map().placement(call.shard).replicas;
    if (replicas.empty()) return done(Status::unavailable("the shard has no replica"));
    to = replicas[(ticks_ / 4) % replicas.size()];
  }
  auto finish = [this, done, shard = call.shard](Result<node::RpcResponse> r) {
    if (!r.is_ok()) {
      leader_hints_.forget(shard);
      return done(r.status());
    }
    if (!r->reply.status.is_ok()) {
      leader_hints_.from_peer(shard, r->leader_hint);
      return done(r->reply.status);
    }
    done(node::decode_shard_report(r->reply.value));
  };
  if (to == options_.id) {
    serve_migrate_shard(call, [finish](node::RpcResponse r) { finish(std::move(r)); });
    return;
  }
  node::RpcRequest rpc;
  rpc.op = node::RpcOp::kMigrateShard;
  rpc.value = node::encode_shard_call(call);
  call_admin(to, rpc, std::move(finish));
}

}  // namespace nodenomad
