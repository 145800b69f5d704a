// SimNode: the Ready cycle with a simulated disk, client requests, crash and
// restart.
#include "sim/sim_node.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "nodenomad/storage/command.hpp"

namespace nodenomad::sim {
namespace {

constexpr const char* kRaftDir = "/raft";
constexpr const char* kDataDir = "/data";

testing::KvResult to_kv_result(const testing::KvOp& op, const WriteResult& w) {
  if (w.status.is(StatusCode::kVersionMismatch)) {
    return testing::KvResult::version_mismatch(w.current_version);
  }
  if (op.kind == testing::KvOpKind::kRemove) return testing::KvResult::removed(w.deleted);
  return testing::KvResult::written(w.version);
}

WallTime sim_wall_time(SimTime now) {
  return WallTime{std::chrono::milliseconds{kSimEpochMs + static_cast<std::int64_t>(now / 1000)}};
}

}  // namespace

SimNode::SimNode(std::uint32_t index, NodeId id, SimNodeConfig config, Rng rng, Clock& clock,
                 NodeHost& host)
    : index_(index),
      id_(std::move(id)),
      config_(std::move(config)),
      rng_(rng),
      clock_(clock),
      host_(host),
      fs_(rng_.next_u64()) {
  config_.raft.id = id_;
}

SimNode::~SimNode() {
  // The engine refers to the store and the state machine: it goes first.
  engine_.reset();
  storage_.reset();
  log_store_.reset();
}

void SimNode::trace(TraceRecord record, bool hash_only) {
  record.time = host_.now();
  record.node = index_;
  host_.trace().record(std::move(record), {}, hash_only);
}

Status SimNode::bootstrap(const ConfState& conf) {
  NN_ASSIGN_OR_RETURN(auto store, FileLogStore::open(fs_, kRaftDir, config_.log_store));
  return RaftEngine::bootstrap(*store, conf);
}

Status SimNode::start() {
  NN_ASSERT(!up(), "start() of a running node ", id_);
  failure_ = Status::ok();
  ++incarnation_;
  NN_ASSIGN_OR_RETURN(log_store_, FileLogStore::open(fs_, kRaftDir, config_.log_store));
  StorageOptions options;
  options.mode = StorageMode::kReplicated;
  options.dir = kDataDir;
  options.restore_writer_thread = false;  // one thread: deterministic
  options.file_system = &fs_;
  options.clock = &clock_;
  options.snapshot_record_bytes = 256;  // several records even for a small state
  NN_ASSIGN_OR_RETURN(storage_, StorageEngine::open(options));
  NN_ASSIGN_OR_RETURN(engine_, RaftEngine::open(config_.raft, *log_store_, storage_.get(),
                                                rng_.fork()));
  last_compaction_ = log_store_->snapshot_meta().index;
  return Status::ok();
}

void SimNode::crash(bool tear_unsynced_tail) {
  // Objects first (nothing they do on the way out is synced, so the crash
  // below takes it back), then the disk forgets what was not durable.
  engine_.reset();
  storage_.reset();
  log_store_.reset();
  in_flight_.reset();
  proposals_.clear();
  reads_.clear();
  ++incarnation_;
  fs_.crash(testing::CrashOptions{tear_unsynced_tail});
}

Status SimNode::wipe() {
  NN_ASSERT(!up(), "wipe() of a running node ", id_);
  NN_RETURN_IF_ERROR(fs_.remove_all(kRaftDir));
  return fs_.remove_all(kDataDir);
}

void SimNode::inject_sync_failure() { fs_.fail_next(testing::FaultOp::kSync); }

void SimNode::fail(const Status& why) {
  if (failure_.is_ok()) failure_ = why;
}

SimTime SimNode::disk_latency() {
  if (config_.slow_disk_probability > 0 && rng_.chance(config_.slow_disk_probability)) {
    return config_.slow_disk_latency_us;
  }
  return rng_.uniform_in(config_.disk_min_latency_us,
                         std::max(config_.disk_min_latency_us, config_.disk_max_latency_us));
}

void SimNode::tick() {
  if (!up() || failed()) return;
  engine_->tick();
  pump();
}

void SimNode::deliver(const Message& message) {
  if (!up() || failed()) return;
  const Status stepped = engine_->step(message);
  if (!stepped.is_ok()) host_.violation(stepped.with_context("step() refused a peer's message"));
  pump();
}

void SimNode::on_disk_done(std::uint64_t incarnation) {
  if (!up() || failed() || incarnation != incarnation_ || !in_flight_) return;
  const Result<LogIndex> durable = log_store_->sync();
  if (!durable.is_ok()) {
    fail(durable.status());
    return;
  }
  Ready rd = std::move(*in_flight_);
  in_flight_.reset();
  if (rd.hard_state) host_.invariants().record_persisted(id_, *rd.hard_state);
  trace({.code = TraceCode::kPersisted, .a = durable->value()});
  complete_ready(rd);
  pump();
}

Status SimNode::transfer_leadership(const NodeId& to) {
  if (!up() || failed()) return Status::unavailable("node is down");
  Status s = engine_->transfer_leadership(to);
  pump();
  return s;
}

Status SimNode::campaign() {
  if (!up() || failed()) return Status::unavailable("node is down");
  Status s = engine_->campaign();
  pump();
  return s;
}

Result<ProposeResult> SimNode::propose_conf_change(const ConfChange& change) {
  if (!up() || failed()) return Status::unavailable("node is down");
  Result<ProposeResult> r = engine_->propose_conf_change(change);
  pump();
  return r;
}

void SimNode::report_unreachable(const NodeId& peer) {
  if (!up() || failed()) return;
  engine_->report_unreachable(peer);
  pump();
}

// Takes Readys until one needs the disk or there is nothing left.
void SimNode::pump() {
  // The engine may have written to the state machine (a snapshot restore)
  // and the write may have failed: a failed state machine stops the node.
  if (up() && storage_->failed()) fail(Status::failed("the storage engine failed"));
  while (up() && !failed() && !in_flight_ && engine_->has_ready()) {
    Ready rd = engine_->ready();
    if (rd.soft_state) host_.on_soft_state(index_, *rd.soft_state, engine_->term());
    trace({.code = TraceCode::kReady,
           .a = rd.entries.size(),
           .b = rd.committed_entries.size(),
           .note = rd.snapshot ? fmt::format(" snapshot {}", rd.snapshot->index.value()) : ""},
          /*hash_only=*/rd.entries.empty() && rd.committed_entries.empty() && !rd.snapshot);
    for (const Message& m : rd.messages) host_.send(index_, m);
    if (config_.bug == testing::SimRuntimeBug::kAckBeforePersist) {
      for (const Message& m : rd.messages_after_persist) host_.send(index_, m);
      rd.messages_after_persist.clear();
    }
    persist(rd);
    if (failed()) return;
    if (rd.must_sync()) {
      host_.schedule_disk_done(index_, incarnation_, disk_latency());
      in_flight_ = std::move(rd);
      return;
    }
    complete_ready(rd);
  }
}

// Step 2 of the contract, up to the fsync: visible at once, durable only
// once on_disk_done() syncs.
void SimNode::persist(const Ready& rd) {
  Status s;
  if (rd.snapshot) {
    s = log_store_->install_snapshot(*rd.snapshot);
    ++counters_.snapshots_installed;
  }
  if (s.is_ok() && !rd.entries.empty()) s = log_store_->append(rd.entries);
  if (s.is_ok() && rd.hard_state) s = log_store_->set_hard_state(*rd.hard_state);
  if (!s.is_ok()) fail(s);
}

void SimNode::complete_ready(Ready& rd) {
  for (const Message& m : rd.messages_after_persist) host_.send(index_, m);
  apply_committed(rd);
  if (failed()) return;
  accept_read_states(rd);
  engine_->advance(rd);
  // advance() may have finished a snapshot restore: the state machine moved.
  if (rd.snapshot) last_compaction_ = std::max(last_compaction_, rd.snapshot->index);
  forget_skipped_proposals();
  serve_reads();
  maybe_compact();
}

void SimNode::apply_committed(const Ready& rd) {
  for (const Entry& e : rd.committed_entries) {
    const Status recorded = host_.invariants().record_applied(id_, e);
    if (!recorded.is_ok()) host_.violation(recorded);
    ++counters_.applied_entries;
    if (e.type != EntryType::kNormal) continue;
    Result<std::string> response = storage_->apply(e.index, e.data);
    if (!response.is_ok()) {
      fail(response.status());
      return;
    }
    answer_proposal(e, *response);
  }
}

// The proposal made here at this index is decided: the entry committed
// there is either ours (same term) or proves ours lost.
void SimNode::answer_proposal(const Entry& entry, const std::string& response) {
  auto it = proposals_.find(entry.index);
  if (it == proposals_.end()) return;
  const PendingProposal pending = std::move(it->second);
  proposals_.erase(it);
  if (pending.term != entry.term) {
    answer(pending.request, ReplyKind::kLost);
    return;
  }
  Result<WriteResult> decoded = decode_write_result(response);
  if (!decoded.is_ok()) {
    host_.violation(decoded.status().with_context("the state machine's response"));
    return;
  }
  if (!decoded->ok() && !decoded->status.is(StatusCode::kVersionMismatch)) {
    answer(pending.request, ReplyKind::kRefused);
    return;
  }
  answer(pending.request, ReplyKind::kOk, to_kv_result(pending.request.op, *decoded));
}

// Proposals at or below the applied index that were not answered were
// skipped by a snapshot: their fate is unknown here, so the client's
// deadline will decide (unknown).
void SimNode::forget_skipped_proposals() {
  const LogIndex applied = storage_->last_applied_index();
  while (!proposals_.empty() && proposals_.begin()->first <= applied) {
    proposals_.erase(proposals_.begin());
  }
}

void SimNode::accept_read_states(const Ready& rd) {
  for (const ReadState& rs : rd.read_states) {
    auto it = reads_.find(rs.context);
    if (it != reads_.end()) it->second.index = rs.index;
  }
}

void SimNode::serve_reads() {
  const LogIndex applied = storage_->last_applied_index();
  for (auto it = reads_.begin(); it != reads_.end();) {
    if (it->second.index == LogIndex(0) || it->second.index > applied) {
      ++it;
      continue;
    }
    const ClientRequest request = std::move(it->second.request);
    it = reads_.erase(it);
    serve_read(request);
  }
}

void SimNode::serve_read(const ClientRequest& request) {
  Result<ReadResult> read = storage_->get(request.op.key, sim_wall_time(host_.now()));
  if (read.is_ok()) {
    answer(request, ReplyKind::kOk, testing::KvResult::found(read->value, read->version));
  } else if (read.status().is(StatusCode::kNotFound)) {
    answer(request, ReplyKind::kOk, testing::KvResult::not_found());
  } else {
    answer(request, ReplyKind::kRefused);
  }
}

void SimNode::maybe_compact() {
  const LogIndex applied = storage_->last_applied_index();
  if (applied - last_compaction_ < config_.compact_every_entries || applied.value() == 0) return;
  const Status snap = storage_->snapshot();
  if (!snap.is_ok()) {
    fail(snap);
    return;
  }
  last_compaction_ = applied;
  if (applied.value() <= config_.compact_keep_entries) return;
  const LogIndex through = applied - config_.compact_keep_entries;
  // kInvalidArgument (e.g. past the durable log) only means "not yet".
  if (engine_->compact(through).is_ok()) {
    ++counters_.compactions;
    trace({.code = TraceCode::kCompact, .a = through.value()});
  }
}

void SimNode::on_client_request(const ClientRequest& request) {
  if (!up() || failed()) return;
  if (request.op.kind == testing::KvOpKind::kGet) {
    start_read(request);
  } else {
    propose_write(request);
  }
  pump();
}

void SimNode::propose_write(const ClientRequest& request) {
  if (proposals_.size() >= kMaxPendingProposals) {
    answer(request, ReplyKind::kBusy);
    return;
  }
  KvCommand command;
  command.type = request.op.kind == testing::KvOpKind::kRemove ? KvCommandType::kRemove
                                                               : KvCommandType::kSet;
  command.issued_at = sim_wall_time(host_.now());
  command.key = request.op.key;
  if (command.type == KvCommandType::kSet) command.value = request.op.value;
  command.if_version = request.op.if_version;
  Result<ProposeResult> proposed = engine_->propose(encode_kv_command(command));
  if (!proposed.is_ok()) {
    answer(request, proposed.status().is(StatusCode::kNotLeader) ? ReplyKind::kNotLeader
                                                                  : ReplyKind::kBusy);
    return;
  }
  // A proposal made here earlier at the same index can no longer be
  // followed from this node; its client's deadline decides (unknown).
  proposals_[proposed->index] = PendingProposal{request, proposed->term};
  trace({.code = TraceCode::kPropose,
         .peer = static_cast<std::uint32_t>(request.client),
         .a = proposed->index.value(),
         .b = proposed->term.value()});
}

void SimNode::forget_abandoned_reads() {
  const SimTime now = host_.now();
  std::erase_if(reads_, [now](const auto& entry) {
    return entry.second.index == LogIndex(0) && now - entry.second.since > kReadGiveUpUs;
  });
}

void SimNode::start_read(const ClientRequest& request) {
  if (config_.bug == testing::SimRuntimeBug::kLocalReads) {
    serve_read(request);
    return;
  }
  forget_abandoned_reads();
  if (reads_.size() >= kMaxPendingReads) {
    answer(request, ReplyKind::kBusy);
    return;
  }
  std::string context = fmt::format("r{}", request.request_id);
  const Status asked = engine_->read_index(context);
  if (!asked.is_ok()) {
    answer(request, asked.is(StatusCode::kNotLeader) ? ReplyKind::kNotLeader : ReplyKind::kBusy);
    return;
  }
  trace({.code = TraceCode::kRead, .peer = static_cast<std::uint32_t>(request.client),
         .note = request.op.key});
  reads_.emplace(std::move(context), PendingRead{request, LogIndex(0), host_.now()});
}

void SimNode::answer(const ClientRequest& request, ReplyKind kind, testing::KvResult result) {
  ClientReply reply;
  reply.request_id = request.request_id;
  reply.client = request.client;
  reply.kind = kind;
  reply.result = std::move(result);
  if (kind == ReplyKind::kNotLeader && up()) reply.leader_hint = engine_->leader();
  trace({.code = TraceCode::kReply,
         .sub = static_cast<std::uint8_t>(kind),
         .peer = static_cast<std::uint32_t>(request.client),
         .a = request.request_id,
         .note = kind == ReplyKind::kOk ? testing::to_string(reply.result) : ""});
  host_.reply(index_, reply);
}

}  // namespace nodenomad::sim
