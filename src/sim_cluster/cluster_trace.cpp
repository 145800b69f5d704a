#include "sim_cluster/cluster_trace.hpp"

#include <fmt/format.h>
#include <xxhash.h>

namespace nodenomad::sim_cluster {

ClusterTrace::ClusterTrace(std::size_t tail_capacity,
                           std::function<void(std::string_view)> on_event)
    : capacity_(tail_capacity), on_event_(std::move(on_event)) {
  ring_.reserve(capacity_);
}

void ClusterTrace::note(SimTime time, std::string_view what) {
  std::string line = fmt::format("t={}.{:06}s {}", time / 1'000'000, time % 1'000'000, what);
  hash_ = XXH3_64bits_withSeed(line.data(), line.size(), hash_);
  if (on_event_) on_event_(line);
  if (capacity_ == 0) return;
  if (ring_.size() < capacity_) {
    ring_.push_back(std::move(line));
    return;
  }
  ring_[next_] = std::move(line);
  next_ = (next_ + 1) % capacity_;
}

void ClusterTrace::hash_bytes(std::string_view bytes) {
  hash_ = XXH3_64bits_withSeed(bytes.data(), bytes.size(), hash_);
}

void ClusterTrace::hash_u64(std::uint64_t value) {
  hash_ = XXH3_64bits_withSeed(&value, sizeof value, hash_);
}

std::vector<std::string> ClusterTrace::tail() const {
  std::vector<std::string> out;
  out.reserve(ring_.size());
  for (std::size_t i = 0; i < ring_.size(); ++i) out.push_back(ring_[(next_ + i) % ring_.size()]);
  return out;
}

}  // namespace nodenomad::sim_cluster
