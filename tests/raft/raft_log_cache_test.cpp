// RaftLog's entry cache: the newest durable entries are served from memory,
// within the byte limit, and conflicts, snapshots and compaction never make
// it serve an entry the log no longer holds. The randomized case runs the
// same operations on a log with the cache and one without and compares
// every read.
#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>
#include <vector>

#include "nodenomad/memory_log_store.hpp"
#include "nodenomad/rng.hpp"
#include "raft/raft_log.hpp"
#include "raft/raft_test_support.hpp"

namespace nodenomad {
namespace {

// A MemoryLogStore that counts the entries read through it.
class CountingStore final : public LogStoreWrapper {
 public:
  CountingStore() : LogStoreWrapper(std::make_unique<MemoryLogStore>()) {}
  Result<std::vector<Entry>> entries(LogIndex lo, LogIndex hi,
                                     std::uint64_t max_bytes) const override {
    ++reads;
    Result<std::vector<Entry>> out = LogStoreWrapper::entries(lo, hi, max_bytes);
    if (out.is_ok()) entries_read += out->size();
    return out;
  }

  mutable std::uint64_t reads = 0;
  mutable std::uint64_t entries_read = 0;
};

Entry entry(std::uint64_t index, std::uint64_t term, std::size_t bytes = 100) {
  return Entry{Term(term), LogIndex(index), EntryType::kNormal,
               std::string(bytes, static_cast<char>('a' + index % 26))};
}

std::vector<Entry> run(std::uint64_t from, std::uint64_t to, std::uint64_t term,
                       std::size_t bytes = 100) {
  std::vector<Entry> out;
  for (std::uint64_t i = from; i <= to; ++i) out.push_back(entry(i, term, bytes));
  return out;
}

// The host's side of a Ready: the first `count` unstable entries (all when
// 0) become durable.
void persist(RaftLog& log, LogStore& store, std::size_t count = 0) {
  if (log.unstable_snapshot()) {
    const SnapshotMeta meta = *log.unstable_snapshot();
    REQUIRE(store.install_snapshot(meta).is_ok());
    log.stable_snapshot_to(meta.index);
  }
  std::vector<Entry> unstable = log.unstable_entries();
  if (unstable.empty()) return;
  if (count == 0 || count > unstable.size()) count = unstable.size();
  unstable.resize(count);
  REQUIRE(store.append(unstable).is_ok());
  log.stable_to(unstable.back().index, unstable.back().term);
}

std::vector<Entry> read(const RaftLog& log, std::uint64_t lo, std::uint64_t hi,
                        std::uint64_t max_bytes = 1u << 30) {
  Result<std::vector<Entry>> out = log.entries(LogIndex(lo), LogIndex(hi), max_bytes);
  REQUIRE(out.is_ok());
  return std::move(out).value();
}

TEST_CASE("raft log cache: applied and replicated entries come from memory", "[raft][cache]") {
  CountingStore store;
  RaftLog log(store, LogIndex(0), LogIndex(0), 1u << 20);
  const std::vector<Entry> written = run(1, 100, 1);
  log.append(written);
  persist(log, store);
  log.commit_to(LogIndex(100));
  CHECK(log.next_committed_entries(1u << 30) == written);
  CHECK(read(log, 50, 101).size() == 51);
  CHECK(store.reads == 0);
  CHECK(log.cache_first() == LogIndex(1));
  CHECK(log.cache_bytes() == 100 * 100);
}

TEST_CASE("raft log cache: only the newest entries within the limit stay", "[raft][cache]") {
  CountingStore store;
  RaftLog log(store, LogIndex(0), LogIndex(0), 1000);  // ten 100-byte entries
  const std::vector<Entry> written = run(1, 30, 1);
  for (std::size_t i = 0; i < written.size(); i += 7) {
    const std::size_t end = std::min(written.size(), i + 7);
    log.append(std::span<const Entry>(written).subspan(i, end - i));
    persist(log, store);
  }
  CHECK(log.cache_bytes() <= 1000);
  CHECK(log.cache_first() == LogIndex(21));
  CHECK(read(log, 21, 31) == std::vector<Entry>(written.begin() + 20, written.end()));
  CHECK(store.reads == 0);
  // Below the cache the store answers, and the two parts join up.
  CHECK(read(log, 1, 31) == written);
  CHECK(store.reads == 1);
  CHECK(store.entries_read == 20);
  // A byte limit that ends inside the store part stops there.
  CHECK(read(log, 15, 31, 250).size() == 2);
}

TEST_CASE("raft log cache: a conflict drops the entries it replaces", "[raft][cache]") {
  CountingStore store;
  RaftLog log(store, LogIndex(0), LogIndex(0), 1u << 20);
  REQUIRE(log.maybe_append(LogIndex(0), Term(0), LogIndex(0), run(1, 10, 1)));
  persist(log, store);
  CHECK(log.cache_first() == LogIndex(1));
  // A new leader of term 2 overwrites 5.. with its own entries.
  REQUIRE(log.maybe_append(LogIndex(4), Term(1), LogIndex(0), run(5, 8, 2)));
  CHECK(log.last_index() == LogIndex(8));
  CHECK(log.cache_bytes() == 4 * 100);
  std::vector<Entry> expected = run(1, 4, 1);
  for (const Entry& e : run(5, 8, 2)) expected.push_back(e);
  CHECK(read(log, 1, 9) == expected);
  persist(log, store);
  CHECK(read(log, 1, 9) == expected);
  CHECK(store.reads == 0);
  // A conflict below the cache empties it.
  RaftLog small(store, LogIndex(0), LogIndex(0), 200);
  CHECK(small.cache_first() == LogIndex(9));
  REQUIRE(small.maybe_append(LogIndex(8), Term(2), LogIndex(0), run(9, 12, 2)));
  persist(small, store);
  CHECK(small.cache_first() == LogIndex(11));
  REQUIRE(small.maybe_append(LogIndex(9), Term(2), LogIndex(0), run(10, 10, 3)));
  CHECK(small.cache_bytes() == 0);
  CHECK(small.cache_first() == LogIndex(10));
  CHECK(read(small, 9, 11).back().term == Term(3));
}

TEST_CASE("raft log cache: a received snapshot empties it", "[raft][cache]") {
  CountingStore store;
  RaftLog log(store, LogIndex(0), LogIndex(0), 1u << 20);
  log.append(run(1, 20, 1));
  persist(log, store);
  SnapshotMeta meta;
  meta.index = LogIndex(50);
  meta.term = Term(3);
  log.restore(meta);
  CHECK(log.cache_bytes() == 0);
  CHECK(log.cache_first() == LogIndex(51));
  persist(log, store);
  REQUIRE(log.maybe_append(LogIndex(50), Term(3), LogIndex(0), run(51, 55, 3)));
  persist(log, store);
  CHECK(read(log, 51, 56) == run(51, 55, 3));
  CHECK(store.reads == 0);
}

TEST_CASE("raft log cache: released entries leave it", "[raft][cache]") {
  CountingStore store;
  RaftLog log(store, LogIndex(0), LogIndex(0), 1u << 20);
  log.append(run(1, 10, 1));
  persist(log, store);
  log.release_cache_to(LogIndex(6));
  CHECK(log.cache_first() == LogIndex(7));
  CHECK(log.cache_bytes() == 4 * 100);
  CHECK(read(log, 1, 11) == run(1, 10, 1));
  CHECK(store.entries_read == 6);
  log.release_cache_to(LogIndex(10));
  CHECK(log.cache_bytes() == 0);
  CHECK(log.cache_first() == LogIndex(11));
  log.append(run(11, 12, 1));
  persist(log, store);
  CHECK(log.cache_first() == LogIndex(11));
  CHECK(read(log, 11, 13) == run(11, 12, 1));
  CHECK(store.entries_read == 6);
}

TEST_CASE("raft log cache: no limit means no cache", "[raft][cache]") {
  CountingStore store;
  RaftLog log(store, LogIndex(0), LogIndex(0), 0);
  log.append(run(1, 5, 1));
  persist(log, store);
  CHECK(log.cache_bytes() == 0);
  CHECK(log.cache_first() == LogIndex(6));
  CHECK(read(log, 1, 6) == run(1, 5, 1));
  CHECK(store.reads == 1);
}

// One operation sequence applied to a log without a cache and one with a
// small one: every read must agree.
TEST_CASE("raft log cache: randomized, reads agree with an uncached log", "[raft][cache]") {
  const std::uint64_t base = raft_test::test_seed("raft log cache");
  const bool replay = std::getenv("NODENOMAD_SEED") != nullptr;
  const int runs = replay ? 1 : 20;
  for (int r = 0; r < runs; ++r) {
    const std::uint64_t seed = base + static_cast<std::uint64_t>(r);
    INFO("replay with NODENOMAD_SEED=" << seed);
    Rng rng(seed);
    CountingStore plain_store;
    CountingStore cached_store;
    RaftLog plain(plain_store, LogIndex(0), LogIndex(0), 0);
    RaftLog cached(cached_store, LogIndex(0), LogIndex(0), rng.uniform_in(1, 3000));
    std::uint64_t term = 1;
    std::uint64_t reads = 0;
    for (int step = 0; step < 3000; ++step) {
      const std::uint64_t dice = rng.uniform(100);
      if (dice < 30) {
        // A leader's message: after an index at or past commit (conflicts
        // never reach committed entries), sometimes of a newer term.
        const std::uint64_t lo = std::max(plain.committed(), plain.snapshot_index()).value();
        const std::uint64_t prev = rng.uniform_in(lo, plain.last_index().value());
        if (rng.chance(0.2)) ++term;
        const std::uint64_t count = rng.uniform_in(1, 8);
        std::vector<Entry> entries;
        for (std::uint64_t i = 1; i <= count; ++i) {
          entries.push_back(entry(prev + i, term, rng.uniform_in(1, 300)));
        }
        const Term prev_term = plain.term_or_zero(LogIndex(prev));
        const LogIndex commit(rng.uniform_in(0, prev + count));
        const auto a = plain.maybe_append(LogIndex(prev), prev_term, commit, entries);
        const auto b = cached.maybe_append(LogIndex(prev), prev_term, commit, entries);
        REQUIRE(a == b);
      } else if (dice < 55) {
        const std::size_t count = rng.uniform_in(0, 6);
        persist(plain, plain_store, count);
        persist(cached, cached_store, count);
      } else if (dice < 57) {
        const LogIndex upto(rng.uniform_in(0, plain.last_index().value()));
        plain.release_cache_to(upto);
        cached.release_cache_to(upto);
      } else if (dice < 59 && plain.committed() > plain.snapshot_index() &&
                 !plain.unstable_snapshot()) {
        // The host compacts durable, committed entries.
        const LogIndex upto = std::min(plain.committed(), plain.durable_last_index());
        if (upto > plain.snapshot_index()) {
          const LogIndex at(rng.uniform_in(plain.snapshot_index().value() + 1, upto.value()));
          SnapshotMeta meta;
          meta.index = at;
          meta.term = plain.term_or_zero(at);
          REQUIRE(plain_store.compact(meta).is_ok());
          REQUIRE(cached_store.compact(meta).is_ok());
        }
      } else if (dice < 61) {
        SnapshotMeta meta;
        meta.index = LogIndex(plain.last_index().value() + rng.uniform_in(1, 5));
        meta.term = Term(++term);
        plain.restore(meta);
        cached.restore(meta);
      } else {
        const std::uint64_t first = plain.first_index().value();
        const std::uint64_t end = plain.last_index().value() + 1;
        const std::uint64_t lo = rng.uniform_in(first, end);
        const std::uint64_t hi = rng.uniform_in(lo, end);
        const std::uint64_t max_bytes = rng.uniform_in(1, 2000);
        REQUIRE(read(plain, lo, hi, max_bytes) == read(cached, lo, hi, max_bytes));
        ++reads;
      }
      REQUIRE(plain.last_index() == cached.last_index());
      REQUIRE(plain.committed() == cached.committed());
      if (cached.unstable_snapshot()) {
        REQUIRE(cached.cache_bytes() == 0);
      } else {
        REQUIRE(cached.cache_first() <= cached.durable_last_index().next());
      }
    }
    CHECK(reads > 1000);
    CHECK(cached_store.entries_read < plain_store.entries_read);
    fmt::print("[raft log cache] seed {}: {} reads; store entries read {} cached, {} uncached\n",
               seed, reads, cached_store.entries_read, plain_store.entries_read);
  }
}

}  // namespace
}  // namespace nodenomad
