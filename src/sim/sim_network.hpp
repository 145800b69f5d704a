// SimNetwork: what happens to a message between two simulated nodes.
//
// At send time the network decides the message's fate from the seed: lost
// (drop_probability), delivered once, or delivered twice (duplicate), each
// copy after its own latency, sometimes with a long extra delay; differing
// latencies reorder messages. A clogged node's traffic is held (not lost)
// until its clog ends, as FoundationDB's simulator clogs machines. Links can
// be cut one way or both; a cut is checked when the message arrives, so a
// message in flight when a partition starts is lost too.
//
// Thread safety: none (the simulator's one thread). Deterministic: its only
// randomness is the Rng it is given.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nodenomad/rng.hpp"
#include "sim/sim_types.hpp"

namespace nodenomad::sim {

struct NetworkParams {
  std::uint32_t min_latency_us = 200;
  std::uint32_t max_latency_us = 2'000;
  double drop_probability = 0;
  double duplicate_probability = 0;
  double long_delay_probability = 0;
  std::uint32_t long_delay_max_us = 300'000;
};

// The copies of one message that will arrive, and when.
struct Route {
  std::uint32_t copies = 0;  // 0: lost at send, 1, or 2: duplicated
  SimTime at[2] = {0, 0};
};

class SimNetwork {
 public:
  SimNetwork(std::uint32_t node_count, NetworkParams params, Rng rng);

  Route route(std::uint32_t from, std::uint32_t to, SimTime now);
  // A latency for a client link (no drops, clogs or cuts).
  SimTime latency();

  bool link_up(std::uint32_t from, std::uint32_t to) const;
  void cut(std::uint32_t from, std::uint32_t to);
  // Every link between a node of `side` and one outside it, both ways.
  void split(const std::vector<std::uint32_t>& side);
  // Every cut and clog removed.
  void heal();
  // Holds every message from or to `node` until `until`.
  void clog(std::uint32_t node, SimTime until);

  void set_params(const NetworkParams& params) { params_ = params; }
  const NetworkParams& params() const { return params_; }
  // Bumped by every change of the cuts, so a scheduled heal can tell
  // whether the partition it was meant to end is still the current one.
  std::uint64_t generation() const { return generation_; }
  std::uint32_t cut_count() const;
  // "n1->n2 n2->n1 ..." (the cut links), or "none".
  std::string describe_cuts() const;

 private:
  std::size_t slot(std::uint32_t from, std::uint32_t to) const { return from * node_count_ + to; }
  SimTime one_latency();

  std::uint32_t node_count_;
  NetworkParams params_;
  Rng rng_;
  std::vector<bool> cut_;            // [from * n + to]
  std::vector<SimTime> clogged_until_;
  std::uint64_t generation_ = 0;
};

}  // namespace nodenomad::sim
