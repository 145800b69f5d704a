#include <catch2/catch.hpp>

#include <array>

#include "nodenomad/rng.hpp"

namespace nodenomad {

TEST_CASE("an Rng replays its sequence from the seed", "[rng]") {
  Rng a(42), b(42), c(43);
  bool differs = false;
  for (int i = 0; i < 1000; ++i) {
    const std::uint64_t x = a.next_u64();
    CHECK(x == b.next_u64());
    differs |= x != c.next_u64();
  }
  CHECK(differs);
}

TEST_CASE("Rng output is pinned across machines and compilers", "[rng]") {
  // Golden values: if this changes, every recorded simulation seed replays
  // differently. Change it only on purpose.
  Rng rng(1);
  CHECK(rng.next_u64() == 12966619160104079557ULL);
  CHECK(rng.next_u64() == 9600361134598540522ULL);
  CHECK(rng.next_u64() == 10590380919521690900ULL);
  CHECK(Rng(12345).uniform(1000) == 743u);
}

TEST_CASE("uniform stays in range and covers it evenly", "[rng]") {
  Rng rng(7);
  std::array<int, 10> counts{};
  for (int i = 0; i < 100000; ++i) {
    const std::uint64_t v = rng.uniform(10);
    REQUIRE(v < 10);
    ++counts[v];
  }
  for (int c : counts) CHECK((c > 9000 && c < 11000));
  for (int i = 0; i < 1000; ++i) {
    const std::uint64_t v = rng.uniform_in(5, 7);
    CHECK((v >= 5 && v <= 7));
    const double d = rng.next_double();
    CHECK((d >= 0.0 && d < 1.0));
  }
}

}  // namespace nodenomad
