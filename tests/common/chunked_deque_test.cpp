// ChunkedDeque: against std::deque as a model, through random pushes, front
// drops and back cuts that cross chunk edges (small chunks), and the chunks
// it holds stay what its values need.
#include <catch2/catch.hpp>

#include <cstdint>
#include <deque>

#include "common/chunked_deque.hpp"
#include "nodenomad/rng.hpp"
#include "support/test_seed.hpp"

namespace nodenomad {
namespace {

struct Value {
  std::uint64_t a = 0;
  std::uint32_t b = 0;
};

constexpr std::size_t kChunk = 7;  // small and odd, so edges are crossed often

void check_same(const ChunkedDeque<Value, kChunk>& d, const std::deque<Value>& model) {
  REQUIRE(d.size() == model.size());
  REQUIRE(d.empty() == model.empty());
  for (std::size_t i = 0; i < model.size(); ++i) {
    REQUIRE(d[i].a == model[i].a);
    REQUIRE(d[i].b == model[i].b);
  }
  // The chunks in use and no more: at most one partly used at each end.
  REQUIRE(d.chunks() <= (model.size() + 2 * (kChunk - 1)) / kChunk);
  if (model.empty()) REQUIRE(d.chunks() == 0);
}

TEST_CASE("chunked deque: random pushes, front drops and back cuts match std::deque",
          "[common][chunked_deque]") {
  Rng rng(test_support::test_seed("chunked deque", 4242));
  ChunkedDeque<Value, kChunk> d;
  std::deque<Value> model;
  std::uint64_t next = 1;
  for (int step = 0; step < 20'000; ++step) {
    const std::uint64_t pick = rng.uniform(100);
    if (pick < 60) {
      const std::uint64_t n = rng.uniform(12);
      for (std::uint64_t i = 0; i < n; ++i) {
        const Value v{next, static_cast<std::uint32_t>(next * 7)};
        ++next;
        d.push_back(v);
        model.push_back(v);
      }
    } else if (pick < 80) {
      const std::size_t n = static_cast<std::size_t>(rng.uniform(model.size() + 1));
      d.pop_front(n);
      model.erase(model.begin(), model.begin() + static_cast<std::ptrdiff_t>(n));
    } else if (pick < 98) {
      const std::size_t n = static_cast<std::size_t>(rng.uniform(model.size() + 1));
      d.truncate(n);
      model.resize(n);
    } else {
      d.clear();
      model.clear();
    }
    check_same(d, model);
  }
}

TEST_CASE("chunked deque: front() and values pushed after a drop of everything",
          "[common][chunked_deque]") {
  ChunkedDeque<Value, kChunk> d;
  for (std::uint64_t i = 0; i < 20; ++i) d.push_back(Value{i, 0});
  d.pop_front(9);
  CHECK(d.front().a == 9);
  CHECK(d.chunks() == 2);  // [7..13], [14..19]: the first chunk is gone
  d.pop_front(11);
  CHECK(d.empty());
  CHECK(d.chunks() == 0);
  d.push_back(Value{99, 1});
  CHECK(d.size() == 1);
  CHECK(d.front().a == 99);
  CHECK(d.chunks() == 1);
}

}  // namespace
}  // namespace nodenomad
