// Snapshots: files, WAL rotation and compaction, point-in-time streams, and
// the StateMachine snapshot / restore round trip.
#include <atomic>
#include <thread>

#include <catch2/catch.hpp>

#include "nodenomad/rng.hpp"
#include "storage/storage_test_util.hpp"

namespace nodenomad {
namespace {

using storage_test::dump_engine;
using storage_test::dump_snapshot;
using storage_test::ModelState;
using storage_test::ms_time;
using storage_test::open_or_fail;
using storage_test::test_options;
using testing::FaultInjectingFileSystem;
using testing::FaultOp;

std::vector<std::string> files_starting(FileSystem& fs, std::string_view prefix,
                                        const std::string& dir = "/db") {
  std::vector<std::string> out;
  const std::vector<std::string> names = fs.list(dir).value();
  for (const std::string& name : names) {
    if (name.starts_with(prefix)) out.push_back(name);
  }
  return out;
}

TEST_CASE("a snapshot rotates the WAL, deletes what it covers, and reopens",
          "[storage][snapshot]") {
  FaultInjectingFileSystem fs;
  ManualClock clock;
  StorageOptions options = test_options(fs, clock);
  ModelState expected;
  {
    auto engine = open_or_fail(options);
    for (int i = 0; i < 50; ++i) REQUIRE(engine->set("k" + std::to_string(i % 20), "v").ok());
    REQUIRE(engine->remove("k3").ok());
    REQUIRE(engine->set("ttl", "v", {clock.wall_now() + std::chrono::hours(1), std::nullopt}).ok());
    REQUIRE(engine->snapshot().is_ok());
    CHECK(files_starting(fs, "snapshot-") ==
          std::vector<std::string>{"snapshot-00000000000000000052.snap"});
    CHECK(files_starting(fs, "wal-") == std::vector<std::string>{"wal-00000000000000000053.log"});
    // Writes after the snapshot land in the new segment.
    REQUIRE(engine->set("k1", "after").ok());
    REQUIRE(engine->remove("k2").ok());
    CHECK(engine->stats().snapshots_written == 1);
    expected = dump_engine(*engine);
    CHECK(expected.version_floor == 3);
  }
  fs.crash();
  auto reopened = open_or_fail(options);
  LogIndex index;
  CHECK(dump_engine(*reopened, &index) == expected);
  CHECK(index == LogIndex(54));
  CHECK(reopened->get("k1")->value == "after");
  // A second snapshot replaces the first.
  REQUIRE(reopened->snapshot().is_ok());
  CHECK(files_starting(fs, "snapshot-") ==
        std::vector<std::string>{"snapshot-00000000000000000054.snap"});
  CHECK(files_starting(fs, "wal-").size() == 1);
}

TEST_CASE("a snapshot right after a reopen resets the WAL size it reports",
          "[storage][snapshot]") {
  // The reopened engine's new segment is empty, so the snapshot has nothing
  // to rotate; the replayed segments it deletes must stop counting towards
  // max_wal_bytes all the same.
  FaultInjectingFileSystem fs;
  ManualClock clock;
  StorageOptions options = test_options(fs, clock);
  {
    auto engine = open_or_fail(options);
    for (int i = 0; i < 50; ++i) REQUIRE(engine->set("k" + std::to_string(i), "value").ok());
  }
  auto reopened = open_or_fail(options);
  const std::uint64_t before = reopened->stats().wal_bytes;
  REQUIRE(reopened->snapshot().is_ok());
  CHECK(files_starting(fs, "wal-").size() == 1);
  const std::uint64_t after = reopened->stats().wal_bytes;
  CHECK(after < 64);
  CHECK(before > after + 1000);
  options.max_wal_bytes = 2048;
  reopened.reset();
  auto limited = open_or_fail(options);
  REQUIRE(limited->set("one", "more").ok());
  REQUIRE(limited->set("two", "more").ok());
  CHECK(limited->stats().snapshots_written <= 1);
}

TEST_CASE("max_wal_bytes takes snapshots on its own", "[storage][snapshot]") {
  FaultInjectingFileSystem fs;
  ManualClock clock;
  StorageOptions options = test_options(fs, clock);
  options.max_wal_bytes = 4096;
  ModelState expected;
  {
    auto engine = open_or_fail(options);
    for (int i = 0; i < 400; ++i) {
      REQUIRE(engine->set("key" + std::to_string(i % 37), std::string(40, 'a' + i % 26)).ok());
    }
    const StorageStats stats = engine->stats();
    CHECK(stats.snapshots_written >= 3);
    CHECK(stats.wal_bytes <= options.max_wal_bytes + 200);
    CHECK(files_starting(fs, "wal-").size() == 1);
    CHECK(files_starting(fs, "snapshot-").size() == 1);
    expected = dump_engine(*engine);
  }
  fs.crash();
  CHECK(dump_engine(*open_or_fail(options)) == expected);
}

TEST_CASE("a half-written snapshot is ignored and removed on open", "[storage][snapshot]") {
  FaultInjectingFileSystem fs;
  ManualClock clock;
  StorageOptions options = test_options(fs, clock);
  {
    auto engine = open_or_fail(options);
    REQUIRE(engine->set("a", "1").ok());
    REQUIRE(engine->set("b", "2").ok());
  }
  // A snapshot that died before its rename, and a restore that died too.
  REQUIRE(write_file_atomically(fs, "/db/keep", "x").is_ok());
  {
    auto tmp = fs.open_writable("/db/snapshot-00000000000000000009.snap.tmp", WriteMode::kTruncate);
    REQUIRE(tmp->get()->append("garbage").is_ok());
    auto restore = fs.open_writable("/db/restore-00000000000000000009.tmp", WriteMode::kTruncate);
    REQUIRE(restore->get()->append("garbage").is_ok());
  }
  auto reopened = open_or_fail(options);
  CHECK(reopened->get("b")->value == "2");
  CHECK(files_starting(fs, "snapshot-").empty());
  CHECK(files_starting(fs, "restore-").empty());
  CHECK(fs.exists("/db/keep").value());
}

TEST_CASE("a damaged snapshot refuses to open, naming the file", "[storage][snapshot]") {
  FaultInjectingFileSystem fs;
  ManualClock clock;
  StorageOptions options = test_options(fs, clock);
  {
    auto engine = open_or_fail(options);
    for (int i = 0; i < 10; ++i) REQUIRE(engine->set("k" + std::to_string(i), "v").ok());
    REQUIRE(engine->snapshot().is_ok());
  }
  const std::string path = "/db/" + files_starting(fs, "snapshot-").at(0);
  SECTION("a flipped bit") {
    REQUIRE(fs.corrupt_byte(path, 30, 0x10).is_ok());
  }
  SECTION("cut short") {
    REQUIRE(fs.truncate(path, fs.file_size(path).value() - 5).is_ok());
  }
  auto opened = StorageEngine::open(options);
  CHECK(opened.status().is(StatusCode::kCorruption));
  CHECK_THAT(std::string(opened.status().message()), Catch::Contains(path));
}

TEST_CASE("a failed snapshot write puts the engine in the failed state", "[storage][snapshot]") {
  FaultInjectingFileSystem fs;
  ManualClock clock;
  StorageOptions options = test_options(fs, clock);
  auto engine = open_or_fail(options);
  REQUIRE(engine->set("a", "1").ok());
  fs.fail_next(FaultOp::kSync, "snapshot-");
  CHECK(engine->snapshot().is(StatusCode::kIOError));
  CHECK(engine->failed());
  CHECK(engine->set("a", "2").status.is(StatusCode::kFailed));
  engine.reset();
  fs.crash();
  CHECK(open_or_fail(options)->get("a")->value == "1");
}

TEST_CASE("a snapshot stream stays at its point in time while writes go on",
          "[storage][snapshot]") {
  FaultInjectingFileSystem fs;
  ManualClock clock;
  auto engine = open_or_fail(test_options(fs, clock));
  for (int i = 0; i < 300; ++i) {
    REQUIRE(engine->set("k" + std::to_string(i), std::string(50, 'a' + i % 26)).ok());
  }
  const ModelState at_open = dump_engine(*engine);
  auto source = engine->open_snapshot();
  REQUIRE(source.is_ok());
  CHECK((*source)->index() == LogIndex(300));
  // Overwrite, remove and add while the stream is only partly read.
  auto first = (*source)->next_chunk(1000);
  REQUIRE(first.is_ok());
  for (int i = 0; i < 300; i += 2) REQUIRE(engine->set("k" + std::to_string(i), "changed").ok());
  for (int i = 1; i < 300; i += 4) REQUIRE(engine->remove("k" + std::to_string(i)).ok());
  for (int i = 0; i < 50; ++i) REQUIRE(engine->set("new" + std::to_string(i), "x").ok());
  REQUIRE(engine->snapshot().is_ok());

  storage::SnapshotParser parser(storage::KvLimits{}, "test");
  REQUIRE(parser.feed(*first).is_ok());
  while (true) {
    auto chunk = (*source)->next_chunk(777);
    REQUIRE(chunk.is_ok());
    if (chunk->empty()) break;
    CHECK(chunk->size() <= 777);
    REQUIRE(parser.feed(*chunk).is_ok());
  }
  auto state = parser.finish();
  REQUIRE(state.is_ok());
  CHECK((*state)->map().size() == 300);
  CHECK((*state)->map().find("k0")->value() == std::string(50, 'a'));
  CHECK((*state)->map().find("new1") == nullptr);
  source->reset();
  engine.reset();  // a source may outlive the engine; here it is gone first
  CHECK(at_open.entries.size() == 300);
}

TEST_CASE("a snapshot stream read on another thread while writes go on", "[storage][snapshot]") {
  ManualClock clock;
  StorageOptions options;  // in memory: the point is the concurrency
  options.clock = &clock;
  options.sync_policy = SyncPolicy::kGroupCommit;
  auto engine = open_or_fail(options);
  for (int i = 0; i < 2000; ++i) REQUIRE(engine->set("k" + std::to_string(i), "before").ok());
  const ModelState expected = dump_engine(*engine);
  auto source = std::move(engine->open_snapshot()).value();
  std::atomic<bool> reading{true};
  std::thread writer([&] {
    for (int round = 0; reading.load(); ++round) {
      const std::string key = "k" + std::to_string(round % 2500);
      if (round % 3 == 0) {
        (void)engine->remove(key);
      } else {
        (void)engine->set(key, "after" + std::to_string(round));
      }
    }
  });
  const ModelState streamed = dump_snapshot(*source, nullptr, 512);
  reading.store(false);
  writer.join();
  CHECK(streamed == expected);
}

TEST_CASE("StateMachine: apply, snapshot and restore round trip", "[storage][snapshot]") {
  const std::uint64_t seed = storage_test::test_seed(77);
  CAPTURE(seed);
  Rng rng(seed);
  FaultInjectingFileSystem fs;
  ManualClock clock;
  StorageOptions options = test_options(fs, clock, "/leader");
  options.mode = StorageMode::kReplicated;
  auto leader = open_or_fail(options);
  const WallTime t0 = ms_time(5'000'000);
  for (std::uint64_t i = 1; i <= 500; ++i) {
    KvCommand command;
    const std::string key = "key" + std::to_string(rng.uniform(60));
    const std::string value(rng.uniform(200), static_cast<char>('a' + rng.uniform(26)));
    command.issued_at = t0 + std::chrono::milliseconds(i);
    command.key = key;
    command.value = value;
    command.type = rng.chance(0.2) ? KvCommandType::kRemove : KvCommandType::kSet;
    if (rng.chance(0.3)) command.expiry = t0 + std::chrono::milliseconds(rng.uniform(1000));
    REQUIRE(leader->apply(LogIndex(i), encode_kv_command(command)).is_ok());
  }
  const ModelState expected = dump_engine(*leader);
  auto source = std::move(leader->open_snapshot()).value();
  CHECK(source->index() == LogIndex(500));

  StorageOptions follower_options = test_options(fs, clock, "/follower");
  follower_options.mode = StorageMode::kReplicated;
  auto follower = open_or_fail(follower_options);
  auto sink = std::move(follower->begin_restore(LogIndex(500))).value();
  while (true) {
    auto chunk = source->next_chunk(1 + rng.uniform(3000));
    REQUIRE(chunk.is_ok());
    if (chunk->empty()) break;
    REQUIRE(sink->write_chunk(*chunk).is_ok());
  }
  CHECK(follower->last_applied_index() == LogIndex(0));  // nothing before finish()
  REQUIRE(sink->finish().is_ok());
  CHECK(follower->last_applied_index() == LogIndex(500));
  CHECK(dump_engine(*follower) == expected);
  // The restore is durable: a reopen comes back at the same index and state.
  follower.reset();
  fs.crash();
  auto reopened = open_or_fail(follower_options);
  CHECK(reopened->last_applied_index() == LogIndex(500));
  CHECK(dump_engine(*reopened) == expected);
  // And a replicated engine's own snapshot persists its applied index.
  REQUIRE(reopened->apply(LogIndex(501), "").is_ok());
  REQUIRE(reopened->snapshot().is_ok());
  reopened.reset();
  CHECK(open_or_fail(follower_options)->last_applied_index() == LogIndex(501));
}

TEST_CASE("a damaged restore stream is refused and the old state kept", "[storage][snapshot]") {
  FaultInjectingFileSystem fs;
  ManualClock clock;
  StorageOptions options = test_options(fs, clock);
  options.mode = StorageMode::kReplicated;
  auto engine = open_or_fail(options);
  KvCommand set{KvCommandType::kSet, ms_time(1), "old", "state", std::nullopt, {}, {}};
  REQUIRE(engine->apply(LogIndex(1), encode_kv_command(set)).is_ok());
  const ModelState before = dump_engine(*engine);

  std::string stream;
  {
    auto source = std::move(engine->open_snapshot()).value();
    for (auto chunk = source->next_chunk(4096); !chunk->empty(); chunk = source->next_chunk(4096)) {
      stream += *chunk;
    }
  }
  SECTION("a flipped bit") {
    stream[stream.size() / 2] ^= 0x04;
    auto sink = std::move(engine->begin_restore(LogIndex(1))).value();
    Status written = sink->write_chunk(stream);
    Status finished = written.is_ok() ? sink->finish() : written;
    CHECK(finished.is(StatusCode::kCorruption));
  }
  SECTION("cut short") {
    auto sink = std::move(engine->begin_restore(LogIndex(1))).value();
    REQUIRE(sink->write_chunk(std::string_view(stream).substr(0, stream.size() - 3)).is_ok());
    CHECK(sink->finish().is(StatusCode::kCorruption));
  }
  SECTION("the wrong index") {
    auto sink = std::move(engine->begin_restore(LogIndex(9))).value();
    REQUIRE(sink->write_chunk(stream).is_ok());
    CHECK(sink->finish().is(StatusCode::kCorruption));
  }
  SECTION("dropped before finish") {
    auto sink = std::move(engine->begin_restore(LogIndex(1))).value();
    REQUIRE(sink->write_chunk(stream).is_ok());
  }
  CHECK(dump_engine(*engine) == before);
  CHECK(files_starting(fs, "restore-").empty());
}

}  // namespace
}  // namespace nodenomad
