// GroupReplica: the Ready cycle with the disk thread's group commit.
#include "node/group_replica.hpp"

#include <fmt/format.h>

#include "nodenomad/logging.hpp"

namespace nodenomad::node {

namespace {

// A disk error while restoring a snapshot (a failed write or fsync of the
// restore file; the engine is then failed and refuses every later restore)
// stops the replica like a failed fsync of its log: Raft only sees a
// rejected snapshot and would retry it forever. A malformed chunk is not a
// disk error: it is rejected and sent again.
bool disk_error(const Status& s) {
  return s.is(StatusCode::kIOError) || s.is(StatusCode::kFailed);
}

class FailStopSink final : public SnapshotSink {
 public:
  FailStopSink(std::unique_ptr<SnapshotSink> inner, Status& failure)
      : inner_(std::move(inner)), failure_(failure) {}
  Status write_chunk(std::string_view chunk) override { return watch(inner_->write_chunk(chunk)); }
  Status finish() override { return watch(inner_->finish()); }

 private:
  Status watch(Status s) {
    if (disk_error(s) && failure_.is_ok()) failure_ = s;
    return s;
  }
  std::unique_ptr<SnapshotSink> inner_;
  Status& failure_;
};

// The state machine as Raft sees it: its snapshot sources wrapped (when the
// parts say how) and its restores watched for disk errors.
class WrappedSnapshots final : public StateMachine {
 public:
  WrappedSnapshots(StateMachine& inner, const ReplicaParts& parts, Status& restore_failure)
      : inner_(inner), parts_(parts), restore_failure_(restore_failure) {}
  Result<std::string> apply(LogIndex index, std::string_view command) override {
    return inner_.apply(index, command);
  }
  LogIndex last_applied_index() const override { return inner_.last_applied_index(); }
  Result<std::unique_ptr<SnapshotSource>> open_snapshot() override {
    NN_ASSIGN_OR_RETURN(std::unique_ptr<SnapshotSource> source, inner_.open_snapshot());
    if (!parts_.wrap_snapshot_source) return source;
    return parts_.wrap_snapshot_source(std::move(source));
  }
  Result<std::unique_ptr<SnapshotSink>> begin_restore(LogIndex index) override {
    Result<std::unique_ptr<SnapshotSink>> sink = inner_.begin_restore(index);
    if (!sink.is_ok()) {
      if (disk_error(sink.status()) && restore_failure_.is_ok()) restore_failure_ = sink.status();
      return sink;
    }
    return std::unique_ptr<SnapshotSink>(
        std::make_unique<FailStopSink>(std::move(sink).value(), restore_failure_));
  }

 private:
  StateMachine& inner_;
  const ReplicaParts& parts_;
  Status& restore_failure_;
};

}  // namespace

GroupReplica::GroupReplica(GroupId group, ReplicaParts parts, ReplicaLimits limits,
                           ReplicaHost& host)
    : group_(group), parts_(std::move(parts)), limits_(limits), host_(host) {}

GroupReplica::~GroupReplica() {
  // The engine refers to the store and the state machine: it goes first.
  engine_.reset();
}

Result<std::unique_ptr<GroupReplica>> GroupReplica::open(GroupId group, const RaftConfig& config,
                                                         ReplicaParts parts, ReplicaLimits limits,
                                                         Rng rng, ReplicaHost& host) {
  std::unique_ptr<GroupReplica> replica(new GroupReplica(group, std::move(parts), limits, host));
  replica->raft_view_ = std::make_unique<WrappedSnapshots>(
      *replica->parts_.state_machine, replica->parts_, replica->restore_failure_);
  NN_ASSIGN_OR_RETURN(replica->engine_, RaftEngine::open(config, *replica->parts_.log_store,
                                                         replica->raft_view_.get(), rng));
  replica->last_compaction_ = replica->parts_.log_store->snapshot_meta().index;
  replica->applied_ = replica->parts_.state_machine->last_applied_index();
  return replica;
}

void GroupReplica::fail(const Status& why) {
  if (!failure_.is_ok()) return;
  failure_ = why;
  nodenomad::log(LogLevel::kError, "node",
                 fmt::format("group {}: stopping: {}", group_.value(), why.to_string()));
  // Nothing here is answered "not applied": whatever was proposed may have
  // been applied elsewhere; the callers' deadlines answer "unknown".
  host_.on_replica_failed(group_, why);
}

void GroupReplica::tick() {
  if (failed()) return;
  ++ticks_;
  engine_->tick();
  if (ticks_ % 16 == 0) give_up_stale();
  release_log_cache();
  pump();
}

void GroupReplica::step(const Message& message) {
  if (failed()) return;
  // A malformed message is dropped (step() says why); a peer cannot stop us.
  (void)engine_->step(message);
  pump();
}

void GroupReplica::propose(std::string command, ProposalDone done) {
  if (failed()) {
    done(Status::unavailable(fmt::format("group {} is failed", group_.value())));
    return;
  }
  if (proposals_.size() >= limits_.max_pending_proposals) {
    done(Status::unavailable(fmt::format("group {}: {} proposals are waiting", group_.value(),
                                         proposals_.size())));
    return;
  }
  Result<ProposeResult> proposed = engine_->propose(std::move(command));
  if (!proposed.is_ok()) {
    // NotLeader, Busy: nothing was logged, so nothing can be applied.
    done(Status::unavailable(std::string(proposed.status().message())));
    return;
  }
  auto [it, inserted] = proposals_.try_emplace(proposed->index);
  if (!inserted) {
    // An older proposal at this index was overwritten in this node's log
    // after a leadership change; its fate is decided elsewhere: unknown.
    it->second.done(Status::timeout("the proposal's log slot was reused"));
  }
  it->second = PendingProposal{proposed->term, ticks_, std::move(done)};
  pump();
}

Result<LogIndex> GroupReplica::propose_indexed(std::string command, ProposalDone done) {
  if (failed()) return Status::unavailable(fmt::format("group {} is failed", group_.value()));
  if (proposals_.size() >= limits_.max_pending_proposals) {
    return Status::unavailable(fmt::format("group {}: {} proposals are waiting", group_.value(),
                                           proposals_.size()));
  }
  Result<ProposeResult> proposed = engine_->propose(std::move(command));
  if (!proposed.is_ok()) return Status::unavailable(std::string(proposed.status().message()));
  auto [it, inserted] = proposals_.try_emplace(proposed->index);
  if (!inserted) it->second.done(Status::timeout("the proposal's log slot was reused"));
  it->second = PendingProposal{proposed->term, ticks_, std::move(done)};
  pump();
  return proposed->index;
}

void GroupReplica::when_applied(LogIndex index, std::function<void(bool exact)> fn) {
  const LogIndex applied = applied_;
  if (applied >= index) {
    fn(applied == index && !apply_held());
    return;
  }
  watchers_.emplace(index, std::move(fn));
}

void GroupReplica::hold_apply_after(LogIndex index) { apply_hold_ = index; }

void GroupReplica::release_apply_hold() {
  if (!apply_hold_) return;
  apply_hold_.reset();
  if (!draining_) drain_held();  // else the posted turn goes on
}

void GroupReplica::drain_held() {
  draining_ = false;
  if (failed()) return;
  std::uint64_t bytes = 0;
  bool applied_any = false;
  while (!held_.empty() && bytes < kHeldApplyBytesPerTurn) {
    // A new hold (the next Verify round) keeps what lies past it.
    if (apply_hold_ && held_.front().index > *apply_hold_) break;
    const Entry e = std::move(held_.front());
    held_.pop_front();
    bytes += e.data.size();
    applied_any = true;
    if (!apply_entry(e)) return;
  }
  if (applied_any) {
    serve_reads();
    host_.on_applied(group_);
  }
  if (!held_.empty() && !(apply_hold_ && held_.front().index > *apply_hold_)) {
    draining_ = true;
    std::weak_ptr<const bool> alive = alive_;
    host_.post_to_loop([this, alive] {
      if (!alive.expired()) drain_held();
    });
  }
}

void GroupReplica::fire_watchers_through(LogIndex index, bool exact) {
  while (!watchers_.empty() && watchers_.begin()->first <= index) {
    auto fn = std::move(watchers_.begin()->second);
    const bool at = exact && watchers_.begin()->first == index;
    watchers_.erase(watchers_.begin());
    fn(at);
  }
}

void GroupReplica::read(bool allow_lease, ReadDone done) {
  if (failed()) {
    done(Status::unavailable(fmt::format("group {} is failed", group_.value())));
    return;
  }
  if (reads_.size() >= limits_.max_pending_reads) {
    done(Status::unavailable(fmt::format("group {}: {} reads are waiting", group_.value(),
                                         reads_.size())));
    return;
  }
  const std::uint64_t id = next_read_id_++;
  const Status asked = engine_->read_index(std::to_string(id), allow_lease);
  if (!asked.is_ok()) {
    done(Status::unavailable(std::string(asked.message())));
    return;
  }
  reads_.emplace(id, PendingRead{LogIndex(0), ticks_, std::move(done)});
  pump();
}

Result<ProposeResult> GroupReplica::propose_conf_change(const ConfChange& change) {
  if (failed()) return Status::unavailable("the group is failed");
  Result<ProposeResult> r = engine_->propose_conf_change(change);
  pump();
  return r;
}

Status GroupReplica::transfer_leadership(const NodeId& to) {
  if (failed()) return Status::unavailable("the group is failed");
  Status s = engine_->transfer_leadership(to);
  pump();
  return s;
}

void GroupReplica::report_unreachable(const NodeId& peer) {
  if (failed()) return;
  engine_->report_unreachable(peer);
  pump();
}

void GroupReplica::snapshot_chunks_ready() {
  if (failed()) return;
  engine_->snapshot_chunks_ready();
  pump();
}

Status GroupReplica::campaign() {
  if (failed()) return Status::unavailable("the group is failed");
  Status s = engine_->campaign();
  pump();
  return s;
}

// Takes Readys until one waits for the disk or none is left.
void GroupReplica::pump() {
  while (!failed()) {
    if (!restore_failure_.is_ok()) {
      fail(restore_failure_.with_context("restoring a snapshot"));
      return;
    }
    if (in_flight_ || !engine_->has_ready()) return;
    Ready rd = engine_->ready();
    if (rd.soft_state) host_.on_soft_state(group_, *rd.soft_state);
    for (Message& m : rd.messages) host_.send_raft(group_, std::move(m));
    rd.messages.clear();
    persist(rd);
    if (failed()) return;
    if (rd.must_sync()) {
      in_flight_ = std::move(rd);
      host_.request_sync(*this);
      return;
    }
    complete(rd);
  }
}

void GroupReplica::persist(const Ready& rd) {
  Status s;
  if (rd.snapshot && parts_.persist_restored_state) s = parts_.persist_restored_state();
  if (s.is_ok() && rd.snapshot) s = parts_.log_store->install_snapshot(*rd.snapshot);
  if (s.is_ok() && !rd.entries.empty()) s = parts_.log_store->append(rd.entries);
  if (s.is_ok() && rd.hard_state) s = parts_.log_store->set_hard_state(*rd.hard_state);
  if (!s.is_ok()) fail(s.with_context("writing the Raft log"));
}

void GroupReplica::on_synced(Result<LogIndex> durable) {
  if (failed() || !in_flight_) return;
  ++syncs_;
  if (!durable.is_ok()) {
    fail(durable.status().with_context("fsync of the Raft log"));
    return;
  }
  Ready rd = std::move(*in_flight_);
  in_flight_.reset();
  complete(rd);
  pump();
}

void GroupReplica::complete(Ready& rd) {
  for (Message& m : rd.messages_after_persist) host_.send_raft(group_, std::move(m));
  apply_committed(rd);
  if (failed()) return;
  for (const ReadState& rs : rd.read_states) {
    auto it = reads_.find(std::strtoull(rs.context.c_str(), nullptr, 10));
    if (it != reads_.end()) it->second.index = rs.index;
  }
  engine_->advance(rd);
  if (rd.snapshot) last_compaction_ = std::max(last_compaction_, rd.snapshot->index);
  forget_skipped_proposals();
  serve_reads();
  if (!rd.committed_entries.empty() || rd.snapshot) host_.on_applied(group_);
  maybe_compact();
}

void GroupReplica::apply_committed(const Ready& rd) {
  if (rd.snapshot) {
    applied_ = std::max(applied_, rd.snapshot->index);
    // The state was replaced: what was held or watched below it is moot.
    std::erase_if(held_, [&](const Entry& e) { return e.index <= rd.snapshot->index; });
    fire_watchers_through(rd.snapshot->index, false);
  }
  for (const Entry& e : rd.committed_entries) {
    // Held, or behind what a released hold kept and is still applying.
    if ((apply_hold_ && e.index > *apply_hold_) || !held_.empty()) {
      held_.push_back(e);
      continue;
    }
    if (!apply_entry(e)) return;
  }
}

bool GroupReplica::apply_entry(const Entry& e) {
  bytes_since_compaction_ += e.data.size();
  if (e.type == EntryType::kNormal) {
    Result<std::string> response = parts_.state_machine->apply(e.index, e.data);
    if (!response.is_ok()) {
      fail(response.status().with_context("applying a committed entry"));
      return false;
    }
    auto it = proposals_.find(e.index);
    if (it != proposals_.end()) {
      PendingProposal pending = std::move(it->second);
      proposals_.erase(it);
      if (pending.term == e.term) {
        pending.done(std::move(*response));
      } else {
        // Another leader's entry holds this index: ours can never commit.
        pending.done(Status::unavailable("the proposal was lost in a leader change; not applied"));
      }
    }
  }
  applied_ = e.index;
  if (!watchers_.empty()) fire_watchers_through(e.index, true);
  return true;
}

void GroupReplica::serve_reads() {
  const LogIndex applied = applied_;
  for (auto it = reads_.begin(); it != reads_.end();) {
    if (it->second.index == LogIndex(0) || it->second.index > applied) {
      ++it;
      continue;
    }
    ReadDone done = std::move(it->second.done);
    it = reads_.erase(it);
    done(Status::ok());
  }
}

// Proposals at or below the applied index that were not answered were
// skipped by a snapshot: their fate is unknown here.
void GroupReplica::forget_skipped_proposals() {
  const LogIndex applied = applied_;
  while (!proposals_.empty() && proposals_.begin()->first <= applied) {
    proposals_.begin()->second.done(Status::timeout("a snapshot skipped the proposal's entry"));
    proposals_.erase(proposals_.begin());
  }
}

void GroupReplica::give_up_stale() {
  const std::uint64_t limit = limits_.give_up_ticks;
  for (auto it = proposals_.begin(); it != proposals_.end();) {
    if (ticks_ - it->second.since_tick < limit) {
      ++it;
      continue;
    }
    it->second.done(Status::timeout("no commit decision for the proposal"));
    it = proposals_.erase(it);
  }
  for (auto it = reads_.begin(); it != reads_.end();) {
    if (ticks_ - it->second.since_tick < limit) {
      ++it;
      continue;
    }
    it->second.done(Status::unavailable("no leader confirmed the read"));
    it = reads_.erase(it);
  }
}

void GroupReplica::maybe_compact() {
  if (!parts_.persist_state || compaction_in_flight_) return;
  const LogIndex applied = parts_.state_machine->last_applied_index();
  if (applied - last_compaction_ < limits_.compact_every_entries) return;
  if (parts_.state_bytes && limits_.compact_log_fraction > 0) {
    const std::uint64_t state = parts_.state_bytes();
    if (state >= limits_.compact_small_state_bytes &&
        static_cast<double>(bytes_since_compaction_) <
            limits_.compact_log_fraction * static_cast<double>(state)) {
      return;  // a whole-state snapshot is not worth this little log yet
    }
  }
  bytes_since_compaction_ = 0;
  if (!parts_.persist_state_off_loop) {
    const Status saved = parts_.persist_state();
    if (!saved.is_ok()) {
      fail(saved.with_context("snapshotting the state machine"));
      return;
    }
    compact_log(applied);
    return;
  }
  // Writing a large state takes seconds: off the loop, while applies go on.
  // The file holds at least `applied` (its capture is taken later).
  compaction_in_flight_ = true;
  std::weak_ptr<const bool> alive = alive_;
  host_.run_off_loop(parts_.persist_state, [this, alive, applied](Status saved) {
    if (alive.expired()) return;  // dropped meanwhile
    compaction_in_flight_ = false;
    if (failed()) return;
    if (!saved.is_ok()) {
      fail(saved.with_context("snapshotting the state machine"));
      return;
    }
    compact_log(applied);
  });
}

void GroupReplica::release_log_cache() {
  // Why (docs/log_store.md, "The page cache, released"): a FileLogStore's
  // segments fill the page cache, a page per page written, until the
  // segment is deleted; a shard move's target writes hundreds of MB of them
  // in a second or two, and on a VM whose free memory goes back to the host
  // each of those pages is a fault on the host: its log thread ran at
  // 31-44% of a core. Dropped once applied, the pages are reused by the
  // next appends.
  LogIndex below = parts_.state_machine->last_applied_index().next();
  // A leader keeps what a peer may still ask for: a follower behind, or a
  // learner catching up after its snapshot (match 0 until it is in), whose
  // catch-up then reads the entries written meanwhile from memory.
  const ConfState conf = engine_->conf_state();
  for (const auto* list :
       {&conf.voters, &conf.voters_outgoing, &conf.learners, &conf.learners_next}) {
    for (const NodeId& peer : *list) {
      if (const auto p = engine_->progress(peer)) below = std::min(below, p->match.next());
    }
  }
  if (below <= cache_released_) return;
  cache_released_ = below;
  parts_.log_store->release_cache(below);
}

void GroupReplica::compact_log(LogIndex applied) {
  last_compaction_ = std::max(last_compaction_, applied);
  if (applied.value() <= limits_.compact_keep_entries) return;
  LogIndex upto = applied - limits_.compact_keep_entries;
  // A peer receiving a snapshot (a migration's learner) continues from the
  // entries right after it: keep them, or it would need another snapshot,
  // and under a steady write load a large shard might never catch up. Up to
  // a bound, so a stuck transfer cannot grow the log for ever.
  const std::uint64_t hold_limit = 20 * limits_.compact_every_entries;
  const ConfState conf = engine_->conf_state();
  for (const auto* list : {&conf.voters, &conf.learners, &conf.learners_next}) {
    for (const NodeId& peer : *list) {
      const auto p = engine_->progress(peer);
      if (!p) continue;
      LogIndex needed;  // the peer goes on from the entry after this one
      if (p->state == ProgressState::kSnapshot) {
        needed = p->snapshot_index;
      } else if (p->learner) {
        needed = p->match;  // a learner catching up after its snapshot
      }
      if (needed == LogIndex(0) || applied.value() - std::min(applied, needed).value() > hold_limit) {
        continue;
      }
      upto = std::min(upto, needed);
    }
  }
  // kInvalidArgument (past the durable log) only means "not yet".
  (void)engine_->compact(upto);
}

}  // namespace nodenomad::node
