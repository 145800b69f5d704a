// The standalone engine's WAL: replay, torn tails, corruption, and failed I/O.
#include <mutex>

#include <catch2/catch.hpp>

#include "common/record_format.hpp"
#include "common/record_io.hpp"
#include "nodenomad/logging.hpp"
#include "storage/storage_test_util.hpp"

namespace nodenomad {
namespace {

using storage_test::dump_engine;
using storage_test::ModelState;
using storage_test::open_or_fail;
using storage_test::test_options;
using testing::FaultInjectingFileSystem;
using testing::FaultOp;

// Collects log lines for the duration of a test.
class LogCapture {
 public:
  LogCapture() {
    set_log_sink([this](LogLevel, std::string_view component, std::string_view message) {
      std::lock_guard lock(mu_);
      lines_.push_back(std::string(component) + ": " + std::string(message));
    });
  }
  ~LogCapture() { set_log_sink({}); }
  bool contains(std::string_view text) const {
    std::lock_guard lock(mu_);
    for (const auto& line : lines_) {
      if (line.find(text) != std::string::npos) return true;
    }
    return false;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

std::vector<std::string> wal_segments(FileSystem& fs, const std::string& dir = "/db") {
  std::vector<std::string> out;
  const std::vector<std::string> names = fs.list(dir).value();
  for (const std::string& name : names) {
    if (name.starts_with("wal-")) out.push_back(join_path(dir, name));
  }
  return out;
}

// A few writes of every kind; returns the state they leave.
ModelState write_sample(StorageEngine& engine, ManualClock& clock) {
  REQUIRE(engine.set("a", "1").ok());
  REQUIRE(engine.set("b", std::string("\0two", 4)).ok());
  REQUIRE(engine.set("a", "3").ok());
  REQUIRE(engine.compare_and_set("c", "new", 0).ok());
  REQUIRE(engine.compare_and_set("c", "lost", 9).status.is(StatusCode::kVersionMismatch));
  REQUIRE(engine.remove("b").deleted);
  REQUIRE(engine.set("t", "ttl", {clock.wall_now() + std::chrono::seconds(1), std::nullopt}).ok());
  REQUIRE(engine.set("u", "ttl", {clock.wall_now() + std::chrono::hours(1), std::nullopt}).ok());
  clock.advance(std::chrono::seconds(2));
  REQUIRE(engine.expire_due(clock.wall_now(), 10).expired_keys.size() == 1);
  return dump_engine(engine);
}

TEST_CASE("the WAL replays every write after a reopen", "[storage][wal]") {
  for (SyncPolicy policy : {SyncPolicy::kEveryWrite, SyncPolicy::kGroupCommit, SyncPolicy::kNone}) {
    CAPTURE(static_cast<int>(policy));
    FaultInjectingFileSystem fs;
    ManualClock clock;
    StorageOptions options = test_options(fs, clock);
    options.sync_policy = policy;
    ModelState expected;
    LogIndex index;
    {
      auto engine = open_or_fail(options);
      expected = write_sample(*engine, clock);
      index = engine->last_applied_index();
      CHECK(index == LogIndex(9));
    }  // a clean close: even kNone's buffer is written and synced
    fs.crash();
    auto reopened = open_or_fail(options);
    LogIndex replayed;
    CHECK(dump_engine(*reopened, &replayed) == expected);
    CHECK(replayed == index);
    CHECK(reopened->get("a")->version == 2);
    // The log goes on where it stopped.
    REQUIRE(reopened->set("a", "4").ok());
    CHECK(reopened->last_applied_index() == index + 1);
  }
}

TEST_CASE("every acknowledged write survives a crash under kEveryWrite and kGroupCommit",
          "[storage][wal]") {
  for (SyncPolicy policy : {SyncPolicy::kEveryWrite, SyncPolicy::kGroupCommit}) {
    FaultInjectingFileSystem fs;
    ManualClock clock;
    StorageOptions options = test_options(fs, clock);
    options.sync_policy = policy;
    auto engine = open_or_fail(options);
    const ModelState expected = write_sample(*engine, clock);
    fs.crash({.tear_unsynced_tail = true});  // no clean close
    engine.reset();
    auto reopened = open_or_fail(options);
    CHECK(dump_engine(*reopened) == expected);
  }
}

TEST_CASE("a torn WAL tail is truncated and logged", "[storage][wal]") {
  FaultInjectingFileSystem fs;
  ManualClock clock;
  StorageOptions options = test_options(fs, clock);
  ModelState expected;
  {
    auto engine = open_or_fail(options);
    expected = write_sample(*engine, clock);
  }
  const auto segments = wal_segments(fs);
  REQUIRE(segments.size() == 1);
  const std::uint64_t good_size = fs.file_size(segments[0]).value();
  {
    // Half of a record: what a crash in the middle of an append leaves.
    std::string framed;
    record::encode(framed, std::string(100, 'x'));
    auto file = fs.open_writable(segments[0], WriteMode::kAppend).value();
    REQUIRE(file->append(framed.substr(0, 40)).is_ok());
    REQUIRE(file->sync().is_ok());
  }
  LogCapture logs;
  auto reopened = open_or_fail(options);
  CHECK(dump_engine(*reopened) == expected);
  CHECK(fs.file_size(segments[0]).value() == good_size);
  CHECK(logs.contains("torn tail of 40 bytes"));
  CHECK(logs.contains(segments[0]));
}

// The offsets of every record of `path`.
std::vector<std::uint64_t> record_offsets(FileSystem& fs, const std::string& path) {
  std::vector<std::uint64_t> offsets;
  auto scanned = record::scan(fs, path, 0, [&](std::string_view, std::uint64_t offset) {
    offsets.push_back(offset);
    return Status::ok();
  });
  REQUIRE(scanned.is_ok());
  return offsets;
}

TEST_CASE("a flipped bit before the tail refuses the open, naming file and offset",
          "[storage][wal]") {
  // The same short log is rebuilt for every corruption, so each open sees
  // exactly one flipped bit.
  auto build = [](FaultInjectingFileSystem& fs, ManualClock& clock) {
    auto engine = open_or_fail(test_options(fs, clock));
    for (int i = 0; i < 6; ++i) REQUIRE(engine->set("key" + std::to_string(i), "value").ok());
    REQUIRE(engine->remove("key0").ok());
  };
  std::vector<std::uint64_t> offsets;
  std::string segment;
  {
    FaultInjectingFileSystem fs;
    ManualClock clock;
    build(fs, clock);
    segment = wal_segments(fs).at(0);
    offsets = record_offsets(fs, segment);
    REQUIRE(offsets.size() == 8);  // the segment header and seven commands
  }
  // Every record but the last (a damaged payload in the last record is
  // indistinguishable from a torn write, and is truncated as one): a bit of
  // its length, of its header checksum, of its payload checksum and of its
  // payload.
  for (std::size_t r = 0; r + 1 < offsets.size(); ++r) {
    for (std::uint64_t delta : {std::uint64_t{0}, std::uint64_t{2}, std::uint64_t{4},
                                std::uint64_t{8}, record::kHeaderBytes}) {
      FaultInjectingFileSystem fs;
      ManualClock clock;
      build(fs, clock);
      const std::uint64_t offset = offsets[r] + delta;
      CAPTURE(r, offset);
      REQUIRE(fs.corrupt_byte(segment, offset, 0x01).is_ok());
      auto opened = StorageEngine::open(test_options(fs, clock));
      REQUIRE(opened.status().is(StatusCode::kCorruption));
      const std::string message(opened.status().message());
      CAPTURE(message);
      CHECK_THAT(message, Catch::Contains(segment) &&
                              Catch::Contains("offset " + std::to_string(offsets[r])));
      // Nothing was modified: undoing the flip opens the full log.
      REQUIRE(fs.corrupt_byte(segment, offset, 0x01).is_ok());
      auto healed = open_or_fail(test_options(fs, clock));
      CHECK(healed->last_applied_index() == LogIndex(7));
    }
  }
}

TEST_CASE("a failed fsync puts the engine in a failed state for good", "[storage][wal]") {
  FaultInjectingFileSystem fs;
  ManualClock clock;
  StorageOptions options = test_options(fs, clock);
  auto engine = open_or_fail(options);
  REQUIRE(engine->set("a", "1").ok());
  fs.fail_next(FaultOp::kSync, "wal-");
  LogCapture logs;
  WriteResult lost = engine->set("a", "2");
  CHECK(lost.status.is(StatusCode::kFailed));
  CHECK_THAT(std::string(lost.status.message()), Catch::Contains("may or may not be durable"));
  CHECK(engine->failed());
  CHECK(engine->stats().failed);
  CHECK(logs.contains("WAL write failed"));
  // Never retried: every later write is refused, even though the disk would
  // accept it now.
  WriteResult refused = engine->set("b", "1");
  CHECK(refused.status.is(StatusCode::kFailed));
  CHECK_THAT(std::string(refused.status.message()), Catch::Contains("not applied"));
  CHECK(engine->remove("a").status.is(StatusCode::kFailed));
  CHECK(engine->snapshot().is(StatusCode::kFailed));
  // Reads serve the state as it was; the failed write was never applied.
  CHECK(engine->get("a")->value == "1");
  engine.reset();
  fs.crash();
  auto reopened = open_or_fail(options);
  CHECK(reopened->get("a")->value == "1");
  CHECK(reopened->set("b", "1").ok());
}

TEST_CASE("a failed WAL write puts the engine in a failed state", "[storage][wal]") {
  FaultInjectingFileSystem fs;
  ManualClock clock;
  StorageOptions options = test_options(fs, clock);
  options.sync_policy = SyncPolicy::kGroupCommit;
  auto engine = open_or_fail(options);
  REQUIRE(engine->set("a", "1").ok());
  fs.fail_next(FaultOp::kWrite, "wal-");
  CHECK(engine->set("a", "2").status.is(StatusCode::kFailed));
  std::vector<WriteResult> answers;
  engine->submit(WriteRequest{KvCommandType::kSet, "c", "v", {}},
                 [&](WriteResult result) { answers.push_back(std::move(result)); });
  REQUIRE(answers.size() == 1);
  CHECK(answers[0].status.is(StatusCode::kFailed));
  CHECK(engine->get("a")->value == "1");
}

TEST_CASE("a WAL that starts after its missing snapshot refuses to open", "[storage][wal]") {
  FaultInjectingFileSystem fs;
  ManualClock clock;
  StorageOptions options = test_options(fs, clock);
  {
    auto engine = open_or_fail(options);
    REQUIRE(engine->set("a", "1").ok());
    REQUIRE(engine->snapshot().is_ok());
    REQUIRE(engine->set("b", "2").ok());
  }
  const std::vector<std::string> names = fs.list("/db").value();
  for (const std::string& name : names) {
    if (name.starts_with("snapshot-")) REQUIRE(fs.remove(join_path("/db", name)).is_ok());
  }
  auto opened = StorageEngine::open(options);
  CHECK(opened.status().is(StatusCode::kCorruption));
  CHECK_THAT(std::string(opened.status().message()), Catch::Contains("missing"));
}

TEST_CASE("a separate WAL directory holds the segments", "[storage][wal]") {
  FaultInjectingFileSystem fs;
  ManualClock clock;
  StorageOptions options = test_options(fs, clock, "/data");
  options.wal_dir = "/wal";
  {
    auto engine = open_or_fail(options);
    REQUIRE(engine->set("a", "1").ok());
  }
  CHECK(wal_segments(fs, "/wal").size() == 1);
  CHECK(wal_segments(fs, "/data").empty());
  auto reopened = open_or_fail(options);
  CHECK(reopened->get("a")->value == "1");
}

}  // namespace
}  // namespace nodenomad
