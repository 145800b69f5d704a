// History and HistoryRecorder: logical time, outcomes, validation, printing,
// and recording from many threads at once.
#include <catch2/catch.hpp>
#include <mutex>
#include <thread>

#include "checker/checker_test_support.hpp"
#include "checker/simulated_store.hpp"

namespace nodenomad::testing {
namespace {

using checker_test::check;
using checker_test::SimulatedStore;

TEST_CASE("history: events take increasing logical times in call order", "[checker][history]") {
  History h;
  const OpId a = h.invoke(1, KvOp::set("k", "a"));
  const OpId b = h.invoke(2, KvOp::get("k"));
  h.complete_ok(b, KvResult::not_found());
  h.complete_unknown(a);
  const OpId c = h.invoke(3, KvOp::remove("k", 4));
  h.complete_fail(c);
  h.invoke(4, KvOp::get("k"));
  REQUIRE(h.size() == 4);
  CHECK(h.operation(a).invoke_time == 1);
  CHECK(h.operation(b).invoke_time == 2);
  CHECK(h.operation(b).complete_time == 3);
  CHECK(h.operation(a).complete_time == 4);
  CHECK(h.operation(a).completion == Completion::kUnknown);
  CHECK(h.operation(c).completion == Completion::kFail);
  CHECK(h.operation(3).completion == Completion::kPending);
  CHECK(h.operation(3).complete_time == 0);
  CHECK(h.validate().is_ok());
}

TEST_CASE("history: operations print in a short form", "[checker][history]") {
  History h;
  const OpId a = h.invoke(7, KvOp::set("k", "a\nb", 0));
  h.complete_ok(a, KvResult::written(3));
  const OpId b = h.invoke(2, KvOp::remove("k"));
  h.complete_unknown(b);
  const OpId c = h.invoke(2, KvOp::set("k", "x", 2));
  h.complete_ok(c, KvResult::version_mismatch(0));
  CHECK(to_string(h.operation(a)) ==
        "#0 c7 set(\"k\", \"a\\x0ab\", if_version=0) -> written v3 [t 1..2]");
  CHECK(to_string(h.operation(b)) == "#1 c2 remove(\"k\") -> unknown [t 3..]");
  CHECK(to_string(h.operation(c)) ==
        "#2 c2 set(\"k\", \"x\", if_version=2) -> version mismatch, current v0 [t 5..6]");
  CHECK(to_string(KvResult::found("v")) == "found \"v\" v?");
  CHECK(printable_bytes(std::string(100, 'x')).size() < 60);
}

TEST_CASE("history: validate() rejects answers that do not fit the operation",
          "[checker][history]") {
  const auto invalid = [](KvOp op, KvResult result) {
    History h;
    h.complete_ok(h.invoke(1, std::move(op)), std::move(result));
    return h.validate().code() == StatusCode::kInvalidArgument;
  };
  CHECK(invalid(KvOp::get("k"), KvResult::written(1)));
  CHECK(invalid(KvOp::set("k", "v"), KvResult::found("v", 1)));
  CHECK(invalid(KvOp::set("k", "v"), KvResult::version_mismatch(2)));
  CHECK(invalid(KvOp::remove("k"), KvResult::written(1)));
  CHECK(invalid(KvOp::get(""), KvResult::not_found()));
  CHECK_FALSE(invalid(KvOp::remove("k", 3), KvResult::version_mismatch(2)));
  CHECK_FALSE(invalid(KvOp::expire("k", 3), KvResult::removed(true)));
}

TEST_CASE("recorder: threads recording against a locked store give a linearizable history",
          "[checker][history]") {
  constexpr int kThreads = 4;
  constexpr int kOpsPerThread = 400;
  HistoryRecorder recorder;
  SimulatedStore store;
  std::mutex store_mutex;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kOpsPerThread; ++i) {
        const std::string key = fmt::format("key-{}", i % 3);
        KvOp op = i % 3 == 0   ? KvOp::get(key)
                  : i % 7 == 0 ? KvOp::remove(key)
                               : KvOp::set(key, fmt::format("t{}-{}", t, i));
        const OpId id = recorder.invoke(static_cast<ClientId>(t), op);
        KvResult result;
        {
          const std::lock_guard<std::mutex> lock(store_mutex);
          result = store.apply(op);
        }
        if (i % 50 == 49) {
          recorder.complete_unknown(id);
        } else {
          recorder.complete_ok(id, std::move(result));
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  const History history = recorder.snapshot();
  REQUIRE(history.size() == kThreads * kOpsPerThread);
  REQUIRE(recorder.size() == history.size());
  for (const Operation& operation : history.operations()) {
    REQUIRE(operation.completion != Completion::kPending);
    REQUIRE(operation.invoke_time < operation.complete_time);
  }
  const CheckResult result = check(history);
  INFO(result.explanation);
  CHECK(result.verdict == Verdict::kOk);
}

}  // namespace
}  // namespace nodenomad::testing
