#include "nodenomad/raft/conf_change.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "raft/byte_io.hpp"

namespace nodenomad {

using raft_io::ByteReader;
using raft_io::ByteWriter;

namespace {

constexpr std::size_t kMinChangeBytes = 2;  // type and an empty name's length

bool contains(const std::vector<NodeId>& set, const NodeId& node) {
  return std::find(set.begin(), set.end(), node) != set.end();
}

void insert(std::vector<NodeId>& set, const NodeId& node) {
  if (!contains(set, node)) set.push_back(node);
  std::sort(set.begin(), set.end());
}

void erase(std::vector<NodeId>& set, const NodeId& node) {
  set.erase(std::remove(set.begin(), set.end(), node), set.end());
}

// Applies the single changes to the incoming side of `cs`; a demoted voter
// that is still an outgoing voter waits in learners_next.
void apply_singles(ConfState& cs, const std::vector<ConfChangeSingle>& changes) {
  for (const ConfChangeSingle& c : changes) {
    switch (c.type) {
      case ConfChangeType::kAddVoter:
        erase(cs.learners, c.node);
        erase(cs.learners_next, c.node);
        insert(cs.voters, c.node);
        break;
      case ConfChangeType::kAddLearner:
        erase(cs.voters, c.node);
        if (contains(cs.voters_outgoing, c.node)) {
          erase(cs.learners, c.node);
          insert(cs.learners_next, c.node);
        } else {
          insert(cs.learners, c.node);
        }
        break;
      case ConfChangeType::kRemoveNode:
        erase(cs.voters, c.node);
        erase(cs.learners, c.node);
        erase(cs.learners_next, c.node);
        break;
    }
  }
}

// How many voters differ between two voter sets.
std::size_t voter_difference(const std::vector<NodeId>& a, const std::vector<NodeId>& b) {
  std::size_t n = 0;
  for (const NodeId& node : a) n += contains(b, node) ? 0 : 1;
  for (const NodeId& node : b) n += contains(a, node) ? 0 : 1;
  return n;
}

Status check_changes(const ConfChange& change) {
  for (const ConfChangeSingle& c : change.changes) {
    if (c.node.empty()) return Status::invalid_argument("conf change: a node id is empty");
  }
  return Status::ok();
}

ConfState leave_joint(const ConfState& current) {
  ConfState next = current;
  for (const NodeId& node : next.learners_next) insert(next.learners, node);
  next.learners_next.clear();
  next.voters_outgoing.clear();
  next.auto_leave = false;
  return next;
}

}  // namespace

bool is_joint(const ConfState& state) { return !state.voters_outgoing.empty(); }

namespace {

bool holds(const std::vector<NodeId>& list, const NodeId& node) {
  return std::find(list.begin(), list.end(), node) != list.end();
}

}  // namespace

bool names_voter(const ConfState& state, const NodeId& node) {
  return holds(state.voters, node) || holds(state.voters_outgoing, node);
}

bool names_member(const ConfState& state, const NodeId& node) {
  return names_voter(state, node) || holds(state.learners, node) ||
         holds(state.learners_next, node);
}

Result<ConfState> apply_conf_change(const ConfState& current, const ConfChange& change) {
  NN_RETURN_IF_ERROR(check_changes(change));
  if (change.leaves_joint()) {
    if (!is_joint(current)) {
      return Status::invalid_argument("conf change: leaving a joint configuration, but not in one");
    }
    return leave_joint(current);
  }
  if (is_joint(current)) {
    return Status::invalid_argument(
        "conf change: the configuration is joint; leave it before the next change");
  }
  ConfState next = current;
  apply_singles(next, change.changes);
  const bool simple = change.transition == ConfChangeTransition::kAuto &&
                      voter_difference(current.voters, next.voters) <= 1;
  if (!simple) {
    next = current;
    next.voters_outgoing = current.voters;
    apply_singles(next, change.changes);
    next.auto_leave = change.transition != ConfChangeTransition::kJointExplicit;
  }
  if (next.voters.empty()) {
    return Status::invalid_argument("conf change: it would remove every voter");
  }
  return next;
}

std::string encode_conf_change(const ConfChange& change) {
  std::string out;
  ByteWriter w(out);
  w.u8(kConfChangeFormatVersion);
  w.u8(static_cast<std::uint8_t>(change.transition));
  w.varint(change.changes.size());
  for (const ConfChangeSingle& c : change.changes) {
    w.u8(static_cast<std::uint8_t>(c.type));
    w.bytes(c.node.str());
  }
  return out;
}

Result<ConfChange> decode_conf_change(std::string_view bytes) {
  ByteReader r(bytes);
  std::uint8_t version = 0;
  std::uint8_t transition = 0;
  std::uint64_t count = 0;
  const auto malformed = [&](std::string_view why) {
    return Status::corruption(fmt::format("conf change of {} bytes: {}", bytes.size(), why));
  };
  if (!r.u8(version) || version != kConfChangeFormatVersion) return malformed("unknown version");
  if (!r.u8(transition) || transition > static_cast<std::uint8_t>(ConfChangeTransition::kJointExplicit)) {
    return malformed("unknown transition");
  }
  if (!r.count(count, kMinChangeBytes)) return malformed("bad change count");
  ConfChange change;
  change.transition = static_cast<ConfChangeTransition>(transition);
  change.changes.reserve(static_cast<std::size_t>(count));
  for (std::uint64_t i = 0; i < count; ++i) {
    std::uint8_t type = 0;
    std::string node;
    if (!r.u8(type) || type < 1 || type > static_cast<std::uint8_t>(ConfChangeType::kRemoveNode) ||
        !r.string(node)) {
      return malformed("truncated or unknown change");
    }
    change.changes.push_back({static_cast<ConfChangeType>(type), NodeId(std::move(node))});
  }
  if (!r.done()) return malformed("trailing bytes");
  return change;
}

}  // namespace nodenomad
