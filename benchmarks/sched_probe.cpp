// sched_probe: how late this machine runs a top-priority thread, per CPU.
//
//   sched_probe [--seconds S] [--period-us N] [--late-ms M] [--quick]
//
// One thread per CPU, pinned there at SCHED_FIFO priority 50, sleeps to an
// absolute deadline every --period-us (1000) and measures how late it woke.
// Nothing in user space can delay such a thread; what does is the kernel
// itself (sections it cannot preempt: this VM's kernel runs with
// "Dynamic Preempt: none") or the hypervisor taking the vCPU away. Run it
// beside a benchmark (migration_bench) to tell those from the process's
// own waits: docs/benchmarks.md, "Fifth round".
//
// Each wake-up later than --late-ms (5) goes to stderr with its
// CLOCK_MONOTONIC time in seconds (the clock of migration_bench's
// mono_start_ms), so it lines up with other traces. At the end, one JSON
// line per CPU: wake-ups, how many were late, the p99 and max lateness.
// Without the right to SCHED_FIFO (not root, or a container without
// CAP_SYS_NICE) the threads run at normal priority and say so
// ("fifo":false): then the figures include ordinary scheduling waits.
#include <fmt/format.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <thread>
#include <vector>

#include "bench_common.hpp"

namespace {

using nodenomad::bench::Flags;
using nodenomad::bench::JsonLine;

struct CpuResult {
  int cpu = 0;
  bool fifo = false;
  bool pinned = false;
  std::uint64_t wakeups = 0;
  std::uint64_t late = 0;
  std::vector<double> lateness_ms;
};

double to_seconds(const timespec& t) {
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

void advance(timespec& t, std::uint64_t ns) {
  t.tv_nsec += static_cast<long>(ns);
  while (t.tv_nsec >= 1'000'000'000L) {
    t.tv_nsec -= 1'000'000'000L;
    ++t.tv_sec;
  }
}

void probe(CpuResult& r, double seconds, std::uint64_t period_ns, double late_ms) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(r.cpu, &set);
  r.pinned = ::pthread_setaffinity_np(::pthread_self(), sizeof set, &set) == 0;
  sched_param param{};
  param.sched_priority = 50;
  r.fifo = ::pthread_setschedparam(::pthread_self(), SCHED_FIFO, &param) == 0;
  timespec next{};
  ::clock_gettime(CLOCK_MONOTONIC, &next);
  const double end = to_seconds(next) + seconds;
  r.lateness_ms.reserve(static_cast<std::size_t>(seconds * 1e9 / static_cast<double>(period_ns)));
  for (;;) {
    advance(next, period_ns);
    ::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, nullptr);
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    const double woke = to_seconds(now);
    const double lateness = (woke - to_seconds(next)) * 1e3;
    ++r.wakeups;
    r.lateness_ms.push_back(lateness);
    if (lateness > late_ms) {
      ++r.late;
      std::fprintf(stderr, "[late] cpu %d at %.4f s: %.1f ms\n", r.cpu, to_seconds(next),
                   lateness);
      next = now;  // a late wake-up is counted once, not as a run of misses
    }
    if (woke >= end) break;
  }
}

}  // namespace

int main(int argc, char** argv) {
  const Flags flags(argc, argv, {"seconds", "period-us", "late-ms"});
  const double seconds = flags.real("seconds", 30, 0.5);
  const std::uint64_t period_us = flags.number("period-us", 1000, 1000);
  const double late_ms = flags.real("late-ms", 5, 5);
  if (seconds <= 0 || period_us == 0) {
    Flags::usage_error("--seconds and --period-us must be positive");
  }
  const int cpus = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::vector<CpuResult> results(static_cast<std::size_t>(cpus));
  std::vector<std::thread> threads;
  for (int c = 0; c < cpus; ++c) {
    results[static_cast<std::size_t>(c)].cpu = c;
    threads.emplace_back(probe, std::ref(results[static_cast<std::size_t>(c)]), seconds,
                         period_us * 1000, late_ms);
  }
  for (std::thread& t : threads) t.join();
  for (CpuResult& r : results) {
    std::sort(r.lateness_ms.begin(), r.lateness_ms.end());
    const auto at = [&](double q) {
      if (r.lateness_ms.empty()) return 0.0;
      const auto i = static_cast<std::size_t>(q * static_cast<double>(r.lateness_ms.size() - 1));
      return r.lateness_ms[i];
    };
    JsonLine line("sched_probe");
    line.add("cpu", r.cpu)
        .add("fifo", r.fifo)
        .add("pinned", r.pinned)
        .add("seconds", seconds)
        .add("period_us", period_us)
        .add("wakeups", r.wakeups)
        .add("late_over_ms", late_ms)
        .add("late", r.late)
        .add("p50_late_ms", at(0.5))
        .add("p99_late_ms", at(0.99))
        .add("max_late_ms", r.lateness_ms.empty() ? 0.0 : r.lateness_ms.back());
    line.print();
  }
  return 0;
}
