// Helpers shared by the LogStore tests: entry builders, the seed of
// randomized tests, and ModelLog, a deliberately naive copy of the contract
// that serves as the oracle the stores are compared with.
#pragma once

#include "support/test_seed.hpp"
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "nodenomad/log_store.hpp"
#include "nodenomad/rng.hpp"

namespace nodenomad::log_store_test {

inline Entry make_entry(std::uint64_t index, std::uint64_t term, std::string data = {},
                        EntryType type = EntryType::kNormal) {
  if (data.empty()) data = "entry-" + std::to_string(index) + "-term-" + std::to_string(term);
  return Entry{Term(term), LogIndex(index), type, std::move(data)};
}

// Entries [from, to] with term `term`.
inline std::vector<Entry> make_entries(std::uint64_t from, std::uint64_t to, std::uint64_t term) {
  std::vector<Entry> out;
  for (std::uint64_t i = from; i <= to; ++i) out.push_back(make_entry(i, term));
  return out;
}

inline SnapshotMeta make_snapshot(std::uint64_t index, std::uint64_t term) {
  SnapshotMeta meta;
  meta.index = LogIndex(index);
  meta.term = Term(term);
  meta.conf_state.voters = {NodeId("node-1"), NodeId("node-2"), NodeId("node-3")};
  meta.conf_state.learners = {NodeId("node-4")};
  return meta;
}

// The seed of a randomized test: NODENOMAD_SEED when set, else `fallback`.
// Printed so that a failure can be replayed with NODENOMAD_SEED=<seed>.
inline std::uint64_t test_seed(const char* test_name, std::uint64_t fallback) {
  return test_support::test_seed(test_name, fallback);
}

// What a log store holds, as plain values.
struct ModelLog {
  SnapshotMeta snapshot;
  HardState hard_state;
  std::vector<Entry> entries;  // entries[i].index == snapshot.index + 1 + i

  LogIndex first() const { return snapshot.index.next(); }
  LogIndex last() const { return snapshot.index + entries.size(); }
  Term term_at(LogIndex index) const {
    if (index == snapshot.index) return snapshot.term;
    return entries.at(static_cast<std::size_t>(index - first())).term;
  }
  void append(const Entry& e) {
    entries.resize(static_cast<std::size_t>(e.index - first()));
    entries.push_back(e);
  }
  void truncate(LogIndex from) { entries.resize(static_cast<std::size_t>(from - first())); }
  void compact(const SnapshotMeta& meta) {
    entries.erase(entries.begin(),
                  entries.begin() + static_cast<std::ptrdiff_t>(meta.index - snapshot.index));
    snapshot = meta;
  }
  void install(const SnapshotMeta& meta) {
    entries.clear();
    snapshot = meta;
  }
  bool operator==(const ModelLog&) const = default;

  std::string describe() const {
    std::string out = "snapshot " + std::to_string(snapshot.index.value()) + "/t" +
                      std::to_string(snapshot.term.value()) + ", hard state t" +
                      std::to_string(hard_state.term.value()) + " vote '" + hard_state.vote.str() +
                      "' commit " + std::to_string(hard_state.commit.value()) + ", entries:";
    for (const Entry& e : entries) {
      out += " " + std::to_string(e.index.value()) + "/t" + std::to_string(e.term.value());
    }
    return out;
  }
};

// Reads everything a store holds; fails the test if a read fails.
inline ModelLog observe(const LogStore& store) {
  ModelLog model;
  model.snapshot = store.snapshot_meta();
  model.hard_state = store.hard_state();
  REQUIRE(store.first_index() == model.first());
  auto all = store.entries(store.first_index(), store.last_index().next(), UINT64_MAX);
  REQUIRE(all.is_ok());
  model.entries = std::move(all).value();
  REQUIRE(store.last_index() == model.last());
  return model;
}

}  // namespace nodenomad::log_store_test
