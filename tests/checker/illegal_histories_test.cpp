// Hand-made histories that no linearizable NodeNomad store can produce: the
// checker must answer kIllegal and say where. Also: malformed histories,
// the state budget and the injected deadline.
#include <catch2/catch.hpp>

#include "checker/checker_test_support.hpp"
#include "nodenomad/clock.hpp"

namespace nodenomad::testing {
namespace {

using checker_test::check;
using checker_test::sequential;
using checker_test::verdict_of;

TEST_CASE("illegal: a stale read after a completed write", "[checker][illegal]") {
  History h;
  sequential(h, 1, KvOp::set("k", "a"), KvResult::written(1));
  sequential(h, 1, KvOp::set("k", "b"), KvResult::written(2));
  sequential(h, 2, KvOp::get("k"), KvResult::found("a", 1));
  CHECK(verdict_of(h) == Verdict::kIllegal);
}

TEST_CASE("illegal: a read of a value never written", "[checker][illegal]") {
  History h;
  sequential(h, 1, KvOp::set("k", "a"), KvResult::written(1));
  const OpId w = h.invoke(1, KvOp::set("k", "b"));
  const OpId r = h.invoke(2, KvOp::get("k"));
  h.complete_ok(r, KvResult::found("zzz"));
  h.complete_ok(w, KvResult::written(2));
  CHECK(verdict_of(h) == Verdict::kIllegal);
}

TEST_CASE("illegal: an acknowledged write is lost", "[checker][illegal]") {
  History h;
  sequential(h, 1, KvOp::set("k", "a"), KvResult::written(1));
  sequential(h, 2, KvOp::get("k"), KvResult::not_found());
  CHECK(verdict_of(h) == Verdict::kIllegal);
}

TEST_CASE("illegal: the version goes backwards", "[checker][illegal]") {
  History h;
  sequential(h, 1, KvOp::set("k", "a"), KvResult::written(3));
  sequential(h, 2, KvOp::get("k"), KvResult::found("a", 3));
  sequential(h, 2, KvOp::get("k"), KvResult::found("a", 2));
  CHECK(verdict_of(h) == Verdict::kIllegal);
}

TEST_CASE("illegal: a write skips a version with nothing to explain it", "[checker][illegal]") {
  History h;
  sequential(h, 1, KvOp::set("k", "a"), KvResult::written(1));
  sequential(h, 1, KvOp::set("k", "b"), KvResult::written(3));
  CHECK(verdict_of(h) == Verdict::kIllegal);
}

TEST_CASE("illegal: a re-created key reuses an old version", "[checker][illegal]") {
  History h;
  sequential(h, 1, KvOp::set("k", "a"), KvResult::written(1));
  sequential(h, 1, KvOp::set("k", "b"), KvResult::written(2));
  sequential(h, 1, KvOp::remove("k"), KvResult::removed(true));
  sequential(h, 1, KvOp::set("k", "c"), KvResult::written(2));
  CHECK(verdict_of(h) == Verdict::kIllegal);
}

TEST_CASE("illegal: two compare-and-sets from the same version both succeed",
          "[checker][illegal]") {
  History h;
  sequential(h, 1, KvOp::set("k", "a"), KvResult::written(1));
  const OpId x = h.invoke(1, KvOp::set("k", "x", 1));
  const OpId y = h.invoke(2, KvOp::set("k", "y", 1));
  h.complete_ok(x, KvResult::written(2));
  h.complete_ok(y, KvResult::written(2));
  CHECK(verdict_of(h) == Verdict::kIllegal);
}

TEST_CASE("illegal: two creates with if_version 0 both succeed", "[checker][illegal]") {
  History h;
  const OpId x = h.invoke(1, KvOp::set("k", "x", 0));
  const OpId y = h.invoke(2, KvOp::set("k", "y", 0));
  h.complete_ok(x, KvResult::written());
  h.complete_ok(y, KvResult::written());
  CHECK(verdict_of(h) == Verdict::kIllegal);
}

TEST_CASE("illegal: a mismatch reports a version the key never had then", "[checker][illegal]") {
  History h;
  sequential(h, 1, KvOp::set("k", "a"), KvResult::written(1));
  sequential(h, 2, KvOp::set("k", "b", 7), KvResult::version_mismatch(4));
  CHECK(verdict_of(h) == Verdict::kIllegal);
}

TEST_CASE("illegal: a read of a value whose write failed", "[checker][illegal]") {
  History h;
  sequential(h, 1, KvOp::set("k", "a"), KvResult::written(1));
  const OpId w = h.invoke(1, KvOp::set("k", "b"));
  h.complete_fail(w);
  sequential(h, 2, KvOp::get("k"), KvResult::found("b"));
  CHECK(verdict_of(h) == Verdict::kIllegal);
}

TEST_CASE("illegal: a newer value seen, then the older one by a later read", "[checker][illegal]") {
  // No versions reported: the values alone prove it.
  History h;
  sequential(h, 1, KvOp::set("k", "old"), KvResult::written());
  const OpId w = h.invoke(1, KvOp::set("k", "new"));
  sequential(h, 2, KvOp::get("k"), KvResult::found("new"));
  sequential(h, 3, KvOp::get("k"), KvResult::found("old"));
  h.complete_ok(w, KvResult::written());
  CHECK(verdict_of(h) == Verdict::kIllegal);
}

TEST_CASE("illegal: an unknown write takes effect at most once", "[checker][illegal]") {
  History h;
  sequential(h, 1, KvOp::set("k", "a"), KvResult::written());
  const OpId w = h.invoke(1, KvOp::set("k", "b"));
  h.complete_unknown(w);
  sequential(h, 2, KvOp::get("k"), KvResult::found("b"));
  sequential(h, 2, KvOp::set("k", "a"), KvResult::written());
  sequential(h, 2, KvOp::get("k"), KvResult::found("a"));
  sequential(h, 2, KvOp::get("k"), KvResult::found("b"));
  CHECK(verdict_of(h) == Verdict::kIllegal);
}

TEST_CASE("illegal: a version going back is proven directly, naming both operations",
          "[checker][illegal]") {
  History h;
  sequential(h, 1, KvOp::set("good", "x"), KvResult::written(1));
  sequential(h, 1, KvOp::set("bad", "a"), KvResult::written(1));
  const OpId b = sequential(h, 1, KvOp::set("bad", "b"), KvResult::written(2));
  const OpId stale = sequential(h, 2, KvOp::get("bad"), KvResult::found("a", 1));
  const CheckResult result = check(h);
  INFO(result.explanation);
  REQUIRE(result.verdict == Verdict::kIllegal);
  REQUIRE(result.keys.size() == 2);
  const KeyCheck& bad = result.keys[0];
  CHECK(bad.key == "bad");
  CHECK(bad.verdict == Verdict::kIllegal);
  CHECK(bad.states_explored == 0);
  CHECK(result.keys[1].verdict == Verdict::kOk);
  CHECK(bad.illegal.blocked == stale);
  CHECK(bad.illegal.witnesses == std::vector<OpId>{b});
  CHECK(bad.illegal.summary ==
        "#3 found the key at version 1, but #2 had already shown version 2 and completed before "
        "#3 began; a key's versions never go back");
  CHECK_THAT(result.explanation, Catch::Contains("key \"bad\": illegal"));
  CHECK_THAT(result.explanation, Catch::Contains("#3 c2 get(\"bad\") -> found \"a\" v1"));
  CHECK_THAT(result.explanation, !Catch::Contains("key \"good\""));
}

TEST_CASE("illegal: a read of a value nobody wrote is proven directly", "[checker][illegal]") {
  History h;
  const OpId w = h.invoke(1, KvOp::set("k", "a"));
  const OpId r = h.invoke(2, KvOp::get("k"));
  h.complete_ok(r, KvResult::found("zzz"));
  h.complete_ok(w, KvResult::written());
  const CheckResult result = check(h);
  REQUIRE(result.verdict == Verdict::kIllegal);
  CHECK(result.keys[0].illegal.blocked == r);
  CHECK_THAT(result.keys[0].illegal.summary, Catch::Contains("\"zzz\", which no write"));
}

TEST_CASE("illegal: the search reports the longest prefix and the blocked operation",
          "[checker][illegal]") {
  // No versions, so only the search can tell.
  History h;
  const OpId a = sequential(h, 1, KvOp::set("k", "a"), KvResult::written());
  const OpId b = sequential(h, 1, KvOp::set("k", "b"), KvResult::written());
  const OpId c = h.invoke(3, KvOp::set("k", "c"));
  const OpId stale = h.invoke(2, KvOp::get("k"));
  h.complete_ok(stale, KvResult::found("a"));
  h.complete_ok(c, KvResult::written());
  const CheckResult result = check(h);
  INFO(result.explanation);
  REQUIRE(result.verdict == Verdict::kIllegal);
  const IllegalKeyReport& report = result.keys[0].illegal;
  CHECK(result.keys[0].states_explored > 0);
  CHECK(report.blocked == stale);
  CHECK(report.witnesses.empty());
  CHECK(report.longest_prefix == std::vector<OpId>{a, b, c});
  CHECK(report.state_after_prefix == "present \"c\"");
  REQUIRE(report.unplaced == std::vector<OpId>{stale});
  CHECK(report.unplaced_reasons[0] == "the get found a value other than the key's");
  CHECK_THAT(result.explanation, Catch::Contains("longest linearizable prefix: 3 operations:"));
  CHECK_THAT(result.explanation, Catch::Contains("state after it: present \"c\""));
}

TEST_CASE("illegal: a malformed history is an invalid argument", "[checker][illegal]") {
  History h;
  sequential(h, 1, KvOp::get("k"), KvResult::written(1));
  const Result<CheckResult> result = check_linearizability(h);
  REQUIRE_FALSE(result.is_ok());
  CHECK(result.status().code() == StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(result.status().message()), Catch::Contains("#0 c1 get(\"k\")"));

  History mismatch_without_if_version;
  sequential(mismatch_without_if_version, 1, KvOp::set("k", "a"), KvResult::version_mismatch(1));
  CHECK_FALSE(check_linearizability(mismatch_without_if_version).is_ok());

  CheckOptions zero_budget;
  zero_budget.max_states_per_key = 0;
  CHECK_FALSE(check_linearizability(History{}, zero_budget).is_ok());
}

// Many overlapping writes, then two reads, after all of them completed,
// that disagree. Proving it illegal means trying every subset of the writes
// as the ones placed first: exponential in `writers`.
History overlapping_writes_then_disagreeing_reads(int writers) {
  History h;
  std::vector<OpId> writes;
  for (int c = 0; c < writers; ++c) {
    writes.push_back(h.invoke(static_cast<ClientId>(c), KvOp::set("k", fmt::format("v{}", c))));
  }
  for (const OpId w : writes) h.complete_ok(w, KvResult::written());
  sequential(h, 99, KvOp::get("k"), KvResult::found("v0"));
  sequential(h, 99, KvOp::get("k"), KvResult::found("v1"));
  return h;
}

TEST_CASE("budget: a tiny state budget answers kUnknown, never kOk", "[checker][budget]") {
  const History h = overlapping_writes_then_disagreeing_reads(12);
  CheckOptions tiny;
  tiny.max_states_per_key = 50;
  const CheckResult result = check(h, tiny);
  CHECK(result.verdict == Verdict::kUnknown);
  REQUIRE(result.keys.size() == 1);
  CHECK(result.keys[0].states_explored == 50);
  CHECK_FALSE(result.keys[0].stopped_by_deadline);
  CHECK_THAT(result.explanation, Catch::Contains("the state budget ran out"));

  // A legal history also becomes kUnknown, not kOk, when the budget is short.
  History legal;
  for (int i = 1; i <= 20; ++i) {
    sequential(legal, 1, KvOp::set("k", fmt::format("v{}", i)), KvResult::written(i));
  }
  tiny.max_states_per_key = 10;
  CHECK(verdict_of(legal, tiny) == Verdict::kUnknown);
  CHECK(verdict_of(legal) == Verdict::kOk);
}

TEST_CASE("budget: the same history and budget give the same verdict and count",
          "[checker][budget]") {
  const History h = overlapping_writes_then_disagreeing_reads(9);
  CheckOptions options;
  options.max_states_per_key = 5000;
  const CheckResult first = check(h, options);
  const CheckResult second = check(h, options);
  CHECK(first.verdict == second.verdict);
  CHECK(first.states_explored == second.states_explored);
  CHECK(first.verdict != Verdict::kOk);
}

TEST_CASE("budget: the injected clock's deadline stops the search", "[checker][budget]") {
  const History h = overlapping_writes_then_disagreeing_reads(12);
  ManualClock clock;
  CheckOptions options;
  options.clock = &clock;
  options.deadline = clock.monotonic_now();  // already due
  const CheckResult result = check(h, options);
  CHECK(result.verdict == Verdict::kUnknown);
  REQUIRE(result.keys.size() == 1);
  CHECK(result.keys[0].stopped_by_deadline);
  CHECK_THAT(result.explanation, Catch::Contains("the deadline passed"));

  options.deadline = clock.monotonic_now() + std::chrono::seconds(1);  // never reached
  const CheckResult unhurried = check(h, options);
  CHECK(unhurried.verdict == Verdict::kIllegal);
}

}  // namespace
}  // namespace nodenomad::testing
