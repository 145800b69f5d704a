// raft_failover_bench: the Raft paper's leader-crash experiment (Ongaro and
// Ousterhout, "In Search of an Understandable Consensus Algorithm", section
// 9.3, figure 16) as a seeded discrete-event simulation.
//
//   raft_failover_bench [--nodes N] [--broadcast-ms MS] [--latency-jitter F]
//                       [--ranges LO-HI,LO-HI,...] [--trials N]
//                       [--heartbeat-ms MS] [--disk-ms MS] [--tick-us US] [--seed N]
//                       [--max-trial-ms MS] [--modes both|prevote|paper] [--quick]
//
// Each trial starts a fresh group of --nodes engines, elects n1, lets it
// lead for two heartbeat intervals, crashes it at a uniformly random point
// of its next heartbeat interval, and measures the downtime: the simulated
// time from the crash until one surviving node leads a newer term and every
// surviving node knows it as its leader (docs/benchmarks.md defines it
// precisely). The heartbeat interval is half the range's lowest timeout, as
// in the paper, unless --heartbeat-ms says otherwise.
//
// The network: every message takes its own one-way latency, drawn uniformly
// from broadcast/2 * [1 - jitter, 1 + jitter], so a request and its reply
// take --broadcast-ms on average (the paper's broadcast time, ~15 ms). A
// Ready that must be synced holds its responses for --disk-ms (default 0),
// drawn with the same jitter, while the node goes on ticking and receiving;
// with it, a broadcast costs a round trip plus one disk write, and
// --broadcast-ms can be lowered to keep the sum. Ticks are --tick-us of
// simulated time (1 ms
// by default, so timeouts in ticks are in ms), each node ticking at its own
// random phase. Everything random comes from --seed, printed on every line:
// the same flags give the same figures.
//
// Modes: "prevote" runs with pre-vote and check-quorum on (NodeNomad's
// defaults); "paper" runs the paper's algorithm without them.
#include <fmt/format.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <vector>

#include "bench_util.hpp"

namespace nodenomad::raft_bench {
namespace {

struct TimeoutRange {
  double lo_ms = 0;
  double hi_ms = 0;
};

struct Mode {
  std::string name;
  bool pre_vote = true;
  bool check_quorum = true;
};

struct Options {
  int nodes = 5;
  double broadcast_ms = 15;
  double latency_jitter = 0.5;
  std::vector<TimeoutRange> ranges;
  std::uint64_t trials = 0;
  double heartbeat_ms = 0;  // 0: half the range's lowest timeout
  double disk_ms = 0;
  std::uint64_t tick_us = 1000;
  std::uint64_t seed = 0;
  double max_trial_ms = 0;
  std::vector<Mode> modes;
};

std::vector<TimeoutRange> parse_ranges(const std::string& text) {
  std::vector<TimeoutRange> out;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const std::size_t comma = std::min(text.find(',', pos), text.size());
    const std::string item = text.substr(pos, comma - pos);
    TimeoutRange r;
    char* end = nullptr;
    r.lo_ms = std::strtod(item.c_str(), &end);
    const bool dash = *end == '-';
    if (dash) r.hi_ms = std::strtod(end + 1, &end);
    if (item.empty() || !dash || *end != '\0' || r.lo_ms <= 0 || r.hi_ms < r.lo_ms) {
      Flags::usage_error(fmt::format("--ranges takes LO-HI,... in ms with 0 < LO <= HI; got '{}'",
                                     item));
    }
    out.push_back(r);
    pos = comma + 1;
  }
  return out;
}

Options parse_options(int argc, char** argv) {
  const Flags flags(argc, argv,
                    {"nodes", "broadcast-ms", "latency-jitter", "ranges", "trials",
                     "heartbeat-ms", "disk-ms", "tick-us", "seed", "max-trial-ms", "modes"});
  Options o;
  o.nodes = static_cast<int>(flags.number("nodes", 5, 5));
  o.broadcast_ms = flags.real("broadcast-ms", 15, 15);
  o.latency_jitter = flags.real("latency-jitter", 0.2, 0.2);
  o.disk_ms = flags.real("disk-ms", 0, 0);
  o.ranges = parse_ranges(
      flags.text("ranges", "150-150,150-151,150-155,150-175,150-200,150-300,12-24"));
  o.trials = flags.number("trials", 1000, 20);
  o.heartbeat_ms = flags.real("heartbeat-ms", 0, 0);
  o.tick_us = flags.number("tick-us", 1000, 1000);
  o.seed = flags.number("seed", 20240611, 20240611);
  o.max_trial_ms = flags.real("max-trial-ms", 30'000, 5'000);
  const std::string modes = flags.text("modes", "both");
  if (modes == "both" || modes == "prevote") o.modes.push_back({"prevote", true, true});
  if (modes == "both" || modes == "paper") o.modes.push_back({"paper", false, false});
  if (o.modes.empty()) Flags::usage_error("--modes takes both, prevote or paper");
  if (o.nodes < 2 || o.nodes > 9 || o.trials == 0 || o.tick_us == 0 || o.latency_jitter > 1 ||
      o.max_trial_ms <= 0) {
    Flags::usage_error("need --nodes in [2, 9], --trials > 0, --tick-us > 0, "
                       "--latency-jitter in [0, 1] and --max-trial-ms > 0");
  }
  return o;
}

// What one trial runs with, in simulated microseconds and ticks.
struct TrialParams {
  int nodes = 5;
  RaftConfig raft;
  std::uint64_t tick_us = 1000;
  std::uint64_t heartbeat_us = 0;
  std::uint64_t latency_min_us = 0;
  std::uint64_t latency_max_us = 0;
  std::uint64_t disk_min_us = 0;  // 0 and 0: persisting takes no time
  std::uint64_t disk_max_us = 0;
  std::uint64_t max_trial_us = 0;
};

struct TrialResult {
  bool converged = false;
  double downtime_ms = 0;  // crash -> new leader known to every survivor
  double elected_ms = 0;   // crash -> a survivor wins an election
  std::uint64_t elections = 0;  // terms the survivors went through
};

// One trial's cluster and its event loop. Events are a node's tick (each
// node's next tick time is kept per node), a message arriving or a node's
// disk write finishing (a min-heap ordered by time, then by scheduling
// order, so a seed replays exactly).
class FailoverTrial {
 public:
  FailoverTrial(const TrialParams& params, Rng rng) : params_(params), rng_(rng) {
    ConfState conf;
    for (int i = 1; i <= params_.nodes; ++i) conf.voters.push_back(bench_node(i));
    std::sort(conf.voters.begin(), conf.voters.end());
    for (const NodeId& id : conf.voters) {
      SimNode n;
      n.store = std::make_unique<MemoryLogStore>();
      check(RaftEngine::bootstrap(*n.store, conf), "bootstrap");
      RaftConfig config = params_.raft;
      config.id = id;
      auto engine = RaftEngine::open(config, *n.store, nullptr, Rng(rng_.next_u64()));
      check(engine.status(), "RaftEngine::open");
      n.engine = std::move(engine).value();
      n.next_tick_us = rng_.uniform(params_.tick_us);  // each node's own phase
      nodes_.push_back(std::move(n));
    }
  }

  TrialResult run() {
    check(nodes_[0].engine->campaign(), "campaign");
    process_ready(0);
    if (!run_until([&] { return known_leader() >= 0; }, params_.max_trial_us)) {
      fail("the first leader was never established");
    }
    // Two heartbeat intervals of steady leadership, then a crash at a
    // uniformly random point of the next one.
    const std::uint64_t crash_at =
        now_us_ + 2 * params_.heartbeat_us + rng_.uniform(params_.heartbeat_us);
    (void)run_until([] { return false; }, crash_at);
    if (!run_until([&] { return highest_leader() >= 0; }, now_us_ + params_.max_trial_us)) {
      fail("no leader to crash");
    }
    const int crashed = highest_leader();
    const Term crashed_term = nodes_[crashed].engine->term();
    nodes_[crashed].engine.reset();
    const std::uint64_t crash_us = now_us_;

    TrialResult result;
    std::uint64_t elected_us = 0;
    const auto newer_leader_known = [&] {
      const int leader = highest_leader();
      if (elected_us == 0 && leader >= 0 && nodes_[leader].engine->term() > crashed_term) {
        elected_us = now_us_;
      }
      const int known = known_leader();
      return known >= 0 && nodes_[known].engine->term() > crashed_term;
    };
    result.converged = run_until(newer_leader_known, crash_us + params_.max_trial_us);
    result.downtime_ms = static_cast<double>(now_us_ - crash_us) / 1000.0;
    result.elected_ms =
        static_cast<double>((elected_us == 0 ? now_us_ : elected_us) - crash_us) / 1000.0;
    Term newest = crashed_term;
    for (const SimNode& n : nodes_) {
      if (n.engine) newest = std::max(newest, n.engine->term());
    }
    result.elections = newest - crashed_term;
    return result;
  }

 private:
  struct SimNode {
    std::unique_ptr<MemoryLogStore> store;
    std::unique_ptr<RaftEngine> engine;  // null once crashed
    std::uint64_t next_tick_us = 0;
    std::optional<Ready> writing;  // a Ready whose disk write is in flight
  };
  static constexpr std::size_t kDiskDone = SIZE_MAX;
  struct Flight {
    std::uint64_t arrive_us;
    std::uint64_t sequence;
    std::size_t slot;  // index into messages_, or kDiskDone
    int node;          // kDiskDone: whose write finished
    bool operator>(const Flight& other) const {
      return arrive_us != other.arrive_us ? arrive_us > other.arrive_us
                                          : sequence > other.sequence;
    }
  };

  // The live node that leads and that every live node follows, or -1.
  int known_leader() const {
    int leader = -1;
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      const RaftEngine* e = nodes_[i].engine.get();
      if (e != nullptr && e->role() == RaftRole::kLeader) leader = static_cast<int>(i);
    }
    if (leader < 0) return -1;
    const RaftEngine& l = *nodes_[leader].engine;
    for (const SimNode& n : nodes_) {
      if (n.engine && (n.engine->leader() != l.id() || n.engine->term() != l.term())) return -1;
    }
    return leader;
  }

  // The live leader of the highest term, or -1.
  int highest_leader() const {
    int best = -1;
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      const RaftEngine* e = nodes_[i].engine.get();
      if (e == nullptr || e->role() != RaftRole::kLeader) continue;
      if (best < 0 || e->term() > nodes_[best].engine->term()) best = static_cast<int>(i);
    }
    return best;
  }

  // Processes events in time order until `done()` holds (true; checked
  // before the first event too) or the next event lies past `deadline_us`
  // (false, with the clock moved to the deadline).
  bool run_until(const std::function<bool()>& done, std::uint64_t deadline_us) {
    for (;;) {
      if (done()) return true;
      int ticker = -1;
      for (std::size_t i = 0; i < nodes_.size(); ++i) {
        if (!nodes_[i].engine) continue;
        if (ticker < 0 || nodes_[i].next_tick_us < nodes_[ticker].next_tick_us) {
          ticker = static_cast<int>(i);
        }
      }
      const std::uint64_t tick_at = ticker < 0 ? UINT64_MAX : nodes_[ticker].next_tick_us;
      const std::uint64_t arrive_at = flights_.empty() ? UINT64_MAX : flights_.top().arrive_us;
      const std::uint64_t next = std::min(tick_at, arrive_at);
      if (next > deadline_us) {
        now_us_ = deadline_us;
        return false;
      }
      now_us_ = next;
      if (tick_at <= arrive_at) {
        nodes_[ticker].engine->tick();
        nodes_[ticker].next_tick_us += params_.tick_us;
        process_ready(ticker);
      } else {
        deliver();
      }
    }
  }

  void deliver() {
    const Flight f = flights_.top();
    flights_.pop();
    if (f.slot == kDiskDone) {
      if (nodes_[f.node].engine) finish_write(f.node);  // else it crashed meanwhile
      return;
    }
    const Message m = std::move(messages_[f.slot]);
    free_slots_.push_back(f.slot);
    const int to = node_index(m.to);
    if (!nodes_[to].engine) return;  // sent to a crashed node: lost
    check(nodes_[to].engine->step(m), "step");
    process_ready(to);
  }

  int node_index(const NodeId& id) const {
    // Ids are n1..nN in order; the name encodes the position.
    return std::stoi(id.str().substr(1)) - 1;
  }

  void send(Message m) {
    std::size_t slot = messages_.size();
    if (free_slots_.empty()) {
      messages_.push_back(std::move(m));
    } else {
      slot = free_slots_.back();
      free_slots_.pop_back();
      messages_[slot] = std::move(m);
    }
    const std::uint64_t latency = rng_.uniform_in(params_.latency_min_us, params_.latency_max_us);
    flights_.push(Flight{now_us_ + latency, next_sequence_++, slot, -1});
  }

  // Ready cycles until the node has nothing more or waits for its disk.
  void process_ready(int index) {
    SimNode& n = nodes_[index];
    for (int cycle = 0; !n.writing && n.engine->has_ready(); ++cycle) {
      if (cycle > 100) fail("a node never stopped producing Readies");
      Ready rd = n.engine->ready();
      for (Message& m : rd.messages) send(std::move(m));
      if (rd.snapshot) check(n.store->install_snapshot(*rd.snapshot), "install_snapshot");
      if (!rd.entries.empty()) check(n.store->append(rd.entries), "append");
      if (rd.hard_state) check(n.store->set_hard_state(*rd.hard_state), "set_hard_state");
      if (rd.must_sync()) check(n.store->sync().status(), "sync");
      const bool wait = rd.must_sync() && params_.disk_max_us > 0;
      n.writing = std::move(rd);
      if (wait) {
        const std::uint64_t delay = rng_.uniform_in(params_.disk_min_us, params_.disk_max_us);
        flights_.push(Flight{now_us_ + delay, next_sequence_++, kDiskDone, index});
        return;
      }
      finish_write(index, false);
    }
  }

  // The outstanding Ready is durable: its held messages leave and the
  // engine hears of it.
  void finish_write(int index, bool continue_cycles = true) {
    SimNode& n = nodes_[index];
    Ready rd = std::move(*n.writing);
    n.writing.reset();
    for (Message& m : rd.messages_after_persist) send(std::move(m));
    n.engine->advance(rd);
    if (continue_cycles) process_ready(index);
  }

  TrialParams params_;
  Rng rng_;
  std::vector<SimNode> nodes_;
  std::uint64_t now_us_ = 0;
  std::priority_queue<Flight, std::vector<Flight>, std::greater<>> flights_;
  std::vector<Message> messages_;
  std::vector<std::size_t> free_slots_;
  std::uint64_t next_sequence_ = 0;
};

std::uint32_t ms_to_ticks(double ms, std::uint64_t tick_us) {
  return static_cast<std::uint32_t>(std::llround(ms * 1000.0 / static_cast<double>(tick_us)));
}

TrialParams trial_params(const Options& o, const Mode& mode, const TimeoutRange& range) {
  TrialParams p;
  p.nodes = o.nodes;
  p.tick_us = o.tick_us;
  p.raft.pre_vote = mode.pre_vote;
  p.raft.check_quorum = mode.check_quorum;
  p.raft.election_timeout_ticks = ms_to_ticks(range.lo_ms, o.tick_us);
  p.raft.election_timeout_max_ticks = ms_to_ticks(range.hi_ms, o.tick_us);
  const double heartbeat_ms = o.heartbeat_ms > 0 ? o.heartbeat_ms : range.lo_ms / 2;
  p.raft.heartbeat_interval_ticks =
      std::max<std::uint32_t>(1, ms_to_ticks(heartbeat_ms, o.tick_us));
  check(validate_raft_config([&] {
          RaftConfig c = p.raft;
          c.id = bench_node(1);
          return c;
        }()),
        fmt::format("the range {}-{} ms", range.lo_ms, range.hi_ms));
  p.heartbeat_us = p.raft.heartbeat_interval_ticks * o.tick_us;
  const double one_way_us = o.broadcast_ms * 1000.0 / 2;
  p.latency_min_us = static_cast<std::uint64_t>(std::llround(one_way_us * (1 - o.latency_jitter)));
  p.latency_max_us = static_cast<std::uint64_t>(std::llround(one_way_us * (1 + o.latency_jitter)));
  const double disk_us = o.disk_ms * 1000.0;
  p.disk_min_us = static_cast<std::uint64_t>(std::llround(disk_us * (1 - o.latency_jitter)));
  p.disk_max_us = static_cast<std::uint64_t>(std::llround(disk_us * (1 + o.latency_jitter)));
  p.max_trial_us = static_cast<std::uint64_t>(o.max_trial_ms * 1000.0);
  return p;
}

void run_range(const Options& o, const Mode& mode, const TimeoutRange& range, Rng& rng) {
  const TrialParams p = trial_params(o, mode, range);
  std::vector<double> downtime;
  std::vector<double> elected;
  std::uint64_t unconverged = 0;
  std::uint64_t elections = 0;
  const Stopwatch watch;
  for (std::uint64_t t = 0; t < o.trials; ++t) {
    FailoverTrial trial(p, rng.fork());
    const TrialResult r = trial.run();
    downtime.push_back(r.downtime_ms);
    elected.push_back(r.elected_ms);
    unconverged += r.converged ? 0 : 1;
    elections += r.elections;
  }
  const Summary d = summarize(downtime);
  const Summary e = summarize(elected);
  JsonLine("raft_failover")
      .add("mode", mode.name)
      .add("pre_vote", mode.pre_vote)
      .add("check_quorum", mode.check_quorum)
      .add("nodes", o.nodes)
      .add("timeout_range_ms", fmt::format("{}-{}", range.lo_ms, range.hi_ms))
      .add("heartbeat_ms", static_cast<double>(p.heartbeat_us) / 1000.0)
      .add("latency_ms", fmt::format("{}-{}", static_cast<double>(p.latency_min_us) / 1000.0,
                                     static_cast<double>(p.latency_max_us) / 1000.0))
      .add("disk_ms", fmt::format("{}-{}", static_cast<double>(p.disk_min_us) / 1000.0,
                                  static_cast<double>(p.disk_max_us) / 1000.0))
      .add("trials", o.trials)
      .add("seed", o.seed)
      .add("downtime_min_ms", d.min)
      .add("downtime_median_ms", d.median)
      .add("downtime_p99_ms", d.p99)
      .add("downtime_max_ms", d.max)
      .add("downtime_mean_ms", d.mean)
      .add("elected_median_ms", e.median)
      .add("elections_per_trial",
           static_cast<double>(elections) / static_cast<double>(o.trials))
      .add("unconverged", unconverged)
      .add("wall_seconds", watch.seconds())
      .print();
}

int run(int argc, char** argv) {
  const Options o = parse_options(argc, argv);
  quiet_routine_logs();
  for (const Mode& mode : o.modes) {
    // Each (mode, range) draws from its own stream, so changing one range's
    // trial count leaves the others' figures as they were.
    Rng mode_rng(o.seed + (mode.pre_vote ? 0 : 0x9e3779b97f4a7c15ull));
    for (const TimeoutRange& range : o.ranges) {
      Rng range_rng = mode_rng.fork();
      run_range(o, mode, range, range_rng);
    }
  }
  return 0;
}

}  // namespace
}  // namespace nodenomad::raft_bench

int main(int argc, char** argv) { return nodenomad::raft_bench::run(argc, argv); }
