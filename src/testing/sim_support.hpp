// What the two deterministic simulators share: the Raft-group one (src/sim,
// nodenomad/testing/simulator.hpp) and the whole-Node one (src/sim_cluster,
// nodenomad/testing/cluster_simulator.hpp). Both draw their configuration
// from a seed with the same few draws, and both report a run as one JSON
// line and a human report whose fault line and failure lines read alike.
//
// The templates take a SimFaultProfile or a ClusterFaultProfile: the knobs
// they read (latency, drops, clock skew, disks) have the same names in both.
//
// Thread safety: pure functions; the Rng is the caller's.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "nodenomad/rng.hpp"

namespace nodenomad::sim_support {

// --- seeded draws (every one takes a fixed number of draws from rng) ---

// One of `choices` (not empty), each as likely.
template <typename T>
T pick(Rng& rng, std::initializer_list<T> choices) {
  return *(choices.begin() + rng.uniform(choices.size()));
}

// Uniform in [lo, hi).
double uniform_double(Rng& rng, double lo, double hi);
// Uniform in [lo, hi]; lo <= hi.
std::uint32_t uniform_u32(Rng& rng, std::uint32_t lo, std::uint32_t hi);

// `weight` with probability 0.8, else 0: each nemesis action is switched on
// or off per seed, then weighted.
std::uint32_t weight_or_off(Rng& rng, std::uint32_t weight);

// Draws the drop, duplicate and long-delay probabilities, in that order,
// each uniform in [0, its maximum).
template <typename Profile>
void draw_message_faults(Profile& p, Rng& rng, double max_drop, double max_duplicate,
                         double max_long_delay) {
  p.drop_probability = uniform_double(rng, 0, max_drop);
  p.duplicate_probability = uniform_double(rng, 0, max_duplicate);
  p.long_delay_probability = uniform_double(rng, 0, max_long_delay);
}

// --- reports ---

// "<level> latency=<min>..<max>us", then the message faults that are on:
// " drop=0.010 dup=0.020 long_delay=0.030".
template <typename Profile>
std::string describe_network(const Profile& p) {
  std::string out = fmt::format("{} latency={}..{}us", p.level, p.min_latency_us, p.max_latency_us);
  if (p.drop_probability > 0) out += fmt::format(" drop={:.3f}", p.drop_probability);
  if (p.duplicate_probability > 0) out += fmt::format(" dup={:.3f}", p.duplicate_probability);
  if (p.long_delay_probability > 0) {
    out += fmt::format(" long_delay={:.3f}", p.long_delay_probability);
  }
  return out;
}

// " skew<=0.040" when the clocks drift, then " disk=<min>..<max>us" and
// " slow_disk=0.020" when some fsyncs are slow.
template <typename Profile>
std::string describe_clock_and_disks(const Profile& p) {
  std::string out;
  if (p.max_clock_skew > 0) out += fmt::format(" skew<={:.3f}", p.max_clock_skew);
  out += fmt::format(" disk={}..{}us", p.disk_min_latency_us, p.disk_max_latency_us);
  if (p.slow_disk_probability > 0) out += fmt::format(" slow_disk={:.3f}", p.slow_disk_probability);
  return out;
}

// `s` as a JSON string, quotes included; control characters escaped.
std::string json_string(std::string_view s);
// `lines` as a JSON array of strings.
std::string json_strings(const std::vector<std::string>& lines);

// The end of a failed run's report:
//   "  failure: <failure>\n  replay: <replay>\n  last <n> events:\n"
// and then every line of `trace_tail`, indented by four spaces.
std::string failure_report(std::string_view failure, std::string_view replay,
                           const std::vector<std::string>& trace_tail);

}  // namespace nodenomad::sim_support
