// The simulator's parts on their own: the event queue, the network and the
// trace.
#include <catch2/catch.hpp>

#include <map>
#include <string>

#include "nodenomad/testing/simulator.hpp"
#include "sim/event_queue.hpp"
#include "sim/sim_network.hpp"
#include "sim/trace.hpp"

namespace nodenomad::sim {
namespace {

SimEvent event_at(SimTime t, std::uint32_t tag) {
  SimEvent e;
  e.time = t;
  e.node = tag;
  return e;
}

TEST_CASE("events leave in time order, and in scheduling order at one time", "[sim]") {
  EventQueue queue;
  REQUIRE(queue.push(event_at(30, 1)));
  REQUIRE(queue.push(event_at(10, 2)));
  REQUIRE(queue.push(event_at(30, 3)));
  REQUIRE(queue.push(event_at(20, 4)));
  CHECK(queue.next_time() == 10);
  std::vector<std::uint32_t> order;
  while (!queue.empty()) order.push_back(queue.pop().node);
  CHECK(order == std::vector<std::uint32_t>{2, 4, 1, 3});
}

TEST_CASE("the event queue refuses events beyond its bound", "[sim]") {
  EventQueue queue;
  std::size_t accepted = 0;
  for (std::size_t i = 0; i < EventQueue::kMaxPendingEvents; ++i) {
    accepted += queue.push(event_at(i, 0)) ? 1 : 0;
  }
  REQUIRE(accepted == EventQueue::kMaxPendingEvents);
  CHECK_FALSE(queue.push(event_at(0, 1)));
  CHECK(queue.size() == EventQueue::kMaxPendingEvents);
  queue.pop();
  CHECK(queue.push(event_at(0, 1)));
}

TEST_CASE("the network loses, duplicates and delays as its parameters say", "[sim]") {
  NetworkParams params;
  params.min_latency_us = 100;
  params.max_latency_us = 200;
  SECTION("always lost") {
    params.drop_probability = 1;
    SimNetwork net(3, params, Rng(1));
    for (int i = 0; i < 100; ++i) CHECK(net.route(0, 1, 1000).copies == 0);
  }
  SECTION("always duplicated, each copy within the latency range") {
    params.duplicate_probability = 1;
    SimNetwork net(3, params, Rng(1));
    for (int i = 0; i < 100; ++i) {
      const Route r = net.route(0, 1, 1000);
      REQUIRE(r.copies == 2);
      for (SimTime at : r.at) {
        CHECK(at >= 1100);
        CHECK(at <= 1200);
      }
    }
  }
  SECTION("a long delay reorders messages") {
    params.long_delay_probability = 0.5;
    params.long_delay_max_us = 100'000;
    SimNetwork net(3, params, Rng(1));
    SimTime latest = 0;
    int overtaken = 0;
    for (SimTime now = 0; now < 100; ++now) {
      const Route r = net.route(0, 1, now);
      REQUIRE(r.copies == 1);
      if (r.at[0] < latest) ++overtaken;
      latest = std::max(latest, r.at[0]);
    }
    CHECK(overtaken > 10);
  }
}

TEST_CASE("cuts, splits, clogs and heal", "[sim]") {
  NetworkParams params;
  params.min_latency_us = 100;
  params.max_latency_us = 100;
  SimNetwork net(3, params, Rng(1));
  net.cut(0, 1);
  CHECK_FALSE(net.link_up(0, 1));
  CHECK(net.link_up(1, 0));
  CHECK(net.describe_cuts() == "n1->n2");
  const std::uint64_t before = net.generation();
  net.split({2});
  CHECK(net.generation() > before);
  CHECK_FALSE(net.link_up(2, 0));
  CHECK_FALSE(net.link_up(1, 2));
  CHECK(net.cut_count() == 5);
  net.heal();
  CHECK(net.cut_count() == 0);
  CHECK(net.describe_cuts() == "none");
  // A clogged node's traffic is held until the clog ends, then delivered.
  net.clog(1, 5'000);
  CHECK(net.route(0, 1, 1'000).at[0] == 5'100);
  CHECK(net.route(1, 2, 1'000).at[0] == 5'100);
  CHECK(net.route(0, 2, 1'000).at[0] == 1'100);
}

TEST_CASE("the trace hash covers every field and the tail keeps the newest", "[sim]") {
  auto run = [](std::uint64_t last_field) {
    TraceLog log(3, nullptr);
    for (std::uint64_t i = 0; i < 5; ++i) {
      log.record({.time = i, .code = TraceCode::kFault, .a = i == 4 ? last_field : i,
                  .note = "x"});
    }
    return log;
  };
  const TraceLog a = run(4);
  CHECK(a.hash() == run(4).hash());
  CHECK(a.hash() != run(5).hash());
  const std::vector<std::string> tail = a.tail();
  REQUIRE(tail.size() == 3);
  CHECK(tail.front().starts_with("t=0.000002s"));
  CHECK(tail.back().starts_with("t=0.000004s"));

  TraceLog hashed(3, nullptr);
  hashed.record({.code = TraceCode::kTick}, "bytes", /*hash_only=*/true);
  CHECK(hashed.tail().empty());
  CHECK(hashed.records() == 1);
}

TEST_CASE("fault levels are drawn per seed: some calm, some harsh", "[sim]") {
  std::map<std::string, int> levels;
  for (std::uint64_t seed = 1; seed <= 400; ++seed) {
    Rng rng(seed);
    const testing::SimFaultProfile p = testing::SimFaultProfile::draw(rng);
    ++levels[p.level];
    CHECK(p.max_clock_skew <= 0.04);
    CHECK(p.describe().starts_with(p.level));
    if (p.level == "calm") {
      CHECK(p.nemesis_max_interval_ms == 0);
      CHECK(p.drop_probability == 0);
    } else {
      CHECK(p.nemesis_max_interval_ms > 0);
    }
  }
  for (const char* level : {"calm", "mild", "moderate", "harsh", "crashy"}) {
    INFO(level);
    CHECK(levels[level] >= 20);
  }
}

}  // namespace
}  // namespace nodenomad::sim
