// migration_bench: the shard-migration figures of issue 5, measured on two
// real nodes (two processes, TCP on loopback, real disks).
//
//   migration_bench [--mode move|keys|impact|all] [--dir PARENT] [--target-dir PARENT]
//                   [--keys N | --bytes N] [--value-bytes N]
//                   [--small-keys N] [--small-value-bytes N]
//                   [--chunk BYTES] [--bandwidth BYTES_PER_S] [--in-flight N]
//                   [--client-window N]
//                   [--compact-every N] [--load-fraction F | --load-writes-per-s N]
//                   [--capacity-seconds S] [--before-seconds S] [--after-seconds S]
//                   [--timeline-ms MS]
//                   [--disk-probe-mib N] [--values random|letters] [--pin] [--quick]
//
// This process is node-1. It founds a one-node cluster (one shard,
// replication factor 1) in a fresh directory under --dir (node-2's under
// --target-dir, default the same: another disk, or tmpfs, keeps the two
// nodes' writes from meeting in one disk's queue), starts node-2 by
// running this binary again (`--role target`), loads the shard through the
// Node's callback API (--in-flight writes outstanding), then adds node-2.
// node-1 compacts its log once during the load (--compact-every, default
// 15/16 of the keys), so a move streams a snapshot. Each move is
// create_migration({0}, from, to) polled with get_migration until it ends;
// the stage times are the coordinator's own (stage_ms).
//
//   move    1 GiB of 1 KiB values (--bytes / --value-bytes): the shard goes
//           node-1 -> node-2 and back, unthrottled; MB/s of the move and per
//           stage, and the disk's own sequential write rate with fsync in
//           the same directory (--disk-probe-mib written in 1 MiB blocks).
//   keys    2,000,000 values of 100 bytes (--small-*): keys moved per second.
//   impact  after `move`, node-1 restarted with compaction off: the shard's
//           write capacity (closed loop, random overwrites), then an
//           open-loop write load at --load-fraction of it (or at
//           --load-writes-per-s, a fixed rate, to compare two builds at the
//           same load whatever their capacity measured; at most
//           --client-window outstanding), --before-seconds without a move,
//           then during a move throttled to half the unthrottled streaming
//           rate (or --bandwidth): p50/p99 latency before, during (and per
//           stage) and after, failures, "not applied".
//   all     move, impact, keys.
//
// --pin runs this process (node-1 and the client) on CPU 0 and node-2 on
// CPU 1: each node has a core of its own, as on two machines (the disk is
// still shared). Without it both nodes share every core.
//
// Every figure is one JSON line on stdout; progress goes to stderr.
// docs/benchmarks.md ("migration_bench") explains each field.
#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "migration_bench_support.hpp"

namespace nodenomad::migration_bench {
namespace {

using bench::Flags;
using bench::JsonLine;

constexpr double kMoveTimeoutS = 3600;
// get_migration unanswered this long means node-1 no longer works.
constexpr double kStatusSilenceS = 60;
constexpr double kProgressEveryS = 5;

struct Options {
  std::string mode;
  std::string parent_dir;
  std::string target_dir;
  std::uint64_t keys = 0;
  std::uint64_t value_bytes = 0;
  std::uint64_t small_keys = 0;
  std::uint64_t small_value_bytes = 0;
  std::uint64_t chunk_bytes = 0;
  std::uint64_t bandwidth = 0;  // 0: half the unthrottled streaming rate
  std::uint64_t in_flight = 0;
  std::uint64_t client_window = 0;  // impact's open-loop client
  std::uint64_t compact_every = 0;  // node-1's while loading; 0: 15/16 of the keys
  double load_fraction = 0;
  std::uint64_t load_rate = 0;  // writes/s; 0: load_fraction of the capacity
  double capacity_s = 0;
  double before_s = 0;
  double timeline_s = 0.25;  // the impact timeline's window
  double after_s = 0;
  std::uint64_t disk_probe_mib = 0;
  ValueKind values = ValueKind::kRandomBytes;
  bool quick = false;  // one unthrottled move per cluster, not two
  bool pin = false;    // node-1 (and the client) on CPU 0, node-2 on CPU 1
  // The child's side.
  std::string role;
  std::string node_dir;
  std::string join_address;
};

Options parse_options(int argc, char** argv) {
  const Flags flags(argc, argv,
                    {"mode",
                     "dir",
                     "target-dir",
                     "keys",
                     "bytes",
                     "value-bytes",
                     "small-keys",
                     "small-value-bytes",
                     "chunk",
                     "bandwidth",
                     "in-flight",
                     "client-window",
                     "compact-every",
                     "load-fraction",
                     "load-writes-per-s",
                     "timeline-ms",
                     "capacity-seconds",
                     "before-seconds",
                     "after-seconds",
                     "disk-probe-mib",
                     "values",
                     "role",
                     "node-dir",
                     "join-address"},
                    {"pin"});
  Options o;
  o.mode = flags.text("mode", "all");
  if (o.mode != "move" && o.mode != "keys" && o.mode != "impact" && o.mode != "all") {
    Flags::usage_error(fmt::format("--mode takes move, keys, impact or all, got '{}'", o.mode));
  }
  o.parent_dir = flags.text("dir", "/tmp");
  o.target_dir = flags.text("target-dir", o.parent_dir);
  o.value_bytes = flags.number("value-bytes", 1024, 1024);
  const std::uint64_t bytes = flags.number("bytes", 1ull << 30, 16ull << 20);
  o.keys = flags.has("keys") ? flags.number("keys", 0, 0)
                             : bytes / std::max<std::uint64_t>(o.value_bytes, 1);
  o.small_keys = flags.number("small-keys", 2'000'000, 20'000);
  o.small_value_bytes = flags.number("small-value-bytes", 100, 100);
  o.chunk_bytes = flags.number("chunk", 1u << 20, 1u << 20);
  o.bandwidth = flags.number("bandwidth", 0, 0);
  o.in_flight = flags.number("in-flight", 2048, 512);
  // A shard group holds at most 4096 proposals (ReplicaLimits); a client
  // window beyond it only feeds the node's retry timers.
  o.client_window = flags.number("client-window", 4096, 4096);
  o.compact_every = flags.number("compact-every", 0, 0);
  o.load_fraction = flags.real("load-fraction", 0.5, 0.5);
  o.load_rate = flags.number("load-writes-per-s", 0, 0);
  o.capacity_s = flags.real("capacity-seconds", 5, 0.3);
  o.before_s = flags.real("before-seconds", 10, 0.5);
  o.timeline_s = flags.real("timeline-ms", 250, 250) / 1e3;
  o.after_s = flags.real("after-seconds", 2, 0.2);
  o.disk_probe_mib = flags.number("disk-probe-mib", 256, 16);
  o.quick = flags.quick();
  o.pin = flags.has("pin");
  const std::string values = flags.text("values", "random");
  if (values == "random") {
    o.values = ValueKind::kRandomBytes;
  } else if (values == "letters") {
    o.values = ValueKind::kRandomLetters;
  } else {
    Flags::usage_error(fmt::format("--values takes random or letters, got '{}'", values));
  }
  o.role = flags.text("role", "");
  o.node_dir = flags.text("node-dir", "");
  o.join_address = flags.text("join-address", "");
  if (!(o.timeline_s > 0)) Flags::usage_error("--timeline-ms must be above 0");
  if (o.keys == 0 || o.small_keys == 0 || o.value_bytes == 0 || o.small_value_bytes == 0 ||
      o.in_flight == 0 || o.client_window == 0) {
    Flags::usage_error("--keys, --small-keys, the value sizes and --in-flight must be above 0");
  }
  return o;
}

// --- node-2: the child process ----------------------------------------------------

// node-2's main: `--role target --node-dir D --join-address A --chunk C`.
// It never compacts its log: no move needs it to (its replica's log starts
// at the snapshot it received), and a compaction inside a measured window
// would stall it (see docs/benchmarks.md).
int run_target(const std::string& node_dir, const std::string& join_address,
               std::uint64_t chunk_bytes) {
  NodeOptions n = node_options(node2(), node_dir, chunk_bytes, kNeverCompact);
  n.join = true;
  n.initial_members = {{node1(), join_address}};
  Result<std::unique_ptr<NodeHost>> host = NodeHost::open(std::move(n), "127.0.0.1:0");
  if (!host.is_ok()) {
    std::fprintf(stderr, "node-2 cannot start: %s\n", host.status().to_string().c_str());
    return 1;
  }
  std::printf("ready %u %d\n", static_cast<unsigned>((*host)->port()),
              static_cast<int>((*host)->loop_tid()));
  std::fflush(stdout);
  std::string line;
  while (std::getline(std::cin, line) && line != "quit") {
    if (line != "stats") continue;
    const auto [stall_ms, stalls] = (*host)->probe().take();
    const double sent = metric_value((*host)->node().metrics_text(),
                                     "nodenomad_migration_snapshot_bytes_sent_total");
    std::printf("stats %.0f %.3f %llu %d\n", sent, stall_ms,
                static_cast<unsigned long long>(stalls), (*host)->node().is_ready() ? 1 : 0);
    std::fflush(stdout);
  }
  host->reset();
  return 0;
}

// --- the disk's own rate ------------------------------------------------------------

// Writes `mib` MiB in 1 MiB blocks to a fresh file in `dir`, then fsyncs it.
void probe_disk(const std::string& dir, std::uint64_t mib, const std::string& label) {
  const std::string path = join_path(dir, "disk-probe");
  Result<std::unique_ptr<WritableFile>> file =
      PosixFileSystem::instance().open_writable(path, WriteMode::kTruncate);
  check(file.status(), "open the disk probe file");
  std::string block(1u << 20, 'x');
  for (std::size_t i = 0; i < block.size(); ++i)
    block[i] = static_cast<char>('a' + (i * 7919) % 26);
  const auto start = SteadyClock::now();
  for (std::uint64_t i = 0; i < mib; ++i) check((*file)->append(block), "disk probe write");
  const double write_s = seconds_since(start);
  check((*file)->sync(), "disk probe fsync");
  const double total_s = seconds_since(start);
  check((*file)->close(), "disk probe close");
  check(PosixFileSystem::instance().remove(path), "disk probe remove");
  const double mb = static_cast<double>(mib << 20) / 1e6;
  JsonLine("migration_disk")
      .add("label", label)
      .add("mib", mib)
      .add("write_s", write_s)
      .add("fsync_s", total_s - write_s)
      .add("mb_per_s", mb / total_s)
      .add("page_cache_mb_per_s", mb / write_s)
      .add("load_avg", bench::load_average_1min())
      .print();
}

// --- loading ------------------------------------------------------------------------

// Closed loop: keys [0, keys) written once, `in_flight` outstanding. A
// write whose outcome is unknown (kTimeout) is written again.
void load_shard(Cluster& c, std::uint64_t keys, std::uint64_t value_bytes, std::uint64_t in_flight,
                const std::string& label) {
  WriteClient client(c.node(), value_bytes, c.values(), /*retry_unknown=*/true);
  c.source().probe().take();
  (void)reset_peak_rss(::getpid());
  const auto start = SteadyClock::now();
  auto last_report = start;
  for (std::uint64_t i = 0; i < keys; ++i) {
    client.wait_below(in_flight);
    client.put(i, SteadyClock::now(), -1);
    if (seconds_since(last_report) > 10) {
      last_report = SteadyClock::now();
      std::fprintf(stderr, "[%s] loaded %llu of %llu keys (%.0f/s)\n", label.c_str(),
                   static_cast<unsigned long long>(client.ok()),
                   static_cast<unsigned long long>(keys),
                   static_cast<double>(client.ok()) / seconds_since(start));
    }
  }
  client.drain(600);
  const double s = seconds_since(start);
  const auto [stall_ms, stalls] = c.source().probe().take();
  JsonLine("migration_load")
      .add("label", label)
      .add("keys", keys)
      .add("value_bytes", value_bytes)
      .add("in_flight", in_flight)
      .add("seconds", s)
      .add("puts_per_s", static_cast<double>(keys) / s)
      .add("value_mb_per_s", static_cast<double>(keys * value_bytes) / 1e6 / s)
      .add("not_applied", client.not_applied())
      .add("unknown_retried", client.unknown_retried())
      .add("failed", client.failed())
      .add("compact_every", c.compact_every())
      .add("loop_stall_max_ms", stall_ms)
      .add("loop_stalls_over_50ms", stalls)
      .add("rss_peak_mib", proc_status_mib(::getpid(), "VmHWM"))
      .add("load_avg", bench::load_average_1min())
      .print();
  if (client.failed() != 0) fail("loading failed: " + client.first_failure());
}

// --- one move -----------------------------------------------------------------------

// Taken when a stage is first seen: the CPU so far, and the loops' worst
// stalls since the previous mark (so they belong to the previous stage).
struct CpuMark {
  MigrationStage stage;
  double t = 0;
  CpuByRole node1;
  CpuByRole node2;
  double node1_stall_ms = 0;
  double node2_stall_ms = 0;
  double mono_s = 0;  // CLOCK_MONOTONIC, to match a `perf record -k CLOCK_MONOTONIC`
};

using Samples = std::vector<std::pair<double, std::uint64_t>>;  // (seconds, bytes)

// What polling one move saw.
struct MoveTrace {
  std::string op;
  MigrationStatus status;
  std::vector<CpuMark> marks;
  Samples wire;   // the source's TCP bytes to the target, every 10 ms
  Samples acked;  // acknowledged snapshot bytes, as get_migration reports them
  double total_s = 0;
};

struct MoveFigures {
  MigrationStatus status;
  double snapshot_bytes = 0;  // counted by the source as it sent them
  double wire_bytes = 0;      // everything the source's TCP carried to the target
  // Streaming, from the wire samples between 2% and 98% of the bytes (all
  // traffic: without client writes nearly all of it is snapshot chunks).
  double wire_stream_mb_per_s = 0;
  double stream_s = 0;         // wire_bytes / wire_stream_mb_per_s
  double stream_mb_per_s = 0;  // snapshot_bytes / stream_s
  // From the acknowledged bytes (the coordinator refreshes them every
  // 100 ms; not disturbed by other traffic).
  double acked_mb_per_s = 0;
  double total_s = 0;  // create_migration to the end, seen by polling
};

// MB/s between the samples where a byte count first reached 2% and 98% of
// `total`.
double stream_rate(const Samples& samples, double total) {
  if (samples.size() < 2 || total <= 0) return 0;
  double lo_t = -1, hi_t = -1, lo_b = 0, hi_b = 0;
  for (const auto& [t, b] : samples) {
    if (lo_t < 0 && static_cast<double>(b) >= 0.02 * total) lo_t = t, lo_b = static_cast<double>(b);
    if (hi_t < 0 && static_cast<double>(b) >= 0.98 * total) hi_t = t, hi_b = static_cast<double>(b);
  }
  return hi_t > lo_t ? (hi_b - lo_b) / 1e6 / (hi_t - lo_t) : 0;
}

CpuMark take_mark(Cluster& c, MigrationStage stage, SteadyClock::time_point start) {
  CpuMark m{stage,
            seconds_since(start),
            thread_cpu(::getpid(), c.source().loop_tid()),
            thread_cpu(c.target().pid(), c.child_loop_tid()),
            c.source().probe().take().first,
            c.child_stats().stall_ms,
            0};
  m.mono_s = std::chrono::duration<double>(SteadyClock::now().time_since_epoch()).count();
  return m;
}

// Optional observers of a move: `progress` adds to the line printed on
// stderr every kProgressEveryS; `on_stage` hears each stage when the
// polling first sees it (the end included).
struct MoveHooks {
  std::function<std::string()> progress;
  std::function<void(MigrationStage)> on_stage;
};

// Starts the move and polls it (get_migration every 50 ms, the wire every
// 10 ms) until it ends.
MoveTrace poll_move(Cluster& c, const MigrationRequest& request, const std::string& label,
                    const MoveHooks& hooks) {
  const std::function<std::string()>& progress = hooks.progress;
  MoveTrace trace;
  const bool from1 = request.source == node1();
  auto wire = [&] {
    const net::AsioTransportStats s = c.source().transport().stats();
    return from1 ? s.bytes_sent : s.bytes_received;
  };
  const std::uint64_t wire_before = wire();
  const auto start = SteadyClock::now();
  trace.marks.push_back(take_mark(c, MigrationStage::kPrepare, start));
  if (hooks.on_stage) hooks.on_stage(MigrationStage::kPrepare);
  Result<MigrationBatch> batch = await_answer<Result<MigrationBatch>>(
      [&](auto done) { c.node().create_migration(request, done); }, 60, "create_migration");
  check(batch.status(), "create_migration");
  if (batch->operations.size() != 1) fail("create_migration started no operation");
  trace.op = batch->operations.front();
  std::fprintf(stderr, "[%s] %s: shard 0 %s -> %s%s\n", label.c_str(), trace.op.c_str(),
               request.source.str().c_str(), request.target.str().c_str(),
               request.bandwidth_bytes_per_s
                   ? fmt::format(" at {} B/s", request.bandwidth_bytes_per_s).c_str()
                   : "");
  std::future<Result<MigrationStatus>> answer;
  bool asking = false;
  double next_ask = 0, answered_at = 0, next_progress = kProgressEveryS;
  auto extra = [&] { return progress ? "; " + progress() : std::string(); };
  while (true) {
    const double t = seconds_since(start);
    trace.wire.emplace_back(t, wire() - wire_before);
    // A node stopped by a disk error answers get_migration for ever, with
    // the stage it stopped in.
    if (const Status stopped = c.node().failure(); !stopped.ok()) {
      fail(fmt::format("{}: node-1 stopped in stage {}: {}", trace.op,
                       migration_stage_name(trace.status.stage), stopped.to_string()));
    }
    if (t > kMoveTimeoutS || t - answered_at > kStatusSilenceS) {
      fail(fmt::format(
          "{}: no end after {:.0f} s, or no answer from get_migration for {:.0f} s "
          "(stage {}{})",
          trace.op, t, t - answered_at, migration_stage_name(trace.status.stage), extra()));
    }
    if (t >= next_progress) {
      next_progress += kProgressEveryS;
      std::fprintf(stderr, "[%s] %.0f s: %s, %.0f MB acknowledged%s\n", label.c_str(), t,
                   std::string(migration_stage_name(trace.status.stage)).c_str(),
                   static_cast<double>(trace.status.progress.bytes_done) / 1e6, extra().c_str());
    }
    if (asking && answer.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
      asking = false;
      answered_at = t;
      next_ask = t + 0.05;
      Result<MigrationStatus> s = answer.get();
      if (s.is_ok()) {
        if (s->stage == MigrationStage::kTransfer)
          trace.acked.emplace_back(t, s->progress.bytes_done);
        if (s->stage != trace.marks.back().stage) {
          trace.marks.push_back(take_mark(c, s->stage, start));
          if (hooks.on_stage) hooks.on_stage(s->stage);
        }
        trace.status = *s;
        if (migration_stage_terminal(s->stage)) break;
      }
    }
    if (!asking && t >= next_ask) {
      auto asked = std::make_shared<std::promise<Result<MigrationStatus>>>();
      answer = asked->get_future();
      c.node().get_migration(
          trace.op, [asked](Result<MigrationStatus> r) { asked->set_value(std::move(r)); });
      asking = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  trace.total_s = seconds_since(start);
  return trace;
}

void print_stage_cpu(const std::string& label, const std::vector<CpuMark>& marks) {
  for (std::size_t i = 0; i + 1 < marks.size(); ++i) {
    JsonLine line("migration_stage_cpu");
    line.add("label", label)
        .add("stage", migration_stage_name(marks[i].stage))
        .add("wall_s", marks[i + 1].t - marks[i].t)
        .add("mono_start_ms", static_cast<std::uint64_t>(marks[i].mono_s * 1000))
        .add("node1_loop_stall_max_ms", marks[i + 1].node1_stall_ms)
        .add("node2_loop_stall_max_ms", marks[i + 1].node2_stall_ms);
    for (const auto& [role, t] : cpu_delta(marks[i + 1].node1, marks[i].node1)) {
      line.add("node1_" + role + "_cpu_s", t.cpu_s).add("node1_" + role + "_wait_s", t.wait_s);
    }
    for (const auto& [role, t] : cpu_delta(marks[i + 1].node2, marks[i].node2)) {
      line.add("node2_" + role + "_cpu_s", t.cpu_s).add("node2_" + role + "_wait_s", t.wait_s);
    }
    line.print();
  }
}

// The loops' CPU during Prepare and Transfer (the stream starts as soon as
// the learner is in the group, before the coordinator records Transfer),
// as {source, target}.
std::pair<ThreadTime, ThreadTime> streaming_loops(const MoveTrace& trace, bool from1) {
  ThreadTime node1_loop, node2_loop;
  for (std::size_t i = 0; i + 1 < trace.marks.size(); ++i) {
    const MigrationStage st = trace.marks[i].stage;
    if (st != MigrationStage::kTransfer && st != MigrationStage::kPrepare) continue;
    const ThreadTime a = cpu_delta(trace.marks[i + 1].node1, trace.marks[i].node1)["loop"];
    const ThreadTime b = cpu_delta(trace.marks[i + 1].node2, trace.marks[i].node2)["loop"];
    node1_loop = {node1_loop.cpu_s + a.cpu_s, node1_loop.wait_s + a.wait_s};
    node2_loop = {node2_loop.cpu_s + b.cpu_s, node2_loop.wait_s + b.wait_s};
  }
  return from1 ? std::pair{node1_loop, node2_loop} : std::pair{node2_loop, node1_loop};
}

double stage_seconds(const MigrationStatus& s, MigrationStage stage) {
  const auto i = static_cast<std::size_t>(stage) - 1;
  return i < s.stage_ms.size() ? static_cast<double>(s.stage_ms[i]) / 1000.0 : 0.0;
}

double ratio(double a, double b) { return b > 0 ? a / b : 0.0; }

void print_move(Cluster& c, const MigrationRequest& request, const std::string& label,
                const MoveTrace& trace, const MoveFigures& f, bool peaks_reset) {
  const MigrationStatus& s = f.status;
  const double transfer_s = stage_seconds(s, MigrationStage::kTransfer);
  const double total_s =
      static_cast<double>(s.finished_at_ms - std::min(s.finished_at_ms, s.started_at_ms)) / 1000.0;
  const auto [source_loop, target_loop] = streaming_loops(trace, request.source == node1());
  const double busiest_cpu_s = std::max(source_loop.cpu_s, target_loop.cpu_s);
  const auto keys = static_cast<double>(s.progress.keys_total);
  double node1_stall = 0, node2_stall = 0;
  for (const CpuMark& m : trace.marks) {
    node1_stall = std::max(node1_stall, m.node1_stall_ms);
    node2_stall = std::max(node2_stall, m.node2_stall_ms);
  }
  JsonLine("migration_move")
      .add("label", label)
      .add("op", trace.op)
      .add("from", request.source.str())
      .add("to", request.target.str())
      .add("outcome", migration_stage_name(s.stage))
      .add("bandwidth_limit", request.bandwidth_bytes_per_s)
      .add("chunk", c.chunk_bytes())
      .add("keys", s.progress.keys_total)
      .add("data_bytes", s.progress.bytes_total)
      .add("snapshot_bytes", f.snapshot_bytes)
      .add("wire_bytes", f.wire_bytes)
      .add("prepare_s", stage_seconds(s, MigrationStage::kPrepare))
      .add("transfer_s", transfer_s)
      .add("verify_s", stage_seconds(s, MigrationStage::kVerify))
      .add("update_s", stage_seconds(s, MigrationStage::kUpdate))
      .add("cleanup_s", stage_seconds(s, MigrationStage::kCleanup))
      .add("total_s", total_s)
      .add("polled_total_s", f.total_s)
      .add("transfer_mb_per_s", ratio(f.snapshot_bytes / 1e6, transfer_s))
      .add("stream_s", f.stream_s)
      .add("stream_mb_per_s", f.stream_mb_per_s)
      .add("wire_stream_mb_per_s", f.wire_stream_mb_per_s)
      .add("acked_mb_per_s", f.acked_mb_per_s)
      .add("move_mb_per_s", ratio(static_cast<double>(s.progress.bytes_total) / 1e6, total_s))
      .add("source_loop_cpu_s", source_loop.cpu_s)
      .add("source_loop_wait_s", source_loop.wait_s)
      .add("target_loop_cpu_s", target_loop.cpu_s)
      .add("target_loop_wait_s", target_loop.wait_s)
      .add("mb_per_busiest_loop_cpu_s", ratio(f.snapshot_bytes / 1e6, busiest_cpu_s))
      .add("keys_per_busiest_loop_cpu_s", ratio(keys, busiest_cpu_s))
      .add("keys_per_s_stream", ratio(keys, f.stream_s))
      .add("keys_per_s_transfer", ratio(keys, transfer_s))
      .add("keys_per_s_move", ratio(keys, total_s))
      .add("verify_mismatches", s.verify_mismatches)
      .add("bytes_freed", s.bytes_freed)
      .add("node1_rss_peak_mib", proc_status_mib(::getpid(), "VmHWM"))
      .add("node2_rss_peak_mib", proc_status_mib(c.target().pid(), "VmHWM"))
      .add("rss_peaks_reset", peaks_reset)
      .add("node1_loop_stall_max_ms", node1_stall)
      .add("node2_loop_stall_max_ms", node2_stall)
      .add("load_avg", bench::load_average_1min())
      .add("error", s.error)
      .print();
}

// Moves shard 0 from `from` to the other node, prints its figures (one
// migration_stage_cpu line per stage, then migration_move), and fails the
// benchmark unless it ended done.
MoveFigures run_move(Cluster& c, const NodeId& from, std::uint64_t bandwidth,
                     const std::string& label, const MoveHooks& hooks = {}) {
  const MigrationRequest request{
      {ShardId(0)}, from, from == node1() ? node2() : node1(), bandwidth};
  const double sent_before = c.snapshot_bytes_sent(from);
  const bool peaks_reset = reset_peak_rss(::getpid()) && reset_peak_rss(c.target().pid());
  const MoveTrace trace = poll_move(c, request, label, hooks);
  MoveFigures f;
  f.status = trace.status;
  f.total_s = trace.total_s;
  f.snapshot_bytes = c.snapshot_bytes_sent(from) - sent_before;
  f.wire_bytes = static_cast<double>(trace.wire.back().second);
  f.wire_stream_mb_per_s = stream_rate(trace.wire, f.wire_bytes);
  f.stream_s = ratio(f.wire_bytes / 1e6, f.wire_stream_mb_per_s);
  f.stream_mb_per_s = ratio(f.snapshot_bytes / 1e6, f.stream_s);
  f.acked_mb_per_s = stream_rate(trace.acked, f.snapshot_bytes);
  print_stage_cpu(label, trace.marks);
  print_move(c, request, label, trace, f, peaks_reset);
  if (f.status.stage != MigrationStage::kDone) {
    fail(fmt::format("{} ended {}: {}", trace.op, migration_stage_name(f.status.stage),
                     f.status.error));
  }
  return f;
}

// --- client impact ------------------------------------------------------------------

// Closed loop, random overwrites, for --capacity-seconds: the shard's write
// capacity.
double measure_capacity(Cluster& c, const Options& o) {
  WriteClient client(c.node(), o.value_bytes, o.values);
  std::mt19937_64 rng(7);
  const auto start = SteadyClock::now();
  while (seconds_since(start) < o.capacity_s) {
    client.wait_below(o.in_flight);
    client.put(rng() % o.keys, SteadyClock::now(), -1);
  }
  client.drain(120);
  if (client.failed() != 0) fail("the capacity run failed: " + client.first_failure());
  return static_cast<double>(client.ok()) / seconds_since(start);
}

// The client's phases in the impact run: the window before the move, one
// per stage (MigrationStage 1-5), and the window after it.
constexpr int kBeforePhase = 0;
constexpr int kFirstStagePhase = 1;
constexpr int kAfterPhase = 6;
static_assert(kAfterPhase < WriteClient::kPhases);

// Random overwrites on a fixed schedule (`rate` a second) from its own
// thread ("nn-client"), at most `window` outstanding (a client's connection
// pool): beyond it, it falls behind its schedule and is charged for it,
// since latencies run from the scheduled time.
class OpenLoopClient {
 public:
  OpenLoopClient(WriteClient& client, double rate, std::uint64_t window, std::uint64_t keys)
      : client_(client), rate_(rate), window_(window), keys_(keys), thread_([this] { run(); }) {}
  ~OpenLoopClient() { stop(); }
  OpenLoopClient(const OpenLoopClient&) = delete;
  OpenLoopClient& operator=(const OpenLoopClient&) = delete;

  void set_phase(int phase) { phase_ = phase; }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::uint64_t max_behind_ms() const { return behind_ms_.load(); }

 private:
  void run() {
    ::pthread_setname_np(::pthread_self(), "nn-client");
    std::mt19937_64 rng(11);
    const auto start = SteadyClock::now();
    std::uint64_t sent = 0;
    auto due = [&](std::uint64_t n) {
      return start + std::chrono::duration_cast<SteadyClock::duration>(
                         std::chrono::duration<double>(static_cast<double>(n) / rate_));
    };
    while (!stop_.load()) {
      const auto now = SteadyClock::now();
      bool capped = false;
      while (due(sent) <= now && !capped) {
        capped = client_.in_flight() >= window_;
        if (capped) {
          const auto lag = std::chrono::duration_cast<std::chrono::milliseconds>(now - due(sent));
          behind_ms_ =
              std::max<std::uint64_t>(behind_ms_.load(), static_cast<std::uint64_t>(lag.count()));
          break;
        }
        client_.put(rng() % keys_, due(sent), phase_.load());
        ++sent;
      }
      const auto tick = now + std::chrono::milliseconds(1);
      std::this_thread::sleep_until(capped ? tick : std::min(due(sent), tick));
    }
  }

  WriteClient& client_;
  double rate_;
  std::uint64_t window_;
  std::uint64_t keys_;
  std::atomic<int> phase_{0};
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> behind_ms_{0};
  std::thread thread_;
};

void add_latencies(JsonLine& line, const std::string& phase, std::vector<double> ms) {
  const std::size_t n = ms.size();
  const bench::Summary s = bench::summarize(ms);
  const double p999 =
      n == 0 ? 0.0 : ms[std::min(n - 1, static_cast<std::size_t>(0.999 * static_cast<double>(n)))];
  line.add(phase + "_writes", static_cast<std::uint64_t>(n))
      .add(phase + "_p50_ms", s.median)
      .add(phase + "_p99_ms", s.p99)
      .add(phase + "_p999_ms", p999)
      .add(phase + "_max_ms", s.max);
}

// What run_impact measured besides the client's latencies.
struct ImpactRun {
  double capacity = 0;
  double rate = 0;
  double unthrottled_mb_per_s = 0;
  std::uint64_t bandwidth = 0;
  double node1_stall_before_ms = 0;
  double node2_stall_before_ms = 0;
  // The loops' CPU in the window before the move and during it.
  ThreadTime node1_before, node2_before, node1_during, node2_during;
};

// Before and during the move by when each write was pending: a write
// answered before the move was asked for is "before"; one pending at any
// time between the request and the move's end is "during", also when it
// was scheduled just before the request (the move's first steps delay it).
struct BeforeDuring {
  std::vector<double> before, during;
};
BeforeDuring split_by_move(const std::vector<WriteClient::Answered>& timeline,
                           SteadyClock::time_point move_start, SteadyClock::time_point move_end) {
  BeforeDuring out;
  for (const WriteClient::Answered& a : timeline) {
    const auto answered = a.scheduled + std::chrono::duration_cast<SteadyClock::duration>(
                                            std::chrono::duration<double, std::milli>(a.ms));
    if (answered < move_start) {
      out.before.push_back(a.ms);
    } else if (a.scheduled < move_end) {
      out.during.push_back(a.ms);
    }
  }
  return out;
}

void print_impact(const Options& o, const ImpactRun& run, const MoveFigures& moved,
                  WriteClient& client, const OpenLoopClient& open_loop, BeforeDuring split) {
  (void)client.take_latencies_ms(kBeforePhase);  // split by when they were pending instead
  std::vector<double>& before = split.before;
  std::vector<double>& during = split.during;
  std::vector<std::vector<double>> by_stage;
  std::uint64_t failed_during = 0;
  std::uint64_t not_applied_during = 0;
  for (int phase = kFirstStagePhase; phase < kAfterPhase; ++phase) {
    by_stage.push_back(client.take_latencies_ms(phase));
    failed_during += client.failed_in_phase(phase);
    not_applied_during += client.not_applied_in_phase(phase);
  }
  const auto n_before = static_cast<double>(before.size());
  const auto n_during = static_cast<double>(during.size());
  const double before_p99 = bench::summarize(before).p99;
  const double during_p99 = bench::summarize(during).p99;
  JsonLine line("migration_impact");
  line.add("capacity_writes_per_s", run.capacity)
      .add("load_fraction", o.load_fraction)
      .add("offered_writes_per_s", run.rate)
      .add("bandwidth_limit", run.bandwidth)
      .add("unthrottled_stream_mb_per_s", run.unthrottled_mb_per_s)
      .add("during_s", moved.total_s)
      .add("throttled_acked_mb_per_s", moved.acked_mb_per_s);
  add_latencies(line, "before", std::move(before));
  add_latencies(line, "during", std::move(during));
  add_latencies(line, "after", client.take_latencies_ms(kAfterPhase));
  line.add("p99_ratio", ratio(during_p99, before_p99))
      .add("failed_before", client.failed_in_phase(kBeforePhase))
      .add("failed_during", failed_during)
      .add("failed_after", client.failed_in_phase(kAfterPhase))
      .add("not_applied_before", client.not_applied_in_phase(kBeforePhase))
      .add("not_applied_during", not_applied_during)
      .add("not_applied_after", client.not_applied_in_phase(kAfterPhase));
  // The writes scheduled while each stage was the one polling saw.
  for (std::size_t i = 0; i < by_stage.size(); ++i) {
    const auto stage = static_cast<MigrationStage>(i + 1);
    add_latencies(line, std::string(migration_stage_name(stage)), std::move(by_stage[i]));
  }
  line.add("client_window", o.client_window)
      .add("client_max_behind_ms", open_loop.max_behind_ms())
      .add("node1_loop_cpu_us_per_write_before", ratio(run.node1_before.cpu_s * 1e6, n_before))
      .add("node1_loop_cpu_us_per_write_during", ratio(run.node1_during.cpu_s * 1e6, n_during))
      .add("node2_loop_cpu_us_per_write_during", ratio(run.node2_during.cpu_s * 1e6, n_during))
      .add("node1_loop_busy_before",
           ratio(run.node1_before.cpu_s + run.node1_before.wait_s, o.before_s))
      .add("node1_loop_busy_during",
           ratio(run.node1_during.cpu_s + run.node1_during.wait_s, moved.total_s))
      .add("node1_loop_stall_max_ms_before", run.node1_stall_before_ms)
      .add("node2_loop_stall_max_ms_before", run.node2_stall_before_ms)
      .add("pinned", o.pin)
      .add("load_avg", bench::load_average_1min())
      .add("first_failure", client.first_failure())
      .print();
}

// Where in the move the tail sits: per window of scheduled time
// (--timeline-ms, 250), from the start of "before" to the end, the writes
// answered, their p50/p99/max and the stage (stderr; `stage_at` holds when
// polling saw each stage begin).
void print_timeline(std::vector<WriteClient::Answered> timeline, SteadyClock::time_point start,
                    double before_s, double window_s,
                    const std::vector<std::pair<SteadyClock::time_point, MigrationStage>>& stage_at) {
    std::map<long, std::vector<double>> windows;
  for (const WriteClient::Answered& a : timeline) {
    const double t = std::chrono::duration<double>(a.scheduled - start).count();
    if (t >= -before_s) windows[static_cast<long>(std::floor(t / window_s))].push_back(a.ms);
  }
  for (auto& [w, ms] : windows) {
    const SteadyClock::time_point at =
        start + std::chrono::duration_cast<SteadyClock::duration>(
                    std::chrono::duration<double>(static_cast<double>(w) * window_s));
    std::string_view stage = "before";
    for (const auto& [begun, s] : stage_at) {
      if (begun <= at) stage = migration_stage_name(s);
    }
    const bench::Summary sum = bench::summarize(ms);
    std::fprintf(stderr, "[timeline] %7.2f s %-9.*s %6zu writes  p50 %7.1f  p99 %7.1f  max %7.1f ms\n",
                 static_cast<double>(w) * window_s, static_cast<int>(stage.size()), stage.data(),
                 ms.size(), sum.median, sum.p99, sum.max);
  }
}

// Watches the node for `seconds` the way poll_move watches a move: a
// get_migration (of `op`, an earlier move) every 50 ms from this thread.
// The before and after phases need the same observer as the move. The
// records node-1 recovered at its restart were allocated on this thread, so
// every overwrite frees one into this thread's glibc arena, and the loop
// takes that arena's lock to do it. The chunks wait there, unsorted, until
// this thread next allocates. After 10 s of sleep that was the stage mark at
// the move's start: ~340,000 chunks sorted under the lock, 40-70 ms, and
// every write in flight waited (a 28-87 ms tail in the move's first 250 ms,
// in every run; docs/benchmarks.md, "Seventh round").
void observe(Cluster& c, const std::string& op, double seconds) {
  const auto until = SteadyClock::now() + std::chrono::duration_cast<SteadyClock::duration>(
                                              std::chrono::duration<double>(seconds));
  while (SteadyClock::now() < until) {
    (void)await_answer<Result<MigrationStatus>>(
        [&](auto done) { c.node().get_migration(op, done); }, kStatusSilenceS, "get_migration");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// The throttled move goes from `from` (which holds the shard) to the other
// node; `unthrottled` is an earlier unthrottled move in the same direction.
void run_impact(Cluster& c, const Options& o, const NodeId& from, const MoveFigures& unthrottled) {
  // No compaction inside the windows: compacting the whole shard blocks
  // node-1's loop for seconds, and during a move it can make the transfer
  // start over (docs/benchmarks.md). node-2 never compacts.
  if (from == node1()) c.restart_node1(kNeverCompact);
  ImpactRun run;
  run.capacity = measure_capacity(c, o);
  run.rate = o.load_rate != 0 ? static_cast<double>(o.load_rate) : run.capacity * o.load_fraction;
  run.unthrottled_mb_per_s = unthrottled.stream_mb_per_s > 0 ? unthrottled.stream_mb_per_s : 2.0;
  run.bandwidth = o.bandwidth != 0 ? o.bandwidth
                                   : static_cast<std::uint64_t>(run.unthrottled_mb_per_s * 1e6 / 2);
  std::fprintf(stderr,
               "[impact] capacity %.0f writes/s; open loop at %.0f/s; move limited to %.1f MB/s\n",
               run.capacity, run.rate, static_cast<double>(run.bandwidth) / 1e6);
  auto loops = [&] {
    return std::pair{thread_cpu(::getpid(), c.source().loop_tid())["loop"],
                     thread_cpu(c.target().pid(), c.child_loop_tid())["loop"]};
  };
  auto minus = [](ThreadTime a, ThreadTime b) {
    return ThreadTime{a.cpu_s - b.cpu_s, a.wait_s - b.wait_s};
  };
  WriteClient client(c.node(), o.value_bytes, o.values);
  OpenLoopClient open_loop(client, run.rate, o.client_window, o.keys);
  c.source().probe().take();
  (void)c.child_stats();
  const auto at_start = loops();
  observe(c, unthrottled.status.id, o.before_s);
  const auto at_move = loops();
  run.node1_stall_before_ms = c.source().probe().take().first;
  run.node2_stall_before_ms = c.child_stats().stall_ms;
  MoveHooks hooks;
  hooks.progress = [&] {
    return fmt::format("client: {} in flight, {} done, {} not applied, {} failed, {} ms behind",
                       client.in_flight(), client.ok(), client.not_applied(), client.failed(),
                       open_loop.max_behind_ms());
  };
  std::vector<std::pair<SteadyClock::time_point, MigrationStage>> stage_at;
  hooks.on_stage = [&](MigrationStage stage) {
    open_loop.set_phase(std::min(static_cast<int>(stage), kAfterPhase));
    stage_at.emplace_back(SteadyClock::now(), stage);
  };
  // Writes scheduled from the request on count as during the move, even
  // before polling sees its first stage.
  open_loop.set_phase(kFirstStagePhase);
  const SteadyClock::time_point move_start = SteadyClock::now();
  const MoveFigures moved = run_move(c, from, run.bandwidth, "impact", hooks);
  const SteadyClock::time_point move_end = SteadyClock::now();
  const auto at_end = loops();
  run.node1_before = minus(at_move.first, at_start.first);
  run.node2_before = minus(at_move.second, at_start.second);
  run.node1_during = minus(at_end.first, at_move.first);
  run.node2_during = minus(at_end.second, at_move.second);
  open_loop.set_phase(kAfterPhase);
  observe(c, moved.status.id, o.after_s);
  open_loop.stop();
  client.drain(120);
  std::vector<WriteClient::Answered> timeline = client.take_timeline();
  BeforeDuring split = split_by_move(timeline, move_start, move_end);
  print_timeline(std::move(timeline), move_start, o.before_s, o.timeline_s, stage_at);
  print_impact(o, run, moved, client, open_loop, std::move(split));
}

// --- the runs -------------------------------------------------------------------

// Founds a cluster, loads it, measures the disk, starts node-2 and moves the
// shard there (and back, unless --quick).
struct MovedCluster {
  std::unique_ptr<Cluster> cluster;
  MoveFigures there;  // node-1 -> node-2, unthrottled
  NodeId holder;      // where the shard is now
};

MovedCluster load_and_move(const Options& o, std::uint64_t keys, std::uint64_t value_bytes,
                           const std::string& label) {
  MovedCluster m;
  const std::uint64_t compact_every =
      o.compact_every != 0 ? o.compact_every : std::max<std::uint64_t>(keys - keys / 16, 100);
  m.cluster = std::make_unique<Cluster>(
      ClusterSettings{o.parent_dir, o.target_dir, o.chunk_bytes, o.values, compact_every,
                      o.pin ? 1 : -1}, label);
  Cluster& c = *m.cluster;
  c.spawn_target();
  load_shard(c, keys, value_bytes, o.in_flight, label);
  probe_disk(c.dir(), o.disk_probe_mib, label);
  c.add_target();
  m.there = run_move(c, node1(), 0, label + "-there");
  m.holder = node2();
  if (!o.quick) {
    (void)run_move(c, node2(), 0, label + "-back");
    m.holder = node1();
  }
  return m;
}

int run_parent(const Options& o) {
  bench::quiet_routine_logs();
  ::signal(SIGPIPE, SIG_IGN);  // a dead child must not kill us through its pipe
  // Before any thread starts: they all inherit it.
  if (o.pin && !pin_to_cpu(0)) fail("sched_setaffinity(CPU 0)");
  JsonLine("migration_env")
      .add("mode", o.mode)
      .add("dir", o.parent_dir)
      .add("target_dir", o.target_dir)
      .add("cores", static_cast<std::uint64_t>(std::thread::hardware_concurrency()))
      .add("chunk", o.chunk_bytes)
      .add("in_flight", o.in_flight)
      .add("values", o.values == ValueKind::kRandomBytes ? "random" : "letters")
      .add("pinned", o.pin)
      .add("load_avg", bench::load_average_1min())
      .print();
  if (o.mode != "keys") {
    MovedCluster m = load_and_move(o, o.keys, o.value_bytes, "large");
    // The rate of node-1 -> node-2 is the reference: in a full run the
    // throttled move goes that way too.
    if (o.mode == "impact" || o.mode == "all") run_impact(*m.cluster, o, m.holder, m.there);
  }
  if (o.mode == "keys" || o.mode == "all") {
    (void)load_and_move(o, o.small_keys, o.small_value_bytes, "small");
  }
  return 0;
}

}  // namespace
}  // namespace nodenomad::migration_bench

int main(int argc, char** argv) {
  using namespace nodenomad::migration_bench;
  const Options o = parse_options(argc, argv);
  if (o.role == "target") {
    nodenomad::bench::quiet_routine_logs();
    return run_target(o.node_dir, o.join_address, o.chunk_bytes);
  }
  if (!o.role.empty())
    nodenomad::bench::Flags::usage_error("--role takes only 'target' (internal)");
  return run_parent(o);
}
