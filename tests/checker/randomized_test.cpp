// Randomized tests: histories recorded from simulated concurrent clients of a
// correct store must check kOk; the same histories with one read broken on
// purpose must never check kOk. Every test prints its seed; NODENOMAD_SEED
// replays it (each round's own seed is derived from it and printed on
// failure).
#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <optional>

#include "checker/checker_test_support.hpp"
#include "checker/simulated_store.hpp"

namespace nodenomad::testing {
namespace {

using checker_test::check;
using checker_test::ClientSimulation;
using checker_test::SimulationOptions;
using checker_test::test_seed;

constexpr int kRounds = 100;

SimulationOptions random_options(Rng& rng) {
  SimulationOptions options;
  options.clients = rng.uniform_in(1, 6);
  options.keys = rng.uniform_in(1, 5);
  options.operations = rng.uniform_in(50, 600);
  options.unknown_chance = static_cast<double>(rng.uniform_in(0, 10)) / 100.0;
  options.fail_chance = static_cast<double>(rng.uniform_in(0, 5)) / 100.0;
  return options;
}

std::string describe(const SimulationOptions& options) {
  return fmt::format("{} clients, {} keys, {} ops, {:.2f} unknown, {:.2f} fail", options.clients,
                     options.keys, options.operations, options.unknown_chance, options.fail_chance);
}

std::vector<OpId> ok_reads(const History& history, Rng& rng) {
  std::vector<OpId> reads;
  for (const Operation& operation : history.operations()) {
    if (operation.completion == Completion::kOk && operation.op.kind == KvOpKind::kGet) {
      reads.push_back(operation.id);
    }
  }
  // A seeded Fisher-Yates shuffle, so the mutated read varies by seed.
  for (std::size_t i = reads.size(); i > 1; --i) std::swap(reads[i - 1], reads[rng.uniform(i)]);
  return reads;
}

// The largest version any ok operation on `key` observed before `before`
// completed, and the (value, version) pairs ok writes produced below it.
struct KeyPast {
  std::uint64_t max_version = 0;
  std::vector<std::pair<std::string, std::uint64_t>> writes;
};

KeyPast past_of(const History& history, const std::string& key, LogicalTime before) {
  KeyPast past;
  for (const Operation& operation : history.operations()) {
    if (operation.completion != Completion::kOk || operation.op.key != key ||
        operation.complete_time >= before) {
      continue;
    }
    const KvResult& result = operation.result;
    if (result.kind == KvResultKind::kWritten || result.kind == KvResultKind::kFound ||
        result.kind == KvResultKind::kVersionMismatch) {
      past.max_version = std::max(past.max_version, result.version);
    }
    if (result.kind == KvResultKind::kWritten) {
      past.writes.emplace_back(operation.op.value, result.version);
    }
  }
  return past;
}

// Changes one read to a (value, version) that an earlier write produced but
// that a completed operation had already seen superseded: versions of a key
// never go back, so the read is provably illegal.
std::optional<OpId> make_stale_read(History& history, Rng& rng) {
  for (const OpId id : ok_reads(history, rng)) {
    const Operation& read = history.operation(id);
    const KeyPast past = past_of(history, read.op.key, read.invoke_time);
    for (const auto& [value, version] : past.writes) {
      if (version < past.max_version) {
        history.rewrite_result(id, KvResult::found(value, version));
        return id;
      }
    }
  }
  return std::nullopt;
}

// A history broken on purpose must never pass. kIllegal is expected; kUnknown
// is tolerated only when a key really exhausted its state budget (a bounded
// search may give up, but never says kOk). Returns whether it was kIllegal.
bool rejected(const CheckResult& result) {
  REQUIRE(result.verdict != Verdict::kOk);
  if (result.verdict == Verdict::kIllegal) return true;
  bool budget_ran_out = false;
  for (const KeyCheck& key : result.keys) {
    budget_ran_out = budget_ran_out || (key.verdict == Verdict::kUnknown &&
                                        key.states_explored >= kDefaultMaxStatesPerKey);
  }
  CHECK(budget_ran_out);
  return false;
}

// Most broken histories must be proven illegal, not just not passed.
void check_mostly_illegal(int illegal, int mutated) {
  fmt::print("  {} of {} broken histories proven illegal\n", illegal, mutated);
  CHECK(mutated > kRounds / 2);
  CHECK(illegal * 10 >= mutated * 9);
}

TEST_CASE("randomized: histories of a correct store are linearizable", "[checker][random]") {
  Rng master(test_seed("random linearizable"));
  for (int round = 0; round < kRounds; ++round) {
    const std::uint64_t round_seed = master.next_u64();
    Rng rng(round_seed);
    const SimulationOptions options = random_options(rng);
    const History history = ClientSimulation(rng, options).run();
    const CheckResult result = check(history);
    INFO("round " << round << " seed " << round_seed << ": " << describe(options));
    INFO(result.explanation);
    REQUIRE(result.verdict == Verdict::kOk);
  }
}

// Without versions the direct rules cannot see a stale read, so only the
// search can prove it: changes one read to the value of a write W1 that a
// later write W2 overwrote, with W1 -> W2 -> the read in real time. Values
// are unique, so nothing else could have written it back.
std::optional<OpId> make_overwritten_read(History& history, Rng& rng) {
  const auto is_ok_write = [](const Operation& operation) {
    return operation.completion == Completion::kOk && operation.op.kind == KvOpKind::kSet &&
           operation.result.kind == KvResultKind::kWritten;
  };
  for (const OpId id : ok_reads(history, rng)) {
    const Operation& read = history.operation(id);
    for (const Operation& w1 : history.operations()) {
      if (!is_ok_write(w1) || w1.op.key != read.op.key || w1.complete_time >= read.invoke_time) {
        continue;
      }
      for (const Operation& w2 : history.operations()) {
        if (is_ok_write(w2) && w2.op.key == read.op.key && w2.invoke_time > w1.complete_time &&
            w2.complete_time < read.invoke_time) {
          history.rewrite_result(id, KvResult::found(w1.op.value));
          return id;
        }
      }
    }
  }
  return std::nullopt;
}

TEST_CASE("randomized: a read changed to a never-written value is never kOk", "[checker][random]") {
  Rng master(test_seed("random impossible read"));
  int mutated = 0;
  int illegal = 0;
  for (int round = 0; round < kRounds; ++round) {
    const std::uint64_t round_seed = master.next_u64();
    Rng rng(round_seed);
    const SimulationOptions options = random_options(rng);
    History history = ClientSimulation(rng, options).run();
    const std::vector<OpId> reads = ok_reads(history, rng);
    if (reads.empty()) continue;
    history.rewrite_result(reads.front(), KvResult::found("never written by anyone"));
    const CheckResult result = check(history);
    INFO("round " << round << " seed " << round_seed << ": " << describe(options) << "; mutated #"
                  << reads.front());
    INFO(result.explanation);
    ++mutated;
    if (rejected(result)) ++illegal;
  }
  check_mostly_illegal(illegal, mutated);
}

TEST_CASE("randomized: a read changed to a superseded version is never kOk", "[checker][random]") {
  Rng master(test_seed("random stale read"));
  int mutated = 0;
  int illegal = 0;
  for (int round = 0; round < kRounds; ++round) {
    const std::uint64_t round_seed = master.next_u64();
    Rng rng(round_seed);
    const SimulationOptions options = random_options(rng);
    History history = ClientSimulation(rng, options).run();
    const std::optional<OpId> stale = make_stale_read(history, rng);
    if (!stale) continue;
    ++mutated;
    const CheckResult result = check(history);
    INFO("round " << round << " seed " << round_seed << ": " << describe(options) << "; mutated #"
                  << *stale);
    INFO(result.explanation);
    if (rejected(result)) ++illegal;
  }
  check_mostly_illegal(illegal, mutated);
}

TEST_CASE("randomized: histories without reported versions are linearizable", "[checker][random]") {
  Rng master(test_seed("random no versions"));
  for (int round = 0; round < kRounds; ++round) {
    const std::uint64_t round_seed = master.next_u64();
    Rng rng(round_seed);
    SimulationOptions options = random_options(rng);
    options.report_versions = false;
    const History history = ClientSimulation(rng, options).run();
    const CheckResult result = check(history);
    INFO("round " << round << " seed " << round_seed << ": " << describe(options));
    INFO(result.explanation);
    REQUIRE(result.verdict == Verdict::kOk);
  }
}

TEST_CASE("randomized: without versions, a read of an overwritten value is never kOk",
          "[checker][random]") {
  Rng master(test_seed("random overwritten read"));
  int mutated = 0;
  int illegal = 0;
  for (int round = 0; round < kRounds; ++round) {
    const std::uint64_t round_seed = master.next_u64();
    Rng rng(round_seed);
    SimulationOptions options = random_options(rng);
    options.report_versions = false;
    History history = ClientSimulation(rng, options).run();
    const std::optional<OpId> stale = make_overwritten_read(history, rng);
    if (!stale) continue;
    ++mutated;
    const CheckResult result = check(history);
    INFO("round " << round << " seed " << round_seed << ": " << describe(options) << "; mutated #"
                  << *stale);
    INFO(result.explanation);
    if (rejected(result)) ++illegal;
  }
  check_mostly_illegal(illegal, mutated);
}

void check_large(std::string_view name, SimulationOptions options) {
  Rng rng(test_seed(name));
  const History history = ClientSimulation(rng, options).run();
  // Timing is printed, not asserted: the machine may be busy. The state
  // count is deterministic and bounds the work.
  const auto start = std::chrono::steady_clock::now();
  const CheckResult result = check(history);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  fmt::print("[{}] {} operations, {} keys, {} clients: {} in {:.1f} ms, {} states\n", name,
             history.size(), result.keys.size(), options.clients, verdict_name(result.verdict),
             std::chrono::duration<double, std::milli>(elapsed).count(), result.states_explored);
  INFO(result.explanation);
  REQUIRE(result.verdict == Verdict::kOk);
  CHECK(result.states_explored < 50 * history.size());
}

TEST_CASE("randomized: thousands of operations over tens of keys check quickly",
          "[checker][random]") {
  SimulationOptions options;
  options.clients = 5;
  options.keys = 20;
  options.operations = 5000;
  options.unknown_chance = 0.03;
  options.fail_chance = 0.02;
  check_large("random large", options);
}

TEST_CASE("randomized: thousands of operations on one key check quickly", "[checker][random]") {
  SimulationOptions options;
  options.clients = 4;
  options.keys = 1;
  options.operations = 3000;
  options.unknown_chance = 0.05;
  options.fail_chance = 0.02;
  check_large("random one key", options);
}

}  // namespace
}  // namespace nodenomad::testing
