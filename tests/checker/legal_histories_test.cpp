// Hand-made histories that a linearizable NodeNomad store can produce: the
// checker must answer kOk for each. Times are the order of the calls below;
// an operation whose invoke and completion are both recorded before the next
// invoke is ordered before it, anything else overlaps.
#include <catch2/catch.hpp>

#include "checker/checker_test_support.hpp"

namespace nodenomad::testing {
namespace {

using checker_test::check;
using checker_test::sequential;
using checker_test::verdict_of;

TEST_CASE("legal: sequential set, overwrite, get, remove, get", "[checker][legal]") {
  History h;
  sequential(h, 1, KvOp::get("k"), KvResult::not_found());
  sequential(h, 1, KvOp::set("k", "a"), KvResult::written(1));
  sequential(h, 2, KvOp::get("k"), KvResult::found("a", 1));
  sequential(h, 1, KvOp::set("k", "b"), KvResult::written(2));
  sequential(h, 2, KvOp::get("k"), KvResult::found("b", 2));
  sequential(h, 2, KvOp::remove("k"), KvResult::removed(true));
  sequential(h, 1, KvOp::remove("k"), KvResult::removed(false));
  sequential(h, 1, KvOp::get("k"), KvResult::not_found());
  const CheckResult result = check(h);
  INFO(result.explanation);
  REQUIRE(result.verdict == Verdict::kOk);
  REQUIRE(result.keys.size() == 1);
  CHECK(result.keys[0].linearization == std::vector<OpId>{0, 1, 2, 3, 4, 5, 6, 7});
}

TEST_CASE("legal: two overlapping writes may be read in either order", "[checker][legal]") {
  for (const bool a_wins : {true, false}) {
    History h;
    const OpId a = h.invoke(1, KvOp::set("k", "a"));
    const OpId b = h.invoke(2, KvOp::set("k", "b"));
    h.complete_ok(b, KvResult::written(a_wins ? 1 : 2));
    h.complete_ok(a, KvResult::written(a_wins ? 2 : 1));
    sequential(h, 3, KvOp::get("k"), KvResult::found(a_wins ? "a" : "b", 2));
    CHECK(verdict_of(h) == Verdict::kOk);
  }
}

TEST_CASE("legal: a read concurrent with a write sees the old or the new value",
          "[checker][legal]") {
  for (const bool sees_new : {false, true}) {
    History h;
    sequential(h, 1, KvOp::set("k", "old"), KvResult::written(1));
    const OpId w = h.invoke(1, KvOp::set("k", "new"));
    const OpId r = h.invoke(2, KvOp::get("k"));
    h.complete_ok(r, sees_new ? KvResult::found("new", 2) : KvResult::found("old", 1));
    h.complete_ok(w, KvResult::written(2));
    CHECK(verdict_of(h) == Verdict::kOk);
  }
}

TEST_CASE("legal: compare-and-set success and version mismatch", "[checker][legal]") {
  History h;
  sequential(h, 1, KvOp::set("k", "a", 0), KvResult::written(1));
  sequential(h, 2, KvOp::set("k", "x", 0), KvResult::version_mismatch(1));
  sequential(h, 2, KvOp::set("k", "b", 1), KvResult::written(2));
  sequential(h, 1, KvOp::set("k", "c", 1), KvResult::version_mismatch(2));
  sequential(h, 1, KvOp::remove("k", 1), KvResult::version_mismatch(2));
  sequential(h, 1, KvOp::remove("k", 2), KvResult::removed(true));
  sequential(h, 2, KvOp::set("k", "d", 2), KvResult::version_mismatch(0));
  sequential(h, 2, KvOp::remove("k", 0), KvResult::removed(false));
  CHECK(verdict_of(h) == Verdict::kOk);
}

TEST_CASE("legal: two concurrent compare-and-sets from one version, one wins", "[checker][legal]") {
  History h;
  sequential(h, 1, KvOp::set("k", "a"), KvResult::written(1));
  const OpId x = h.invoke(1, KvOp::set("k", "x", 1));
  const OpId y = h.invoke(2, KvOp::set("k", "y", 1));
  h.complete_ok(x, KvResult::version_mismatch(2));
  h.complete_ok(y, KvResult::written(2));
  CHECK(verdict_of(h) == Verdict::kOk);
}

TEST_CASE("legal: a re-created key continues above its old version, not at old + 1",
          "[checker][legal]") {
  History h;
  sequential(h, 1, KvOp::set("k", "a"), KvResult::written(3));  // created above a floor
  sequential(h, 1, KvOp::set("k", "b"), KvResult::written(4));
  sequential(h, 1, KvOp::remove("k"), KvResult::removed(true));
  sequential(h, 2, KvOp::set("k", "c", 0), KvResult::written(9));  // engine-wide floor
  sequential(h, 2, KvOp::get("k"), KvResult::found("c", 9));
  sequential(h, 2, KvOp::set("k", "d", 9), KvResult::written(10));
  CHECK(verdict_of(h) == Verdict::kOk);
}

TEST_CASE("legal: an unknown write that took effect", "[checker][legal]") {
  History h;
  sequential(h, 1, KvOp::set("k", "a"), KvResult::written(1));
  const OpId w = h.invoke(1, KvOp::set("k", "b"));
  h.complete_unknown(w);
  sequential(h, 2, KvOp::get("k"), KvResult::found("b", 2));
  CHECK(verdict_of(h) == Verdict::kOk);
}

TEST_CASE("legal: an unknown write that never took effect", "[checker][legal]") {
  History h;
  sequential(h, 1, KvOp::set("k", "a"), KvResult::written(1));
  const OpId w = h.invoke(1, KvOp::set("k", "b"));
  h.complete_unknown(w);
  sequential(h, 2, KvOp::get("k"), KvResult::found("a", 1));
  sequential(h, 2, KvOp::set("k", "c"), KvResult::written(2));
  sequential(h, 2, KvOp::get("k"), KvResult::found("c", 2));
  CHECK(verdict_of(h) == Verdict::kOk);
}

TEST_CASE("legal: an unknown write that took effect late", "[checker][legal]") {
  History h;
  sequential(h, 1, KvOp::set("k", "a"), KvResult::written(1));
  const OpId w = h.invoke(1, KvOp::set("k", "b"));
  h.complete_unknown(w);
  // Long after the client gave up, the write is still in flight.
  sequential(h, 2, KvOp::get("k"), KvResult::found("a", 1));
  sequential(h, 2, KvOp::get("k"), KvResult::found("a", 1));
  sequential(h, 2, KvOp::get("k"), KvResult::found("b", 2));
  sequential(h, 2, KvOp::set("k", "c", 2), KvResult::written(3));
  CHECK(verdict_of(h) == Verdict::kOk);
}

TEST_CASE("legal: an unknown write explains a version gap", "[checker][legal]") {
  History h;
  sequential(h, 1, KvOp::set("k", "a"), KvResult::written(1));
  const OpId w = h.invoke(2, KvOp::set("k", "b"));
  h.complete_unknown(w);
  sequential(h, 1, KvOp::set("k", "c"), KvResult::written(3));
  CHECK(verdict_of(h) == Verdict::kOk);
}

TEST_CASE("legal: an unknown create's version is bound by the first read that sees it",
          "[checker][legal]") {
  History h;
  sequential(h, 1, KvOp::set("k", "a"), KvResult::written(5));
  sequential(h, 1, KvOp::remove("k"), KvResult::removed(true));
  const OpId w = h.invoke(1, KvOp::set("k", "b"));
  h.complete_unknown(w);
  sequential(h, 2, KvOp::get("k"), KvResult::found("b"));  // no version reported
  sequential(h, 2, KvOp::set("k", "c", 12), KvResult::written(13));
  sequential(h, 2, KvOp::get("k"), KvResult::found("c", 13));
  CHECK(verdict_of(h) == Verdict::kOk);
}

TEST_CASE("legal: failed operations are ignored", "[checker][legal]") {
  History h;
  sequential(h, 1, KvOp::set("k", "a"), KvResult::written(1));
  const OpId failed = h.invoke(2, KvOp::set("k", "b"));
  h.complete_fail(failed);
  const OpId failed_remove = h.invoke(2, KvOp::remove("k"));
  h.complete_fail(failed_remove);
  sequential(h, 1, KvOp::get("k"), KvResult::found("a", 1));
  const CheckResult result = check(h);
  CHECK(result.verdict == Verdict::kOk);
  REQUIRE(result.keys.size() == 1);
  CHECK(result.keys[0].operations == 2);
}

TEST_CASE("legal: pending operations count as unknown", "[checker][legal]") {
  History h;
  sequential(h, 1, KvOp::set("k", "a"), KvResult::written(1));
  h.invoke(2, KvOp::remove("k"));  // never completed: the client crashed
  sequential(h, 1, KvOp::get("k"), KvResult::found("a", 1));
  sequential(h, 1, KvOp::get("k"), KvResult::not_found());
  CHECK(verdict_of(h) == Verdict::kOk);
}

TEST_CASE("legal: an expiry removes the key only at its version", "[checker][legal]") {
  History h;
  sequential(h, 1, KvOp::set("k", "a"), KvResult::written(1));
  const OpId expiry = h.invoke(0, KvOp::expire("k", 1));
  h.complete_unknown(expiry);
  sequential(h, 1, KvOp::get("k"), KvResult::not_found());
  sequential(h, 1, KvOp::set("k", "b"), KvResult::written(2));
  sequential(h, 0, KvOp::expire("k", 1), KvResult::removed(false));
  sequential(h, 1, KvOp::get("k"), KvResult::found("b", 2));
  CHECK(verdict_of(h) == Verdict::kOk);
}

TEST_CASE("legal: keys are checked independently and reported in key order", "[checker][legal]") {
  History h;
  const OpId a = h.invoke(1, KvOp::set("k2", "x"));
  const OpId b = h.invoke(2, KvOp::set("k1", "y"));
  h.complete_ok(a, KvResult::written(1));
  h.complete_ok(b, KvResult::written(1));
  sequential(h, 3, KvOp::get("k1"), KvResult::found("y", 1));
  sequential(h, 3, KvOp::get("k2"), KvResult::found("x", 1));
  const OpId failed = h.invoke(3, KvOp::set("k0", "z"));
  h.complete_fail(failed);
  const CheckResult result = check(h);
  CHECK(result.verdict == Verdict::kOk);
  REQUIRE(result.keys.size() == 3);
  CHECK(result.keys[0].key == "k0");
  CHECK(result.keys[0].operations == 0);
  CHECK(result.keys[1].key == "k1");
  CHECK(result.keys[2].key == "k2");
}

TEST_CASE("legal: binary keys and values", "[checker][legal]") {
  History h;
  const std::string key("k\0\xff", 3);
  const std::string value("\0\x01\"", 3);
  sequential(h, 1, KvOp::set(key, value), KvResult::written(1));
  sequential(h, 1, KvOp::get(key), KvResult::found(value, 1));
  CHECK(verdict_of(h) == Verdict::kOk);
}

}  // namespace
}  // namespace nodenomad::testing
