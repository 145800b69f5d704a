// Message: everything one RaftEngine says to another. A plain value; the
// transport carries it opaquely (encoded by nodenomad/raft/message_codec.hpp).
//
// One struct serves every type; each field documents which types use it and
// the others stay at their defaults (the codec writes them all compactly).
// Thread safety: a value; copy or move it between threads freely.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "nodenomad/log_store.hpp"
#include "nodenomad/types.hpp"

namespace nodenomad {

enum class MessageType : std::uint8_t {
  kPreVote = 1,            // "could I win an election at term + 1?" (changes no term)
  kPreVoteResponse = 2,
  kVote = 3,               // a candidate asks for a vote in `term`
  kVoteResponse = 4,
  kAppend = 5,             // entries after (index, log_term), with the leader's commit
  kAppendResponse = 6,
  kHeartbeat = 7,          // the leader is alive; carries commit and a read round
  kHeartbeatResponse = 8,
  kSnapshot = 9,           // one chunk of an InstallSnapshot transfer
  kSnapshotResponse = 10,  // acknowledges snapshot bytes (or refuses the transfer)
  kTimeoutNow = 11,        // leadership transfer: campaign now, disregarding leases
  kReadIndex = 12,         // a follower asks the leader for a read index
  kReadIndexResponse = 13,
};

inline constexpr std::uint8_t kMaxMessageType = 13;

std::string_view message_type_name(MessageType type);

// Responses claim something about durable state (a vote, a log prefix), so a
// Ready holds them until its hard state and entries are persisted.
bool is_response(MessageType type);

// One chunk of a snapshot transfer (kSnapshot) or its acknowledgement
// (kSnapshotResponse: `offset` is the next byte the follower expects, `last`
// says the snapshot is installed).
struct SnapshotChunk {
  SnapshotMeta meta;             // what the whole snapshot covers
  std::uint64_t transfer_id = 0;  // the leader's id for this transfer
  std::uint64_t offset = 0;       // byte offset of `data` in the snapshot stream
  std::string data;               // at most RaftConfig::snapshot_chunk_bytes
  bool last = false;              // the final chunk (its data may be empty)

  bool operator==(const SnapshotChunk&) const = default;
};

struct Message {
  MessageType type = MessageType::kHeartbeat;
  NodeId from;
  NodeId to;
  Term term;  // the sender's term (a pre-vote asks for term + 1 and carries it)

  // kAppend: the entry before `entries` (prev index / prev term).
  // kVote, kPreVote: the candidate's last index and term.
  // kAppendResponse: the last index the follower now holds (or, with
  //   `reject`, the rejected prev index). kReadIndexResponse: the read index.
  // kSnapshotResponse: the follower's last index once installed.
  LogIndex index;
  Term log_term;
  std::vector<Entry> entries;  // kAppend
  LogIndex commit;             // kAppend, kHeartbeat: the leader's commit index

  // kAppendResponse, kVoteResponse, kPreVoteResponse, kSnapshotResponse.
  bool reject = false;
  // kAppendResponse with reject: the follower's hint for fast backtracking:
  // its last index at or below the rejected index whose term is at most
  // the leader's term there (hint_term), so the leader can skip a whole term
  // of conflicting entries per round trip.
  LogIndex hint_index;
  Term hint_term;

  // kVote, kPreVote: caused by leadership transfer, so leases are ignored.
  bool transfer = false;
  // kHeartbeat, kHeartbeatResponse: the leader's heartbeat round, which
  // read-index requests and the lease wait on.
  std::uint64_t round = 0;
  // kReadIndex, kReadIndexResponse: the requester's opaque read context.
  std::string context;

  SnapshotChunk snapshot;  // kSnapshot, kSnapshotResponse

  bool operator==(const Message&) const = default;
};

}  // namespace nodenomad
