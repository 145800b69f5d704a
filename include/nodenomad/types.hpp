// Strong identifier and counter types shared by every part.
//
// A NodeId is a human-meaningful, stable name ("node-1"): it appears in the
// HTTP API, the CLUSTER_NODES setting and the ring, so it is a string. Shards,
// Raft terms and log indexes are unsigned integers wrapped so that a term can
// never be passed where an index is expected. All are plain values, safe to
// copy between threads.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>

namespace nodenomad {

// An unsigned counter with a tag. Arithmetic is limited to what Raft needs:
// adding or subtracting a plain count, and the distance between two values.
template <typename Tag>
class Counter {
 public:
  constexpr Counter() = default;
  constexpr explicit Counter(std::uint64_t value) : value_(value) {}

  constexpr std::uint64_t value() const { return value_; }
  constexpr auto operator<=>(const Counter&) const = default;

  constexpr Counter next() const { return Counter(value_ + 1); }
  constexpr Counter prev() const { return Counter(value_ == 0 ? 0 : value_ - 1); }
  constexpr Counter operator+(std::uint64_t n) const { return Counter(value_ + n); }
  constexpr Counter operator-(std::uint64_t n) const { return Counter(value_ - n); }
  constexpr std::uint64_t operator-(Counter other) const { return value_ - other.value_; }
  constexpr Counter& operator++() {
    ++value_;
    return *this;
  }

  friend std::ostream& operator<<(std::ostream& out, Counter c) { return out << c.value_; }

 private:
  std::uint64_t value_ = 0;
};

struct TermTag {};
struct LogIndexTag {};
struct ShardIdTag {};
struct EpochTag {};
struct GroupIdTag {};

using Term = Counter<TermTag>;          // Raft term; 0 = no term yet
using LogIndex = Counter<LogIndexTag>;  // Raft log index; 0 = before the first entry
using ShardId = Counter<ShardIdTag>;    // shard number in [0, shard_count)
using Epoch = Counter<EpochTag>;        // ShardMap version of one shard's placement
// A Raft group on a node: group 0 is the metadata group, shard s is group s + 1.
using GroupId = Counter<GroupIdTag>;

inline constexpr GroupId kMetadataGroup{0};
constexpr GroupId group_of_shard(ShardId shard) { return GroupId(shard.value() + 1); }
// Precondition: group != kMetadataGroup.
constexpr ShardId shard_of_group(GroupId group) { return ShardId(group.value() - 1); }

class NodeId {
 public:
  NodeId() = default;
  explicit NodeId(std::string name) : name_(std::move(name)) {}

  const std::string& str() const { return name_; }
  bool empty() const { return name_.empty(); }
  auto operator<=>(const NodeId&) const = default;

  friend std::ostream& operator<<(std::ostream& out, const NodeId& id) { return out << id.name_; }

 private:
  std::string name_;
};

}  // namespace nodenomad

template <typename Tag>
struct std::hash<nodenomad::Counter<Tag>> {
  std::size_t operator()(nodenomad::Counter<Tag> c) const noexcept {
    return std::hash<std::uint64_t>{}(c.value());
  }
};

template <>
struct std::hash<nodenomad::NodeId> {
  std::size_t operator()(const nodenomad::NodeId& id) const noexcept {
    return std::hash<std::string>{}(id.str());
  }
};
