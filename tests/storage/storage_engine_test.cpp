// The StorageEngine's key-value semantics: operations, binary safety, limits,
// versions, compare-and-set, TTL, and the modes.
#include "nodenomad/storage/storage_engine.hpp"

#include <catch2/catch.hpp>

#include "storage/storage_test_util.hpp"

namespace nodenomad {
namespace {

using storage_test::CountingClock;
using storage_test::dump_engine;
using storage_test::ms_time;
using storage_test::open_or_fail;
using storage_test::test_options;
using testing::FaultInjectingFileSystem;

struct Fixture {
  FaultInjectingFileSystem fs;
  ManualClock clock;
  std::unique_ptr<StorageEngine> engine;

  explicit Fixture(StorageOptions overrides = {}) {
    StorageOptions options = test_options(fs, clock);
    options.max_key_bytes = overrides.max_key_bytes;
    options.max_value_bytes = overrides.max_value_bytes;
    options.mode = overrides.mode;
    engine = open_or_fail(options);
  }
  WallTime now() const { return clock.wall_now(); }
};

TEST_CASE("set, get and remove a key", "[storage][engine]") {
  Fixture f;
  CHECK(f.engine->get("k").status().is(StatusCode::kNotFound));
  WriteResult put = f.engine->set("k", "v1");
  REQUIRE(put.ok());
  CHECK(put.version == 1);
  auto read = f.engine->get("k");
  REQUIRE(read.is_ok());
  CHECK(read->value == "v1");
  CHECK(read->version == 1);
  CHECK_FALSE(read->expiry.has_value());

  WriteResult removed = f.engine->remove("k");
  REQUIRE(removed.ok());
  CHECK(removed.deleted);
  CHECK(removed.version == 1);
  CHECK(f.engine->get("k").status().is(StatusCode::kNotFound));
  WriteResult again = f.engine->remove("k");
  REQUIRE(again.ok());
  CHECK_FALSE(again.deleted);
  CHECK(f.engine->stats().keys == 0);
}

TEST_CASE("get_many reads many keys, marking absent and expired ones with version 0",
          "[storage][engine]") {
  Fixture f;
  const WallTime t0 = f.now();
  for (int i = 0; i < 100; ++i) {
    REQUIRE(f.engine->set("k" + std::to_string(i), "v" + std::to_string(i)).ok());
  }
  REQUIRE(f.engine->set("ttl", "soon", {t0 + std::chrono::seconds(1), std::nullopt}).ok());
  std::vector<std::string> names;
  for (int i = 0; i < 100; i += 3) names.push_back("k" + std::to_string(i));
  names.push_back("missing");
  names.push_back("ttl");
  std::vector<std::string_view> keys(names.begin(), names.end());
  std::vector<ReadResult> out(keys.size());
  out[keys.size() - 2].value = "stale";  // a reused buffer must be cleared
  REQUIRE(f.engine->get_many(keys, t0 + std::chrono::seconds(2), out).is_ok());
  for (std::size_t i = 0; i + 2 < keys.size(); ++i) {
    CHECK(out[i].version == 1);
    CHECK(out[i].value == "v" + std::to_string(3 * i));
  }
  CHECK(out[keys.size() - 2].version == 0);
  CHECK(out[keys.size() - 2].value.empty());
  CHECK(out[keys.size() - 1].version == 0);  // expired at that time
  REQUIRE(f.engine->get_many(keys, t0, out).is_ok());
  CHECK(out.back().value == "soon");
  CHECK(out.back().expiry == t0 + std::chrono::seconds(1));
  // A bad key or mismatched spans read nothing.
  keys.push_back("");
  CHECK(f.engine->get_many(keys, t0, out).is(StatusCode::kInvalidArgument));
}

TEST_CASE("keys and values are binary-safe", "[storage][engine]") {
  Fixture f;
  const std::string key("a\0b\xff\x00", 5);
  const std::string other("a\0c", 3);
  std::string value(300, '\0');
  for (std::size_t i = 0; i < value.size(); ++i) value[i] = static_cast<char>(i * 7);
  REQUIRE(f.engine->set(key, value).ok());
  REQUIRE(f.engine->set(other, "x").ok());
  REQUIRE(f.engine->set("a", "prefix only").ok());
  auto read = f.engine->get(key);
  REQUIRE(read.is_ok());
  CHECK(read->value == value);
  CHECK(f.engine->get(other)->value == "x");
  CHECK(f.engine->get(std::string("a\0b", 3)).status().is(StatusCode::kNotFound));
  CHECK(f.engine->stats().keys == 3);
  REQUIRE(f.engine->set("empty", "").ok());
  CHECK(f.engine->get("empty")->value.empty());
}

TEST_CASE("limits refuse the write, name the limit and leave the state untouched",
          "[storage][engine]") {
  StorageOptions limits;
  limits.max_key_bytes = 8;
  limits.max_value_bytes = 16;
  Fixture f(limits);
  REQUIRE(f.engine->set("key", "value").ok());
  const auto before = dump_engine(*f.engine);
  const auto index_before = f.engine->last_applied_index();

  WriteResult long_key = f.engine->set("123456789", "v");
  CHECK(long_key.status.is(StatusCode::kInvalidArgument));
  CHECK_THAT(std::string(long_key.status.message()), Catch::Contains("max_key_bytes") &&
                                                         Catch::Contains("9 bytes") &&
                                                         Catch::Contains("8 bytes"));
  WriteResult big_value = f.engine->set("key", std::string(17, 'v'));
  CHECK(big_value.status.is(StatusCode::kInvalidArgument));
  CHECK_THAT(std::string(big_value.status.message()),
             Catch::Contains("max_value_bytes") && Catch::Contains("17 bytes"));
  CHECK(f.engine->set("", "v").status.is(StatusCode::kInvalidArgument));
  CHECK(f.engine->remove("").status.is(StatusCode::kInvalidArgument));
  CHECK(f.engine->remove("123456789").status.is(StatusCode::kInvalidArgument));
  CHECK(f.engine->get("").status().is(StatusCode::kInvalidArgument));
  CHECK(f.engine->get("123456789").status().is(StatusCode::kInvalidArgument));
  // Exactly at the limits is fine.
  CHECK(f.engine->set("12345678", std::string(16, 'v')).ok());
  CHECK(f.engine->remove("12345678").ok());

  // The refused writes were never logged: the index moved only for the two
  // accepted ones.
  CHECK(f.engine->last_applied_index() == index_before + 2);
  CHECK(dump_engine(*f.engine).entries == before.entries);
  CHECK(f.engine->get("key")->value == "value");
}

TEST_CASE("versions grow by one per write and restart above the old one after a remove",
          "[storage][engine]") {
  Fixture f;
  CHECK(f.engine->set("a", "1").version == 1);
  CHECK(f.engine->set("a", "2").version == 2);
  CHECK(f.engine->set("a", "3").version == 3);
  CHECK(f.engine->set("b", "1").version == 1);
  REQUIRE(f.engine->remove("a").deleted);
  // Re-created above everything ever removed (the floor is 3 now).
  CHECK(f.engine->set("a", "again").version == 4);
  CHECK(f.engine->get("a")->version == 4);
  // A live key keeps counting from its own version, whatever the floor.
  CHECK(f.engine->set("b", "2").version == 2);
  CHECK(f.engine->stats().version_floor == 3);
  // A never-seen key also starts above the floor.
  CHECK(f.engine->set("c", "1").version == 4);
}

TEST_CASE("compare-and-set and remove-if-version", "[storage][engine]") {
  Fixture f;
  SECTION("if_version 0 means only if absent") {
    WriteResult created = f.engine->compare_and_set("k", "v", 0);
    REQUIRE(created.ok());
    CHECK(created.version == 1);
    WriteResult lost = f.engine->compare_and_set("k", "w", 0);
    CHECK(lost.status.is(StatusCode::kVersionMismatch));
    CHECK(lost.current_version == 1);
    CHECK(f.engine->get("k")->value == "v");
  }
  SECTION("a matching version wins, a stale one loses and reports the current one") {
    REQUIRE(f.engine->set("k", "v1").ok());
    REQUIRE(f.engine->set("k", "v2").ok());
    WriteResult stale = f.engine->compare_and_set("k", "x", 1);
    CHECK(stale.status.is(StatusCode::kVersionMismatch));
    CHECK(stale.current_version == 2);
    WriteResult won = f.engine->compare_and_set("k", "v3", 2);
    REQUIRE(won.ok());
    CHECK(won.version == 3);
    CHECK(f.engine->get("k")->value == "v3");
  }
  SECTION("a version on an absent key loses with current version 0") {
    WriteResult lost = f.engine->compare_and_set("nope", "x", 5);
    CHECK(lost.status.is(StatusCode::kVersionMismatch));
    CHECK(lost.current_version == 0);
    CHECK(f.engine->get("nope").status().is(StatusCode::kNotFound));
  }
  SECTION("remove_if_version") {
    REQUIRE(f.engine->set("k", "v").ok());
    WriteResult stale = f.engine->remove_if_version("k", 7);
    CHECK(stale.status.is(StatusCode::kVersionMismatch));
    CHECK(stale.current_version == 1);
    CHECK(f.engine->get("k").is_ok());
    WriteResult removed = f.engine->remove_if_version("k", 1);
    REQUIRE(removed.ok());
    CHECK(removed.deleted);
    WriteResult absent = f.engine->remove_if_version("k", 0);
    REQUIRE(absent.ok());
    CHECK_FALSE(absent.deleted);
    CHECK(f.engine->remove_if_version("k", 1).current_version == 0);
  }
}

TEST_CASE("reads hide expired keys; the convenience read uses the injected clock",
          "[storage][engine][ttl]") {
  Fixture f;
  const WallTime t0 = f.now();
  REQUIRE(f.engine->set("ttl", "v", {t0 + std::chrono::seconds(10), std::nullopt}).ok());
  REQUIRE(f.engine->set("forever", "v").ok());
  auto read = f.engine->get("ttl");
  REQUIRE(read.is_ok());
  REQUIRE(read->expiry.has_value());
  CHECK(*read->expiry == t0 + std::chrono::seconds(10));
  CHECK(f.engine->get("ttl", t0 + std::chrono::milliseconds(9'999)).is_ok());
  CHECK(f.engine->get("ttl", t0 + std::chrono::seconds(10)).status().is(StatusCode::kNotFound));

  f.clock.advance(std::chrono::seconds(10));
  CHECK(f.engine->get("ttl").status().is(StatusCode::kNotFound));
  CHECK(f.engine->get("forever").is_ok());
  // Expired but not yet removed: absent to compare-and-set and remove...
  CHECK(f.engine->compare_and_set("ttl", "x", 1).current_version == 0);
  CHECK_FALSE(f.engine->remove("ttl").deleted);
  CHECK(f.engine->stats().keys == 1);
  // ...and a re-create starts above the expired version.
  REQUIRE(f.engine->set("ttl", "new", {f.now() + std::chrono::seconds(1), 0}).ok());
  CHECK(f.engine->get("ttl")->version == 2);
}

TEST_CASE("expire_due removes bounded batches of due keys, earliest first",
          "[storage][engine][ttl]") {
  Fixture f;
  const WallTime t0 = f.now();
  for (int i = 0; i < 10; ++i) {
    const WallTime expiry = t0 + std::chrono::seconds(10 - i);  // k9 expires first
    REQUIRE(f.engine->set("k" + std::to_string(i), "v", {expiry, std::nullopt}).ok());
  }
  REQUIRE(f.engine->set("later", "v", {t0 + std::chrono::hours(1), std::nullopt}).ok());
  const WallTime now = t0 + std::chrono::seconds(10);

  auto due = f.engine->find_due_keys(now, 100);
  REQUIRE(due.size() == 10);
  CHECK(due.front().key == "k9");
  CHECK(due.back().key == "k0");
  CHECK(f.engine->stats().keys == 11);  // finding removes nothing

  WriteResult first = f.engine->expire_due(now, 4);
  REQUIRE(first.ok());
  CHECK(first.expired_keys == std::vector<std::string>{"k9", "k8", "k7", "k6"});
  CHECK(f.engine->stats().keys == 7);
  WriteResult rest = f.engine->expire_due(now, 100);
  CHECK(rest.expired_keys.size() == 6);
  CHECK(f.engine->expire_due(now, 100).expired_keys.empty());
  CHECK(f.engine->stats().keys == 1);
  CHECK(f.engine->stats().keys_with_expiry == 1);
  CHECK(f.engine->stats().version_floor == 1);
}

TEST_CASE("an expiry never removes a key re-written after it was found due",
          "[storage][engine][ttl]") {
  Fixture f;
  const WallTime t0 = f.now();
  REQUIRE(f.engine->set("a", "old", {t0 + std::chrono::seconds(1), std::nullopt}).ok());
  REQUIRE(f.engine->set("b", "old", {t0 + std::chrono::seconds(1), std::nullopt}).ok());
  const WallTime later = t0 + std::chrono::seconds(5);
  const auto due = f.engine->find_due_keys(later, 10);
  REQUIRE(due.size() == 2);
  // Both keys are re-written (new version) before the expiry is applied.
  REQUIRE(f.engine->set("a", "new").ok());
  REQUIRE(f.engine->set("b", "new", {later + std::chrono::seconds(60), std::nullopt}).ok());

  // What a Raft leader would propose with the stale list.
  StorageOptions replicated;
  replicated.mode = StorageMode::kReplicated;
  Fixture r(replicated);
  KvCommand set_a{KvCommandType::kSet, t0, "a", "old", t0 + std::chrono::seconds(1), {}, {}};
  REQUIRE(r.engine->apply(LogIndex(1), encode_kv_command(set_a)).is_ok());
  const auto stale = r.engine->find_due_keys(later, 10);
  KvCommand rewrite{KvCommandType::kSet, later, "a", "new", std::nullopt, {}, {}};
  REQUIRE(r.engine->apply(LogIndex(2), encode_kv_command(rewrite)).is_ok());
  auto answer = r.engine->apply(LogIndex(3), encode_kv_command(make_expire_command(later, stale)));
  REQUIRE(answer.is_ok());
  auto decoded = decode_write_result(*answer);
  REQUIRE(decoded.is_ok());
  CHECK(decoded->expired_keys.empty());
  CHECK(r.engine->get("a", later)->value == "new");

  // Standalone: the same race through the engine's own WAL.
  CHECK(f.engine->expire_due(later, 10).expired_keys.empty());
  CHECK(f.engine->get("a", later)->value == "new");
  CHECK(f.engine->get("b", later)->value == "new");
}

TEST_CASE("apply never reads the clock", "[storage][engine][ttl]") {
  FaultInjectingFileSystem fs;
  CountingClock clock;
  StorageOptions options = test_options(fs, clock);
  options.mode = StorageMode::kReplicated;
  auto engine = open_or_fail(options);
  const std::uint64_t readings_after_open = clock.readings();
  const WallTime t0 = ms_time(1'000'000);
  KvCommand set{KvCommandType::kSet, t0, "k", "v", t0 + std::chrono::seconds(5), {}, {}};
  REQUIRE(engine->apply(LogIndex(1), encode_kv_command(set)).is_ok());
  // The clock says the key is long expired; the command says it is not.
  clock.inner().set_wall(t0 + std::chrono::hours(24));
  KvCommand cas{KvCommandType::kSet, t0 + std::chrono::seconds(4), "k", "w", std::nullopt, 1, {}};
  auto answer = engine->apply(LogIndex(2), encode_kv_command(cas));
  REQUIRE(answer.is_ok());
  auto decoded = decode_write_result(*answer);
  REQUIRE(decoded.is_ok());
  CHECK(decoded->ok());
  CHECK(decoded->version == 2);
  // And the other way round: the clock says fresh, the command says expired.
  clock.inner().set_wall(t0);
  KvCommand set_ttl{KvCommandType::kSet, t0, "t", "v", t0 + std::chrono::seconds(1), {}, {}};
  REQUIRE(engine->apply(LogIndex(3), encode_kv_command(set_ttl)).is_ok());
  KvCommand late_cas{KvCommandType::kSet, t0 + std::chrono::seconds(2), "t", "x", std::nullopt, 1,
                     {}};
  auto lost = decode_write_result(*engine->apply(LogIndex(4), encode_kv_command(late_cas)));
  REQUIRE(lost.is_ok());
  CHECK(lost->status.is(StatusCode::kVersionMismatch));
  CHECK(lost->current_version == 0);
  CHECK(clock.readings() == readings_after_open);
}

TEST_CASE("each mode refuses the other mode's write path", "[storage][engine]") {
  SECTION("standalone") {
    Fixture f;
    CHECK(f.engine->apply(LogIndex(1), "").status().is(StatusCode::kNotSupported));
    CHECK(f.engine->begin_restore(LogIndex(1)).status().is(StatusCode::kNotSupported));
  }
  SECTION("replicated") {
    StorageOptions replicated;
    replicated.mode = StorageMode::kReplicated;
    Fixture f(replicated);
    CHECK(f.engine->set("k", "v").status.is(StatusCode::kNotSupported));
    CHECK(f.engine->remove("k").status.is(StatusCode::kNotSupported));
    CHECK(f.engine->expire_due(f.now(), 1).status.is(StatusCode::kNotSupported));
    // Apply accepts increasing indexes only; an empty entry is a no-op.
    REQUIRE(f.engine->apply(LogIndex(5), "").is_ok());
    CHECK(f.engine->last_applied_index() == LogIndex(5));
    CHECK(f.engine->apply(LogIndex(5), "").status().is(StatusCode::kInvalidArgument));
    // A malformed command is a refused response, not a stopped replica.
    auto answer = f.engine->apply(LogIndex(6), "garbage");
    REQUIRE(answer.is_ok());
    CHECK(decode_write_result(*answer)->status.is(StatusCode::kInvalidArgument));
    CHECK(f.engine->last_applied_index() == LogIndex(6));
  }
}

TEST_CASE("open refuses options out of range, naming the option", "[storage][engine]") {
  FaultInjectingFileSystem fs;
  ManualClock clock;
  StorageOptions options = test_options(fs, clock);
  options.max_key_bytes = 0;
  auto opened = StorageEngine::open(options);
  CHECK(opened.status().is(StatusCode::kInvalidArgument));
  CHECK_THAT(std::string(opened.status().message()), Catch::Contains("max_key_bytes"));
  options = test_options(fs, clock);
  options.max_value_bytes = 100u << 20;
  CHECK(StorageEngine::open(options).status().is(StatusCode::kInvalidArgument));
  options = test_options(fs, clock);
  options.max_pending_bytes = 1024;
  CHECK_THAT(std::string(StorageEngine::open(options).status().message()),
             Catch::Contains("max_pending_bytes"));
}

TEST_CASE("an engine without a directory keeps everything in memory", "[storage][engine]") {
  StorageOptions options;
  options.sync_policy = SyncPolicy::kGroupCommit;
  auto engine = open_or_fail(options);
  REQUIRE(engine->set("k", "v").ok());
  CHECK(engine->get("k")->value == "v");
  CHECK(engine->snapshot().is(StatusCode::kNotSupported));
  CHECK(engine->stats().wal_syncs == 0);
}

}  // namespace
}  // namespace nodenomad
