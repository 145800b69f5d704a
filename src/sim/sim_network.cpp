#include "sim/sim_network.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "nodenomad/assert.hpp"

namespace nodenomad::sim {

SimNetwork::SimNetwork(std::uint32_t node_count, NetworkParams params, Rng rng)
    : node_count_(node_count),
      params_(params),
      rng_(rng),
      cut_(static_cast<std::size_t>(node_count) * node_count, false),
      clogged_until_(node_count, 0) {}

SimTime SimNetwork::one_latency() {
  SimTime t = rng_.uniform_in(params_.min_latency_us,
                              std::max(params_.min_latency_us, params_.max_latency_us));
  if (params_.long_delay_probability > 0 && rng_.chance(params_.long_delay_probability)) {
    t += rng_.uniform_in(0, params_.long_delay_max_us);
  }
  return t;
}

SimTime SimNetwork::latency() {
  return rng_.uniform_in(params_.min_latency_us,
                         std::max(params_.min_latency_us, params_.max_latency_us));
}

Route SimNetwork::route(std::uint32_t from, std::uint32_t to, SimTime now) {
  NN_ASSERT(from < node_count_ && to < node_count_, "route ", from, " -> ", to);
  Route r;
  if (params_.drop_probability > 0 && rng_.chance(params_.drop_probability)) return r;
  const SimTime start = std::max({now, clogged_until_[from], clogged_until_[to]});
  r.copies = 1;
  r.at[0] = start + one_latency();
  if (params_.duplicate_probability > 0 && rng_.chance(params_.duplicate_probability)) {
    r.copies = 2;
    r.at[1] = start + one_latency();
  }
  return r;
}

bool SimNetwork::link_up(std::uint32_t from, std::uint32_t to) const {
  return !cut_[slot(from, to)];
}

void SimNetwork::cut(std::uint32_t from, std::uint32_t to) {
  if (from == to) return;
  cut_[slot(from, to)] = true;
  ++generation_;
}

void SimNetwork::split(const std::vector<std::uint32_t>& side) {
  std::vector<bool> inside(node_count_, false);
  for (std::uint32_t n : side) inside[n] = true;
  for (std::uint32_t a = 0; a < node_count_; ++a) {
    for (std::uint32_t b = 0; b < node_count_; ++b) {
      if (inside[a] != inside[b]) cut_[slot(a, b)] = true;
    }
  }
  ++generation_;
}

void SimNetwork::heal() {
  std::fill(cut_.begin(), cut_.end(), false);
  std::fill(clogged_until_.begin(), clogged_until_.end(), 0);
  ++generation_;
}

void SimNetwork::clog(std::uint32_t node, SimTime until) {
  clogged_until_[node] = std::max(clogged_until_[node], until);
}

std::uint32_t SimNetwork::cut_count() const {
  return static_cast<std::uint32_t>(std::count(cut_.begin(), cut_.end(), true));
}

std::string SimNetwork::describe_cuts() const {
  std::string out;
  for (std::uint32_t a = 0; a < node_count_; ++a) {
    for (std::uint32_t b = 0; b < node_count_; ++b) {
      if (!cut_[slot(a, b)]) continue;
      if (!out.empty()) out += ' ';
      out += fmt::format("n{}->n{}", a + 1, b + 1);
    }
  }
  return out.empty() ? "none" : out;
}

}  // namespace nodenomad::sim
