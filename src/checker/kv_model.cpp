#include "checker/kv_model.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "nodenomad/assert.hpp"

namespace nodenomad::testing::detail {

namespace {

KeyState absent_with_floor(std::uint64_t floor) {
  KeyState state;
  state.floor = floor;
  return state;
}

KeyState present_known(ValueId value, std::uint64_t version) {
  KeyState state;
  state.present = true;
  state.value = value;
  state.version = version;
  return state;
}

KeyState present_above(ValueId value, std::uint64_t lower_bound) {
  KeyState state = present_known(value, lower_bound);
  state.version_known = false;
  return state;
}

// Binds a live key's version to `version` if it can be that version: known
// and equal, or not yet known and above the bound. Writes the bound state.
bool bind_version(const KeyState& state, std::uint64_t version, KeyState* bound) {
  NN_ASSERT(state.present, "only a live key has a version");
  if (state.version_known ? version != state.version : version <= state.version) return false;
  *bound = present_known(state.value, version);
  return true;
}

// Does the key's current version (0 if absent) equal `expected`? Binds an
// unobserved version to it if that is possible.
bool current_version_is(const KeyState& state, std::uint64_t expected, KeyState* bound) {
  if (!state.present) {
    *bound = state;
    return expected == 0;
  }
  return expected != 0 && bind_version(state, expected, bound);
}

// The state after a successful write of `value`, whose answer reported
// `reported` (or kVersionNotReported). nullptr when that report is possible.
const char* write(const KeyState& state, ValueId value, std::uint64_t reported, KeyState* next) {
  if (state.present && state.version_known) {
    if (reported != kVersionNotReported && reported != state.version + 1) {
      return "a write of a live key must give it version + 1";
    }
    *next = present_known(value, state.version + 1);
    return nullptr;
  }
  // The new version is above `bound`: the old unobserved version + 1 is
  // above old bound + 1, and a re-created key is above its floor.
  const std::uint64_t bound = state.present ? state.version + 1 : state.floor;
  if (reported == kVersionNotReported) {
    *next = present_above(value, bound);
    return nullptr;
  }
  if (reported <= bound) {
    return state.present ? "a write must raise the version above its earlier versions"
                         : "a re-created key's version must be above every version it had";
  }
  *next = present_known(value, reported);
  return nullptr;
}

// The state after a live key is removed: its floor is the smallest version it
// can have had, which keeps "re-created above the old one" exact.
KeyState removed(const KeyState& state) {
  NN_ASSERT(state.present, "only a live key can be removed");
  return absent_with_floor(state.version_known ? state.version : state.version + 1);
}

const char* step_mismatch(const KeyState& state, const ModelOp& op, KeyState* next) {
  if (op.result_version == op.if_version) {
    return "a version mismatch reported the very version the request expected";
  }
  if (!current_version_is(state, op.result_version, next)) {
    return "a version mismatch reported a current version the key does not have";
  }
  return nullptr;
}

const char* step_set(const KeyState& state, const ModelOp& op, KeyState* next) {
  KeyState base = state;
  if (op.has_if_version && !current_version_is(state, op.if_version, &base)) {
    return "the compare-and-set succeeded though if_version is not the key's version";
  }
  return write(base, op.value, op.result_version, next);
}

const char* step_remove(const KeyState& state, const ModelOp& op, KeyState* next) {
  KeyState base = state;
  if (op.has_if_version && !current_version_is(state, op.if_version, &base)) {
    return "the conditional remove succeeded though if_version is not the key's version";
  }
  if (op.result_deleted != base.present) {
    return base.present ? "the remove deleted nothing though the key was present"
                        : "the remove deleted a key that was absent";
  }
  *next = base.present ? removed(base) : base;
  return nullptr;
}

// An expire that removed nothing only says the key was not at that version;
// an unobserved version above the bound cannot be told apart, so it passes.
const char* step_expire(const KeyState& state, const ModelOp& op, KeyState* next) {
  KeyState bound;
  const bool at_version = state.present && current_version_is(state, op.if_version, &bound);
  if (op.result_deleted) {
    if (!at_version) return "the expiry removed a key that was not at its version";
    *next = removed(bound);
    return nullptr;
  }
  if (at_version && state.version_known) {
    return "the expiry removed nothing though the key was at its version";
  }
  *next = state;
  return nullptr;
}

const char* step_get(const KeyState& state, const ModelOp& op, KeyState* next) {
  if (op.result_kind == KvResultKind::kNotFound) {
    if (state.present) return "the get found nothing though the key was present";
    *next = state;
    return nullptr;
  }
  if (!state.present) return "the get found a value though the key was absent";
  if (op.result_value != state.value) return "the get found a value other than the key's";
  if (op.result_version == kVersionNotReported) {
    *next = state;
    return nullptr;
  }
  if (!bind_version(state, op.result_version, next)) {
    return "the get found a version other than the key's";
  }
  return nullptr;
}

// if_version 0 asks for an absent key: such a removal deletes nothing.
bool can_delete(const ModelOp& op) {
  return (op.kind == KvOpKind::kRemove || op.kind == KvOpKind::kExpire) &&
         (!op.has_if_version || op.if_version != 0);
}

// What a nonempty chain of maybe operations can leave behind, over-
// approximated: a live key with a version in [lo, hi] (the chain ends with a
// set), or an absent key whose floor is at least absent_floor (it ends with
// a removal that deleted something).
struct ChainReach {
  bool present = false;
  std::uint64_t lo = 0;
  std::uint64_t hi = 0;
  bool absent = false;
  std::uint64_t absent_floor = 0;
};

ChainReach chain_reach(const KeyState& state, const MaybeChainSummary& chain) {
  constexpr std::uint64_t kUnbounded = std::numeric_limits<std::uint64_t>::max();
  ChainReach reach;
  reach.present = chain.sets > 0;
  // A removal only counts once something is there to delete.
  reach.absent = chain.removals > 0 && (state.present || chain.sets > 0);
  if (!state.present) {
    reach.lo = state.floor + 1;
    reach.hi = kUnbounded;
    reach.absent_floor = state.floor + 1;  // a create, then its removal
  } else if (!state.version_known) {
    reach.lo = state.version + 2;
    reach.hi = kUnbounded;
    reach.absent_floor = state.version + 1;
  } else {
    // Without a removal each set adds one; with one, a re-create lands above.
    reach.lo = state.version + 1;
    reach.hi = chain.removals > 0 ? kUnbounded : state.version + chain.sets;
    reach.absent_floor = state.version;
  }
  return reach;
}

}  // namespace

void MaybeChainSummary::add(const ModelOp& op) {
  if (op.kind == KvOpKind::kSet) {
    ++sets;
    set_values.push_back(op.value);
  } else if (can_delete(op)) {
    ++removals;
  }
}

void MaybeChainSummary::remove(const ModelOp& op) {
  if (op.kind == KvOpKind::kSet) {
    const auto it = std::find(set_values.begin(), set_values.end(), op.value);
    NN_ASSERT(sets > 0 && it != set_values.end(), "remove() of a set never added");
    *it = set_values.back();
    set_values.pop_back();
    --sets;
  } else if (can_delete(op)) {
    NN_ASSERT(removals > 0, "remove() of a removal never added");
    --removals;
  }
}

bool chain_may_enable(const KeyState& state, const MaybeChainSummary& chain, const ModelOp& op) {
  NN_ASSERT(op.outcome_known, "only an ok operation has an answer to enable");
  const ChainReach reach = chain_reach(state, chain);
  const auto present_with = [&](std::uint64_t version) {
    return reach.present && version >= reach.lo && version <= reach.hi;
  };
  // A create from the absent state the chain leaves, reporting `version`.
  const auto created_at = [&](std::uint64_t version) {
    return reach.absent && (version == kVersionNotReported || version > reach.absent_floor);
  };
  if (op.result_kind == KvResultKind::kVersionMismatch) {
    return op.result_version == 0 ? reach.absent : present_with(op.result_version);
  }
  switch (op.kind) {
    case KvOpKind::kGet: {
      if (op.result_kind == KvResultKind::kNotFound) return reach.absent;
      const bool value_possible = std::find(chain.set_values.begin(), chain.set_values.end(),
                                            op.result_value) != chain.set_values.end();
      return value_possible &&
             (op.result_version == kVersionNotReported ? reach.present
                                                       : present_with(op.result_version));
    }
    case KvOpKind::kSet:
      if (op.has_if_version && op.if_version == 0) return created_at(op.result_version);
      if (op.has_if_version) return present_with(op.if_version);
      if (op.result_version == kVersionNotReported) return reach.present || reach.absent;
      return created_at(op.result_version) || present_with(op.result_version - 1);
    case KvOpKind::kRemove:
      if (op.has_if_version) return op.if_version == 0 ? reach.absent : present_with(op.if_version);
      return op.result_deleted ? reach.present : reach.absent;
    case KvOpKind::kExpire:
      return !op.result_deleted || present_with(op.if_version);
  }
  NN_UNREACHABLE("unknown KvOpKind ", static_cast<int>(op.kind));
}

KeyState without_versions(const KeyState& state) {
  KeyState erased = state;
  erased.version = 0;
  erased.floor = 0;
  erased.version_known = true;
  return erased;
}

const char* step_ok(const KeyState& state, const ModelOp& op, KeyState* next) {
  NN_ASSERT(op.outcome_known, "step_ok() of an operation with an unknown outcome");
  if (op.result_kind == KvResultKind::kVersionMismatch) return step_mismatch(state, op, next);
  switch (op.kind) {
    case KvOpKind::kSet:
      return step_set(state, op, next);
    case KvOpKind::kGet:
      return step_get(state, op, next);
    case KvOpKind::kRemove:
      return step_remove(state, op, next);
    case KvOpKind::kExpire:
      return step_expire(state, op, next);
  }
  NN_UNREACHABLE("unknown KvOpKind ", static_cast<int>(op.kind));
}

bool step_maybe(const KeyState& state, const ModelOp& op, KeyState* next) {
  NN_ASSERT(!op.outcome_known, "step_maybe() of an operation with a known outcome");
  KeyState base = state;
  if (op.has_if_version && !current_version_is(state, op.if_version, &base)) return false;
  switch (op.kind) {
    case KvOpKind::kSet: {
      const char* why = write(base, op.value, kVersionNotReported, next);
      NN_ASSERT(why == nullptr, "a write with no reported version is always possible: ", why);
      return true;
    }
    case KvOpKind::kRemove:
    case KvOpKind::kExpire:
      if (!base.present) return false;
      *next = removed(base);
      return true;
    case KvOpKind::kGet:
      return false;  // a read changes nothing
  }
  NN_UNREACHABLE("unknown KvOpKind ", static_cast<int>(op.kind));
}

std::string describe_state(const KeyState& state, const std::vector<std::string>& values) {
  if (!state.present) return fmt::format("absent (a re-created version is > {})", state.floor);
  NN_ASSERT(state.value < values.size(), "value id ", state.value, " was never interned");
  const std::string value = state.value == kUnreadValue ? std::string("(a value no read returned)")
                                                        : printable_bytes(values[state.value]);
  // Version 0 on a live key only appears where versions were erased.
  if (state.version_known && state.version == 0) return "present " + value;
  return fmt::format("present {} v{}{}", value, state.version_known ? "" : ">", state.version);
}

std::uint64_t hash_state(const KeyState& state) {
  // Odd multipliers spread each field over the word; collisions only cost a
  // full comparison in the memo table.
  std::uint64_t h = state.version * 0x9e3779b97f4a7c15ULL;
  h ^= (state.floor + 0x632be59bd9b4e019ULL) * 0xbf58476d1ce4e5b9ULL;
  h ^= (static_cast<std::uint64_t>(state.value) << 2 | (state.present ? 1u : 0u) << 1 |
        (state.version_known ? 1u : 0u)) *
       0x94d049bb133111ebULL;
  return h ^ (h >> 29);
}

}  // namespace nodenomad::testing::detail
