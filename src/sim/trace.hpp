// TraceLog: every event of a run, folded into one hash, and the last few
// kept for the failure report.
//
// The hash (XXH3, chained) covers each record's fields and any bytes given
// with it (the encoded message of a delivery), so two runs agree on it only
// if they did the same things at the same simulated times. Records are kept
// as small structs and turned into text only for a report or when the host
// asked for every line (on_event), so tracing costs little when nothing
// fails.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "sim/sim_types.hpp"

namespace nodenomad::sim {

enum class TraceCode : std::uint8_t {
  kTick,        // node ticked (hash only)
  kSend,        // node sent a message to peer (hash only); sub = message type
  kDeliver,     // peer's message reached node; sub = type, a = term, b = index
  kDrop,        // peer's message to node was lost; note = why
  kReady,       // node took a Ready; a = entries, b = committed entries
  kPersisted,   // node's Ready became durable; a = durable last index
  kRole,        // node's soft state changed; sub = role, a = term, note = leader
  kPropose,     // node accepted client peer's write at index a, term b
  kRead,        // node accepted client peer's read
  kReply,       // node answered client peer; sub = reply kind
  kInvoke,      // client node invoked operation a; note = the operation
  kComplete,    // client node completed operation a; sub = completion
  kFault,       // a fault action; note = what
  kCrash,       // node crashed; note = how
  kRestart,     // node restarted; a = applied index
  kCompact,     // node compacted its log through a
  kViolation,   // a check failed; note = what
};

struct TraceRecord {
  SimTime time = 0;
  TraceCode code = TraceCode::kTick;
  std::uint8_t sub = 0;
  std::uint32_t node = 0;
  std::uint32_t peer = 0;
  std::uint64_t a = 0;
  std::uint64_t b = 0;
  std::string note = {};
};

class TraceLog {
 public:
  TraceLog(std::size_t tail_capacity, std::function<void(std::string_view)> on_event);

  // Folds `record` and `bytes` into the hash; keeps the record in the tail
  // unless `hash_only`.
  void record(TraceRecord record, std::string_view bytes = {}, bool hash_only = false);

  std::uint64_t hash() const { return hash_; }
  std::uint64_t records() const { return records_; }
  // The kept records as text, oldest first.
  std::vector<std::string> tail() const;

  static std::string format(const TraceRecord& record);

 private:
  std::size_t capacity_;
  std::function<void(std::string_view)> on_event_;
  std::vector<TraceRecord> ring_;
  std::size_t next_ = 0;  // where the next kept record goes once the ring is full
  std::uint64_t hash_ = 0x6e6f64656e6f6d61ULL;
  std::uint64_t records_ = 0;
};

}  // namespace nodenomad::sim
