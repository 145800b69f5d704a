// raft_memory_bench: what replication costs in memory, counted by a
// replaced global operator new/delete (every heap byte this process holds,
// attributed to the log stores or to everything else).
//
//   raft_memory_bench [--entries N] [--payload-bytes N] [--lags A,B,...]
//                     [--inflight-bytes-limits A,B,...] [--dir PARENT] [--quick]
//
// Figure 1, raft_memory_inflight: bytes per in-flight entry. A 3-node group
// over MemoryLogStores, then over FileLogStores (in a fresh directory under
// --dir, default /tmp, removed at exit); the leader is handed --entries
// proposals that its
// followers do not acknowledge (their messages wait in the queue). The heap
// is sampled before the proposals, after them (the entries wait in the
// engine for the Ready), after the Ready cycle (entries in the log store,
// copies in the append messages, what the engine itself keeps), and after
// the messages are gone; each difference is divided by --entries.
//
// Figure 2, raft_memory_lag: the peak with a lagging follower. n3 is cut off
// while n1 and n2 commit LAG entries; then n3 is reconnected and caught up.
// The peak of the heap outside the log stores during the catch-up, above
// where it stood before, must be set by the flow-control limits
// (max_inflight_bytes, max_append_bytes, max_apply_bytes_per_ready), not by
// the lag: it is measured for every lag in --lags and every limit in
// --inflight-bytes-limits. The log stores themselves grow with the log, as
// any log must; they are reported apart. docs/benchmarks.md explains the
// fields.
//
// Valgrind's memcheck and ASan bring their own operator new, which this
// file's inlined operator delete does not know: run it without them.
#include <fmt/format.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "bench_util.hpp"

// --- heap accounting ----------------------------------------------------------

namespace {

// Each block carries a 16-byte header (its size and its category) in front
// of what the caller sees, which keeps malloc's 16-byte alignment.
constexpr std::size_t kHeaderBytes = 16;

// Who a heap block is charged to: the log stores (what their mutations
// keep), the node the driver was calling into when it was allocated (its
// engine's state, the messages it sent, its Readies), or the driver itself.
constexpr std::uint64_t kDriver = 0;
constexpr std::uint64_t kLogStore = 1;
constexpr std::uint64_t kFirstNode = 2;
constexpr std::uint64_t kCategories = 8;

struct HeapCounters {
  std::atomic<std::int64_t> live[kCategories] = {};
  std::atomic<std::int64_t> peak[kCategories] = {};
  // Everything but the log stores, and its peak.
  std::atomic<std::int64_t> live_outside_stores{0};
  std::atomic<std::int64_t> peak_outside_stores{0};
};

HeapCounters g_heap;
std::atomic<std::uint64_t> g_category{kDriver};

void raise_peak(std::atomic<std::int64_t>& peak, std::int64_t value) {
  if (value > peak.load(std::memory_order_relaxed)) peak.store(value, std::memory_order_relaxed);
}

void* counted_alloc(std::size_t size) {
  void* base = std::malloc(size + kHeaderBytes);
  if (base == nullptr) throw std::bad_alloc();
  const std::uint64_t category = g_category.load(std::memory_order_relaxed);
  auto* header = static_cast<std::uint64_t*>(base);
  header[0] = size;
  header[1] = category;
  const auto bytes = static_cast<std::int64_t>(size);
  raise_peak(g_heap.peak[category],
             g_heap.live[category].fetch_add(bytes, std::memory_order_relaxed) + bytes);
  if (category != kLogStore) {
    raise_peak(g_heap.peak_outside_stores,
               g_heap.live_outside_stores.fetch_add(bytes, std::memory_order_relaxed) + bytes);
  }
  return static_cast<char*>(base) + kHeaderBytes;
}

void counted_free(void* p) noexcept {
  if (p == nullptr) return;
  char* base = static_cast<char*>(p) - kHeaderBytes;
  const auto* header = reinterpret_cast<const std::uint64_t*>(base);
  const auto bytes = static_cast<std::int64_t>(header[0]);
  g_heap.live[header[1]].fetch_sub(bytes, std::memory_order_relaxed);
  if (header[1] != kLogStore) {
    g_heap.live_outside_stores.fetch_sub(bytes, std::memory_order_relaxed);
  }
  std::free(base);
}

}  // namespace

void* operator new(std::size_t size) { return counted_alloc(size); }
void* operator new[](std::size_t size) { return counted_alloc(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  try {
    return counted_alloc(size);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  return operator new(size, std::nothrow);
}
void operator delete(void* p) noexcept { counted_free(p); }
void operator delete[](void* p) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::size_t) noexcept { counted_free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { counted_free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { counted_free(p); }

namespace nodenomad::raft_bench {
namespace {

std::int64_t live_outside_stores() { return g_heap.live_outside_stores.load(); }
std::int64_t live_store() { return g_heap.live[kLogStore].load(); }
std::int64_t live_node(int position) { return g_heap.live[kFirstNode + position].load(); }
std::int64_t peak_node(int position) { return g_heap.peak[kFirstNode + position].load(); }
std::int64_t peak_outside_stores() { return g_heap.peak_outside_stores.load(); }
void reset_peaks() {
  for (std::uint64_t c = 0; c < kCategories; ++c) g_heap.peak[c].store(g_heap.live[c].load());
  g_heap.peak_outside_stores.store(live_outside_stores());
}

// Charges what is allocated in its lifetime to `category`.
class CategoryScope {
 public:
  explicit CategoryScope(std::uint64_t category) : previous_(g_category.exchange(category)) {}
  ~CategoryScope() { g_category.store(previous_); }
  CategoryScope(const CategoryScope&) = delete;
  CategoryScope& operator=(const CategoryScope&) = delete;

 private:
  std::uint64_t previous_;
};

// What the benchmark itself asks of node `position` (proposals, ticks) is
// that node's, as is what the driver does inside it.
CategoryScope as_node(int position) { return CategoryScope(kFirstNode + position); }

// Forwards to a store, charging what its mutations keep to kLogStore. Reads
// hand out copies, which belong to whoever asked: they stay kOther.
class AttributedStore final : public LogStoreWrapper {
 public:
  using LogStoreWrapper::LogStoreWrapper;
  Status append(std::span<const Entry> entries) override {
    const CategoryScope scope(kLogStore);
    return LogStoreWrapper::append(entries);
  }
  Status truncate_suffix(LogIndex from) override {
    const CategoryScope scope(kLogStore);
    return LogStoreWrapper::truncate_suffix(from);
  }
  Status set_hard_state(const HardState& state) override {
    const CategoryScope scope(kLogStore);
    return LogStoreWrapper::set_hard_state(state);
  }
  Status compact(const SnapshotMeta& meta) override {
    const CategoryScope scope(kLogStore);
    return LogStoreWrapper::compact(meta);
  }
  Status install_snapshot(const SnapshotMeta& meta) override {
    const CategoryScope scope(kLogStore);
    return LogStoreWrapper::install_snapshot(meta);
  }
  Result<LogIndex> sync() override {
    const CategoryScope scope(kLogStore);
    return LogStoreWrapper::sync();
  }
};

struct Options {
  std::uint64_t entries = 0;
  std::uint64_t payload_bytes = 0;
  std::vector<std::uint64_t> lags;
  std::vector<std::uint64_t> inflight_limits;
  std::string parent_dir;
};

std::vector<std::uint64_t> parse_list(const std::string& name, const std::string& text) {
  std::vector<std::uint64_t> out;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const std::size_t comma = std::min(text.find(',', pos), text.size());
    const std::string item = text.substr(pos, comma - pos);
    char* end = nullptr;
    const unsigned long long v = std::strtoull(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v == 0) {
      Flags::usage_error(fmt::format("--{} takes positive integers separated by commas", name));
    }
    out.push_back(v);
    pos = comma + 1;
  }
  return out;
}

Options parse_options(int argc, char** argv) {
  const Flags flags(argc, argv,
                    {"entries", "payload-bytes", "lags", "inflight-bytes-limits", "dir"});
  Options o;
  o.entries = flags.number("entries", 100'000, 10'000);
  o.payload_bytes = flags.number("payload-bytes", 100, 100);
  o.lags = parse_list("lags", flags.text("lags", flags.quick() ? "10000,40000"
                                                                : "100000,300000,1000000"));
  o.inflight_limits = parse_list(
      "inflight-bytes-limits",
      flags.text("inflight-bytes-limits", flags.quick() ? "1048576" : "4194304,33554432"));
  o.parent_dir = flags.text("dir", "/tmp");
  if (o.entries == 0 || o.payload_bytes == 0) {
    Flags::usage_error("--entries and --payload-bytes must be positive");
  }
  return o;
}

ClusterOptions attributed_cluster(std::uint64_t inflight_limit) {
  ClusterOptions co;
  co.base.max_inflight_bytes = inflight_limit;
  co.wrap_store = [](std::unique_ptr<LogStore> inner) -> std::unique_ptr<LogStore> {
    return std::make_unique<AttributedStore>(std::move(inner));
  };
  co.on_enter_node = [](int position) {
    g_category.store(position < 0 ? kDriver : kFirstNode + static_cast<std::uint64_t>(position));
  };
  return co;
}

double per_entry(std::int64_t bytes, std::uint64_t entries) {
  return static_cast<double>(bytes) / static_cast<double>(entries);
}

std::uint64_t non_negative(std::int64_t bytes) {
  return static_cast<std::uint64_t>(std::max<std::int64_t>(bytes, 0));
}

// Figure 1: see the file comment. The leader is n1, heap category node 0.
void measure_inflight(const Options& o, StoreKind store, const std::string& dir) {
  ClusterOptions co = attributed_cluster(RaftConfig{}.max_inflight_bytes);
  co.store = store;
  co.dir = dir;
  BenchCluster cluster(std::move(co));
  const NodeId leader = bench_node(1);
  cluster.elect(leader);
  RaftEngine& engine = cluster.engine(leader);
  const std::string payload(o.payload_bytes, 'm');

  const std::int64_t leader0 = live_node(0);
  const std::int64_t store0 = live_store();
  {
    const auto scope = as_node(0);
    for (std::uint64_t i = 0; i < o.entries; ++i) {
      check(engine.propose(payload).status(), "propose");
    }
  }
  const std::int64_t leader1 = live_node(0);
  // One Ready cycle on the leader only: its appends wait in the queue, so
  // nothing is acknowledged.
  cluster.process_ready(cluster.node(leader));
  const std::int64_t leader2 = live_node(0);
  const std::int64_t store2 = live_store();
  const std::size_t messages = cluster.queue().size();
  std::vector<Message> wire;
  wire.swap(cluster.queue());
  wire.clear();
  wire.shrink_to_fit();
  const std::int64_t leader3 = live_node(0);
  const std::optional<PeerProgress> follower = engine.progress(bench_node(2));

  // The appends were lost in transit; a heartbeat starts the resend, and
  // once everything commits the engine must hold nothing per entry.
  for (int round = 0; engine.commit_index() < engine.last_index(); ++round) {
    if (round > 1000) fail("the in-flight entries never committed");
    {
      const auto scope = as_node(0);
      engine.tick();
    }
    cluster.settle();
  }
  const std::int64_t leader4 = live_node(0);

  JsonLine("raft_memory_inflight")
      .add("log_store", store_kind_name(store))
      .add("entries", o.entries)
      .add("payload_bytes", o.payload_bytes)
      .add("followers", 2)
      .add("append_messages", static_cast<std::uint64_t>(messages))
      .add("engine_bytes_per_entry_before_ready", per_entry(leader1 - leader0, o.entries))
      .add("engine_bytes_per_entry_after_ready", per_entry(leader3 - leader0, o.entries))
      .add("log_store_bytes_per_entry", per_entry(store2 - store0, o.entries))
      .add("append_message_bytes_per_entry_per_follower",
           per_entry(leader2 - leader3, o.entries * 2))
      .add("leader_bytes_per_entry", per_entry(leader3 - leader0 + store2 - store0, o.entries))
      .add("follower_inflight_messages", follower ? follower->inflight_messages : 0u)
      .add("follower_inflight_bytes", follower ? follower->inflight_bytes : 0)
      .add("engine_bytes_per_entry_after_commit", per_entry(leader4 - leader0, o.entries))
      .print();
}

// Commits `lag` entries on n1 and n2 while n3 is cut off.
void build_lag(BenchCluster& cluster, std::uint64_t lag, const std::string& payload) {
  constexpr std::uint64_t kWindow = 20'000;
  RaftEngine& leader = cluster.engine(bench_node(1));
  const BenchNode& leader_node = cluster.node(bench_node(1));
  const std::uint64_t target = leader_node.applied_commands + lag;
  std::uint64_t proposed = leader_node.applied_commands;
  for (std::uint64_t round = 0; leader_node.applied_commands < target; ++round) {
    if (round > 100 * (lag + 1000)) fail("building the lag made no progress");
    {
      const auto scope = as_node(0);
      while (proposed < target && proposed - leader_node.applied_commands < kWindow) {
        check(leader.propose(payload).status(), "propose");
        ++proposed;
      }
    }
    cluster.process_all_ready();
    cluster.deliver_all();
  }
  cluster.settle();
}

struct CatchUp {
  double seconds = 0;
  std::uint64_t max_inflight_bytes_seen = 0;
  std::uint64_t leader_ticks = 0;
};

// Reconnects n3 and drives the group until n3 holds and has applied the
// leader's whole log; the leader ticks only when nothing else moves.
CatchUp catch_up(BenchCluster& cluster) {
  const NodeId lagging = bench_node(3);
  RaftEngine& leader = cluster.engine(bench_node(1));
  const BenchNode& follower = cluster.node(lagging);
  cluster.reconnect(lagging);
  CatchUp result;
  const Stopwatch watch;
  for (std::uint64_t round = 0; follower.applied < leader.commit_index(); ++round) {
    if (round > 10'000'000) fail("the lagging follower never caught up");
    const bool readied = cluster.process_all_ready();
    if (cluster.deliver_all() == 0 && !readied) {
      const auto scope = as_node(0);
      leader.tick();
      ++result.leader_ticks;
    }
    if (const std::optional<PeerProgress> p = leader.progress(lagging)) {
      result.max_inflight_bytes_seen = std::max(result.max_inflight_bytes_seen, p->inflight_bytes);
    }
  }
  result.seconds = watch.seconds();
  return result;
}

// Figure 2: see the file comment. Node categories 0, 1, 2 are the leader n1,
// the follower in sync n2 and the lagging follower n3.
void measure_lag(const Options& o, std::uint64_t lag, std::uint64_t inflight_limit) {
  RaftConfig limits;
  limits.max_inflight_bytes = inflight_limit;
  BenchCluster cluster(attributed_cluster(inflight_limit));
  cluster.elect(bench_node(1));
  cluster.isolate(bench_node(3));
  build_lag(cluster, lag, std::string(o.payload_bytes, 'l'));
  const std::uint64_t behind =
      cluster.engine(bench_node(1)).last_index() - cluster.engine(bench_node(3)).last_index();

  const std::int64_t node_before[3] = {live_node(0), live_node(1), live_node(2)};
  const std::int64_t outside_before = live_outside_stores();
  const std::int64_t store_before = live_store();
  reset_peaks();
  const CatchUp c = catch_up(cluster);

  JsonLine("raft_memory_lag")
      .add("lag_entries", behind)
      .add("payload_bytes", o.payload_bytes)
      .add("max_inflight_bytes", limits.max_inflight_bytes)
      .add("max_inflight_messages", limits.max_inflight_messages)
      .add("max_append_bytes", limits.max_append_bytes)
      .add("max_apply_bytes_per_ready", limits.max_apply_bytes_per_ready)
      .add("leader_peak_bytes", non_negative(peak_node(0) - node_before[0]))
      .add("in_sync_follower_peak_bytes", non_negative(peak_node(1) - node_before[1]))
      .add("lagging_follower_peak_bytes", non_negative(peak_node(2) - node_before[2]))
      .add("process_peak_bytes", non_negative(peak_outside_stores() - outside_before))
      .add("leader_peak_over_inflight_limit",
           static_cast<double>(peak_node(0) - node_before[0]) /
               static_cast<double>(limits.max_inflight_bytes + limits.max_append_bytes))
      .add("max_inflight_bytes_seen", c.max_inflight_bytes_seen)
      .add("log_store_bytes_before", non_negative(store_before))
      .add("log_store_bytes_after", non_negative(live_store()))
      .add("catch_up_seconds", c.seconds)
      .add("leader_ticks", c.leader_ticks)
      .print();
}

int run(int argc, char** argv) {
  const Options o = parse_options(argc, argv);
  quiet_routine_logs();
  measure_inflight(o, StoreKind::kMemory, "");
  {
    const ScratchDir scratch(o.parent_dir, "nodenomad-raft-memory");
    measure_inflight(o, StoreKind::kFile, scratch.path());
  }
  for (std::uint64_t limit : o.inflight_limits) {
    for (std::uint64_t lag : o.lags) measure_lag(o, lag, limit);
  }
  return 0;
}

}  // namespace
}  // namespace nodenomad::raft_bench

int main(int argc, char** argv) { return nodenomad::raft_bench::run(argc, argv); }
