// RaftEngine: the public face of RaftCore.
#include "nodenomad/raft/raft_engine.hpp"

#include <fmt/format.h>

#include "raft/raft_core.hpp"

namespace nodenomad {

std::string_view raft_role_name(RaftRole role) {
  switch (role) {
    case RaftRole::kFollower: return "follower";
    case RaftRole::kPreCandidate: return "pre_candidate";
    case RaftRole::kCandidate: return "candidate";
    case RaftRole::kLeader: return "leader";
  }
  return "unknown";
}

Result<std::unique_ptr<RaftEngine>> RaftEngine::open(const RaftConfig& config,
                                                     LogStore& log_store,
                                                     StateMachine* state_machine, Rng rng) {
  NN_ASSIGN_OR_RETURN(std::unique_ptr<RaftCore> core,
                      RaftCore::open(config, log_store, state_machine, rng));
  return std::unique_ptr<RaftEngine>(new RaftEngine(std::move(core)));
}

Status RaftEngine::bootstrap(LogStore& log_store, const ConfState& initial) {
  const SnapshotMeta current = log_store.snapshot_meta();
  if (log_store.last_index() != LogIndex(0) || current != SnapshotMeta{} ||
      log_store.hard_state() != HardState{}) {
    return Status::already_exists("raft bootstrap: the log store is not empty");
  }
  if (initial.voters.empty() || !initial.voters_outgoing.empty()) {
    return Status::invalid_argument(
        "raft bootstrap: the first configuration needs voters and cannot be joint");
  }
  NN_RETURN_IF_ERROR(log_store.install_snapshot(SnapshotMeta{LogIndex(0), Term(0), initial}));
  NN_ASSIGN_OR_RETURN(const LogIndex durable, log_store.sync());
  (void)durable;
  return Status::ok();
}

RaftEngine::RaftEngine(std::unique_ptr<RaftCore> core) : core_(std::move(core)) {}
RaftEngine::~RaftEngine() = default;

void RaftEngine::tick() { core_->tick(); }
Status RaftEngine::step(const Message& message) { return core_->step(message); }
Result<ProposeResult> RaftEngine::propose(std::string command) {
  return core_->propose(std::move(command));
}
Status RaftEngine::campaign() { return core_->campaign(); }
Status RaftEngine::read_index(std::string context, bool allow_lease) {
  return core_->read_index(std::move(context), allow_lease);
}
Status RaftEngine::transfer_leadership(const NodeId& to) { return core_->transfer_leadership(to); }
Result<ProposeResult> RaftEngine::propose_conf_change(const ConfChange& change) {
  return core_->propose_conf_change(change);
}
Status RaftEngine::compact(LogIndex index) { return core_->compact(index); }
void RaftEngine::report_unreachable(const NodeId& peer) { core_->report_unreachable(peer); }
void RaftEngine::snapshot_chunks_ready() { core_->pump_snapshots(); }

bool RaftEngine::has_ready() const { return core_->has_ready(); }
Ready RaftEngine::ready() { return core_->ready(); }
void RaftEngine::advance(const Ready& ready) { core_->advance(ready); }

const NodeId& RaftEngine::id() const { return core_->id(); }
Term RaftEngine::term() const { return core_->term(); }
RaftRole RaftEngine::role() const { return core_->role(); }
NodeId RaftEngine::leader() const { return core_->leader(); }
HardState RaftEngine::hard_state() const { return core_->hard_state(); }
LogIndex RaftEngine::commit_index() const { return core_->raft_log().committed(); }
LogIndex RaftEngine::applied_index() const { return core_->raft_log().applied(); }
LogIndex RaftEngine::first_index() const { return core_->raft_log().first_index(); }
LogIndex RaftEngine::last_index() const { return core_->raft_log().last_index(); }
Result<Term> RaftEngine::term_at(LogIndex index) const { return core_->raft_log().term(index); }
Result<std::vector<Entry>> RaftEngine::entries(LogIndex lo, LogIndex hi,
                                               std::uint64_t max_bytes) const {
  if (lo > hi || hi > core_->raft_log().last_index().next()) {
    return Status::invalid_argument(fmt::format("entries [{}, {}) outside the log (last {})",
                                                lo.value(), hi.value(),
                                                core_->raft_log().last_index().value()));
  }
  return core_->raft_log().entries(lo, hi, max_bytes);
}
ConfState RaftEngine::conf_state() const { return core_->conf_state(); }
std::optional<PeerProgress> RaftEngine::progress(const NodeId& peer) const {
  return core_->progress(peer);
}
std::uint64_t RaftEngine::uncommitted_bytes() const { return core_->uncommitted_bytes(); }
NodeId RaftEngine::transfer_target() const { return core_->transfer_target(); }

}  // namespace nodenomad
