#include "sim_cluster/cluster_nodes.hpp"

#include <fmt/format.h>

#include "nodenomad/storage/shard_digest.hpp"
#include "nodenomad/storage/storage_engine.hpp"

namespace nodenomad::sim_cluster {

ClusterNodes::ClusterNodes(Scheduler& scheduler, SimNetwork& network, ManualClock& clock,
                           const Scenario& scenario, const testing::ClusterFaultProfile& profile,
                           Rng rng, ClusterTrace& trace)
    : scheduler_(scheduler),
      network_(network),
      clock_(clock),
      scenario_(scenario),
      profile_(profile),
      rng_(rng),
      disk_rng_(rng_.fork()),
      trace_(trace) {
  const std::uint32_t n = kFounders + scenario.joiners;
  slots_.resize(n);
  for (std::uint32_t i = 0; i < n; ++i) {
    slots_[i].id = sim_node_id(i);
    slots_[i].disk = std::make_unique<testing::FaultInjectingFileSystem>(rng_.next_u64());
  }
  // Only then: a run without divergence draws exactly what it drew before.
  if (profile_.diverge_probability > 0) diverge_rng_ = rng_.fork();
}

ClusterNodes::~ClusterNodes() {
  // Nodes first (their tasks are dropped with the scheduler's queue later).
  for (std::uint32_t i = 0; i < count(); ++i) {
    if (!up(i)) continue;
    scheduler_.as_owner(i, [&] { slots_[i].node.reset(); });
    slots_[i].loop->kill();
    slots_[i].background->kill();
    scheduler_.drop_owner(i);
  }
}

int ClusterNodes::index_of(const NodeId& id) const {
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i].id == id) return static_cast<int>(i);
  }
  return -1;
}

std::uint32_t ClusterNodes::down_count() const {
  std::uint32_t down = 0;
  for (std::uint32_t i = 0; i < count(); ++i) down += born(i) && !up(i) ? 1 : 0;
  return down;
}

SimTime ClusterNodes::disk_latency_us() {
  if (profile_.slow_disk_probability > 0 && disk_rng_.chance(profile_.slow_disk_probability)) {
    return profile_.slow_disk_latency_us;
  }
  return disk_rng_.uniform_in(profile_.disk_min_latency_us,
                              std::max(profile_.disk_min_latency_us, profile_.disk_max_latency_us));
}

Status ClusterNodes::start(std::uint32_t i) {
  Slot& slot = slots_[i];
  if (slot.node) return Status::ok();
  ++slot.incarnation;
  if (slot.loop) dead_loops_.push_back(std::move(slot.loop));
  if (slot.background) dead_loops_.push_back(std::move(slot.background));
  slot.loop = std::make_unique<SimLoop>(scheduler_, i);
  if (profile_.max_clock_skew > 0) {
    slot.loop->set_skew((rng_.next_double() * 2 - 1) * profile_.max_clock_skew);
  }
  slot.background = std::make_unique<SimLoop>(scheduler_, i, [this] { return disk_latency_us(); });
  slot.transport = network_.connect(i);
  NodeOptions options = node_options(scenario_, i, rng_.next_u64());
  options.loop = slot.loop.get();
  options.background_loop = slot.background.get();
  options.transport = slot.transport.get();
  options.file_system = slot.disk.get();
  options.clock = &clock_;
  if (profile_.diverge_probability > 0) {
    options.before_verify_digest_for_testing = [this, i](ShardId shard, LogIndex index,
                                                         std::uint32_t round,
                                                         StorageEngine& state) {
      maybe_diverge(i, shard, index, round, state);
    };
  }
  Result<std::unique_ptr<Node>> opened = Status::unavailable("not opened");
  scheduler_.as_owner(i, [&] { opened = Node::open(std::move(options)); });
  trace_.note(scheduler_.now(), fmt::format("start {} incarnation {}: {}", slot.id.str(),
                                            slot.incarnation, opened.status().to_string()));
  if (!opened.is_ok()) {
    slot.loop->kill();
    slot.background->kill();
    scheduler_.drop_owner(i);
    slot.transport.reset();
    return opened.status().with_context(fmt::format("opening {}", slot.id.str()));
  }
  slot.node = std::move(*opened);
  return Status::ok();
}

void ClusterNodes::crash(std::uint32_t i, bool tear, const std::string& why) {
  Slot& slot = slots_[i];
  if (!slot.node) return;
  ++crashes_;
  trace_.note(scheduler_.now(), fmt::format("crash {} ({}){}", slot.id.str(), why,
                                            tear ? ", tearing unsynced tails" : ""));
  if (on_down) on_down(i);
  // Destroyed "on its own loop": Node::stop() runs inline.
  scheduler_.as_owner(i, [&] { slot.node.reset(); });
  slot.loop->kill();
  slot.background->kill();
  scheduler_.drop_owner(i);
  slot.transport.reset();
  testing::CrashOptions crash;
  crash.tear_unsynced_tail = tear;
  slot.disk->crash(crash);
}

void ClusterNodes::maybe_diverge(std::uint32_t i, ShardId shard, LogIndex index,
                                 std::uint32_t round, StorageEngine& state) {
  // Only in the first verify session of this node's copy (its first held
  // index; every round of it). A later session may be a late one that
  // starts after the move was decided: a loss then would come after Verify,
  // which no digest taken before it can find. A loss from the first
  // session stays until a repair or a new snapshot, so every later session
  // sees it too.
  const auto [first, inserted] = diverge_sessions_.try_emplace({i, shard.value()}, index);
  if (!inserted && first->second != index) return;
  if (!diverge_rng_.chance(profile_.diverge_probability)) return;
  Result<std::shared_ptr<const StateCapture>> capture = state.capture();
  if (!capture.is_ok()) return;
  const ShardDigest digest = (*capture)->digest();
  std::vector<std::uint32_t> filled;
  for (std::uint32_t b = 0; b < kDigestBuckets; ++b) {
    if (digest.buckets[b] != 0) filled.push_back(b);
  }
  if (filled.empty()) return;
  const std::vector<std::uint32_t> bucket = {filled[diverge_rng_.uniform(filled.size())]};
  // The bucket's export from an empty replica at the same index: replacing
  // it drops the bucket's keys (and resets the version floor).
  StorageOptions empty_options;  // in memory
  empty_options.mode = StorageMode::kReplicated;
  Result<std::unique_ptr<StorageEngine>> empty = StorageEngine::open(empty_options);
  Status s = empty.status();
  if (s.is_ok() && state.last_applied_index() > LogIndex(0)) {
    s = (*empty)->apply(state.last_applied_index(), std::string()).status();
  }
  Result<std::shared_ptr<const StateCapture>> blank =
      s.is_ok() ? (*empty)->capture() : Result<std::shared_ptr<const StateCapture>>(s);
  Result<std::vector<std::string>> chunks =
      blank.is_ok() ? (*blank)->export_buckets(bucket, 1u << 20)
                    : Result<std::vector<std::string>>(blank.status());
  s = chunks.is_ok() ? state.replace_buckets(bucket, *chunks) : chunks.status();
  if (s.is_ok()) ++divergences_;
  trace_.note(scheduler_.now(),
              fmt::format("diverge {} shard {} before verify digest {}: bucket {} of {} -> {}",
                          slots_[i].id.str(), shard.value(), round, bucket[0], filled.size(),
                          s.is_ok() ? "emptied" : s.to_string()));
}

void ClusterNodes::fail_next_sync(std::uint32_t i) {
  slots_[i].disk->fail_next(testing::FaultOp::kSync);
  trace_.note(scheduler_.now(), fmt::format("disk fault: the next fsync of {} fails",
                                            slots_[i].id.str()));
}

}  // namespace nodenomad::sim_cluster
