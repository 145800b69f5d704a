// The coordinator of shard migrations (see migration_coordinator.hpp): the
// driver of the stages. Client calls and statuses are
// migration_coordinator_calls.cpp; upkeep is metadata_upkeep.cpp.
#include "node/migration_coordinator.hpp"
#include "node/migration_support.hpp"

#include <fmt/format.h>

#include "node/node_impl.hpp"
#include "nodenomad/logging.hpp"
#include "nodenomad/migration/migration_plan.hpp"

namespace nodenomad::node {

namespace {

// Steps run this often (each waits for its own call to finish), and at once
// after an operation's record or placement changed (wake()).
constexpr std::uint64_t kStepIntervalMs = 100;
// Transfer is over once the learner is this close to the leader's commit,
// or once a catch-up round took no longer than an election timeout
// (catch_up_rounds.hpp).
constexpr std::uint64_t kCatchUpEntries = 100;
// A rolled-back target that does not answer keeps an orphan copy (it holds
// no vote, so nothing depends on it); the operation ends sooner.
constexpr int kRollbackDropAttempts = 3;

std::vector<NodeId> without(std::vector<NodeId> v, const NodeId& n) {
  std::erase(v, n);
  return v;
}

}  // namespace

// --- the driver ---

void MigrationCoordinator::tick() {
  if (!node_.leads_metadata()) {
    live_.clear();  // a later term starts from the records
    return;
  }
  if (node_.now_ms() - last_step_ms_ < kStepIntervalMs) return;
  run_steps();
}

void MigrationCoordinator::wake() {
  if (wake_posted_) return;
  wake_posted_ = true;
  // The coordinator lives as long as the node, and post() runs nothing
  // once the node is gone.
  node_.post([this](Node::Impl&) {
    wake_posted_ = false;
    if (node_.leads_metadata()) run_steps();
  });
}

void MigrationCoordinator::run_steps() {
  const std::uint64_t now = node_.now_ms();
  last_step_ms_ = now;
  const std::shared_ptr<const ClusterMetadata> view = node_.view();
  if (!view->initialized() || !view->bootstrap_logged()) return;
  std::vector<std::pair<MigrationRecord, std::uint64_t>> records;
  for (const auto& [key, rec] : view->records_in(kMigrationNamespace)) {
    Result<MigrationRecord> r = decode_migration_record(rec.value);
    if (!r.is_ok()) continue;  // written by a newer version: not ours to drive
    records.emplace_back(std::move(*r), rec.version);
  }
  // Concurrency: started and unfinished operations, in all and per node.
  std::uint32_t running = 0;
  std::map<NodeId, std::uint32_t> per_node;
  std::map<ShardId, bool> shard_busy;
  for (const auto& [r, v] : records) {
    if (!r.started || migration_stage_terminal(r.stage)) continue;
    ++running;
    ++per_node[r.source];
    ++per_node[r.target];
    shard_busy[r.shard] = true;
  }
  upkeep(*view, running > 0);
  for (const auto& [r, version] : records) {
    if (migration_stage_terminal(r.stage)) {
      live_.erase(r.id);
      continue;
    }
    Live& live = live_[r.id];
    if (live.busy) continue;
    if (!r.started) {
      if (r.cancel_requested) {
        finish(r, version, MigrationStage::kCancelled, "cancelled before it started");
        continue;
      }
      const std::uint32_t limit = node_.options().max_node_migrations;
      if (running >= node_.options().max_concurrent_migrations || per_node[r.source] >= limit ||
          per_node[r.target] >= limit || shard_busy[r.shard]) {
        continue;  // queued
      }
      ++running;
      ++per_node[r.source];
      ++per_node[r.target];
      shard_busy[r.shard] = true;
      MigrationRecord next = r;
      next.started = true;
      next.stage_started_ms = node_.wall_ms();
      live.stage = MigrationStage::kPrepare;
      live.progress_ms = now;
      write(std::move(next), version, "started");
      continue;
    }
    if (live.progress_ms == 0 || live.stage != r.stage || live.rolling_back != r.rolling_back) {
      // First sight of this stage (here, or after a coordinator change).
      live.stage = r.stage;
      live.rolling_back = r.rolling_back;
      live.progress_ms = now;
      live.drop_attempts = 0;
    }
    step(r, version, live);
  }
}

std::uint64_t MigrationCoordinator::catch_up_round_ms() const {
  const NodeOptions& o = node_.options();
  return std::max<std::uint64_t>(2 * kStepIntervalMs,
                                 std::uint64_t{o.raft.election_timeout_ticks} * o.tick_ms);
}

bool MigrationCoordinator::stalled(const Live& live, const MigrationRecord& r) const {
  if (r.paused) return false;
  return node_.now_ms() - live.progress_ms > node_.options().migration_timeout_ms;
}

void MigrationCoordinator::step(const MigrationRecord& r, std::uint64_t version, Live& live) {
  if (r.rolling_back) return step_rollback(r, version, live);
  const bool before_update = r.stage < MigrationStage::kUpdate;
  // The stage timeout counts from the resume, not from before the pause.
  if (r.paused) live.progress_ms = node_.now_ms();
  if (before_update && r.cancel_requested) return roll_back(r, version, "cancelled by request");
  if (before_update && stalled(live, r)) {
    return roll_back(r, version,
                     fmt::format("the {} stage made no progress for {} ms{}",
                                 migration_stage_name(r.stage),
                                 node_.options().migration_timeout_ms,
                                 live.note.empty() ? "" : " (" + live.note + ")"));
  }
  // Paused: held where it is before Update (a Transfer keeps reporting, its
  // stream throttled to nothing); from Update on it only finishes.
  if (before_update && r.paused && r.stage != MigrationStage::kTransfer) return;
  switch (r.stage) {
    case MigrationStage::kPrepare: return step_prepare(r, version, live);
    case MigrationStage::kTransfer: return step_transfer(r, version, live);
    case MigrationStage::kVerify: return step_verify(r, version, live);
    case MigrationStage::kUpdate: return step_update(r, version, live);
    case MigrationStage::kCleanup: return step_cleanup(r, version, live);
    default: return;
  }
}

// Prepare: the target becomes a learner of the shard in the ShardMap (so it
// creates the empty replica), then of the shard's Raft group.
void MigrationCoordinator::step_prepare(const MigrationRecord& r, std::uint64_t version,
                                        Live& live) {
  const std::shared_ptr<const ClusterMetadata> view = node_.view();
  const ShardPlacement& p = view->shard_map().placement(r.shard);
  if (!p.is_learner(r.target)) {
    if (p.is_voter(r.target) || p.epoch != r.expected_epoch || !p.is_voter(r.source)) {
      return finish(r, version, MigrationStage::kFailed,
                    fmt::format("shard {} changed under the plan (epoch {}, planned at {}); "
                                "plan again",
                                r.shard.value(), p.epoch.value(), r.expected_epoch.value()));
    }
    // A target being drained, or gone, takes no new replica
    // (ClusterMetadata::check_placement_members). An operation queued before
    // the drain would have its placement refused at every step until the
    // stage timed out, and the queue behind it waited as long.
    const Member* target = view->find_member(r.target);
    if (target == nullptr || target->state == MemberState::kLeaving) {
      return finish(r, version, MigrationStage::kFailed,
                    fmt::format("{} {} and takes no new replica", r.target.str(),
                                target == nullptr ? "is no longer a member"
                                                  : "is being drained (leaving)"));
    }
    return update_placement(r, p, p.replicas, [&] {
      std::vector<NodeId> l = p.learners;
      l.push_back(r.target);
      return l;
    }());
  }
  // Two operations of one shard can both be started: the start is decided on
  // this leader's applied view, which may lag its own writes (and a former
  // leader's). The placement's epoch stops all but one here, except two
  // with the same target: both see "the target is a learner". The
  // operation created first keeps the shard; the other fails, changing
  // nothing (the learner is the survivor's).
  const auto seq = [](const std::string& id) { return std::strtoull(id.c_str() + 1, nullptr, 10); };
  for (const auto& [key, rec] : view->records_in(kMigrationNamespace)) {
    Result<MigrationRecord> other = decode_migration_record(rec.value);
    if (!other.is_ok() || other->id == r.id || other->shard != r.shard ||
        other->target != r.target || !other->started || migration_stage_terminal(other->stage)) {
      continue;
    }
    if (other->stage > MigrationStage::kPrepare ||
        std::make_pair(seq(other->id), other->id) < std::make_pair(seq(r.id), r.id)) {
      return finish(r, version, MigrationStage::kFailed,
                    fmt::format("operation {} is moving shard {}; plan again", other->id,
                                r.shard.value()));
    }
  }
  call_leader(r, ShardAction::kAddLearner, [this, r, version](Live& l, Result<ShardReport> rep) {
    if (!rep.is_ok()) return;
    l.note = rep->note;
    if (!contains(rep->learners, r.target)) return;
    MigrationRecord next = r;
    next.bytes_total = rep->bytes;
    next.keys_total = rep->keys;
    advance(std::move(next), version, MigrationStage::kTransfer);
  });
  (void)live;
}

// Transfer: the leader streams its snapshot to the learner (Raft's
// InstallSnapshot, throttled by the node), then the log catches it up.
void MigrationCoordinator::step_transfer(const MigrationRecord& r, std::uint64_t version,
                                         Live& live) {
  (void)live;
  call_leader(r, ShardAction::kReport, [this, r, version](Live& l, Result<ShardReport> rep) {
    if (!rep.is_ok()) return;
    l.note = rep->note;
    if (!contains(rep->learners, r.target) && !contains(rep->voters, r.target)) {
      l.note = "the target is no longer a learner of the group";
      return;
    }
    const std::uint64_t now = node_.now_ms();
    std::uint64_t bytes = l.bytes_done;
    if (rep->target_snapshotting) {
      bytes = std::min(rep->snapshot_bytes_acked, std::max(r.bytes_total, rep->snapshot_bytes_acked));
    } else if (rep->target_match > LogIndex(0)) {
      bytes = std::max(bytes, r.bytes_total);
    }
    // Before the learner holds the snapshot, a growing stream is progress.
    const bool streaming = rep->target_snapshotting || rep->target_match == LogIndex(0);
    if (bytes > l.bytes_done || (streaming && rep->target_match > l.match) || r.paused) {
      l.progress_ms = now;
    }
    // A smoothed rate over samples at least half a second apart.
    if (l.rate_ms == 0) {
      l.rate_ms = now;
      l.rate_bytes = bytes;
    } else if (now - l.rate_ms >= 500) {
      const double sample = static_cast<double>(bytes - std::min(bytes, l.rate_bytes)) * 1000.0 /
                            static_cast<double>(now - l.rate_ms);
      l.rate = l.rate == 0 ? sample : 0.5 * l.rate + 0.5 * sample;
      l.rate_ms = now;
      l.rate_bytes = bytes;
    }
    l.bytes_done = bytes;
    l.match = std::max(l.match, rep->target_match);
    if (streaming) {
      l.catch_up.reset();
      return;
    }
    // Then the log catches it up, in rounds that must converge (a pause
    // starts the count again).
    if (!l.catch_up || r.paused) l.catch_up.emplace(kCatchUpEntries, catch_up_round_ms());
    const CatchUpRounds::Verdict v = l.catch_up->observe(now, rep->commit, rep->target_match);
    if (v.progressed) l.progress_ms = now;
    l.note = fmt::format("{}{}{}", v.progressed ? "" : "the target is not catching up: ",
                         l.catch_up->describe(), rep->note.empty() ? "" : "; " + rep->note);
    if (!v.caught_up || r.paused) return;
    MigrationRecord next = r;
    next.bytes_done = std::max(r.bytes_total, bytes);
    advance(std::move(next), version, MigrationStage::kVerify);
  });
}

// Verify: the leader and the learner digest the shard at one index; bad
// buckets are re-sent by the leader. No promotion without a match.
void MigrationCoordinator::step_verify(const MigrationRecord& r, std::uint64_t version,
                                       Live& live) {
  (void)live;
  call_leader(r, ShardAction::kVerify, [this, r, version](Live& l, Result<ShardReport> rep) {
    if (!rep.is_ok()) return;
    l.note = rep->note;
    if (rep->verify == VerifyState::kFailed) {
      MigrationRecord next = r;
      next.verify_mismatches = rep->verify_mismatches;
      return roll_back(std::move(next), version, "verify failed: " + rep->note);
    }
    if (rep->verify != VerifyState::kMatched) return;
    MigrationRecord next = r;
    next.verify_mismatches = rep->verify_mismatches;
    advance(std::move(next), version, MigrationStage::kUpdate);
  });
}

// Update: a joint change makes the target a voter and takes the source out
// (leadership handed off first if the source leads), then the ShardMap gets
// the new voters and a new epoch.
void MigrationCoordinator::step_update(const MigrationRecord& r, std::uint64_t version,
                                       Live& live) {
  (void)live;
  const std::shared_ptr<const ClusterMetadata> view = node_.view();
  const ShardPlacement& p = view->shard_map().placement(r.shard);
  if (p.is_voter(r.target) && !p.hosts(r.source)) {
    return advance(r, version, MigrationStage::kCleanup);
  }
  call_leader(r, ShardAction::kPromote, [this, r](Live& l, Result<ShardReport> rep) {
    if (!rep.is_ok()) return;
    l.note = rep->note;
    if (rep->joint || !contains(rep->voters, r.target) || contains(rep->voters, r.source) ||
        contains(rep->learners, r.source)) {
      return;
    }
    const std::shared_ptr<const ClusterMetadata> now_view = node_.view();
    const ShardPlacement& cur = now_view->shard_map().placement(r.shard);
    std::vector<NodeId> replicas = cur.replicas;
    for (NodeId& n : replicas) {
      if (n == r.source) n = r.target;
    }
    if (!contains(replicas, r.target)) replicas.push_back(r.target);
    update_placement(r, cur, std::move(replicas), without(cur.learners, r.target));
  });
}

// Cleanup: the source drops its copy once its view has the new placement.
// A source that does not answer within the stage timeout keeps an orphan
// copy; the coordinator's sweep drops it once the source is back.
void MigrationCoordinator::step_cleanup(const MigrationRecord& r, std::uint64_t version,
                                        Live& live) {
  if (stalled(live, r)) {
    nodenomad::log(LogLevel::kWarn, "migration",
                   fmt::format("{}: {} did not drop shard {} ({}); the sweep drops it later",
                               r.id, r.source.str(), r.shard.value(), live.note));
    return finish(r, version, MigrationStage::kDone, "");
  }
  const std::shared_ptr<const ClusterMetadata> view = node_.view();
  const Epoch epoch = view->shard_map().placement(r.shard).epoch;
  RpcRequest rpc;
  rpc.op = RpcOp::kDropShard;
  rpc.key = std::to_string(r.shard.value());
  rpc.if_version = epoch.value();
  live.busy = true;
  node_.call_admin(r.source, rpc, [this, r, version](Result<RpcResponse> resp) {
    auto it = live_.find(r.id);
    if (it == live_.end()) return;
    Live& l = it->second;
    l.busy = false;
    if (resp.is_ok() && resp->reply.status.is_ok()) {
      MigrationRecord next = r;
      next.bytes_freed = resp->reply.version;
      return finish(std::move(next), version, MigrationStage::kDone, "");
    }
    l.note = resp.is_ok() ? std::string(resp->reply.status.message())
                          : std::string(resp.status().message());
  });
}

// Rollback (before Update only): the learner leaves the group, then the
// ShardMap, then its copy is dropped.
void MigrationCoordinator::step_rollback(const MigrationRecord& r, std::uint64_t version,
                                         Live& live) {
  const std::shared_ptr<const ClusterMetadata> view = node_.view();
  const ShardPlacement& p = view->shard_map().placement(r.shard);
  const MigrationStage end = r.cancel_requested ? MigrationStage::kCancelled
                                                : MigrationStage::kFailed;
  if (p.is_learner(r.target)) {
    call_leader(r, ShardAction::kRemoveLearner, [this, r](Live& l, Result<ShardReport> rep) {
      if (!rep.is_ok()) return;
      l.note = rep->note;
      if (contains(rep->learners, r.target) || contains(rep->voters, r.target)) return;
      const std::shared_ptr<const ClusterMetadata> now_view = node_.view();
      const ShardPlacement& cur = now_view->shard_map().placement(r.shard);
      update_placement(r, cur, cur.replicas, without(cur.learners, r.target));
    });
    return;
  }
  if (p.is_voter(r.target)) {
    // Never the case before Update; a voter is never taken out by a rollback.
    return finish(r, version, end, r.error);
  }
  if (node_.peer_unreachable(r.target)) {
    // A target that cannot be reached (often why the move stalled) would
    // let each drop wait out the request timeout: count the attempt at once.
    live.note = fmt::format("{} is unreachable", r.target.str());
    if (++live.drop_attempts >= kRollbackDropAttempts) finish(r, version, end, r.error);
    return;
  }
  RpcRequest rpc;
  rpc.op = RpcOp::kDropShard;
  rpc.key = std::to_string(r.shard.value());
  rpc.if_version = p.epoch.value();
  live.busy = true;
  node_.call_admin(r.target, rpc, [this, r, version, end](Result<RpcResponse> resp) {
    auto it = live_.find(r.id);
    if (it == live_.end()) return;
    it->second.busy = false;
    if ((resp.is_ok() && resp->reply.status.is_ok()) ||
        ++it->second.drop_attempts >= kRollbackDropAttempts) {
      finish(r, version, end, r.error);
    }
  });
}

// --- record writes and calls ---

void MigrationCoordinator::write(MigrationRecord r, std::uint64_t version, const std::string& why) {
  Live& live = live_[r.id];
  live.busy = true;
  metadata::PutRecord put{std::string(kMigrationNamespace), r.id, encode_migration_record(r),
                          version};
  const std::string id = r.id;
  node_.propose_metadata(put, [this, id, why](Result<MetadataResult> result) {
    if (auto it = live_.find(id); it != live_.end()) it->second.busy = false;
    if (result.is_ok() && result->ok()) wake();
    if (!result.is_ok() || !result->ok()) {
      nodenomad::log(LogLevel::kDebug, "migration",
                     fmt::format("{}: recording '{}' did not go through: {}", id, why,
                                 result.is_ok() ? result->status.to_string()
                                                : result.status().to_string()));
    }
  });
}

void MigrationCoordinator::advance(MigrationRecord r, std::uint64_t version,
                                   MigrationStage next) {
  const std::uint64_t now = node_.wall_ms();
  const auto index = static_cast<std::size_t>(r.stage) - 1;
  if (index < kMigrationStages) r.stage_ms[index] += now - std::min(now, r.stage_started_ms);
  nodenomad::log(LogLevel::kInfo, "migration",
                 fmt::format("{}: shard {} {} -> {}: {} -> {}", r.id, r.shard.value(),
                             r.source.str(), r.target.str(), migration_stage_name(r.stage),
                             migration_stage_name(next)));
  r.stage = next;
  r.stage_started_ms = now;
  write(std::move(r), version, std::string(migration_stage_name(next)));
}

void MigrationCoordinator::roll_back(MigrationRecord r, std::uint64_t version,
                                     std::string reason) {
  nodenomad::log(LogLevel::kWarn, "migration",
                 fmt::format("{}: rolling back shard {} ({} -> {}): {}", r.id, r.shard.value(),
                             r.source.str(), r.target.str(), reason));
  r.rolling_back = true;
  r.error = std::move(reason);
  write(std::move(r), version, "rollback");
}

void MigrationCoordinator::finish(MigrationRecord r, std::uint64_t version, MigrationStage end,
                                  std::string error) {
  const std::uint64_t now = node_.wall_ms();
  const auto index = static_cast<std::size_t>(r.stage) - 1;
  if (r.started && index < kMigrationStages) {
    r.stage_ms[index] += now - std::min(now, r.stage_started_ms);
  }
  nodenomad::log(end == MigrationStage::kDone ? LogLevel::kInfo : LogLevel::kWarn, "migration",
                 fmt::format("{}: shard {} {} -> {}: {}{}", r.id, r.shard.value(), r.source.str(),
                             r.target.str(), migration_stage_name(end),
                             error.empty() ? "" : ": " + error));
  r.stage = end;
  r.finished_ms = now;
  r.stage_started_ms = now;
  r.error = std::move(error);
  write(std::move(r), version, std::string(migration_stage_name(end)));
}

void MigrationCoordinator::update_placement(const MigrationRecord& r, const ShardPlacement& p,
                                            std::vector<NodeId> replicas,
                                            std::vector<NodeId> learners) {
  Live& live = live_[r.id];
  live.busy = true;
  metadata::UpdateShardPlacement update{r.shard, p.epoch, std::move(replicas), std::move(learners)};
  const std::string id = r.id;
  node_.propose_metadata(update, [this, id](Result<MetadataResult> result) {
    auto it = live_.find(id);
    if (it == live_.end()) return;
    it->second.busy = false;
    if (result.is_ok() && result->ok()) {
      it->second.progress_ms = node_.now_ms();
      wake();
    } else {
      it->second.note = result.is_ok() ? std::string(result->status.message())
                                       : std::string(result.status().message());
    }
  });
}

void MigrationCoordinator::call_leader(const MigrationRecord& r, ShardAction action,
                                       std::function<void(Live&, Result<ShardReport>)> then) {
  Live& live = live_[r.id];
  live.busy = true;
  ShardCall call{r.id, r.shard, action, r.source, r.target, r.bandwidth_bytes_per_s, r.paused};
  const std::string id = r.id;
  node_.call_shard_leader(call, [this, id, then = std::move(then)](Result<ShardReport> rep) {
    auto it = live_.find(id);
    if (it == live_.end()) return;
    it->second.busy = false;
    if (!rep.is_ok()) it->second.note = std::string(rep.status().message());
    then(it->second, std::move(rep));
  });
}

}  // namespace nodenomad::node
