// The per-key model on its own: the version rules of API.md and the storage
// engine, and how unobserved versions are bound.
#include "checker/kv_model.hpp"

#include <catch2/catch.hpp>

namespace nodenomad::testing::detail {
namespace {

ModelOp ok_op(KvOpKind kind, KvResultKind result, std::uint64_t result_version = 0) {
  ModelOp op;
  op.kind = kind;
  op.result_kind = result;
  op.result_version = result_version;
  return op;
}

ModelOp maybe_set(ValueId value) {
  ModelOp op;
  op.kind = KvOpKind::kSet;
  op.value = value;
  op.outcome_known = false;
  return op;
}

KeyState after_ok(const KeyState& state, const ModelOp& op) {
  KeyState next;
  const char* why = step_ok(state, op, &next);
  INFO((why == nullptr ? "legal" : why));
  REQUIRE(why == nullptr);
  return next;
}

TEST_CASE("model: a created key takes any version above its floor", "[checker][model]") {
  KeyState absent;
  absent.floor = 6;
  ModelOp create = ok_op(KvOpKind::kSet, KvResultKind::kWritten, 7);
  const KeyState created = after_ok(absent, create);
  CHECK(created.present);
  CHECK(created.version_known);
  CHECK(created.version == 7);
  create.result_version = 6;
  KeyState next;
  CHECK(step_ok(absent, create, &next) != nullptr);
  create.result_version = 40;
  CHECK(after_ok(absent, create).version == 40);
}

TEST_CASE("model: an unobserved version is a lower bound until something sees it",
          "[checker][model]") {
  const std::vector<std::string> values{"a", "b"};
  KeyState absent;
  absent.floor = 4;
  KeyState maybe;
  REQUIRE(step_maybe(absent, maybe_set(1), &maybe));
  CHECK_FALSE(maybe.version_known);
  CHECK(describe_state(maybe, values) == "present \"b\" v>4");

  // Two more unknown writes: the version is above 6.
  KeyState twice;
  REQUIRE(step_maybe(maybe, maybe_set(0), &twice));
  REQUIRE(step_maybe(twice, maybe_set(1), &twice));
  CHECK(twice.version == 6);

  ModelOp read = ok_op(KvOpKind::kGet, KvResultKind::kFound, 6);
  read.result_value = 1;
  KeyState next;
  CHECK(step_ok(twice, read, &next) != nullptr);  // 6 is not above 6
  read.result_version = 9;
  const KeyState bound = after_ok(twice, read);
  CHECK(bound.version_known);
  CHECK(bound.version == 9);

  // Removed while unobserved: the smallest version it can have had is 7, so
  // a re-created key must be above 7.
  const KeyState removed = after_ok(twice, [] {
    ModelOp op = ok_op(KvOpKind::kRemove, KvResultKind::kRemoved);
    op.result_deleted = true;
    return op;
  }());
  CHECK_FALSE(removed.present);
  CHECK(removed.floor == 7);
  CHECK(describe_state(removed, values) == "absent (a re-created version is > 7)");
}

TEST_CASE("model: an unknown operation with no effect is never placed", "[checker][model]") {
  KeyState absent;
  ModelOp remove;
  remove.kind = KvOpKind::kRemove;
  remove.outcome_known = false;
  KeyState next;
  CHECK_FALSE(step_maybe(absent, remove, &next));

  KeyState present;
  present.present = true;
  present.version = 3;
  ModelOp cas = maybe_set(0);
  cas.has_if_version = true;
  cas.if_version = 2;
  CHECK_FALSE(step_maybe(present, cas, &next));
  cas.if_version = 3;
  REQUIRE(step_maybe(present, cas, &next));
  CHECK(next.version == 4);
  CHECK(next.version_known);
}

TEST_CASE("model: compare-and-set against an unobserved version binds it", "[checker][model]") {
  KeyState unobserved;
  unobserved.present = true;
  unobserved.version_known = false;
  unobserved.version = 10;  // the version is > 10
  ModelOp cas = ok_op(KvOpKind::kSet, KvResultKind::kWritten, 13);
  cas.has_if_version = true;
  cas.if_version = 12;
  const KeyState next = after_ok(unobserved, cas);
  CHECK(next.version == 13);
  CHECK(next.version_known);

  cas.if_version = 10;  // not above the bound
  cas.result_version = 11;
  KeyState rejected;
  CHECK(step_ok(unobserved, cas, &rejected) != nullptr);

  ModelOp mismatch = ok_op(KvOpKind::kSet, KvResultKind::kVersionMismatch, 15);
  mismatch.has_if_version = true;
  mismatch.if_version = 3;
  CHECK(after_ok(unobserved, mismatch).version == 15);
}

TEST_CASE("model: what a chain of maybe operations could enable", "[checker][model]") {
  KeyState present;
  present.present = true;
  present.value = 1;
  present.version = 5;

  MaybeChainSummary one_set;
  ModelOp set = maybe_set(2);
  one_set.add(set);
  ModelOp read = ok_op(KvOpKind::kGet, KvResultKind::kFound, 6);
  read.result_value = 2;
  CHECK(chain_may_enable(present, one_set, read));  // the set gives "2" at v6
  read.result_version = 7;
  CHECK_FALSE(chain_may_enable(present, one_set, read));  // one set cannot reach v7
  read.result_version = 6;
  read.result_value = 3;
  CHECK_FALSE(chain_may_enable(present, one_set, read));  // nobody writes "3"
  CHECK_FALSE(chain_may_enable(present, one_set, ok_op(KvOpKind::kGet, KvResultKind::kNotFound)));

  MaybeChainSummary with_removal = one_set;
  ModelOp removal;
  removal.kind = KvOpKind::kRemove;
  removal.outcome_known = false;
  with_removal.add(removal);
  CHECK(chain_may_enable(present, with_removal, ok_op(KvOpKind::kGet, KvResultKind::kNotFound)));
  read.result_value = 2;
  read.result_version = 40;  // removed, then re-created far above
  CHECK(chain_may_enable(present, with_removal, read));
  // A re-create must land above the version removed (>= 5).
  CHECK_FALSE(
      chain_may_enable(present, with_removal, ok_op(KvOpKind::kSet, KvResultKind::kWritten, 5)));
  CHECK(chain_may_enable(present, with_removal, ok_op(KvOpKind::kSet, KvResultKind::kWritten, 6)));

  with_removal.remove(set);
  CHECK(with_removal.sets == 0);
  CHECK(with_removal.set_values.empty());
  CHECK_FALSE(chain_may_enable(present, with_removal, read));
}

}  // namespace
}  // namespace nodenomad::testing::detail
