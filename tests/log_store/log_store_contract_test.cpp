// The LogStore contract (nodenomad/log_store.hpp), run against every shipped
// implementation: MemoryLogStore, FileLogStore with default and with tiny
// segments, and a FileLogStore restarted after every mutation.
#include <catch2/catch.hpp>

#include "log_store_factories.hpp"

namespace nodenomad::log_store_test {
namespace {

using Catch::Matchers::Contains;

std::string message_of(const Status& s) { return std::string(s.message()); }

template <typename T>
std::string message_of(const Result<T>& r) {
  return std::string(r.status().message());
}

void append_ok(LogStore& s, const std::vector<Entry>& entries) {
  const Status st = s.append(entries);
  INFO(st.to_string());
  REQUIRE(st.is_ok());
}

std::vector<Entry> read(const LogStore& s, std::uint64_t lo, std::uint64_t hi,
                        std::uint64_t max_bytes = UINT64_MAX) {
  auto r = s.entries(LogIndex(lo), LogIndex(hi), max_bytes);
  INFO(r.status().to_string());
  REQUIRE(r.is_ok());
  return std::move(r).value();
}

}  // namespace

#define LOG_STORE_TYPES \
  MemoryStoreFactory, FileStoreFactory, SmallSegmentFileStoreFactory, ReopeningFileStoreFactory

TEMPLATE_TEST_CASE("log store: an empty log answers its bounds", "[log_store][contract]",
                   LOG_STORE_TYPES) {
  TestType factory;
  LogStore& s = factory.get();
  CHECK(s.first_index() == LogIndex(1));
  CHECK(s.last_index() == LogIndex(0));
  auto t = s.term_at(LogIndex(0));
  REQUIRE(t.is_ok());
  CHECK(*t == Term(0));
  CHECK(read(s, 1, 1).empty());
  CHECK(s.hard_state() == HardState{});
  CHECK(s.snapshot_meta() == SnapshotMeta{});
  auto durable = s.sync();
  REQUIRE(durable.is_ok());
  CHECK(*durable == LogIndex(0));
}

TEMPLATE_TEST_CASE("log store: appended entries read back in ranges with their terms",
                   "[log_store][contract]", LOG_STORE_TYPES) {
  TestType factory;
  LogStore& s = factory.get();
  std::vector<Entry> batch = make_entries(1, 3, 1);
  batch.push_back(make_entry(4, 2, "conf", EntryType::kConfChange));
  batch.push_back(make_entry(5, 2, std::string("bin\0ary", 7)));
  batch.push_back(make_entry(6, 2, std::string(3000, 'z')));
  append_ok(s, batch);
  append_ok(s, make_entries(7, 10, 3));
  CHECK(s.first_index() == LogIndex(1));
  CHECK(s.last_index() == LogIndex(10));
  CHECK(read(s, 1, 7) == batch);
  CHECK(read(s, 4, 6) == std::vector<Entry>(batch.begin() + 3, batch.begin() + 5));
  CHECK(read(s, 7, 11) == make_entries(7, 10, 3));
  CHECK(read(s, 10, 10).empty());
  for (std::uint64_t i = 1; i <= 10; ++i) {
    auto t = s.term_at(LogIndex(i));
    REQUIRE(t.is_ok());
    CHECK(*t == Term(i <= 3 ? 1 : i <= 6 ? 2 : 3));
  }
}

TEMPLATE_TEST_CASE("log store: entries stops at max_bytes but returns at least one",
                   "[log_store][contract]", LOG_STORE_TYPES) {
  TestType factory;
  LogStore& s = factory.get();
  std::vector<Entry> batch;
  for (std::uint64_t i = 1; i <= 5; ++i) batch.push_back(make_entry(i, 1, std::string(100, 'a')));
  append_ok(s, batch);
  CHECK(read(s, 1, 6, 0).size() == 1);  // never fewer than one
  CHECK(read(s, 1, 6, 99).size() == 1);
  CHECK(read(s, 1, 6, 100).size() == 1);  // exactly one entry's data
  CHECK(read(s, 1, 6, 299).size() == 2);
  CHECK(read(s, 1, 6, 300).size() == 3);
  CHECK(read(s, 2, 6, 300) == std::vector<Entry>(batch.begin() + 1, batch.begin() + 4));
  CHECK(read(s, 1, 6, UINT64_MAX).size() == 5);
  CHECK(read(s, 1, 3, 1000).size() == 2);  // hi still bounds the answer
}

TEMPLATE_TEST_CASE("log store: a conflicting append replaces the suffix", "[log_store][contract]",
                   LOG_STORE_TYPES) {
  TestType factory;
  LogStore& s = factory.get();
  append_ok(s, make_entries(1, 10, 1));
  append_ok(s, make_entries(6, 7, 2));  // a new leader overwrote 6.. with shorter history
  CHECK(s.last_index() == LogIndex(7));
  std::vector<Entry> expected = make_entries(1, 5, 1);
  for (const Entry& e : make_entries(6, 7, 2)) expected.push_back(e);
  CHECK(read(s, 1, 8) == expected);
  CHECK(*s.term_at(LogIndex(6)) == Term(2));
  append_ok(s, make_entries(8, 9, 2));  // and the log grows on from there
  append_ok(s, make_entries(1, 2, 3));  // a conflict at the very first index
  CHECK(s.last_index() == LogIndex(2));
  CHECK(read(s, 1, 3) == make_entries(1, 2, 3));
}

TEMPLATE_TEST_CASE("log store: append refuses what would break the log", "[log_store][contract]",
                   LOG_STORE_TYPES) {
  TestType factory;
  LogStore& s = factory.get();
  append_ok(s, make_entries(1, 5, 2));
  const std::vector<Entry> gap = make_entries(7, 8, 2);
  Status st = s.append(gap);
  CHECK(st.is(StatusCode::kInvalidArgument));
  CHECK_THAT(message_of(st), Contains("append at index 7") && Contains("[1, 6]"));

  std::vector<Entry> holey = make_entries(6, 7, 2);
  holey[1].index = LogIndex(9);
  st = s.append(holey);
  CHECK(st.is(StatusCode::kInvalidArgument));
  CHECK_THAT(message_of(st), Contains("not contiguous"));

  st = s.append(make_entries(6, 6, 1));  // term 1 after term 2
  CHECK(st.is(StatusCode::kInvalidArgument));
  CHECK_THAT(message_of(st), Contains("term 1") && Contains("never decrease"));

  REQUIRE(s.compact(make_snapshot(3, 2)).is_ok());
  st = s.append(make_entries(3, 4, 2));  // below first_index
  CHECK(st.is(StatusCode::kInvalidArgument));
  CHECK_THAT(message_of(st), Contains("[4, 6]"));

  CHECK(s.append({}).is_ok());  // an empty batch changes nothing
  CHECK(s.last_index() == LogIndex(5));
  CHECK(read(s, 4, 6) == make_entries(4, 5, 2));
}

TEMPLATE_TEST_CASE("log store: truncate_suffix drops the tail", "[log_store][contract]",
                   LOG_STORE_TYPES) {
  TestType factory;
  LogStore& s = factory.get();
  append_ok(s, make_entries(1, 8, 1));
  REQUIRE(s.truncate_suffix(LogIndex(9)).is_ok());  // from last + 1: nothing to drop
  CHECK(s.last_index() == LogIndex(8));
  REQUIRE(s.truncate_suffix(LogIndex(6)).is_ok());
  CHECK(s.last_index() == LogIndex(5));
  CHECK(read(s, 1, 6) == make_entries(1, 5, 1));
  Status st = s.truncate_suffix(LogIndex(7));
  CHECK(st.is(StatusCode::kInvalidArgument));
  CHECK_THAT(message_of(st), Contains("truncate_suffix(7)") && Contains("[1, 6]"));
  REQUIRE(s.compact(make_snapshot(2, 1)).is_ok());
  st = s.truncate_suffix(LogIndex(2));
  CHECK(st.is(StatusCode::kInvalidArgument));
  CHECK_THAT(message_of(st), Contains("[3, 6]"));
  REQUIRE(s.truncate_suffix(LogIndex(3)).is_ok());  // everything after the snapshot
  CHECK(s.first_index() == LogIndex(3));
  CHECK(s.last_index() == LogIndex(2));
  append_ok(s, make_entries(3, 4, 5));
  CHECK(read(s, 3, 5) == make_entries(3, 4, 5));
}

TEMPLATE_TEST_CASE("log store: compact moves the snapshot boundary", "[log_store][contract]",
                   LOG_STORE_TYPES) {
  TestType factory;
  LogStore& s = factory.get();
  append_ok(s, make_entries(1, 5, 1));
  append_ok(s, make_entries(6, 10, 2));
  REQUIRE(s.compact(make_snapshot(6, 2)).is_ok());
  CHECK(s.snapshot_meta() == make_snapshot(6, 2));
  CHECK(s.first_index() == LogIndex(7));
  CHECK(s.last_index() == LogIndex(10));
  CHECK(*s.term_at(LogIndex(6)) == Term(2));  // the snapshot's term at its index
  CHECK(s.term_at(LogIndex(5)).status().is(StatusCode::kNotFound));
  CHECK(read(s, 7, 11) == make_entries(7, 10, 2));
  REQUIRE(s.compact(make_snapshot(6, 2)).is_ok());   // the same snapshot again: allowed
  REQUIRE(s.compact(make_snapshot(10, 2)).is_ok());  // the whole log
  CHECK(s.first_index() == LogIndex(11));
  CHECK(s.last_index() == LogIndex(10));
  CHECK(*s.term_at(LogIndex(10)) == Term(2));
  append_ok(s, make_entries(11, 12, 3));
  CHECK(read(s, 11, 13) == make_entries(11, 12, 3));
}

TEMPLATE_TEST_CASE("log store: compact refuses indexes outside the log and a wrong term",
                   "[log_store][contract]", LOG_STORE_TYPES) {
  TestType factory;
  LogStore& s = factory.get();
  append_ok(s, make_entries(1, 5, 1));
  Status st = s.compact(make_snapshot(6, 1));
  CHECK(st.is(StatusCode::kInvalidArgument));
  CHECK_THAT(message_of(st), Contains("compact to index 6") && Contains("[0, 5]"));
  st = s.compact(make_snapshot(3, 2));
  CHECK(st.is(StatusCode::kInvalidArgument));
  CHECK_THAT(message_of(st), Contains("term 2") && Contains("term 1"));
  REQUIRE(s.compact(make_snapshot(3, 1)).is_ok());
  st = s.compact(make_snapshot(2, 1));
  CHECK(st.is(StatusCode::kInvalidArgument));
  CHECK_THAT(message_of(st), Contains("[3, 5]"));
  CHECK(s.snapshot_meta() == make_snapshot(3, 1));
}

TEMPLATE_TEST_CASE("log store: install_snapshot replaces the whole log", "[log_store][contract]",
                   LOG_STORE_TYPES) {
  TestType factory;
  LogStore& s = factory.get();
  append_ok(s, make_entries(1, 5, 1));
  SnapshotMeta meta = make_snapshot(20, 4);
  meta.conf_state.voters_outgoing = {NodeId("node-1")};
  meta.conf_state.learners_next = {NodeId("node-5")};
  meta.conf_state.auto_leave = true;
  REQUIRE(s.install_snapshot(meta).is_ok());
  CHECK(s.snapshot_meta() == meta);
  CHECK(s.first_index() == LogIndex(21));
  CHECK(s.last_index() == LogIndex(20));
  CHECK(*s.term_at(LogIndex(20)) == Term(4));
  CHECK(s.entries(LogIndex(5), LogIndex(6), 100).status().is(StatusCode::kNotFound));
  REQUIRE(s.install_snapshot(make_snapshot(3, 4)).is(StatusCode::kInvalidArgument));
  REQUIRE(s.install_snapshot(make_snapshot(4, 4)).is(StatusCode::kInvalidArgument));
  append_ok(s, make_entries(21, 22, 4));
  // A snapshot inside the current log replaces it all the same.
  REQUIRE(s.install_snapshot(make_snapshot(21, 4)).is_ok());
  CHECK(s.last_index() == LogIndex(21));
  CHECK(s.first_index() == LogIndex(22));
}

TEMPLATE_TEST_CASE("log store: hard state is kept as given", "[log_store][contract]",
                   LOG_STORE_TYPES) {
  TestType factory;
  LogStore& s = factory.get();
  const HardState first{Term(3), NodeId("node-2"), LogIndex(0)};
  REQUIRE(s.set_hard_state(first).is_ok());
  CHECK(s.hard_state() == first);
  append_ok(s, make_entries(1, 4, 3));
  const HardState second{Term(4), NodeId(), LogIndex(4)};
  REQUIRE(s.set_hard_state(second).is_ok());
  CHECK(s.hard_state() == second);
  REQUIRE(s.compact(make_snapshot(2, 3)).is_ok());
  CHECK(s.hard_state() == second);  // compaction does not touch it
}

TEMPLATE_TEST_CASE("log store: reads outside the log answer not_found naming the range",
                   "[log_store][contract]", LOG_STORE_TYPES) {
  TestType factory;
  LogStore& s = factory.get();
  append_ok(s, make_entries(1, 10, 1));
  REQUIRE(s.compact(make_snapshot(4, 1)).is_ok());
  auto r = s.entries(LogIndex(3), LogIndex(6), UINT64_MAX);
  CHECK(r.status().is(StatusCode::kNotFound));
  CHECK_THAT(message_of(r), Contains("compacted") && Contains("[5, 10]"));
  r = s.entries(LogIndex(5), LogIndex(12), UINT64_MAX);
  CHECK(r.status().is(StatusCode::kNotFound));
  CHECK_THAT(message_of(r), Contains("entries [5, 12)") && Contains("last index 10"));
  r = s.entries(LogIndex(8), LogIndex(6), UINT64_MAX);
  CHECK(r.status().is(StatusCode::kInvalidArgument));
  CHECK_THAT(message_of(r), Contains("lo is above hi"));
  auto t = s.term_at(LogIndex(3));
  CHECK(t.status().is(StatusCode::kNotFound));
  CHECK_THAT(message_of(t), Contains("term_at(3)") && Contains("[4, 10]"));
  t = s.term_at(LogIndex(11));
  CHECK(t.status().is(StatusCode::kNotFound));
  CHECK_THAT(message_of(t), Contains("[4, 10]"));
}

TEMPLATE_TEST_CASE("log store: sync answers the durable last index", "[log_store][contract]",
                   LOG_STORE_TYPES) {
  TestType factory;
  LogStore& s = factory.get();
  append_ok(s, make_entries(1, 6, 1));
  auto durable = s.sync();
  REQUIRE(durable.is_ok());
  CHECK(*durable == LogIndex(6));
  REQUIRE(s.truncate_suffix(LogIndex(4)).is_ok());
  durable = s.sync();
  REQUIRE(durable.is_ok());
  CHECK(*durable == LogIndex(3));
  durable = s.sync();  // nothing new: the same answer
  REQUIRE(durable.is_ok());
  CHECK(*durable == LogIndex(3));
}

TEMPLATE_TEST_CASE("log store: random operations match a simple model", "[log_store][contract]",
                   LOG_STORE_TYPES) {
  TestType factory;
  LogStore& s = factory.get();
  const std::uint64_t seed = test_seed("log store random operations", 20240611);
  INFO("seed " << seed << " (NODENOMAD_SEED replays it)");
  Rng rng(seed);
  ModelLog model;
  std::uint64_t term = 1;
  constexpr int kOperations = 150;
  for (int op = 0; op < kOperations; ++op) {
    const std::uint64_t dice = rng.uniform(100);
    const std::uint64_t last = model.last().value();
    const std::uint64_t first = model.first().value();
    if (dice < 45) {
      const bool conflict = last >= first && rng.chance(0.2);
      const std::uint64_t from = conflict ? rng.uniform_in(first, last) : last + 1;
      if (conflict) ++term;
      std::vector<Entry> batch;
      for (std::uint64_t i = from; i < from + rng.uniform_in(1, 4); ++i) {
        batch.push_back(make_entry(i, term, std::string(rng.uniform(200), 'a' + i % 26)));
      }
      REQUIRE(s.append(batch).is_ok());
      for (const Entry& e : batch) model.append(e);
    } else if (dice < 55) {
      const HardState hs{Term(term), NodeId(rng.chance(0.5) ? "node-1" : ""), LogIndex(last)};
      REQUIRE(s.set_hard_state(hs).is_ok());
      model.hard_state = hs;
    } else if (dice < 62) {
      const LogIndex from(rng.uniform_in(first, last + 1));
      REQUIRE(s.truncate_suffix(from).is_ok());
      model.truncate(from);
    } else if (dice < 72) {
      const LogIndex at(rng.uniform_in(first - 1, last));
      const SnapshotMeta meta = make_snapshot(at.value(), model.term_at(at).value());
      REQUIRE(s.compact(meta).is_ok());
      model.compact(meta);
    } else if (dice < 75) {
      const SnapshotMeta meta = make_snapshot(last + rng.uniform(5), ++term);
      REQUIRE(s.install_snapshot(meta).is_ok());
      model.install(meta);
    } else if (dice < 85) {
      auto durable = s.sync();
      REQUIRE(durable.is_ok());
      CHECK(*durable == model.last());
    } else {
      const std::uint64_t lo = rng.uniform_in(first, last + 1);
      const std::uint64_t hi = rng.uniform_in(lo, last + 1);
      const std::uint64_t max_bytes = rng.uniform(600);
      auto got = s.entries(LogIndex(lo), LogIndex(hi), max_bytes);
      REQUIRE(got.is_ok());
      CHECK((got->size() >= 1 || lo == hi));
      for (std::size_t i = 0; i < got->size(); ++i) {
        CHECK((*got)[i] == model.entries[static_cast<std::size_t>(lo - first) + i]);
      }
    }
    INFO("after operation " << op);
    REQUIRE(observe(s) == model);
  }
}

}  // namespace nodenomad::log_store_test
