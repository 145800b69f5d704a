// The Invariants checker must catch what it promises to catch: each case
// builds engines over hand-made logs that break one property.
#include "nodenomad/raft/invariants.hpp"
#include "raft/raft_test_support.hpp"

namespace nodenomad {
namespace {

using raft_test::node;

struct Replica {
  MemoryLogStore store;
  std::unique_ptr<RaftEngine> engine;
};

// A replica of a one-voter group named `id` whose log holds `terms` (entry
// i + 1 has term terms[i], data `data_prefix` + i) and the given commit.
std::unique_ptr<Replica> replica(const std::string& id, std::vector<std::uint64_t> terms,
                                 std::uint64_t commit, const std::string& data_prefix = "d") {
  auto r = std::make_unique<Replica>();
  ConfState conf;
  conf.voters = {NodeId(id)};
  REQUIRE(RaftEngine::bootstrap(r->store, conf).is_ok());
  std::vector<Entry> entries;
  for (std::size_t i = 0; i < terms.size(); ++i) {
    entries.push_back(Entry{Term(terms[i]), LogIndex(i + 1), EntryType::kNormal,
                            data_prefix + std::to_string(i)});
  }
  if (!entries.empty()) REQUIRE(r->store.append(entries).is_ok());
  const std::uint64_t term = terms.empty() ? 0 : terms.back();
  REQUIRE(r->store.set_hard_state(HardState{Term(term), NodeId(), LogIndex(commit)}).is_ok());
  RaftConfig config = raft_test::default_config();
  config.id = NodeId(id);
  config.pre_vote = false;
  Result<std::unique_ptr<RaftEngine>> engine = RaftEngine::open(config, r->store, nullptr, Rng(1));
  REQUIRE(engine.is_ok());
  r->engine = std::move(engine).value();
  return r;
}

// Elects a one-voter replica: campaign, then the Ready that makes its vote durable.
void make_leader(Replica& r) {
  REQUIRE(r.engine->campaign().is_ok());
  Ready rd = r.engine->ready();
  if (rd.hard_state) REQUIRE(r.store.set_hard_state(*rd.hard_state).is_ok());
  r.engine->advance(rd);
  REQUIRE(r.engine->role() == RaftRole::kLeader);
}

Status check(Invariants& inv, std::initializer_list<const Replica*> replicas) {
  std::vector<const RaftEngine*> engines;
  for (const Replica* r : replicas) engines.push_back(r->engine.get());
  return inv.check(engines);
}

TEST_CASE("raft invariants: healthy logs pass", "[raft][invariants]") {
  Invariants inv;
  auto a = replica("a", {1, 1, 2}, 2);
  auto b = replica("b", {1, 1}, 2);
  CHECK(check(inv, {a.get(), b.get()}).is_ok());
  CHECK(inv.known_committed() == 2);
}

TEST_CASE("raft invariants: two leaders in one term are caught", "[raft][invariants]") {
  Invariants inv;
  auto a = replica("a", {1}, 1);
  auto b = replica("b", {1}, 1);
  make_leader(*a);
  make_leader(*b);
  const Status s = check(inv, {a.get(), b.get()});
  CHECK(s.is(StatusCode::kFailed));
  CHECK(s.message().find("two leaders in term 2") != std::string_view::npos);
}

TEST_CASE("raft invariants: a log matching violation is caught", "[raft][invariants]") {
  Invariants inv;
  auto a = replica("a", {1, 2, 2}, 0, "x");
  auto b = replica("b", {1, 1, 2}, 0, "x");  // (3, term 2) after a different term
  const Status s = check(inv, {a.get(), b.get()});
  CHECK(s.message().find("log matching") != std::string_view::npos);
  Invariants inv2;
  auto c = replica("c", {1, 2}, 0, "x");
  auto d = replica("d", {1, 2}, 0, "y");  // same index and term, other data
  CHECK(check(inv2, {c.get(), d.get()}).message().find("different entry") != std::string_view::npos);
}

TEST_CASE("raft invariants: state-machine safety violations are caught",
          "[raft][invariants]") {
  Invariants inv;
  auto a = replica("a", {1, 1}, 2);
  auto b = replica("b", {1, 2}, 2);
  CHECK(check(inv, {a.get(), b.get()}).message().find("state-machine safety") !=
        std::string_view::npos);
  // Applying an entry other than the committed one is caught too.
  Invariants inv2;
  REQUIRE(check(inv2, {a.get()}).is_ok());
  CHECK(inv2.record_applied(NodeId("a"), Entry{Term(1), LogIndex(1), EntryType::kNormal, "d0"})
            .is_ok());
  CHECK_FALSE(inv2.record_applied(NodeId("b"), Entry{Term(3), LogIndex(2), EntryType::kNormal, "z"})
                  .is_ok());
  CHECK_FALSE(inv2.record_applied(NodeId("a"), Entry{Term(1), LogIndex(1), EntryType::kNormal, "d0"})
                  .is_ok());  // out of order
}

TEST_CASE("raft invariants: a leader missing a committed entry is caught",
          "[raft][invariants]") {
  Invariants inv;
  auto a = replica("a", {1, 1, 1}, 3);
  REQUIRE(check(inv, {a.get()}).is_ok());
  auto b = replica("b", {1}, 1);
  make_leader(*b);  // term 2, its no-op not yet committed
  const Status s = check(inv, {a.get(), b.get()});
  CHECK(s.message().find("leader completeness") != std::string_view::npos);
}

TEST_CASE("raft invariants: commit moving backwards is caught, also across restarts",
          "[raft][invariants]") {
  Invariants inv;
  auto a = replica("a", {1, 1, 1}, 3);
  REQUIRE(check(inv, {a.get()}).is_ok());
  auto a_rewound = replica("a", {1, 1, 1}, 2);
  CHECK(check(inv, {a_rewound.get()}).message().find("commit moved backwards") !=
        std::string_view::npos);
  // After a restart the commit may fall back to the durable one, not below.
  Invariants inv2;
  REQUIRE(check(inv2, {a.get()}).is_ok());
  inv2.record_persisted(NodeId("a"), HardState{Term(1), NodeId(), LogIndex(2)});
  inv2.record_restart(NodeId("a"), LogIndex(0));
  CHECK(check(inv2, {a_rewound.get()}).is_ok());
  auto a_lost = replica("a", {1, 1, 1}, 1);
  CHECK_FALSE(check(inv2, {a_lost.get()}).is_ok());
}

}  // namespace
}  // namespace nodenomad
