// CatchUpRounds: a learner that converges is judged caught up, one close
// to the commit at once, one that keeps up at a steady lag after one short
// round; one slower than the write rate, or one that stops, makes no
// progress for the stall clock once its round has run past the fastest.
// Driven by a model of the leader and the learner: the commit grows by
// `write_per_ms`, the learner's match by `catch_per_ms`, and the leader is
// asked every 100 ms, as the coordinator does.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>

#include "node/catch_up_rounds.hpp"

namespace nodenomad::node {
namespace {

constexpr std::uint64_t kClose = 100;
constexpr std::uint64_t kRoundMs = 500;
constexpr std::uint64_t kStepMs = 100;

struct Model {
  double write_per_ms = 35;
  double catch_per_ms = 70;
  std::uint64_t backlog = 350'000;
  std::uint64_t timeout_ms = 3'000;  // the stage's stall timeout
  std::uint64_t horizon_ms = 600'000;
  std::uint64_t learner_stops_ms = std::numeric_limits<std::uint64_t>::max();
};

struct Outcome {
  bool caught_up = false;
  bool stalled = false;
  std::uint64_t at_ms = 0;           // when it was caught up, or stalled
  std::uint64_t longest_quiet_ms = 0;  // longest wait between progress
  std::uint64_t rounds = 0;
  std::string note;
};

Outcome run(const Model& m) {
  CatchUpRounds rounds(kClose, kRoundMs);
  constexpr std::uint64_t kBase = 1'000'000;
  std::uint64_t progress_ms = 0;
  Outcome out;
  for (std::uint64_t t = 0; t <= m.horizon_ms; t += kStepMs) {
    const auto commit = kBase + static_cast<std::uint64_t>(m.write_per_ms * static_cast<double>(t));
    const std::uint64_t caught_t = std::min(t, m.learner_stops_ms);
    const auto match = std::min<std::uint64_t>(
        commit, kBase - m.backlog +
                    static_cast<std::uint64_t>(m.catch_per_ms * static_cast<double>(caught_t)));
    const CatchUpRounds::Verdict v = rounds.observe(t, LogIndex(commit), LogIndex(match));
    out.rounds = rounds.rounds_done();
    out.note = rounds.describe();
    if (v.progressed) progress_ms = t;
    out.longest_quiet_ms = std::max(out.longest_quiet_ms, t - progress_ms);
    if (v.caught_up) {
      out.caught_up = true;
      out.at_ms = t;
      return out;
    }
    if (t - progress_ms > m.timeout_ms) {
      out.stalled = true;
      out.at_ms = t;
      return out;
    }
  }
  return out;
}

TEST_CASE("catch-up: a learner within the close distance is caught up at once", "[catch_up]") {
  CatchUpRounds rounds(kClose, kRoundMs);
  const CatchUpRounds::Verdict v = rounds.observe(0, LogIndex(5'000), LogIndex(4'950));
  CHECK(v.caught_up);
  CHECK(v.progressed);
  CHECK(rounds.lag() == 50);
}

TEST_CASE("catch-up: a learner twice as fast as the writes converges without a stall",
          "[catch_up]") {
  const Outcome o = run(Model{});
  INFO(o.note);
  REQUIRE(o.caught_up);
  CHECK_FALSE(o.stalled);
  // Rounds of about 5 s, 2.5 s, 1.25 s, 0.6 s, then one under 500 ms.
  CHECK(o.rounds >= 4);
  CHECK(o.rounds <= 6);
  CHECK(o.at_ms < 11'000);
  CHECK(o.longest_quiet_ms <= kStepMs);
}

TEST_CASE("catch-up: a learner barely faster than the writes keeps converging past the timeout",
          "[catch_up]") {
  Model m;
  m.catch_per_ms = 38.5;  // each round about 9% shorter, the first about 9 s
  const Outcome o = run(m);
  INFO(o.note);
  REQUIRE(o.caught_up);
  CHECK(o.rounds > 20);
  CHECK(o.at_ms > 60'000);  // long after the 3 s stall timeout, yet no stall
  CHECK(o.longest_quiet_ms <= 2 * kStepMs);
}

TEST_CASE("catch-up: a learner slower than the writes stalls once a round outlasts the fastest",
          "[catch_up]") {
  Model m;
  m.catch_per_ms = 30;  // the writes come at 35 per ms
  const Outcome o = run(m);
  INFO(o.note);
  REQUIRE(o.stalled);
  CHECK_FALSE(o.caught_up);
  // Round 1 (350 000 entries at 30 per ms) takes 11.7 s, longer than the
  // timeout, and is progress while the learner moves. Round 2 takes
  // 11.7 * 35 / 30 = 13.7 s: past the fastest, but by less than the
  // timeout. Round 3 would take 15.9 s: the stall clock runs out 11.7 s +
  // 3 s into it, at 11.7 + 13.7 + 14.7 = 40.1 s.
  CHECK(o.rounds == 2);
  CHECK(o.at_ms >= 40'000);
  CHECK(o.at_ms <= 40'400);
  CHECK(o.note.find("2 catch-up rounds done, the last 13700 ms") != std::string::npos);
  CHECK(o.note.find("(fastest 11700 ms)") != std::string::npos);
  CHECK(o.note.find("entries behind") != std::string::npos);
}

TEST_CASE("catch-up: a learner that keeps up at a steady lag is caught up after one short round",
          "[catch_up]") {
  // 2 000 writes per ms: the learner is always one report (200 000
  // entries) behind, far more than the close distance, yet it finishes
  // every round in one report.
  CatchUpRounds rounds(kClose, kRoundMs);
  std::uint64_t commit = 1'000'000;
  std::uint64_t match = commit - 200'000;
  CHECK_FALSE(rounds.observe(0, LogIndex(commit), LogIndex(match)).caught_up);
  match = commit;
  commit += 200'000;
  const CatchUpRounds::Verdict v = rounds.observe(kStepMs, LogIndex(commit), LogIndex(match));
  CHECK(v.caught_up);
  CHECK(rounds.rounds_done() == 1);
}

TEST_CASE("catch-up: a learner that stops mid-round stalls after the fastest round plus the "
          "timeout",
          "[catch_up]") {
  Model m;
  m.learner_stops_ms = 6'000;  // inside the second round (the first ends near 5 s)
  const Outcome o = run(m);
  INFO(o.note);
  REQUIRE(o.stalled);
  CHECK(o.rounds == 1);
  // The second round starts at ~5 s; progress counts until it has run as
  // long as the first (~5 s), then the timeout runs.
  CHECK(o.at_ms >= 10'000 + m.timeout_ms);
  CHECK(o.at_ms <= 10'000 + m.timeout_ms + 3 * kStepMs);
}

TEST_CASE("catch-up: a learner stuck in its first round stalls after the timeout", "[catch_up]") {
  Model m;
  m.learner_stops_ms = 2'000;
  const Outcome o = run(m);
  INFO(o.note);
  REQUIRE(o.stalled);
  CHECK(o.rounds == 0);
  CHECK(o.at_ms == 2'000 + m.timeout_ms + kStepMs);
  CHECK(o.note.find("catch-up round 1;") != std::string::npos);
}

}  // namespace
}  // namespace nodenomad::node
