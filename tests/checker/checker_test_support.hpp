// Helpers shared by the checker tests: the run's seed, one-line recording of
// sequential operations, and a checked call of the checker.
#pragma once

#include "support/test_seed.hpp"
#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "nodenomad/testing/history.hpp"
#include "nodenomad/testing/linearizability.hpp"

namespace nodenomad::testing::checker_test {

inline constexpr std::uint64_t kDefaultSeed = 20240612;

// NODENOMAD_SEED when set (decimal or 0x-hex), else kDefaultSeed. Printed so
// a failing run can be replayed with the same seed.
inline std::uint64_t test_seed(std::string_view test_name) {
  return test_support::test_seed(test_name, kDefaultSeed);
}

// Records an operation that is invoked and answered before anything else
// happens: it is ordered after every earlier operation.
inline OpId sequential(History& history, ClientId client, KvOp op, KvResult result) {
  const OpId id = history.invoke(client, std::move(op));
  history.complete_ok(id, std::move(result));
  return id;
}

// Checks `history`, which must be well formed, with default options.
inline CheckResult check(const History& history, const CheckOptions& options = {}) {
  Result<CheckResult> result = check_linearizability(history, options);
  REQUIRE(result.is_ok());
  return std::move(result).value();
}

inline Verdict verdict_of(const History& history, const CheckOptions& options = {}) {
  const CheckResult result = check(history, options);
  UNSCOPED_INFO(result.explanation);
  return result.verdict;
}

}  // namespace nodenomad::testing::checker_test
