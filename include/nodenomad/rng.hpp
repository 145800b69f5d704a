// Rng: a small, seeded, portable pseudo-random generator (xoshiro256**).
//
// Every random choice in NodeNomad (election timeouts, simulated faults,
// property tests) goes through an Rng built from a seed the caller chose and
// printed, so a run can be replayed bit for bit. The same seed gives the same
// sequence on every machine and compiler: no std::random_device, and no
// std:: distributions (whose output is implementation-defined).
//
// Thread safety: none; one Rng per thread or per simulated component.
#pragma once

#include <cstdint>

namespace nodenomad {

class Rng {
 public:
  explicit Rng(std::uint64_t seed);

  std::uint64_t seed() const { return seed_; }

  std::uint64_t next_u64();
  // Uniform in [0, bound); bound > 0. Unbiased (Lemire's method).
  std::uint64_t uniform(std::uint64_t bound);
  // Uniform in [lo, hi]; lo <= hi.
  std::uint64_t uniform_in(std::uint64_t lo, std::uint64_t hi);
  // Uniform in [0, 1).
  double next_double();
  // True with probability p (p in [0, 1]).
  bool chance(double p);
  // A child generator with its own stream, for a sub-component.
  Rng fork();

 private:
  std::uint64_t seed_;
  std::uint64_t s_[4];
};

}  // namespace nodenomad
