// Values shared by the simulator's parts: simulated time, and what travels
// between simulated clients and nodes.
#pragma once

#include <cstdint>
#include <string>

#include "nodenomad/testing/history.hpp"
#include "nodenomad/types.hpp"

namespace nodenomad::sim {

// Microseconds since the start of a run. Nothing in src/sim reads a real
// clock: this counter is the only time there is.
using SimTime = std::uint64_t;

inline constexpr SimTime kMicrosPerMilli = 1000;

// The simulated wall clock stamped into commands (issued_at): a fixed epoch
// plus the simulated time, so it is the same on every replay.
inline constexpr std::int64_t kSimEpochMs = 1'700'000'000'000;

// One attempt of one client operation, sent to one node.
struct ClientRequest {
  std::uint64_t request_id = 0;  // unique per attempt, for matching the reply
  testing::ClientId client = 0;
  testing::KvOp op;
};

enum class ReplyKind : std::uint8_t {
  kOk,           // result holds the answer
  kNotLeader,    // not proposed here; leader_hint may name the leader
  kBusy,         // a bound was full; not proposed
  kUnavailable,  // the node is down; not proposed
  kLost,         // proposed, but another entry was committed at its index
  kRefused,      // the state machine refused the command; nothing changed
};

// Every kind but kOk means "certainly not applied".
struct ClientReply {
  std::uint64_t request_id = 0;
  testing::ClientId client = 0;
  ReplyKind kind = ReplyKind::kOk;
  testing::KvResult result;
  NodeId leader_hint;
};

std::string_view reply_kind_name(ReplyKind kind);

}  // namespace nodenomad::sim
