// The linearizability search over one key's operations: Wing & Gong's
// backtracking with Lowe's just-in-time linearization and memoization, the
// scheme Porcupine uses, extended with "maybe" operations.
//
// Events (invokes of every operation, completions of ok ones) sit in linked
// lists in time order (event_list.hpp). The candidates to linearize next are
// the invokes before the first completion still listed: an operation cannot
// be placed after its own completion, and placing it earlier than needed
// would only shrink the choices. Placing one unlinks its events; when no
// candidate is left, the last placement is undone (the links are restored in
// reverse order). Configurations that failed once are remembered and never
// explored again (memo_table.hpp).
//
// Maybe operations (unknown outcome) have no completion event. They are
// candidates from their invoke on, are placed only where they take effect
// and something placed after them could need them, and need not be placed
// at all: the search succeeds once every ok operation is placed. Ok
// candidates are tried before maybe ones, so the common case (the maybe
// operation never applied) is found first. Unknown outcomes make the search
// exponential in the worst case; four reductions keep the usual case small,
// each of which drops only configurations that cannot succeed unless one
// already explored (or still to be explored) does:
//   - of several interchangeable maybe operations only the first is tried;
//   - a maybe operation is placed only if some ok candidate could follow it
//     (chain_may_enable() in kv_model.hpp);
//   - a maybe chain that returns to a state an earlier configuration of the
//     same chain covers is cut (fewer maybe operations, same future);
//   - the memo compares configurations by covering, not equality, and
//     counts conditional maybe operations that can never apply again as
//     spent (memo_table.hpp).
//
// Thread safety: pure function; no clock is read except the injected one.
#pragma once

#include <cstdint>
#include <vector>

#include "checker/kv_model.hpp"
#include "checker/partition.hpp"
#include "nodenomad/clock.hpp"
#include "nodenomad/testing/linearizability.hpp"

namespace nodenomad::testing::detail {

struct SearchLimits {
  std::uint64_t max_states = kDefaultMaxStatesPerKey;
  const Clock* clock = nullptr;  // optional deadline source
  MonoTime deadline{0};
};

struct SearchOutcome {
  Verdict verdict = Verdict::kOk;
  std::uint64_t states_explored = 0;
  bool stopped_by_deadline = false;
  // kOk: indexes into KeyPartition::ops, in linearization order.
  std::vector<std::size_t> linearization;
  // kIllegal: the deepest point reached (most ok operations placed).
  std::vector<std::size_t> best_prefix;
  KeyState best_state;
  std::size_t blocked = 0;              // the ok operation that had to be next
  std::vector<std::size_t> candidates;  // what could have been placed there
};

SearchOutcome search_partition(const KeyPartition& part, const SearchLimits& limits);

}  // namespace nodenomad::testing::detail
