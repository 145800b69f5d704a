// The whole-node simulation's trace: every noteworthy event (a message, a
// fault, a client operation, a migration call, a view a node applied) folded
// into one chained XXH3 hash, and the last few kept as text for a failure
// report. Messages are hashed with their encoded bytes but kept out of the
// text tail (there are too many of them to read).
//
// Thread safety: none; one simulation thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "sim_cluster/scheduler.hpp"

namespace nodenomad::sim_cluster {

class ClusterTrace {
 public:
  ClusterTrace(std::size_t tail_capacity, std::function<void(std::string_view)> on_event);

  // A line for the tail (and the hash): "t=1.234567s <what>".
  void note(SimTime time, std::string_view what);
  // Hash only: a message's bytes, a step's identity.
  void hash_bytes(std::string_view bytes);
  void hash_u64(std::uint64_t value);

  std::uint64_t hash() const { return hash_; }
  std::vector<std::string> tail() const;

 private:
  std::size_t capacity_;
  std::function<void(std::string_view)> on_event_;
  std::vector<std::string> ring_;
  std::size_t next_ = 0;
  std::uint64_t hash_ = 0x6e6f6465636c7573ULL;
};

}  // namespace nodenomad::sim_cluster
