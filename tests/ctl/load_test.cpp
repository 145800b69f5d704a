// `nodenomadctl load`'s pure parts (load_cli.hpp): the schedule, the latency
// histogram, what each answer counts as, one connection's loop on a fake
// clock with scripted answers, and the summary.
#include <atomic>
#include <catch2/catch.hpp>
#include <vector>

#include "ctl_test_support.hpp"
#include "load_cli.hpp"

namespace nodenomad::ctl {
namespace {

using testing::failure;
using testing::reply;

TEST_CASE("ctl load: the pacer keeps a fixed schedule and skips what a stall missed",
          "[ctl][load]") {
  Pacer pacer(1'000, 10'000);  // from 1 ms, every 10 ms
  CHECK(pacer.due_us() == 1'000);
  pacer.sent(1'500);  // answered at once
  CHECK(pacer.due_us() == 11'000);
  pacer.sent(19'000);  // slow, but within kMaxLagUs: the next is due at once, on schedule
  CHECK(pacer.due_us() == 21'000);
  CHECK(pacer.skipped() == 0);
  pacer.sent(21'000 + kMaxLagUs);  // exactly at the lag bound: no skip yet
  CHECK(pacer.due_us() == 31'000);
  CHECK(pacer.skipped() == 0);
  // A stall of 2.5 s: the slots in between are skipped, the phase kept, and
  // the next write is due at once (the last slot at or before now).
  pacer.sent(2'531'005);
  CHECK(pacer.skipped() == 249);
  CHECK(pacer.due_us() == 2'531'000);
  pacer.sent(2'531'100);
  CHECK(pacer.due_us() == 2'541'000);
  CHECK(pacer.skipped() == 249);
}

TEST_CASE("ctl load: the latency histogram answers quantiles within its precision", "[ctl][load]") {
  LatencyHistogram empty;
  CHECK(empty.count() == 0);
  CHECK(empty.quantile_us(0.5) == 0);

  LatencyHistogram h;
  for (std::uint64_t us = 1; us <= 1000; ++us) h.record(us * 100);  // 100 us .. 100 ms
  CHECK(h.count() == 1000);
  CHECK(h.max_us() == 100'000);
  const auto near = [](std::uint64_t got, std::uint64_t want) {
    INFO("got " << got << ", want " << want << " (within 6.25%)");
    CHECK(got >= want);
    CHECK(static_cast<double>(got) <= static_cast<double>(want) * 1.0625);
  };
  near(h.quantile_us(0.50), 50'000);
  near(h.quantile_us(0.99), 99'000);
  CHECK(h.quantile_us(1.0) == 100'000);  // capped at the largest sample
  CHECK(h.quantile_us(0.001) <= 107);    // the smallest bucket's bound

  LatencyHistogram exact;  // below 16 us every value has its own bucket
  for (std::uint64_t us : {0, 3, 3, 15}) exact.record(us);
  CHECK(exact.quantile_us(0.25) == 0);
  CHECK(exact.quantile_us(0.75) == 3);
  CHECK(exact.quantile_us(1.0) == 15);

  LatencyHistogram huge;
  huge.record(UINT64_MAX);
  CHECK(huge.quantile_us(0.5) == UINT64_MAX);

  LatencyHistogram merged;
  merged.merge(h);
  merged.merge(exact);
  CHECK(merged.count() == 1004);
  CHECK(merged.max_us() == 100'000);
}

TEST_CASE("ctl load: each answer counts as ok, not applied, unknown or an error", "[ctl][load]") {
  const auto outcome = [](const HttpResult& r) { return classify_load_answer(r); };
  CHECK(outcome(reply(200, "{}")).outcome == LoadOutcome::kOk);
  CHECK(outcome(reply(503, "{}")).outcome == LoadOutcome::kNotApplied);
  CHECK(outcome(reply(503, "{}")).reason == "503");
  const auto refused = outcome(failure(TransportFailure::kCannotConnect, "Connection refused"));
  CHECK(refused.outcome == LoadOutcome::kNotApplied);
  CHECK(refused.reason == "cannot connect");
  CHECK(outcome(reply(504, "{}")).outcome == LoadOutcome::kUnknown);
  const auto lost = outcome(failure(TransportFailure::kNoReply, "end of stream"));
  CHECK(lost.outcome == LoadOutcome::kUnknown);
  CHECK(lost.reason == "no answer");
  CHECK(outcome(failure(TransportFailure::kBadReply, "bad")).outcome == LoadOutcome::kError);
  const auto server_error = outcome(reply(500, "{}"));
  CHECK(server_error.outcome == LoadOutcome::kError);
  CHECK(server_error.reason == "HTTP 500");
  CHECK(outcome(reply(400, "{}")).reason == "HTTP 400");
  CHECK(outcome(reply(412, "{}")).outcome == LoadOutcome::kError);  // a blind PUT has no condition
}

TEST_CASE("ctl load: keys cycle over the key count; values name their write", "[ctl][load]") {
  LoadOptions options;
  options.keys = 3;
  options.key_prefix = "k/";
  options.value_bytes = 30;
  CHECK(load_key(options, 0) == "k/0");
  CHECK(load_key(options, 4) == "k/1");
  CHECK(load_value(options, 7) == "nodenomadctl-load-7...........");
  CHECK(load_value(options, 7).size() == 30);
  options.value_bytes = 1;  // never cut: the value still names its write
  CHECK(load_value(options, 12) == "nodenomadctl-load-12");
}

// One connection on a fake clock: each exchange takes `answer_us`, answers
// come from `answers` in turn (the last one repeated).
struct FakeConnection {
  std::uint64_t now_us = 1'000'000;
  std::uint64_t answer_us = 1'000;
  std::vector<HttpResult> answers = {reply(200, "{}")};
  std::vector<std::string> targets;
  std::vector<std::uint64_t> sent_at_us;
  std::vector<std::uint64_t> sleeps_until_us;
  std::atomic<bool> stop{false};
  std::size_t stop_after = 0;  // set `stop` after this many writes (0: never)

  LoadIo io() {
    LoadIo io;
    io.exchange = [this](const HttpRequestSpec& spec) {
      CHECK(spec.method == "PUT");
      targets.push_back(spec.target);
      sent_at_us.push_back(now_us);
      now_us += answer_us;
      if (stop_after > 0 && targets.size() >= stop_after) stop = true;
      return answers[std::min(targets.size(), answers.size()) - 1];
    };
    io.now_us = [this] { return now_us; };
    io.sleep_until_us = [this](std::uint64_t until) {
      sleeps_until_us.push_back(until);
      now_us = std::max(now_us, until);
    };
    io.stop = &stop;
    return io;
  }
};

TEST_CASE("ctl load: a connection writes its share on schedule for the duration", "[ctl][load]") {
  LoadOptions options;
  options.rate_per_s = 100;  // two connections: each writes every 20 ms
  options.connections = 2;
  options.duration_ms = 100;
  options.keys = 1000;
  FakeConnection second;
  LoadIo io = second.io();
  const LoadTally tally = run_load_worker(options, 1, second.now_us, io);
  // Connection 1 starts 10 ms in and writes the odd sequence numbers.
  CHECK(second.sent_at_us ==
        std::vector<std::uint64_t>{1'010'000, 1'030'000, 1'050'000, 1'070'000, 1'090'000});
  CHECK(second.targets.front() == "/v1/kv/load-1");
  CHECK(second.targets.back() == "/v1/kv/load-9");
  CHECK(tally.sent == 5);
  CHECK(tally.ok == 5);
  CHECK(tally.latency.count() == 5);
  CHECK(tally.latency.max_us() == 1'000);
  CHECK(tally.skipped == 0);
  CHECK(tally.reasons.empty());
}

TEST_CASE("ctl load: answers are tallied, and a stop ends the loop after the write in flight",
          "[ctl][load]") {
  LoadOptions options;
  options.rate_per_s = 1000;
  options.connections = 1;
  options.key_prefix = "a key/";  // travels percent-encoded
  FakeConnection c;
  c.answers = {reply(200, "{}"), reply(503, "{}"),
               reply(504, "{}"), failure(TransportFailure::kNoReply, "reset"),
               reply(500, "{}"), failure(TransportFailure::kCannotConnect, "refused")};
  c.stop_after = 7;  // no duration: only the stop ends it
  LoadIo io = c.io();
  const LoadTally tally = run_load_worker(options, 0, c.now_us, io);
  CHECK(tally.sent == 7);
  CHECK(tally.ok == 1);
  CHECK(tally.not_applied == 3);  // a 503 and two refused connections
  CHECK(tally.unknown == 2);
  CHECK(tally.errors == 1);
  CHECK(tally.reasons ==
        std::map<std::string, std::uint64_t>{
            {"503", 1}, {"504", 1}, {"no answer", 1}, {"HTTP 500", 1}, {"cannot connect", 2}});
  CHECK(c.targets.front() == "/v1/kv/a%20key%2F0");
  CHECK(load_exit_code(tally) == kExitOther);

  FakeConnection stopped;
  stopped.stop = true;
  LoadIo stopped_io = stopped.io();
  CHECK(run_load_worker(options, 0, stopped.now_us, stopped_io).sent == 0);
  CHECK(stopped.targets.empty());
}

TEST_CASE("ctl load: a stalled connection skips the writes it missed", "[ctl][load]") {
  LoadOptions options;
  options.rate_per_s = 100;  // one connection: every 10 ms
  options.connections = 1;
  options.duration_ms = 3'000;
  FakeConnection c;
  c.answer_us = 1'000;
  c.answers = {reply(200, "{}")};
  // The third write takes 1.5 s (a leader change, say); the others 1 ms.
  LoadIo io = c.io();
  auto exchange = io.exchange;
  io.exchange = [&](const HttpRequestSpec& spec) {
    c.answer_us = c.targets.size() == 2 ? 1'500'000 : 1'000;
    return exchange(spec);
  };
  const LoadTally tally = run_load_worker(options, 0, c.now_us, io);
  CHECK(tally.skipped > 0);
  CHECK(tally.sent + tally.skipped == 300);  // every slot of 3 s at 100/s, sent or skipped
  CHECK(tally.latency.max_us() == 1'500'000);
  // After the stall no burst: at most one write per slot from the write
  // that was due at once.
  std::size_t back_to_back = 0;
  for (std::size_t i = 4; i < c.sent_at_us.size(); ++i) {
    back_to_back += c.sent_at_us[i] - c.sent_at_us[i - 1] < 10'000 ? 1 : 0;
  }
  CHECK(back_to_back == 0);
}

TEST_CASE("ctl load: the summary says what the writes met, in text or JSON", "[ctl][load]") {
  LoadOptions options;
  options.rate_per_s = 200;
  options.connections = 2;
  LoadTally tally;
  for (int i = 0; i < 97; ++i) tally.add({LoadOutcome::kOk, ""}, 1'200);
  tally.add({LoadOutcome::kOk, ""}, 25'000);
  tally.add({LoadOutcome::kNotApplied, "503"}, 0);
  tally.add({LoadOutcome::kUnknown, "504"}, 0);
  tally.add({LoadOutcome::kUnknown, "no answer"}, 0);
  const std::string text = render_load_summary(options, "127.0.0.1:3000", tally, 500, false);
  CHECK(text ==
        "load: 101 writes to 127.0.0.1:3000 in 500ms (202.0/s; asked 200/s over 2 connections, "
        "1000 keys, 100B values)\n"
        "  ok                  98\n"
        "  not applied          1  (503: 1)\n"
        "  unknown              2  (504: 1, no answer: 1)\n"
        "  errors               0\n"
        "  latency (ok)  p50 1.22ms  p99 25.0ms  max 25.0ms\n");
  const std::string json = render_load_summary(options, "127.0.0.1:3000", tally, 500, true);
  CHECK(json ==
        R"({"endpoint":"127.0.0.1:3000","elapsed_ms":500,"sent":101,"ok":98,"not_applied":1,)"
        R"("unknown":2,"errors":0,"skipped":0,"reasons":{"503":1,"504":1,"no answer":1},)"
        R"("latency_us":{"p50":1215,"p99":25000,"max":25000}})"
        "\n");
  CHECK(load_exit_code(tally) == kExitOk);

  LoadTally nothing;
  CHECK_THAT(render_load_summary(options, "h:1", nothing, 0, false),
             Catch::Contains("latency (ok)  -\n"));
  CHECK(load_exit_code(nothing) == kExitOk);
  LoadTally refused;
  refused.add({LoadOutcome::kNotApplied, "cannot connect"}, 0);
  CHECK(load_exit_code(refused) == kExitCannotConnect);
  refused.add({LoadOutcome::kNotApplied, "503"}, 0);
  CHECK(load_exit_code(refused) == kExitUnavailable);
  LoadTally merged;
  merged.merge(tally);
  merged.merge(refused);
  CHECK(merged.sent == 103);
  CHECK(merged.reasons.at("503") == 2);
  CHECK(merged.latency.count() == 98);
}

}  // namespace
}  // namespace nodenomad::ctl
