// Ready: one batch of work a RaftEngine hands its host, and the order in
// which the host must do it (see RaftEngine::ready() for the contract).
//
// Thread safety: a value; the host may move it to a disk thread and back.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nodenomad/log_store.hpp"
#include "nodenomad/raft/message.hpp"
#include "nodenomad/types.hpp"

namespace nodenomad {

enum class RaftRole : std::uint8_t {
  kFollower = 0,
  kPreCandidate = 1,  // asking for pre-votes; its term has not moved yet
  kCandidate = 2,
  kLeader = 3,
};

std::string_view raft_role_name(RaftRole role);

// What a node believes about leadership; volatile, never persisted.
struct SoftState {
  RaftRole role = RaftRole::kFollower;
  NodeId leader;  // empty: no known leader
  bool operator==(const SoftState&) const = default;
};

// A linearizable read may be served once the state machine has applied
// `index` (RaftEngine::read_index()).
struct ReadState {
  LogIndex index;
  std::string context;  // as given to read_index()
  bool operator==(const ReadState&) const = default;
};

struct Ready {
  // Identifies this batch to advance().
  std::uint64_t sequence = 0;

  // Set when role or leader changed since the last Ready.
  std::optional<SoftState> soft_state;

  // Messages that may be sent at once, before anything below is durable: the
  // leader's appends and heartbeats (Raft thesis 10.2.1), vote requests, read
  // requests.
  std::vector<Message> messages;

  // A snapshot this node received and restored into its state machine: the
  // host records it with LogStore::install_snapshot(), before `entries`.
  std::optional<SnapshotMeta> snapshot;
  // Entries to append to the LogStore; an existing suffix from
  // entries.front().index on is replaced (a follower's log conflict).
  std::vector<Entry> entries;
  // Set when term, vote or commit changed: LogStore::set_hard_state().
  std::optional<HardState> hard_state;

  // Messages that may leave only once the snapshot, entries and hard state
  // above are durable (LogStore::sync() returned): responses, which promise
  // a vote or a log prefix.
  std::vector<Message> messages_after_persist;

  // Committed entries to apply in order, after the persistence above. Each
  // kNormal entry goes to StateMachine::apply (empty data is a leader's
  // no-op, applied as nothing); kConfChange entries are Raft's own (they took
  // effect inside the engine when they committed) and need no action.
  std::vector<Entry> committed_entries;

  // Reads confirmed by the leader: serve each once applied >= index.
  std::vector<ReadState> read_states;

  // True when LogStore::sync() must run before messages_after_persist leave.
  bool must_sync() const { return snapshot.has_value() || !entries.empty() || hard_state.has_value(); }
  bool empty() const {
    return !soft_state && messages.empty() && !snapshot && entries.empty() && !hard_state &&
           messages_after_persist.empty() && committed_entries.empty() && read_states.empty();
  }
};

}  // namespace nodenomad
