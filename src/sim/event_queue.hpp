// The discrete-event scheduler's queue: events ordered by (time, sequence),
// so events at the same simulated time run in the order they were
// scheduled and a seed replays exactly.
//
// Bounded: at most kMaxPendingEvents wait at once. A push beyond it is
// refused (the network counts it as a dropped message); the simulator's own
// timers are a handful per node and client and never come near it.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "sim/sim_types.hpp"

namespace nodenomad::sim {

enum class EventKind : std::uint8_t {
  kTick,            // node: one Raft tick (arg: incarnation)
  kDeliver,         // node `node` receives encoded message bytes from `peer`
  kDiskDone,        // node: the outstanding Ready's write + fsync finished
  kClientArrive,    // node receives a client request
  kClientReply,     // client `node` receives a reply
  kClientWake,      // client `node` may start its next operation
  kClientDeadline,  // client `node` gives up operation `arg`
  kAttemptTimeout,  // client `node` stops waiting for attempt `arg` (reads)
  kNemesis,         // the next fault action
  kRestart,         // node restarts after a crash
  kNetworkHeal,     // the partition of generation `arg` ends
  kClogStep,        // the rolling clog moves to its next node (arg: step)
  kHostAction,      // the host's scheduled action (arg: its id; SimControl)
  kRejoinStep,      // the member being wiped and added back: its next step
};

std::string_view event_kind_name(EventKind kind);

struct SimEvent {
  SimTime time = 0;
  std::uint64_t sequence = 0;
  EventKind kind = EventKind::kTick;
  std::uint32_t node = 0;  // a node index, or a client index for client events
  std::uint32_t peer = 0;  // kDeliver: the sender
  std::uint64_t arg = 0;   // incarnation, generation, operation or attempt id
  std::variant<std::monostate, std::string, ClientRequest, ClientReply> payload;
};

class EventQueue {
 public:
  static constexpr std::size_t kMaxPendingEvents = std::size_t{1} << 20;

  // Schedules `event` (its sequence is assigned here); false when full.
  bool push(SimEvent event);
  bool empty() const { return heap_.empty(); }
  std::size_t size() const { return heap_.size(); }
  SimTime next_time() const;
  // Precondition: !empty().
  SimEvent pop();

 private:
  std::vector<SimEvent> heap_;
  std::uint64_t next_sequence_ = 0;
};

}  // namespace nodenomad::sim
