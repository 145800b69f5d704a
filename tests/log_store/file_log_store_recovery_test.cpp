// FileLogStore recovery and failure: torn tails, bit rot, interrupted
// compactions, missing segments, failed writes and fsyncs.
#include <fmt/format.h>

#include <catch2/catch.hpp>

#include "file_log_store_test_support.hpp"

namespace nodenomad::log_store_test {
namespace {

using Catch::Matchers::Contains;
using testing::FaultInjectingFileSystem;
using testing::FaultOp;
namespace fmt_ = file_log_store_format;

constexpr std::uint64_t kSegmentBytes = 512;

// Three or more synced segments of entries 1..`count` (term 1, 40-byte data).
void write_log(FaultInjectingFileSystem& fs, std::uint64_t count) {
  auto store = open_store(fs, small_segments(kSegmentBytes));
  REQUIRE(store->set_hard_state({Term(1), NodeId("node-1"), LogIndex(0)}).is_ok());
  for (std::uint64_t i = 1; i <= count; ++i) {
    REQUIRE(
        store->append(std::vector<Entry>{make_entry(i, 1, std::string(40, 'a' + i % 26))}).is_ok());
  }
  REQUIRE(sync_ok(*store) == LogIndex(count));
  REQUIRE(segment_paths(fs).size() >= 3);
}

}  // namespace

TEST_CASE("FileLogStore: a torn tail is cut off on open and logged", "[file_log_store][recovery]") {
  FaultInjectingFileSystem fs;
  write_log(fs, 30);
  const std::string newest = segment_paths(fs).back();
  const std::uint64_t synced_bytes = fs.file_size(newest).value();
  {
    // Half a record, as a write cut short by a power loss leaves it.
    std::string framed;
    record::encode(framed, "a record that never finished");
    auto file = fs.open_writable(newest, WriteMode::kAppend);
    REQUIRE(file.is_ok());
    REQUIRE((*file)->append(framed.substr(0, framed.size() / 2)).is_ok());
    REQUIRE((*file)->sync().is_ok());
  }
  LogCapture capture;
  auto store = open_store(fs, small_segments(kSegmentBytes));
  CHECK(store->last_index() == LogIndex(30));
  CHECK(fs.file_size(newest).value() == synced_bytes);
  CHECK(capture.contains(newest));
  CHECK(capture.contains(fmt::format("torn tail of {} bytes at offset {}",
                                     record::framed_size(28) / 2, synced_bytes)));
  // New records go right after the cut.
  REQUIRE(store->append(make_entries(31, 31, 1)).is_ok());
  sync_ok(*store);
  store.reset();
  fs.crash();
  store = open_store(fs, small_segments(kSegmentBytes));
  CHECK(store->last_index() == LogIndex(31));
}

TEST_CASE("FileLogStore: a flipped bit before the tail is refused, naming file and offset",
          "[file_log_store][recovery]") {
  FaultInjectingFileSystem fs;
  write_log(fs, 30);
  const std::vector<std::string> paths = segment_paths(fs);
  std::uint64_t refusals = 0;
  for (std::size_t file = 0; file < paths.size(); ++file) {
    const std::vector<RecordSpan> spans = record_spans(fs, paths[file]);
    // The newest segment's last record is its tail: damage there reads as a
    // torn write (next test case).
    const std::size_t checked = file + 1 == paths.size() ? spans.size() - 1 : spans.size();
    for (std::size_t r = 0; r < checked; ++r) {
      for (std::uint64_t offset = spans[r].offset; offset < spans[r].end; ++offset) {
        const auto mask = static_cast<std::uint8_t>(1u << (offset % 8));
        REQUIRE(fs.corrupt_byte(paths[file], offset, mask).is_ok());
        auto opened = FileLogStore::open(fs, kDir, small_segments(kSegmentBytes));
        INFO(paths[file] << " byte " << offset << ": " << opened.status().to_string());
        REQUIRE(opened.status().is(StatusCode::kCorruption));
        CHECK_THAT(std::string(opened.status().message()),
                   Contains(paths[file]) && Contains(fmt::format("offset {}", spans[r].offset)));
        REQUIRE(fs.corrupt_byte(paths[file], offset, mask).is_ok());  // heal
        ++refusals;
      }
    }
  }
  CHECK(refusals > 1000);
  // Nothing was modified by the refusals: the healed log opens whole.
  auto store = open_store(fs, small_segments(kSegmentBytes));
  CHECK(store->last_index() == LogIndex(30));
}

TEST_CASE("FileLogStore: a flipped bit in the newest record reads as a torn tail",
          "[file_log_store][recovery]") {
  FaultInjectingFileSystem fs;
  write_log(fs, 30);
  const std::string newest = segment_paths(fs).back();
  const RecordSpan last = record_spans(fs, newest).back();
  REQUIRE(last.type == fmt_::RecordType::kEntry);
  // Bit rot in the payload of the very last record cannot be told apart from
  // a write torn by a crash; the record is dropped like one, and logged.
  REQUIRE(fs.corrupt_byte(newest, last.end - 1, 0x10).is_ok());
  LogCapture capture;
  auto store = open_store(fs, small_segments(kSegmentBytes));
  CHECK(store->last_index() == LogIndex(29));
  CHECK(capture.contains(newest));
}

TEST_CASE("FileLogStore: segments left below a gap by an interrupted compaction are deleted",
          "[file_log_store][recovery]") {
  FaultInjectingFileSystem fs;
  write_log(fs, 40);
  const std::string first_path = segment_paths(fs).front();
  const std::string first_bytes = read_whole_file(fs, first_path).value();
  {
    auto store = open_store(fs, small_segments(kSegmentBytes));
    REQUIRE(store->compact(make_snapshot(35, 1)).is_ok());
    sync_ok(*store);
    REQUIRE(store->stats().oldest_segment > 2);
  }
  // On a real disk the directory may have kept only some removals: bring the
  // first segment back, leaving a gap after it.
  REQUIRE(write_file_atomically(fs, first_path, first_bytes).is_ok());
  LogCapture capture;
  auto store = open_store(fs, small_segments(kSegmentBytes));
  CHECK(capture.contains("left over from an interrupted compaction"));
  CHECK(store->first_index() == LogIndex(36));
  CHECK(store->entries(LogIndex(36), LogIndex(41), UINT64_MAX).value().size() == 5);
  CHECK_FALSE(fs.exists(first_path).value());
}

TEST_CASE("FileLogStore: a segment missing from the middle of the log is refused",
          "[file_log_store][recovery]") {
  FaultInjectingFileSystem fs;
  write_log(fs, 40);
  const std::vector<std::string> paths = segment_paths(fs);
  SECTION("a middle segment") { REQUIRE(fs.remove(paths[1]).is_ok()); }
  SECTION("the first segment") { REQUIRE(fs.remove(paths[0]).is_ok()); }
  LogCapture capture;
  auto opened = FileLogStore::open(fs, kDir, small_segments(kSegmentBytes));
  CHECK(opened.status().is(StatusCode::kCorruption));
  CHECK_THAT(std::string(opened.status().message()),
             Contains(kDir) && Contains("from index 1 on") && Contains("segments are gone"));
}

TEST_CASE("FileLogStore: an empty newest segment left by a crash is written again",
          "[file_log_store][recovery]") {
  FaultInjectingFileSystem fs;
  write_log(fs, 20);
  const std::size_t count = segment_paths(fs).size();
  const std::string next = join_path(kDir, fmt_::segment_file_name(count + 1));
  SECTION("an empty file") { REQUIRE(write_file_atomically(fs, next, "").is_ok()); }
  SECTION("a torn start record") {
    std::string framed;
    record::encode(framed, std::string(100, 's'));
    REQUIRE(write_file_atomically(fs, next, framed.substr(0, 30)).is_ok());
  }
  LogCapture capture;
  auto store = open_store(fs, small_segments(kSegmentBytes));
  CHECK(store->last_index() == LogIndex(20));
  CHECK(store->stats().active_segment == count + 1);
  REQUIRE(store->append(make_entries(21, 22, 2)).is_ok());
  sync_ok(*store);
  CHECK(record_spans(fs, next).front().type == fmt_::RecordType::kSegmentStart);
  store.reset();
  fs.crash();
  store = open_store(fs, small_segments(kSegmentBytes));
  CHECK(store->last_index() == LogIndex(22));
  CHECK(store->hard_state() == HardState{Term(1), NodeId("node-1"), LogIndex(0)});
}

TEST_CASE("FileLogStore: a failed fsync or write fails the store for good",
          "[file_log_store][recovery]") {
  FaultInjectingFileSystem fs;
  auto store = open_store(fs);
  REQUIRE(store->append(make_entries(1, 3, 1)).is_ok());
  sync_ok(*store);
  REQUIRE(store->append(make_entries(4, 5, 1)).is_ok());
  LogCapture capture;
  SECTION("fsync") { fs.fail_next(FaultOp::kSync, ".seg"); }
  SECTION("write") { fs.fail_next(FaultOp::kWrite, ".seg"); }
  auto failed = store->sync();
  CHECK(failed.status().is(StatusCode::kIOError));
  CHECK(capture.contains("stopping after an I/O error"));
  CHECK(store->stats().failed);
  const std::uint64_t syncs = fs.sync_count();
  // Never retried: every later mutation and sync answers kFailed without I/O.
  const std::vector<Status> later = {store->append(make_entries(6, 6, 1)),
                                     store->truncate_suffix(LogIndex(2)),
                                     store->set_hard_state({Term(2), NodeId(), LogIndex(1)}),
                                     store->compact(make_snapshot(1, 1)),
                                     store->install_snapshot(make_snapshot(9, 2)),
                                     store->sync().status()};
  for (const Status& st : later) {
    CHECK(st.is(StatusCode::kFailed));
    CHECK_THAT(std::string(st.message()), Contains("injected"));
  }
  CHECK(fs.sync_count() == syncs);
  // Reads still answer what the store holds.
  CHECK(store->last_index() == LogIndex(5));
  CHECK(store->entries(LogIndex(1), LogIndex(6), UINT64_MAX).value() == make_entries(1, 5, 1));
  store.reset();
  fs.crash();
  store = open_store(fs);
  CHECK(store->last_index() == LogIndex(3));
}

TEST_CASE("FileLogStore: a failed write-through fails append", "[file_log_store][recovery]") {
  FaultInjectingFileSystem fs;
  FileLogStoreOptions options;
  options.max_unwritten_bytes = 100;
  auto store = open_store(fs, options);
  fs.fail_next(FaultOp::kWrite, ".seg");
  LogCapture capture;
  const Status st = store->append(make_entries(1, 5, 1));
  CHECK(st.is(StatusCode::kIOError));
  CHECK(store->append(make_entries(6, 6, 1)).is(StatusCode::kFailed));
  CHECK(store->sync().status().is(StatusCode::kFailed));
}

}  // namespace nodenomad::log_store_test
