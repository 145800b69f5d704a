// InstallSnapshot in chunks: the leader streams the state machine's
// snapshot to a follower whose next entries are compacted, holding at most
// max_snapshot_chunks_in_flight chunks; the follower writes each chunk into
// the state machine's restore sink as it arrives (Go-Back-N: it accepts only
// the next expected offset and acknowledges what it holds).
#include <fmt/format.h>

#include "nodenomad/logging.hpp"
#include "raft/raft_core.hpp"

namespace nodenomad {

namespace {

// A transfer with no acknowledgement for this many election timeouts is
// abandoned (the follower may be gone); the leader starts over later.
// RaftConfig::snapshot_abandon_ticks overrides it.
constexpr std::uint32_t kSnapshotAbandonTimeouts = 4;

}  // namespace

void RaftCore::start_snapshot(const NodeId& to) {
  Progress* p = tracker_.find(to);
  if (p == nullptr || snapshot_sends_.contains(to)) return;
  if (state_machine_ == nullptr) {
    nodenomad::log(LogLevel::kWarn, "raft",
        fmt::format("{}: {} needs compacted entries, but there is no state machine to "
                    "snapshot", id().str(), to.str()));
    return;
  }
  // A snapshot carries the configuration at its index, and the peer takes
  // it as its own. One that names the peer from before it last left would
  // hand it its former self's place: a peer removed and added back with an
  // empty store (a shard's replica that moved away, was dropped and is
  // moving back) would find itself a voter of the old group, with none of
  // the votes and entries its former self promised, and could lead a split
  // brain (docs/simulation.md, "Findings", seed 760129). Such a snapshot
  // waits until the state machine has passed the last configuration
  // change; an empty entry moves it on when only configuration changes
  // (which it never sees) stand in between. The peer's probes, one per
  // heartbeat, try again.
  if (names_former_member(to, state_machine_->last_applied_index())) {
    move_state_past(conf_history_.back().first);
    return;
  }
  Result<std::unique_ptr<SnapshotSource>> source = state_machine_->open_snapshot();
  if (!source.is_ok()) {
    nodenomad::log(LogLevel::kWarn, "raft",
        fmt::format("{}: cannot snapshot for {}: {}", id().str(), to.str(),
                    source.status().to_string()));
    return;
  }
  const LogIndex index = (*source)->index();
  const Result<Term> term = log_.term(index);
  if (!term.is_ok() || index < log_.snapshot_index()) {
    nodenomad::log(LogLevel::kWarn, "raft",
        fmt::format("{}: the state machine's snapshot at {} is outside the log [{}, {}]",
                    id().str(), index.value(), log_.snapshot_index().value(),
                    log_.last_index().value()));
    return;
  }
  if (names_former_member(to, index)) {
    move_state_past(conf_history_.back().first);
    return;
  }
  SnapshotSend send;
  send.source = std::move(source).value();
  send.meta = SnapshotMeta{index, *term, conf_at(index)};
  send.transfer_id = rng_.next_u64() | 1;  // never 0, which means "none"
  p->become_snapshot(index);
  nodenomad::log(LogLevel::kInfo, "raft",
      fmt::format("{}: sending snapshot at {} (term {}) to {}", id().str(), index.value(),
                  term->value(), to.str()));
  snapshot_sends_.emplace(to, std::move(send));
  pump_snapshot(to);
}

bool RaftCore::names_former_member(const NodeId& peer, LogIndex index) const {
  if (conf_history_.empty() || index < conf_history_.front().first ||
      !names_member(conf_at(index), peer)) {
    return false;
  }
  for (const auto& [from, conf] : conf_history_) {
    if (from > index && !names_member(conf, peer)) return true;
  }
  return false;
}

void RaftCore::move_state_past(LogIndex index) {
  // A leadership transfer waits for the target to hold the whole log; the
  // next probe after it asks again.
  if (!transfer_target_.empty()) return;
  if (state_nudge_index_ > index) {
    const Result<Term> t = log_.term(state_nudge_index_);
    if (t.is_ok() && *t == term_) return;
  }
  const Result<ProposeResult> noop = append_local(EntryType::kNormal, std::string());
  NN_ASSERT(noop.is_ok(), "appending an empty entry: ", noop.status().to_string());
  state_nudge_index_ = noop->index;
  nodenomad::log(LogLevel::kInfo, "raft",
      fmt::format("{}: the state machine is before index {}; appended empty entry {} so a "
                  "snapshot can follow",
                  id().str(), index.value(), noop->index.value()));
}

void RaftCore::pump_snapshots() {
  if (role_ != RaftRole::kLeader) return;
  std::vector<NodeId> peers;
  for (const auto& [peer, s] : snapshot_sends_) peers.push_back(peer);
  for (const NodeId& peer : peers) pump_snapshot(peer);
}

void RaftCore::pump_snapshot(const NodeId& to) {
  SnapshotSend& s = snapshot_sends_.at(to);
  while (!s.last_sent && s.unacked.size() < config_.max_snapshot_chunks_in_flight &&
         s.source->chunk_ready()) {
    Result<std::string> data = s.source->next_chunk(config_.snapshot_chunk_bytes);
    if (!data.is_ok()) {
      nodenomad::log(LogLevel::kWarn, "raft",
          fmt::format("{}: reading the snapshot for {} failed: {}", id().str(), to.str(),
                      data.status().to_string()));
      abort_snapshot(to);
      return;
    }
    SnapshotChunk chunk{s.meta, s.transfer_id, s.next_offset, std::move(data).value(), false};
    NN_ASSERT(chunk.data.size() <= config_.snapshot_chunk_bytes, "a snapshot chunk of ",
              chunk.data.size(), " bytes exceeds snapshot_chunk_bytes");
    chunk.last = chunk.data.empty();
    s.next_offset += chunk.data.size();
    if (chunk.last) {
      s.last_sent = true;
      s.source.reset();
    }
    Message out = make_message(MessageType::kSnapshot, to);
    out.snapshot = chunk;
    send(std::move(out));
    s.unacked.push_back(std::move(chunk));
  }
}

void RaftCore::abort_snapshot(const NodeId& to) {
  snapshot_sends_.erase(to);
  Progress* p = tracker_.find(to);
  if (p != nullptr && p->state() == ProgressState::kSnapshot) {
    p->become_snapshot(LogIndex(0));  // forget the pending index: nothing was installed
    p->become_probe();
  }
}

void RaftCore::tick_snapshots() {
  const std::uint32_t timeout = config_.election_timeout_ticks;
  std::vector<NodeId> abandoned;
  for (auto& [peer, s] : snapshot_sends_) {
    ++s.idle_ticks;
    const std::uint32_t abandon = config_.snapshot_abandon_ticks != 0
                                      ? config_.snapshot_abandon_ticks
                                      : kSnapshotAbandonTimeouts * timeout;
    if (s.idle_ticks >= abandon) {
      abandoned.push_back(peer);
    } else if (s.idle_ticks % timeout == 0) {
      // Go-Back-N: the chunks after the acknowledged offset are sent again.
      for (const SnapshotChunk& chunk : s.unacked) {
        Message out = make_message(MessageType::kSnapshot, peer);
        out.snapshot = chunk;
        send(std::move(out));
      }
    }
  }
  for (const NodeId& peer : abandoned) abort_snapshot(peer);
}

void RaftCore::handle_snapshot_response(const Message& m) {
  auto it = snapshot_sends_.find(m.from);
  Progress* p = tracker_.find(m.from);
  if (it == snapshot_sends_.end() || p == nullptr ||
      it->second.transfer_id != m.snapshot.transfer_id) {
    return;  // an answer to a transfer we no longer run
  }
  p->set_recent_active(true);
  if (m.reject) {
    abort_snapshot(m.from);
    return;
  }
  if (m.snapshot.last) {
    // Installed (or not needed): probe from what the follower now holds.
    snapshot_sends_.erase(it);
    p->become_snapshot(LogIndex(0));
    p->become_probe();
    p->maybe_update(m.index);
    send_append(m.from, true);
    return;
  }
  SnapshotSend& s = it->second;
  const std::uint64_t window_start = s.unacked.empty() ? s.next_offset : s.unacked.front().offset;
  if (m.snapshot.offset < window_start) {
    // The follower holds less than it once acknowledged (it restarted and
    // met a stale first chunk): the dropped chunks are gone, so start over.
    abort_snapshot(m.from);
    return;
  }
  const std::size_t before = s.unacked.size();
  while (!s.unacked.empty() && !s.unacked.front().last &&
         s.unacked.front().offset + s.unacked.front().data.size() <= m.snapshot.offset) {
    s.unacked.pop_front();
  }
  if (s.unacked.size() != before) s.idle_ticks = 0;  // only progress keeps a transfer alive
  pump_snapshot(m.from);
}

void RaftCore::respond_snapshot(const NodeId& to, std::uint64_t transfer_id,
                                std::uint64_t offset, bool last, bool reject, LogIndex index) {
  SnapshotChunk ack;
  ack.transfer_id = transfer_id;
  ack.offset = offset;
  ack.last = last;
  Message out = make_message(MessageType::kSnapshotResponse, to);
  out.index = index;
  out.reject = reject;
  out.snapshot = std::move(ack);
  send(std::move(out));
}

// Starts receiving a new transfer; false when the chunk was answered here.
bool RaftCore::begin_receive(const Message& m) {
  const SnapshotChunk& c = m.snapshot;
  snapshot_receive_.reset();
  if (c.meta.index <= log_.committed()) {
    respond_snapshot(m.from, c.transfer_id, 0, true, false, log_.committed());
    return false;
  }
  if (log_.match_term(c.meta.index, c.meta.term)) {
    // Our log already holds the snapshot's last entry: it is committed.
    follower_commit_to(c.meta.index);
    respond_snapshot(m.from, c.transfer_id, 0, true, false, c.meta.index);
    return false;
  }
  Result<std::unique_ptr<SnapshotSink>> sink =
      state_machine_ == nullptr ? Result<std::unique_ptr<SnapshotSink>>(Status::not_supported(
                                      "no state machine to restore"))
                                : state_machine_->begin_restore(c.meta.index);
  if (!sink.is_ok()) {
    nodenomad::log(LogLevel::kWarn, "raft",
        fmt::format("{}: cannot restore snapshot at {}: {}", id().str(), c.meta.index.value(),
                    sink.status().to_string()));
    respond_snapshot(m.from, c.transfer_id, 0, false, true, LogIndex(0));
    return false;
  }
  snapshot_receive_ = SnapshotReceive{m.from, term_, c.transfer_id, c.meta, 0,
                                      std::move(sink).value(), false};
  return true;
}

void RaftCore::handle_snapshot(const Message& m) {
  const SnapshotChunk& c = m.snapshot;
  const bool ours = snapshot_receive_ && snapshot_receive_->from == m.from &&
                    snapshot_receive_->transfer_id == c.transfer_id;
  if (!ours) {
    if (c.offset != 0) {
      // A chunk of a transfer we do not know (we restarted, or it is stale).
      respond_snapshot(m.from, c.transfer_id, 0, false, true, LogIndex(0));
      return;
    }
    if (!begin_receive(m)) return;
  }
  SnapshotReceive& r = *snapshot_receive_;
  if (r.complete || c.offset != r.expected_offset) {
    // A duplicate or a chunk after a gap: say what we hold.
    if (!r.complete) respond_snapshot(m.from, c.transfer_id, r.expected_offset, false, false, {});
    return;
  }
  if (!c.data.empty()) {
    const Status written = r.sink->write_chunk(c.data);
    if (!written.is_ok()) {
      nodenomad::log(LogLevel::kWarn, "raft",
          fmt::format("{}: writing snapshot chunk at {} failed: {}", id().str(), c.offset,
                      written.to_string()));
      snapshot_receive_.reset();
      respond_snapshot(m.from, c.transfer_id, 0, false, true, LogIndex(0));
      return;
    }
    r.expected_offset += c.data.size();
  }
  if (!c.last) {
    respond_snapshot(m.from, c.transfer_id, r.expected_offset, false, false, {});
    return;
  }
  r.complete = true;
  // The state machine is replaced only while no Ready is outstanding: the
  // host may still be applying the entries of the outstanding one.
  if (!ready_outstanding_) finish_snapshot();
}

void RaftCore::finish_snapshot() {
  SnapshotReceive r = std::move(*snapshot_receive_);
  snapshot_receive_.reset();
  NN_ASSERT(r.complete, "finishing an incomplete snapshot");
  if (role_ != RaftRole::kFollower || term_ != r.term) {
    // A deferred finish overtaken by an election: the log may have moved
    // on under a new leader, so the transfer is dropped (the sink with it).
    return;
  }
  if (r.meta.index <= log_.committed() || log_.match_term(r.meta.index, r.meta.term)) {
    // The log caught up meanwhile: keep it (entries after the snapshot may
    // already be acknowledged) and drop the sink.
    follower_commit_to(r.meta.index);
    respond_snapshot(r.from, r.transfer_id, 0, true, false, log_.committed());
    return;
  }
  const Status finished = r.sink->finish();
  if (!finished.is_ok()) {
    nodenomad::log(LogLevel::kWarn, "raft",
        fmt::format("{}: restoring snapshot at {} failed: {}", id().str(), r.meta.index.value(),
                    finished.to_string()));
    respond_snapshot(r.from, r.transfer_id, 0, false, true, LogIndex(0));
    return;
  }
  log_.restore(r.meta);
  conf_history_.clear();
  conf_history_.emplace_back(r.meta.index, r.meta.conf_state);
  tracker_.set_conf(r.meta.conf_state, log_.last_index().next());
  nodenomad::log(LogLevel::kInfo, "raft",
      fmt::format("{}: restored snapshot at {} (term {})", id().str(), r.meta.index.value(),
                  r.meta.term.value()));
  // The acknowledgement waits until the host has recorded the snapshot in
  // its LogStore (a response leaves after persistence).
  respond_snapshot(r.from, r.transfer_id, 0, true, false, r.meta.index);
}

}  // namespace nodenomad
