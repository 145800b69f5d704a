// check_linearizability(): is a recorded client history (history.hpp) one
// that a single, atomic NodeNomad key-value store could have produced?
//
// The algorithm is Wing & Gong's search with Lowe's improvements, as in
// Porcupine: operations are linearized "just in time" (only those invoked
// before the earliest outstanding completion are candidates), and every
// (set of linearized operations, model state) pair is remembered so that no
// state is explored twice. Keys are independent in the model, so each key's
// operations are checked on their own and the history is linearizable iff
// every key's part is. docs/linearizability.md states the model (versions,
// compare-and-set, delete and re-create) and the meaning of each outcome.
//
// Verdicts are never optimistic: kOk means a linearization was found (and
// replayed once more through the model) for every key; kIllegal means some
// key has none, proven either by a direct rule (a read of a value no write
// wrote, a version going back) or by the exhausted search; kUnknown means
// the budget ran out first. The verdict is a pure function of the history
// and the state budget; a deadline (read from the Clock the caller injects,
// never from a clock of the checker's own) can only turn a verdict into
// kUnknown.
//
// Thread safety: check_linearizability() is a pure function; it may run on
// several threads at once over different (or the same, unmodified) histories.
// It starts no thread. Ownership: the result owns copies of everything it
// reports, so it outlives the history.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "nodenomad/clock.hpp"
#include "nodenomad/status.hpp"
#include "nodenomad/testing/history.hpp"

namespace nodenomad::testing {

// Model states explored per key before the key's verdict becomes kUnknown.
// A state costs about a microsecond and its memo entry well under a hundred
// bytes; a well-behaved history needs a few states per operation (5000
// operations over 20 keys: about 5000 states, a few milliseconds), so the
// default bounds a hopeless key to about a second and tens of megabytes.
inline constexpr std::uint64_t kDefaultMaxStatesPerKey = 1'000'000;
// How many operations an explanation lists at most, per list.
inline constexpr std::size_t kMaxExplainedOperations = 8;

enum class Verdict : std::uint8_t { kOk, kIllegal, kUnknown };

struct CheckOptions {
  // Model states explored per key (> 0); deterministic, so a verdict
  // replays.
  std::uint64_t max_states_per_key = kDefaultMaxStatesPerKey;
  // Optional: stop with kUnknown once clock->monotonic_now() >= deadline.
  // The clock is polled every few thousand steps; nullptr = no deadline.
  const Clock* clock = nullptr;
  MonoTime deadline{0};
};

// Why one key is not linearizable. Two kinds of proof exist: a direct rule
// (a read of a value nobody wrote, a version going back; see
// docs/linearizability.md), found before any search, or the exhausted
// search, reported at the deepest point it reached.
struct IllegalKeyReport {
  // One sentence, operations named "#<id>" as in to_string(Operation).
  std::string summary;
  // The ok operation whose answer nothing explains: by a direct rule, or
  // the one that had to be placed next (its completion was the earliest
  // outstanding one) and could not be, in any order tried.
  OpId blocked = 0;
  // A direct rule's second operation (e.g. the one that saw the newer
  // version first); empty for the search.
  std::vector<OpId> witnesses;
  // Search only: the longest linearizable prefix found, in linearization
  // order (unknown-outcome operations included where they were placed),
  // and the key's state after it, e.g. "present \"a\" v3".
  std::vector<OpId> longest_prefix;
  std::string state_after_prefix;
  // Search only: the candidates at that point (invoked, not yet placed),
  // `blocked` first, each with why the model rejected it from that state or
  // that no order of the rest worked after it.
  std::vector<OpId> unplaced;
  std::vector<std::string> unplaced_reasons;
};

struct KeyCheck {
  std::string key;
  Verdict verdict = Verdict::kOk;
  std::uint64_t states_explored = 0;
  std::size_t operations = 0;        // after dropping failed ops and unknown gets
  bool stopped_by_deadline = false;  // kUnknown because of the deadline, not the budget
  IllegalKeyReport illegal;          // filled when verdict == kIllegal
  // kOk: one linearization of the key's operations (unknown-outcome ones
  // that took effect included, the others left out).
  std::vector<OpId> linearization;
};

struct CheckResult {
  Verdict verdict = Verdict::kOk;
  std::uint64_t states_explored = 0;
  // Every key of the history, in bytewise key order.
  std::vector<KeyCheck> keys;
  // A few lines a human can read: the verdict, and for every key that is not
  // kOk what was found (operations printed with to_string(Operation)).
  std::string explanation;
};

// kInvalidArgument when history.validate() fails or options are out of
// range; otherwise the verdict (see above).
Result<CheckResult> check_linearizability(const History& history, const CheckOptions& options = {});

std::string_view verdict_name(Verdict verdict);

}  // namespace nodenomad::testing
