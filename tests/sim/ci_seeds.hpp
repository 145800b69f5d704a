// The CI seed list of a simulation test (tests/sim, tests/sim_cluster),
// narrowed by the environment (docs/simulation.md):
//   NODENOMAD_SIM_SEEDS=<n>  only seeds 1..n (the sanitizer build sets it)
//   NODENOMAD_SIM_SEED=<s>   only seed s, run by the first part alone
// A test splits its list in parts that run side by side (`ctest -j2`); each
// part asks for its seeds and skips those of the other parts, unless one
// seed was asked for.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <optional>

namespace nodenomad::testing {

// A variable's value as a number (strtoull base 0); none if unset or empty.
inline std::optional<std::uint64_t> env_number(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::strtoull(v, nullptr, 0);
}

struct CiSeeds {
  std::uint64_t first = 1;
  std::uint64_t last = 0;  // inclusive
  bool single = false;     // NODENOMAD_SIM_SEED: no split in parts
};

// The seeds part `part` (0-based) considers, of 1..default_count; none at
// all when one seed was asked for and another part runs it.
inline std::optional<CiSeeds> ci_seeds(std::uint64_t default_count, std::uint64_t part) {
  CiSeeds seeds;
  seeds.last = env_number("NODENOMAD_SIM_SEEDS").value_or(default_count);
  if (const auto only = env_number("NODENOMAD_SIM_SEED")) {
    if (part != 0) return std::nullopt;
    seeds.first = seeds.last = *only;
    seeds.single = true;
  }
  return seeds;
}

}  // namespace nodenomad::testing
