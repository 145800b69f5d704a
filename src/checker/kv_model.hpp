// The sequential specification of one NodeNomad key, as the checker's search
// steps it (docs/linearizability.md states the same rules in prose).
//
// A key is absent or holds (value, version). Every successful write of a
// live key gives version + 1. A key created while absent takes some version
// above every version it had before (the storage engine starts it above an
// engine-wide floor, so the exact number depends on other keys and is taken
// from what the operation reports). When no operation reports it (a write
// with an unknown outcome), the version is not known yet: the state then
// keeps an exclusive lower bound, and the first operation that observes the
// version binds it. Only lower bounds ever arise, which is why one number
// is enough (see KeyState).
//
// Thread safety: pure functions over values.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nodenomad/testing/history.hpp"

namespace nodenomad::testing::detail {

// Values are interned per key: the model compares small integers.
using ValueId = std::uint32_t;
// Stands for "some value no ok read returned" where the search compares
// configurations (see partition.hpp); never the value of a real state.
inline constexpr ValueId kUnreadValue = 0;

struct KeyState {
  // version_known: the key's version. Otherwise an exclusive lower bound:
  // the version is some number > `version`, not yet observed. Unused (0)
  // while absent.
  std::uint64_t version = 0;
  // While absent: every version the key had is <= floor, so a re-created key
  // must take a version > floor. Unused (0) while present.
  std::uint64_t floor = 0;
  ValueId value = 0;  // while present
  bool present = false;
  bool version_known = true;

  bool operator==(const KeyState&) const = default;
};

// One operation of one key, with its value and answer interned.
struct ModelOp {
  OpId id = 0;  // in the History
  KvOpKind kind = KvOpKind::kGet;
  bool has_if_version = false;
  std::uint64_t if_version = 0;
  ValueId value = 0;  // kSet
  // true: completed ok, the answer below must be explained. false: unknown
  // outcome, the operation may take effect once after invoke, or never.
  bool outcome_known = true;
  KvResultKind result_kind = KvResultKind::kNotFound;
  ValueId result_value = 0;  // kFound
  std::uint64_t result_version = kVersionNotReported;
  bool result_deleted = false;
};

// Steps an ok operation: nullptr when its answer is possible from `state`
// (then *next is the state after it), else a sentence saying which rule the
// answer breaks.
const char* step_ok(const KeyState& state, const ModelOp& op, KeyState* next);

// Steps an operation of unknown outcome as if it took effect now: false when
// it cannot take effect from `state` or would change nothing (a no-op is the
// same as never linearizing it), else true with *next.
bool step_maybe(const KeyState& state, const ModelOp& op, KeyState* next);

// The state with every version erased, for keys whose history never
// observes a version (no reported version, no if_version): versions cannot
// reject anything there, and erasing them lets equal values meet in the memo.
KeyState without_versions(const KeyState& state);

// The maybe operations a chain could be drawn from, summarized for
// chain_may_enable().
struct MaybeChainSummary {
  std::size_t sets = 0;             // maybe sets, compare-and-set or not
  std::size_t removals = 0;         // maybe removes and expires that can delete something
  std::vector<ValueId> set_values;  // one entry per set

  void clear() {
    sets = 0;
    removals = 0;
    set_values.clear();
  }
  void add(const ModelOp& op);
  // Takes back one add(op); op must have been added.
  void remove(const ModelOp& op);
};

// Could some nonempty chain of the summarized maybe operations lead from
// `state` to a state where the ok operation `op` is legal? An
// over-approximation: false only when certainly not. It lets the search skip
// placing a maybe operation that nothing placed after it could need.
bool chain_may_enable(const KeyState& state, const MaybeChainSummary& chain, const ModelOp& op);

// "absent (a re-created version is > 4)", "present \"a\" v5", "present \"a\" v>7",
// "present (a value no read returned) v2".
std::string describe_state(const KeyState& state, const std::vector<std::string>& values);

std::uint64_t hash_state(const KeyState& state);

}  // namespace nodenomad::testing::detail
