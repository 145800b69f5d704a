// The snapshot stream's bandwidth limits (docs/migration.md, "Transfer"): a
// token bucket per operation and one per node hold a migration's snapshot
// chunks before they leave.
#include "node/node_impl.hpp"

namespace nodenomad {

namespace {

// A throttle nobody refreshed for this long is forgotten (the operation ended).
constexpr std::uint64_t kThrottleForgetMs = 10'000;

}  // namespace

// --- the snapshot stream's bandwidth limits ---

// Snapshot chunks to a peer wait here for the operation's limit and the
// node's. Delaying them is only network delay to Raft; the sender holds at
// most max_snapshot_chunks_in_flight of them per transfer.
bool Node::Impl::throttle_snapshot(Envelope& envelope) {
  if (envelope.message.type != MessageType::kSnapshot) return false;
  auto it = snapshot_queues_.find({envelope.group, envelope.to});
  const bool limited = node_bucket_.rate() != 0 || (it != snapshot_queues_.end());
  if (!limited) {
    snapshot_bytes_sent_ += envelope.message.snapshot.data.size();
    return false;
  }
  auto& q = snapshot_queues_[{envelope.group, envelope.to}];
  if (!q) q = std::make_unique<SnapshotQueue>();
  // The queue holds each chunk of the current transfer once: chunks of an
  // abandoned transfer are useless to the follower, and the leader's
  // go-back-N resends of a chunk still waiting here add nothing (while
  // paused they would pile up).
  const SnapshotChunk& chunk = envelope.message.snapshot;
  std::erase_if(q->waiting, [&](const Envelope& e) {
    return e.message.snapshot.transfer_id != chunk.transfer_id;
  });
  for (const Envelope& e : q->waiting) {
    if (e.message.snapshot.offset == chunk.offset) return true;
  }
  const GroupId group = envelope.group;
  const NodeId to = envelope.to;
  q->waiting.push_back(std::move(envelope));
  pump_snapshot_queue(group, to);
  return true;
}

void Node::Impl::pump_snapshot_queue(GroupId group, NodeId to) {
  auto it = snapshot_queues_.find({group, to});
  if (it == snapshot_queues_.end()) return;
  SnapshotQueue& q = *it->second;
  const std::uint64_t now = now_ms();
  if (q.refreshed_ms != 0 && now - q.refreshed_ms > kThrottleForgetMs) {
    // The operation ended or its coordinator went away: no per-op limit.
    q.bucket.set_rate(0, now);
    q.paused = false;
  }
  while (!q.waiting.empty() && !q.paused) {
    const std::uint64_t wait = std::max(q.bucket.wait_ms(now), node_bucket_.wait_ms(now));
    if (wait > 0) {
      if (!q.scheduled) {
        q.scheduled = true;
        post_after(wait, [group, to](Impl& self) {
          auto at = self.snapshot_queues_.find({group, to});
          if (at == self.snapshot_queues_.end()) return;
          at->second->scheduled = false;
          self.pump_snapshot_queue(group, to);
        });
      }
      return;
    }
    Envelope e = std::move(q.waiting.front());
    q.waiting.pop_front();
    const std::uint64_t bytes = e.message.snapshot.data.size();
    q.bucket.take(bytes, now);
    node_bucket_.take(bytes, now);
    snapshot_bytes_sent_ += bytes;
    options_.transport->send(std::move(e));
  }
}

}  // namespace nodenomad
