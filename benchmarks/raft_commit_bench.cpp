// raft_commit_bench: commit throughput of an in-process 3-node Raft group,
// one thread driving all three engines through an in-memory message queue.
//
//   raft_commit_bench [--entries N] [--in-flight N] [--payload-bytes N]
//                     [--log-store memory|file] [--dir PARENT] [--nodes N]
//                     [--max-append-bytes N] [--entry-cache-bytes N] [--repetitions N]
//                     [--compact-every N] [--fsync-probe-seconds S] [--quick]
//
// The leader keeps --in-flight proposals of --payload-bytes each outstanding
// (proposed, not yet committed): every round of the driver it tops the
// window up, runs one Ready cycle on every node and delivers every queued
// message. An entry counts once the leader hands it out as committed. The
// figure is committed entries per second of wall time (and per second of
// this thread's CPU time, which a busy machine does not inflate). Every
// --compact-every committed entries each node drops its log up to what all
// nodes have applied, as a long-running host keeps its log bounded (0: the
// logs grow for the whole run, and the heap's growth is measured too).
//
// --log-store file puts each node's FileLogStore under a fresh directory in
// --dir (default /tmp), removed at exit, with a real fdatasync per Ready
// that needs one; the run also measures the disk's raw fdatasync rate in the
// same directory, since that rate bounds the throughput only through the
// number of entries each fsync makes durable. Without --log-store both
// stores run. docs/benchmarks.md explains every field.
#include <fmt/format.h>

#include <string>
#include <vector>

#include "bench_util.hpp"

namespace nodenomad::raft_bench {
namespace {

struct Options {
  std::uint64_t entries = 0;
  std::uint64_t in_flight = 0;
  std::uint64_t payload_bytes = 0;
  std::uint64_t max_append_bytes = 0;
  std::uint64_t entry_cache_bytes = 0;  // RaftConfig's; 0 turns the cache off
  std::uint64_t repetitions = 0;
  std::uint64_t compact_every = 0;
  int nodes = 3;
  std::vector<StoreKind> stores;
  std::string parent_dir;
  double fsync_probe_seconds = 0;
};

Options parse_options(int argc, char** argv) {
  const Flags flags(argc, argv,
                    {"entries", "in-flight", "payload-bytes", "log-store", "dir", "nodes",
                     "max-append-bytes", "entry-cache-bytes", "repetitions",
                     "fsync-probe-seconds", "compact-every"});
  Options o;
  o.entries = flags.number("entries", 2'000'000, 200'000);
  o.in_flight = flags.number("in-flight", 20'000, 20'000);
  o.payload_bytes = flags.number("payload-bytes", 100, 100);
  o.max_append_bytes = flags.number("max-append-bytes", RaftConfig{}.max_append_bytes,
                                    RaftConfig{}.max_append_bytes);
  o.entry_cache_bytes = flags.number("entry-cache-bytes", RaftConfig{}.entry_cache_bytes,
                                     RaftConfig{}.entry_cache_bytes);
  o.repetitions = flags.number("repetitions", 3, 1);
  o.compact_every = flags.number("compact-every", 200'000, 50'000);
  o.nodes = static_cast<int>(flags.number("nodes", 3, 3));
  o.parent_dir = flags.text("dir", "/tmp");
  o.fsync_probe_seconds = flags.real("fsync-probe-seconds", 1.0, 0.1);
  if (flags.has("log-store")) {
    o.stores.push_back(parse_store_kind(flags.text("log-store", "")));
  } else {
    o.stores = {StoreKind::kMemory, StoreKind::kFile};
  }
  if (o.entries == 0 || o.in_flight == 0 || o.payload_bytes == 0 || o.repetitions == 0 ||
      o.nodes < 1 || o.max_append_bytes == 0) {
    Flags::usage_error("--entries, --in-flight, --payload-bytes, --repetitions, "
                       "--max-append-bytes and --nodes must be positive");
  }
  return o;
}

struct RunResult {
  std::uint64_t committed = 0;
  double seconds = 0;
  double cpu_seconds = 0;
  std::uint64_t fsyncs = 0;
  std::uint64_t leader_readies = 0;
  std::uint64_t driver_rounds = 0;
  std::uint64_t busy_answers = 0;
};

// A payload that is not one repeated byte, so nothing downstream can
// compress or special-case it.
std::string make_payload(std::uint64_t bytes) {
  std::string payload(bytes, '\0');
  for (std::size_t i = 0; i < payload.size(); ++i) {
    payload[i] = static_cast<char>('a' + (i * 7) % 26);
  }
  return payload;
}

// Proposes until `in_flight` proposals are outstanding; false when the
// engine pushed back (max_uncommitted_bytes), which just ends this top-up.
bool top_up(RaftEngine& leader, const BenchNode& leader_node, const std::string& payload,
            const Options& o, std::uint64_t& proposed, RunResult& result) {
  while (proposed < o.entries && proposed - leader_node.applied_commands < o.in_flight) {
    Result<ProposeResult> r = leader.propose(payload);
    if (!r.is_ok()) {
      if (!r.status().is(StatusCode::kBusy)) check(r.status(), "propose");
      ++result.busy_answers;
      return false;
    }
    ++proposed;
  }
  return true;
}

// Drops every node's log up to the lowest index all nodes have applied, as
// a long-running host does (its log is bounded; no follower lags here, so
// none ever needs a snapshot).
void compact_all(BenchCluster& cluster) {
  LogIndex floor = cluster.node(bench_node(1)).applied;
  for (auto& [id, n] : cluster.nodes()) floor = std::min(floor, n.applied);
  for (auto& [id, n] : cluster.nodes()) {
    check(n.engine->compact(std::min(floor, n.engine->last_index())), "compact");
  }
}

RunResult run_once(const Options& o, StoreKind store, const std::string& dir) {
  ClusterOptions co;
  co.node_count = o.nodes;
  co.store = store;
  co.dir = dir;
  co.base.max_append_bytes = o.max_append_bytes;
  co.base.entry_cache_bytes = o.entry_cache_bytes;
  BenchCluster cluster(std::move(co));
  const NodeId leader_id = bench_node(1);
  cluster.elect(leader_id);
  RaftEngine& leader = cluster.engine(leader_id);
  const BenchNode& leader_node = cluster.node(leader_id);
  const std::string payload = make_payload(o.payload_bytes);

  RunResult result;
  const std::uint64_t fsyncs_before = cluster.fsyncs();
  const std::uint64_t readies_before = leader_node.readies;
  std::uint64_t proposed = 0;
  std::uint64_t next_compaction = o.compact_every;
  // Each round moves every batch one step along; a stuck pipeline is a bug,
  // so the rounds are bounded far above what progress needs.
  const std::uint64_t max_rounds = 100 * (o.entries + 1000);
  const Stopwatch watch;
  while (leader_node.applied_commands < o.entries) {
    (void)top_up(leader, leader_node, payload, o, proposed, result);
    cluster.process_all_ready();
    cluster.deliver_all();
    if (o.compact_every > 0 && leader_node.applied_commands >= next_compaction) {
      compact_all(cluster);
      next_compaction += o.compact_every;
    }
    if (++result.driver_rounds > max_rounds) fail("commit pipeline made no progress");
  }
  result.seconds = watch.seconds();
  result.cpu_seconds = watch.cpu_seconds();
  result.committed = leader_node.applied_commands;
  result.fsyncs = cluster.fsyncs() - fsyncs_before;
  result.leader_readies = leader_node.readies - readies_before;
  return result;
}

// The disk's own rate of small durable appends: 4 KiB appended then
// fdatasync'ed, repeatedly, for `seconds` in `dir`.
void print_raw_fdatasync_rate(const std::string& dir, double seconds) {
  constexpr std::size_t kProbeBytes = 4096;
  Result<std::unique_ptr<WritableFile>> file = PosixFileSystem::instance().open_writable(
      join_path(dir, "fsync-probe"), WriteMode::kTruncate);
  check(file.status(), "open the fsync probe");
  const std::string block(kProbeBytes, 'p');
  std::uint64_t syncs = 0;
  const Stopwatch watch;
  while (watch.seconds() < seconds) {
    check((*file)->append(block), "probe append");
    check((*file)->sync(), "probe fdatasync");
    ++syncs;
  }
  const double elapsed = watch.seconds();
  JsonLine("raft_commit_disk")
      .add("dir", dir)
      .add("append_bytes", static_cast<std::uint64_t>(kProbeBytes))
      .add("fdatasyncs", syncs)
      .add("fdatasyncs_per_s", static_cast<double>(syncs) / elapsed)
      .add("fdatasync_ms", elapsed * 1e3 / static_cast<double>(syncs))
      .print();
}

void print_result(const Options& o, StoreKind store, std::uint64_t repetition,
                  const RunResult& r) {
  JsonLine line("raft_commit");
  line.add("log_store", store_kind_name(store))
      .add("nodes", o.nodes)
      .add("payload_bytes", o.payload_bytes)
      .add("entry_cache_bytes", o.entry_cache_bytes)
      .add("in_flight", o.in_flight)
      .add("compact_every", o.compact_every)
      .add("repetition", repetition)
      .add("entries", r.committed)
      .add("seconds", r.seconds)
      .add("entries_per_s", static_cast<double>(r.committed) / r.seconds)
      .add("entries_per_cpu_s", static_cast<double>(r.committed) / r.cpu_seconds)
      .add("entries_per_leader_ready",
           static_cast<double>(r.committed) / static_cast<double>(r.leader_readies))
      .add("busy_answers", r.busy_answers);
  if (store == StoreKind::kFile) {
    // Every node makes every entry durable once: entries_per_fsync is the
    // average number of entries one fdatasync covered.
    line.add("fsyncs", r.fsyncs)
        .add("fsyncs_per_s", static_cast<double>(r.fsyncs) / r.seconds)
        .add("entries_per_fsync", static_cast<double>(r.committed) * o.nodes /
                                      static_cast<double>(std::max<std::uint64_t>(r.fsyncs, 1)));
  }
  line.add("load_avg_1m", load_average_1min()).print();
}

int run(int argc, char** argv) {
  const Options o = parse_options(argc, argv);
  quiet_routine_logs();
  for (StoreKind store : o.stores) {
    for (std::uint64_t rep = 1; rep <= o.repetitions; ++rep) {
      if (store == StoreKind::kMemory) {
        print_result(o, store, rep, run_once(o, store, ""));
        continue;
      }
      const ScratchDir scratch(o.parent_dir, "nodenomad-raft-commit");
      if (rep == 1) print_raw_fdatasync_rate(scratch.path(), o.fsync_probe_seconds);
      print_result(o, store, rep, run_once(o, store, scratch.path()));
    }
  }
  return 0;
}

}  // namespace
}  // namespace nodenomad::raft_bench

int main(int argc, char** argv) { return nodenomad::raft_bench::run(argc, argv); }
