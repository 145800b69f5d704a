// The workload's pure parts, without a process: how each HTTP answer is
// recorded, and the acknowledged-write check.
#include "cluster/kv_workload.hpp"

#include <catch2/catch.hpp>
#include <map>

namespace nodenomad::process_testing {
namespace {

using testing::Completion;
using testing::History;
using testing::KvOp;
using testing::KvResult;
using testing::KvResultKind;

HttpResult answered(int status, std::string body, std::map<std::string, std::string> headers = {}) {
  HttpResult result;
  result.request_sent = true;
  result.reply = HttpReply{status, std::move(headers), std::move(body)};
  return result;
}

}  // namespace

TEST_CASE("workload: every HTTP answer maps onto the outcome docs/linearizability.md gives it",
          "[cluster][workload]") {
  const KvOp put = KvOp::set("k", "v");
  const KvOp cas = KvOp::set("k", "v", 3);
  const KvOp get = KvOp::get("k");
  const KvOp del = KvOp::remove("k");

  ClassifiedAnswer a = classify_answer(put, answered(200, R"({"key": "k", "version": 7})"));
  CHECK(a.completion == Completion::kOk);
  CHECK(a.result.kind == KvResultKind::kWritten);
  CHECK(a.result.version == 7);
  CHECK(a.unexpected.empty());

  a = classify_answer(
      cas,
      answered(412,
               R"({"error": {"code": "version_mismatch", "message": "x"}, "current_version": 5})"));
  CHECK(a.completion == Completion::kOk);
  CHECK(a.result.kind == KvResultKind::kVersionMismatch);
  CHECK(a.result.version == 5);

  a = classify_answer(get, answered(200, "value", {{"x-nodenomad-version", "4"}}));
  CHECK(a.completion == Completion::kOk);
  CHECK(a.result.kind == KvResultKind::kFound);
  CHECK(a.result.value == "value");
  CHECK(a.result.version == 4);

  CHECK(classify_answer(get, answered(404, R"({"error": {"code": "not_found", "message": "x"}})"))
            .result.kind == KvResultKind::kNotFound);
  a = classify_answer(del, answered(200, R"({"deleted": false})"));
  CHECK(a.completion == Completion::kOk);
  CHECK(a.result.kind == KvResultKind::kRemoved);
  CHECK_FALSE(a.result.deleted);

  CHECK(classify_answer(put, answered(503, "{}")).completion == Completion::kFail);
  CHECK(classify_answer(put, answered(504, "{}")).completion == Completion::kUnknown);

  SECTION("no answer: fail if nothing left, unknown once a byte was sent") {
    HttpResult refused;
    refused.error = "connect: Connection refused";
    CHECK(classify_answer(put, refused).completion == Completion::kFail);
    HttpResult reset;
    reset.request_sent = true;
    reset.error = "recv: Connection reset by peer";
    CHECK(classify_answer(put, reset).completion == Completion::kUnknown);
  }
  SECTION("answers API.md does not allow for a well-formed request are flagged") {
    CHECK_FALSE(classify_answer(put, answered(400, "{}")).unexpected.empty());
    CHECK_FALSE(classify_answer(put, answered(500, "{}")).unexpected.empty());
    CHECK_FALSE(classify_answer(put, answered(404, "{}")).unexpected.empty());
    CHECK_FALSE(classify_answer(put, answered(200, "{}")).unexpected.empty());
    CHECK_FALSE(classify_answer(get, answered(200, "v")).unexpected.empty());  // no version header
    CHECK_FALSE(
        classify_answer(put, answered(412, R"({"current_version": 1})")).unexpected.empty());
  }
}

TEST_CASE("workload: an acknowledged write the final read contradicts is reported as lost",
          "[cluster][workload]") {
  History history;
  const auto w1 = history.invoke(1, KvOp::set("k", "a"));
  history.complete_ok(w1, KvResult::written(1));
  const auto w2 = history.invoke(1, KvOp::set("k", "b"));
  history.complete_ok(w2, KvResult::written(2));

  CHECK(find_lost_writes(history, {{"k", KvResult::found("b", 2)}}).empty());
  CHECK(find_lost_writes(history, {{"k", KvResult::found("a", 1)}}).size() == 1);
  CHECK(find_lost_writes(history, {{"k", KvResult::not_found()}}).size() == 2);

  SECTION("a delete that may come after the write supersedes it") {
    const auto d = history.invoke(2, KvOp::remove("k"));
    history.complete_unknown(d);
    CHECK(find_lost_writes(history, {{"k", KvResult::not_found()}}).empty());
  }
  SECTION("a delete that completed before the write began does not") {
    History ordered;
    const auto d = ordered.invoke(2, KvOp::remove("k"));
    ordered.complete_ok(d, KvResult::removed(true));
    const auto w = ordered.invoke(1, KvOp::set("k", "c"));
    ordered.complete_ok(w, KvResult::written(5));
    CHECK(find_lost_writes(ordered, {{"k", KvResult::not_found()}}).size() == 1);
  }
}

}  // namespace nodenomad::process_testing
