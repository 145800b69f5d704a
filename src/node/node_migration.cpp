// The node's side of shard migration (docs/migration.md, "Execution"): what a
// shard's leader does when the coordinator asks (add the learner, throttle
// the snapshot stream, verify, promote, roll back), what the target does
// (create the empty replica, hold still at an index and digest its state,
// take re-sent buckets), and what the source does at Cleanup (drop the
// shard's files). The coordinator itself is migration_coordinator.cpp.
#include <fmt/format.h>

#include "node/migration_coordinator.hpp"
#include "node/node_impl.hpp"
#include "nodenomad/logging.hpp"
#include "nodenomad/storage/shard_digest.hpp"

namespace nodenomad {

namespace {

// Repair rounds of Verify before the operation is failed (and rolled back).
constexpr std::uint32_t kMaxRepairRounds = 3;
// A throttle nobody refreshed for this long is forgotten (the operation ended).
constexpr std::uint64_t kThrottleForgetMs = 10'000;
constexpr int kDropRetries = 200;

bool contains(const std::vector<NodeId>& v, const NodeId& n) {
  return std::find(v.begin(), v.end(), n) != v.end();
}

node::RpcResponse answer_with(Status status, std::string value = {}, NodeId hint = {}) {
  node::RpcResponse r;
  r.reply.status = std::move(status);
  r.reply.value = std::move(value);
  r.leader_hint = std::move(hint);
  return r;
}

// A dropped shard's directories wait for deletion under this prefix.
constexpr std::string_view kTrashPrefix = ".trash-";

// Bytes of the files under `path` (a file or a directory tree). A directory
// is listed, never sized: stat gives a directory a size of its own.
Result<std::uint64_t> tree_bytes(FileSystem& fs, const std::string& path, int depth) {
  Result<std::vector<std::string>> names = fs.list(path);
  if (!names.is_ok()) {
    Result<std::uint64_t> size = fs.file_size(path);
    return size.is_ok() ? *size : std::uint64_t{0};  // gone already
  }
  if (depth == 0) return std::uint64_t{0};
  std::uint64_t total = 0;
  for (const std::string& name : *names) {
    NN_ASSIGN_OR_RETURN(const std::uint64_t n, tree_bytes(fs, path + "/" + name, depth - 1));
    total += n;
  }
  return total;
}

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
  std::weak_ptr<Impl> weak = weak_from_this();
  worker_.submit([weak, capture = *capture, done = std::move(done)]() mutable {
    ShardDigest digest = capture->digest();
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
    if (hint.empty()) {
      if (auto it = leader_hints_.find(call.shard); it != leader_hints_.end()) hint = it->second;
    }
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
  auto member = [&](const NodeId& n) {
    return contains(conf.voters, n) || contains(conf.voters_outgoing, n) ||
           contains(conf.learners, n) || contains(conf.learners_next, n);
  };
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
    case node::ShardAction::kVerify: verify_step(*replica, call, report); break;
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

// --- Verify, the leader's side ---

void Node::Impl::verify_step(node::GroupReplica& replica, const node::ShardCall& call,
                             node::ShardReport& report) {
  const ShardId shard = call.shard;
  auto& slot = verify_sessions_[shard];
  if (!slot || slot->op_id != call.op_id || slot->target != call.target) {
    slot = std::make_unique<VerifySession>();
    slot->op_id = call.op_id;
    slot->target = call.target;
  }
  VerifySession& v = *slot;
  using Phase = VerifySession::Phase;
  if (v.phase == Phase::kIdle) {
    start_verify(replica, v);
  } else if (v.phase == Phase::kDigesting && v.leader_digest && !v.target_digest &&
             !v.call_in_flight) {
    node::TargetCall poll{v.op_id, shard, node::TargetAction::kPoll, v.index, {}, {}};
    node::RpcRequest rpc;
    rpc.op = node::RpcOp::kMigrateTarget;
    rpc.value = node::encode_target_call(poll);
    v.call_in_flight = true;
    const std::string op_id = v.op_id;
    const std::uint32_t round = v.round;
    call_admin(v.target, rpc, [this, shard, op_id, round](Result<node::RpcResponse> r) {
      auto it = verify_sessions_.find(shard);
      if (it == verify_sessions_.end() || it->second->op_id != op_id) return;
      VerifySession& s = *it->second;
      s.call_in_flight = false;
      if (!r.is_ok() || s.round != round || s.phase != Phase::kDigesting) return;
      if (r->reply.status.is(StatusCode::kAborted)) {
        s.phase = Phase::kIdle;  // the target moved past the index: a new one
        s.note = "the target was past the verify index; starting again";
        return;
      }
      if (!r->reply.status.is_ok()) return;
      Result<node::TargetReport> tr = node::decode_target_report(r->reply.value);
      if (!tr.is_ok() || tr->digest.empty() || tr->round != round) return;
      Result<ShardDigest> d = decode_shard_digest(tr->digest);
      if (!d.is_ok()) return;
      s.target_digest = *d;
      compare_digests(shard, s);
    });
  }
  (void)report;
}

void Node::Impl::start_verify(node::GroupReplica& replica, VerifySession& v) {
  const ShardId shard = shard_of_group(replica.group());
  // The digests are taken at a fresh index L: an empty entry the leader
  // logs now, which the target cannot have applied before it hears "hold
  // at L" (the hold leaves first, and L commits a round trip later).
  const LogIndex index = replica.engine().last_index() + 1;
  node::TargetCall hold{v.op_id, shard, node::TargetAction::kHold, index, {}, {}};
  node::RpcRequest rpc;
  rpc.op = node::RpcOp::kMigrateTarget;
  rpc.value = node::encode_target_call(hold);
  v = VerifySession{v.op_id, v.target, VerifySession::Phase::kDigesting, index, nullptr,
                    std::nullopt, std::nullopt, 0, v.mismatches, true, "digesting"};
  const std::string op_id = v.op_id;
  call_admin(v.target, rpc, [this, shard, op_id, index](Result<node::RpcResponse> r) {
    auto it = verify_sessions_.find(shard);
    if (it == verify_sessions_.end() || it->second->op_id != op_id || it->second->index != index) {
      return;
    }
    VerifySession& s = *it->second;
    s.call_in_flight = false;
    if (!r.is_ok() || !r->reply.status.is_ok()) {
      s.phase = VerifySession::Phase::kIdle;
      s.note = r.is_ok() ? std::string(r->reply.status.message()) : "the target did not answer";
    }
  });
  Result<LogIndex> logged = replica.propose_indexed(std::string(), [](Result<std::string>) {});
  if (!logged.is_ok() || *logged != index) {
    v.phase = VerifySession::Phase::kIdle;
    v.note = "could not log the verify marker";
    return;
  }
  std::weak_ptr<Impl> weak = weak_from_this();
  replica.when_applied(index, [this, weak, shard, op_id, index](bool exact) {
    auto it = verify_sessions_.find(shard);
    if (it == verify_sessions_.end() || it->second->op_id != op_id || it->second->index != index) {
      return;
    }
    VerifySession& s = *it->second;
    if (!exact) {
      s.phase = VerifySession::Phase::kIdle;
      return;
    }
    Result<std::shared_ptr<const StateCapture>> capture = storage_.at(shard)->capture();
    if (!capture.is_ok()) {
      s.phase = VerifySession::Phase::kIdle;
      return;
    }
    s.capture = *capture;
    worker_.submit([weak, shard, op_id, index, capture = *capture] {
      ShardDigest digest = capture->digest();
      if (auto self = weak.lock()) {
        self->post([shard, op_id, index, digest = std::move(digest)](Impl& impl) {
          auto at = impl.verify_sessions_.find(shard);
          if (at == impl.verify_sessions_.end() || at->second->op_id != op_id ||
              at->second->index != index) {
            return;
          }
          at->second->leader_digest = digest;
        });
      }
    });
  });
}

void Node::Impl::compare_digests(ShardId shard, VerifySession& v) {
  using Phase = VerifySession::Phase;
  const std::vector<std::uint32_t> bad = v.leader_digest->differing_buckets(*v.target_digest);
  const bool match = bad.empty() && v.leader_digest->root() == v.target_digest->root();
  node::TargetCall call{v.op_id, shard, node::TargetAction::kRelease, v.index, {}, {}};
  if (match) {
    v.capture.reset();  // it pins the state's old records
    v.phase = Phase::kMatched;
    v.note = fmt::format("digests match at index {} ({} keys)", v.index.value(),
                         v.leader_digest->keys);
  } else if (v.round >= kMaxRepairRounds) {
    v.capture.reset();
    v.phase = Phase::kFailed;
    v.note = fmt::format("digests still differ in {} buckets after {} repairs", bad.size(),
                         v.round);
  } else {
    // Re-send only the buckets that differ, taken from the leader's state
    // at the same index; the target replaces them and digests again.
    v.mismatches += static_cast<std::uint32_t>(std::max<std::size_t>(bad.size(), 1));
    Result<std::vector<std::string>> chunks =
        v.capture->export_buckets(bad, options_.migration_chunk_bytes);
    if (!chunks.is_ok()) {
      v.phase = Phase::kFailed;
      v.note = std::string(chunks.status().message());
    } else {
      call.action = node::TargetAction::kRepair;
      call.buckets = bad;
      call.chunks = std::move(*chunks);
      ++v.round;
      v.target_digest.reset();
      v.note = fmt::format("re-sending {} buckets (round {})", bad.size(), v.round);
      nodenomad::log(LogLevel::kWarn, "migration",
                     fmt::format("shard {}: {} digest buckets differ on {}; {}", shard.value(),
                                 bad.size(), v.target.str(), v.note));
    }
  }
  node::RpcRequest rpc;
  rpc.op = node::RpcOp::kMigrateTarget;
  rpc.value = node::encode_target_call(call);
  call_admin(v.target, rpc, [](Result<node::RpcResponse>) {});
}

// --- Verify, the target's side ---

void Node::Impl::serve_migrate_target(const node::TargetCall& call,
                                      std::function<void(node::RpcResponse)> answer) {
  node::GroupReplica* replica = shard_replica(call.shard);
  if (replica == nullptr) {
    return answer(answer_with(Status::unavailable(
        fmt::format("{} holds no replica of shard {} yet", options_.id.str(), call.shard.value()))));
  }
  StorageEngine& storage = *storage_.at(call.shard);
  auto& slot = target_sessions_[call.shard];
  switch (call.action) {
    case node::TargetAction::kHold: {
      replica->release_apply_hold();
      if (storage.last_applied_index() >= call.index) {
        slot.reset();
        return answer(answer_with(Status::aborted("already past the verify index")));
      }
      slot = std::make_unique<TargetSession>();
      slot->op_id = call.op_id;
      slot->index = call.index;
      replica->hold_apply_after(call.index);
      const ShardId shard = call.shard;
      const std::string op_id = call.op_id;
      const LogIndex index = call.index;
      replica->when_applied(index, [this, shard, op_id, index](bool exact) {
        auto it = target_sessions_.find(shard);
        if (it == target_sessions_.end() || !it->second || it->second->op_id != op_id ||
            it->second->index != index) {
          return;
        }
        if (!exact) {
          it->second->aborted = true;
          return;
        }
        digest_target(shard);
      });
      // Never held for good: a leader that went quiet does not stall us.
      post_after(options_.migration_timeout_ms, [shard, op_id, index](Impl& self) {
        auto it = self.target_sessions_.find(shard);
        if (it == self.target_sessions_.end() || !it->second || it->second->op_id != op_id ||
            it->second->index != index) {
          return;
        }
        self.target_sessions_.erase(it);
        if (node::GroupReplica* r = self.shard_replica(shard)) r->release_apply_hold();
      });
      return answer(answer_with(Status::ok()));
    }
    case node::TargetAction::kPoll: {
      if (!slot || slot->op_id != call.op_id || slot->index != call.index || slot->aborted) {
        return answer(answer_with(Status::aborted("no verify hold at that index here")));
      }
      node::TargetReport report{storage.last_applied_index(), slot->digest, slot->round};
      return answer(answer_with(Status::ok(), node::encode_target_report(report)));
    }
    case node::TargetAction::kRepair: {
      if (!slot || slot->op_id != call.op_id || slot->index != call.index ||
          !replica->apply_held() || storage.last_applied_index() != call.index) {
        return answer(answer_with(Status::aborted("not held at the verify index")));
      }
      if (Status s = storage.replace_buckets(call.buckets, call.chunks); !s.is_ok()) {
        return answer(answer_with(std::move(s)));
      }
      // The repaired state must survive a restart: the log cannot rebuild it.
      if (Status s = storage.snapshot(); !s.is_ok()) {
        fail_node(s.with_context("persisting a repaired shard"));
        return answer(answer_with(Status::failed("persisting the repair failed")));
      }
      ++slot->round;
      slot->digest.clear();
      digest_target(call.shard);
      return answer(answer_with(Status::ok()));
    }
    case node::TargetAction::kRelease:
      // Only this operation's hold (a late release of an older one must not
      // end a newer one's).
      if (slot && slot->op_id != call.op_id) return answer(answer_with(Status::ok()));
      replica->release_apply_hold();
      target_sessions_.erase(call.shard);
      return answer(answer_with(Status::ok()));
  }
}

void Node::Impl::digest_target(ShardId shard) {
  auto it = target_sessions_.find(shard);
  if (it == target_sessions_.end() || !it->second) return;
  Result<std::shared_ptr<const StateCapture>> capture = storage_.at(shard)->capture();
  if (!capture.is_ok()) {
    it->second->aborted = true;
    return;
  }
  std::weak_ptr<Impl> weak = weak_from_this();
  const std::string op_id = it->second->op_id;
  const std::uint32_t round = it->second->round;
  worker_.submit([weak, shard, op_id, round, capture = *capture] {
    std::string digest = encode_shard_digest(capture->digest());
    if (auto self = weak.lock()) {
      self->post([shard, op_id, round, digest = std::move(digest)](Impl& impl) {
        auto at = impl.target_sessions_.find(shard);
        if (at == impl.target_sessions_.end() || !at->second || at->second->op_id != op_id ||
            at->second->round != round) {
          return;
        }
        at->second->digest = digest;
      });
    }
  });
}

// --- Cleanup: the source drops the shard ---

void Node::Impl::serve_drop_shard(ShardId shard, Epoch min_epoch,
                                  std::function<void(node::RpcResponse)> answer, int tries) {
  const std::shared_ptr<const ClusterMetadata> current = metadata_->current();
  if (!current->initialized() || shard.value() >= current->shard_count()) {
    return answer(answer_with(Status::invalid_argument(
        fmt::format("shard {} does not exist here", shard.value()))));
  }
  const ShardPlacement& p = current->shard_map().placement(shard);
  // Only a placement at least as new as the coordinator's may drop a copy:
  // an older view could still list this node.
  if (p.epoch < min_epoch) {
    return answer(answer_with(Status::unavailable(fmt::format(
        "this node's view of shard {} is at epoch {}, behind {}", shard.value(),
        p.epoch.value(), min_epoch.value()))));
  }
  if (p.hosts(options_.id)) {
    return answer(answer_with(Status::invalid_argument(fmt::format(
        "{} is still a replica of shard {} at epoch {}; it is not dropped", options_.id.str(),
        shard.value(), p.epoch.value()))));
  }
  node::GroupReplica* replica = shard_replica(shard);
  if (replica != nullptr && replica->sync_in_flight()) {
    // The disk thread holds its log store: wait for it.
    if (tries <= 0) return answer(answer_with(Status::unavailable("the replica stays busy")));
    post_after(5, [shard, min_epoch, answer, tries](Impl& self) {
      self.serve_drop_shard(shard, min_epoch, answer, tries - 1);
    });
    return;
  }
  Result<std::uint64_t> freed = drop_shard_group(shard);
  if (!freed.is_ok()) return answer(answer_with(freed.status()));
  node::RpcResponse r = answer_with(Status::ok());
  r.reply.version = *freed;
  answer(std::move(r));
}

Result<std::uint64_t> Node::Impl::drop_shard_group(ShardId shard) {
  const GroupId group = group_of_shard(shard);
  const std::string log_dir = group_log_dir(group);
  const std::string data_dir = shard_data_dir(shard);
  NN_ASSIGN_OR_RETURN(const bool log_exists, fs_->exists(log_dir));
  NN_ASSIGN_OR_RETURN(const bool data_exists, fs_->exists(data_dir));
  if (!groups_.contains(group) && !log_exists && !data_exists) return std::uint64_t{0};
  std::uint64_t bytes = 0;
  if (log_exists) {
    NN_ASSIGN_OR_RETURN(const std::uint64_t n, tree_bytes(*fs_, log_dir, 3));
    bytes += n;
  }
  if (data_exists) {
    NN_ASSIGN_OR_RETURN(const std::uint64_t n, tree_bytes(*fs_, data_dir, 3));
    bytes += n;
  }
  // The replica goes first (its log store's files are open), on the loop.
  // Freeing the state (a record per key: a second per million) and
  // deleting the files go to the disk worker, after any compaction of this
  // shard still writing there; the directories are renamed aside first, so
  // the shard can come back here at once without meeting its old files.
  groups_.erase(group);
  std::shared_ptr<StorageEngine> engine;
  if (auto it = storage_.find(shard); it != storage_.end()) {
    engine = std::move(it->second);
    storage_.erase(it);
  }
  leader_hints_.erase(shard);
  verify_sessions_.erase(shard);
  target_sessions_.erase(shard);
  expiring_.erase(group);
  for (auto it = snapshot_queues_.begin(); it != snapshot_queues_.end();) {
    it = it->first.first == group ? snapshot_queues_.erase(it) : std::next(it);
  }
  // The log first: a data directory without its log is never opened, a log
  // without its data would be (an empty state behind a compacted log).
  std::vector<std::string> trash;
  if (log_exists) {
    NN_ASSIGN_OR_RETURN(std::string moved, move_to_trash(log_dir));
    trash.push_back(std::move(moved));
  }
  if (data_exists) {
    NN_ASSIGN_OR_RETURN(std::string moved, move_to_trash(data_dir));
    trash.push_back(std::move(moved));
  }
  FileSystem* fs = fs_;
  const std::string who = options_.id.str();
  disk_worker_.submit([fs, engine = std::move(engine), trash = std::move(trash), who]() mutable {
    engine.reset();  // the last reference but a compaction's: frees the records
    for (const std::string& dir : trash) {
      if (Status removed = fs->remove_all(dir); !removed.is_ok()) {
        nodenomad::log(LogLevel::kWarn, "migration",
                       fmt::format("{}: {} is left behind: {}", who, dir, removed.to_string()));
      }
    }
  });
  ++shards_dropped_;
  bytes_freed_ += bytes;
  nodenomad::log(LogLevel::kInfo, "migration",
                 fmt::format("{}: dropped shard {} ({} bytes freed)", options_.id.str(),
                             shard.value(), bytes));
  return bytes;
}

Result<std::string> Node::Impl::move_to_trash(const std::string& dir) {
  const std::size_t slash = dir.find_last_of('/');
  const std::string parent = slash == std::string::npos ? "." : dir.substr(0, slash);
  const std::string name = slash == std::string::npos ? dir : dir.substr(slash + 1);
  std::string to;
  do {
    to = fmt::format("{}/{}{}-{}", parent, kTrashPrefix, name, ++trash_seq_);
    NN_ASSIGN_OR_RETURN(const bool taken, fs_->exists(to));
    if (!taken) break;
  } while (true);
  NN_RETURN_IF_ERROR(fs_->rename(dir, to));
  // Durable before the next rename: the data directory must never be gone
  // while its log directory is still there after a crash.
  NN_RETURN_IF_ERROR(fs_->sync_dir(parent));
  return to;
}

Status Node::Impl::remove_trash() {
  const std::string& wal_base = options_.wal_dir.empty() ? options_.data_dir : options_.wal_dir;
  for (const std::string& parent : {wal_base + "/raft", options_.data_dir + "/shards"}) {
    NN_ASSIGN_OR_RETURN(const bool exists, fs_->exists(parent));
    if (!exists) continue;
    NN_ASSIGN_OR_RETURN(const std::vector<std::string> names, fs_->list(parent));
    for (const std::string& name : names) {
      if (name.rfind(kTrashPrefix, 0) == 0) NN_RETURN_IF_ERROR(fs_->remove_all(parent + "/" + name));
    }
  }
  return Status::ok();
}

// --- the snapshot stream's bandwidth limits ---

// Snapshot chunks to a peer wait here for the operation's limit and the
// node's. Delaying them is only network delay to Raft; the sender holds at
// most max_snapshot_chunks_in_flight of them per transfer.
bool Node::Impl::throttle_snapshot(Envelope& envelope) {
  if (envelope.message.type != MessageType::kSnapshot) return false;
  auto it = snapshot_queues_.find({envelope.group, envelope.to});
  const bool limited = node_bucket_.rate() != 0 || (it != snapshot_queues_.end());
  if (!limited) {
    snapshot_bytes_sent_ += envelope.message.snapshot.data.size();
    return false;
  }
  auto& q = snapshot_queues_[{envelope.group, envelope.to}];
  if (!q) q = std::make_unique<SnapshotQueue>();
  // The queue holds each chunk of the current transfer once: chunks of an
  // abandoned transfer are useless to the follower, and the leader's
  // go-back-N resends of a chunk still waiting here add nothing (while
  // paused they would pile up).
  const SnapshotChunk& chunk = envelope.message.snapshot;
  std::erase_if(q->waiting, [&](const Envelope& e) {
    return e.message.snapshot.transfer_id != chunk.transfer_id;
  });
  for (const Envelope& e : q->waiting) {
    if (e.message.snapshot.offset == chunk.offset) return true;
  }
  const GroupId group = envelope.group;
  const NodeId to = envelope.to;
  q->waiting.push_back(std::move(envelope));
  pump_snapshot_queue(group, to);
  return true;
}

void Node::Impl::pump_snapshot_queue(GroupId group, NodeId to) {
  auto it = snapshot_queues_.find({group, to});
  if (it == snapshot_queues_.end()) return;
  SnapshotQueue& q = *it->second;
  const std::uint64_t now = now_ms();
  if (q.refreshed_ms != 0 && now - q.refreshed_ms > kThrottleForgetMs) {
    // The operation ended or its coordinator went away: no per-op limit.
    q.bucket.set_rate(0, now);
    q.paused = false;
  }
  while (!q.waiting.empty() && !q.paused) {
    const std::uint64_t wait = std::max(q.bucket.wait_ms(now), node_bucket_.wait_ms(now));
    if (wait > 0) {
      if (!q.scheduled) {
        q.scheduled = true;
        post_after(wait, [group, to](Impl& self) {
          auto at = self.snapshot_queues_.find({group, to});
          if (at == self.snapshot_queues_.end()) return;
          at->second->scheduled = false;
          self.pump_snapshot_queue(group, to);
        });
      }
      return;
    }
    Envelope e = std::move(q.waiting.front());
    q.waiting.pop_front();
    const std::uint64_t bytes = e.message.snapshot.data.size();
    q.bucket.take(bytes, now);
    node_bucket_.take(bytes, now);
    snapshot_bytes_sent_ += bytes;
    options_.transport->send(std::move(e));
  }
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
  } else if (auto hint = leader_hints_.find(call.shard); hint != leader_hints_.end()) {
    to = hint->second;
  } else {
    const auto& replicas = current->shard_map().placement(call.shard).replicas;
    if (replicas.empty()) return done(Status::unavailable("the shard has no replica"));
    to = replicas[(ticks_ / 4) % replicas.size()];
  }
  auto finish = [this, done, shard = call.shard](Result<node::RpcResponse> r) {
    if (!r.is_ok()) {
      leader_hints_.erase(shard);
      return done(r.status());
    }
    if (!r->reply.status.is_ok()) {
      if (!r->leader_hint.empty()) {
        leader_hints_[shard] = r->leader_hint;
      } else {
        leader_hints_.erase(shard);
      }
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
