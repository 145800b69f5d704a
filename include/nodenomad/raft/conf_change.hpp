// ConfChange: a membership change of one Raft group, proposed through
// RaftEngine::propose_conf_change() and carried in a kConfChange log entry.
//
// A change takes effect on every replica when its entry commits (not when it
// is appended); the leader accepts a new one only after the previous one has
// committed, and only after its own first (no-op) entry has committed.
//
//   - One voter added or removed, with any learner changes, and the
//     transition kAuto: a simple change, safe because old and new majorities
//     overlap.
//   - Several voters at once, or kJoint / kJointExplicit: joint consensus.
//     The group enters C_old,new (every decision needs a majority of both
//     sets); with kAuto / kJoint the leader proposes the empty change that
//     leaves the joint configuration as soon as it is committed, with
//     kJointExplicit the caller proposes it (an empty `changes`).
//   - A voter demoted to learner stays a voter of the outgoing set until the
//     group leaves the joint configuration (learners_next).
//
// Entry data layout (varints; a string is a varint length and its bytes):
//   u8 version (= 1) | u8 transition | count | count x (u8 type | node id)
//
// Thread safety: values and pure functions; safe from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "nodenomad/log_store.hpp"
#include "nodenomad/status.hpp"
#include "nodenomad/types.hpp"

namespace nodenomad {

enum class ConfChangeType : std::uint8_t {
  kAddVoter = 1,    // adds a voter, or promotes a learner
  kAddLearner = 2,  // adds a learner, or demotes a voter
  kRemoveNode = 3,  // removes a voter or a learner
};

enum class ConfChangeTransition : std::uint8_t {
  kAuto = 0,           // simple when possible, else joint with automatic leave
  kJoint = 1,          // always joint, left automatically
  kJointExplicit = 2,  // always joint, left by an explicit empty change
};

struct ConfChangeSingle {
  ConfChangeType type = ConfChangeType::kAddVoter;
  NodeId node;
  bool operator==(const ConfChangeSingle&) const = default;
};

struct ConfChange {
  ConfChangeTransition transition = ConfChangeTransition::kAuto;
  // Empty: leave the current joint configuration.
  std::vector<ConfChangeSingle> changes;
  bool operator==(const ConfChange&) const = default;

  bool leaves_joint() const { return changes.empty(); }
};

inline constexpr std::uint8_t kConfChangeFormatVersion = 1;

std::string encode_conf_change(const ConfChange& change);
// kCorruption for malformed bytes (untrusted: they come from the log).
Result<ConfChange> decode_conf_change(std::string_view bytes);

// The configuration after `change`, or kInvalidArgument saying why the change
// does not apply to `current` (entering joint twice, leaving when not joint,
// removing every voter, a simple change of more than one voter...).
Result<ConfState> apply_conf_change(const ConfState& current, const ConfChange& change);

// True when `state` is a joint configuration (voters_outgoing non-empty).
bool is_joint(const ConfState& state);
// Whether `state` names `node` a voter, of the incoming or the outgoing set.
bool names_voter(const ConfState& state, const NodeId& node);
// Whether `state` names `node` at all: a voter of either set, a learner, or
// a learner to be.
bool names_member(const ConfState& state, const NodeId& node);

}  // namespace nodenomad
