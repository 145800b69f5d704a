#include "nodenomad/raft/raft_config.hpp"

#include <fmt/format.h>

namespace nodenomad {

namespace {

Status out_of_range(std::string_view field, std::string_view rule) {
  return Status::invalid_argument(fmt::format("raft config: {} {}", field, rule));
}

}  // namespace

Status validate_raft_config(const RaftConfig& c) {
  if (c.id.empty()) return out_of_range("id", "must not be empty");
  if (c.election_timeout_ticks < 2) return out_of_range("election_timeout_ticks", "must be >= 2");
  if (c.election_timeout_max_ticks != 0 &&
      c.election_timeout_max_ticks < c.election_timeout_ticks) {
    return out_of_range("election_timeout_max_ticks", "must be 0 or >= election_timeout_ticks");
  }
  if (c.heartbeat_interval_ticks == 0 ||
      c.heartbeat_interval_ticks >= c.election_timeout_ticks) {
    return out_of_range("heartbeat_interval_ticks",
                        "must be in [1, election_timeout_ticks - 1]");
  }
  if (c.read_mode == ReadMode::kLease) {
    if (!c.check_quorum) {
      return out_of_range("read_mode", "kLease needs check_quorum (followers must honour leases)");
    }
    if (c.lease_drift_ticks >= c.election_timeout_ticks) {
      return out_of_range("lease_drift_ticks", "must be below election_timeout_ticks");
    }
  }
  if (c.max_append_bytes == 0) return out_of_range("max_append_bytes", "must be > 0");
  if (c.max_inflight_messages == 0) return out_of_range("max_inflight_messages", "must be > 0");
  if (c.max_inflight_bytes == 0) return out_of_range("max_inflight_bytes", "must be > 0");
  if (c.max_learner_inflight_bytes == 0) {
    return out_of_range("max_learner_inflight_bytes", "must be > 0");
  }
  if (c.max_uncommitted_bytes == 0) return out_of_range("max_uncommitted_bytes", "must be > 0");
  if (c.max_apply_bytes_per_ready == 0) {
    return out_of_range("max_apply_bytes_per_ready", "must be > 0");
  }
  if (c.snapshot_chunk_bytes == 0) return out_of_range("snapshot_chunk_bytes", "must be > 0");
  if (c.max_snapshot_chunks_in_flight == 0) {
    return out_of_range("max_snapshot_chunks_in_flight", "must be > 0");
  }
  if (c.max_pending_reads == 0) return out_of_range("max_pending_reads", "must be > 0");
  return Status::ok();
}

}  // namespace nodenomad
