// FileLogStore beyond the shared contract: persistence, segments, compaction,
// options, the real disk.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>

#include "file_log_store_test_support.hpp"

namespace nodenomad::log_store_test {
namespace {

using Catch::Matchers::Contains;
using testing::FaultInjectingFileSystem;
namespace fmt_ = file_log_store_format;

// A workload touching every record type, leaving a log with a snapshot, a
// hard state, entries over several segments and an overwritten suffix.
ModelLog fill(LogStore& store) {
  ModelLog model;
  auto append = [&](std::vector<Entry> batch) {
    REQUIRE(store.append(batch).is_ok());
    for (const Entry& e : batch) model.append(e);
  };
  append(make_entries(1, 20, 1));
  append(make_entries(15, 30, 2));
  model.hard_state = HardState{Term(2), NodeId("node-3"), LogIndex(12)};
  REQUIRE(store.set_hard_state(model.hard_state).is_ok());
  SnapshotMeta snapshot = make_snapshot(10, 1);
  snapshot.conf_state.voters_outgoing = {NodeId("node-9")};
  REQUIRE(store.compact(snapshot).is_ok());
  model.compact(snapshot);
  REQUIRE(store.truncate_suffix(LogIndex(28)).is_ok());
  model.truncate(LogIndex(28));
  append(make_entries(28, 29, 3));
  return model;
}

// Indexes of the entry records in a segment file, in file order.
std::vector<std::uint64_t> entry_indexes(FileSystem& fs, const std::string& path) {
  std::vector<std::uint64_t> out;
  auto scanned = record::scan(fs, path, 0, [&](std::string_view payload, std::uint64_t) {
    auto decoded = fmt_::decode(payload);
    REQUIRE(decoded.is_ok());
    if (const auto* e = std::get_if<fmt_::EntryView>(&decoded.value()))
      out.push_back(e->index.value());
    return Status::ok();
  });
  REQUIRE(scanned.is_ok());
  return out;
}

}  // namespace

TEST_CASE("FileLogStore: reopening shows the same state", "[file_log_store]") {
  FaultInjectingFileSystem fs;
  ModelLog model;
  {
    auto store = open_store(fs, small_segments());
    model = fill(*store);
    CHECK(sync_ok(*store) == LogIndex(29));
  }
  SECTION("after a clean close") {
    auto store = open_store(fs, small_segments());
    CHECK(observe(*store) == model);
    CHECK(sync_ok(*store) == LogIndex(29));
  }
  SECTION("after a power loss") {
    fs.crash(testing::CrashOptions{.tear_unsynced_tail = true});
    auto store = open_store(fs, small_segments());
    CHECK(observe(*store) == model);
    // The reopened store goes on appending where the old one stopped.
    REQUIRE(store->append(make_entries(30, 31, 3)).is_ok());
    CHECK(sync_ok(*store) == LogIndex(31));
    store.reset();
    fs.crash();
    store = open_store(fs, small_segments());
    for (const Entry& e : make_entries(30, 31, 3)) model.append(e);
    CHECK(observe(*store) == model);
  }
}

TEST_CASE("FileLogStore: unsynced changes are lost by a power loss, synced ones are not",
          "[file_log_store]") {
  FaultInjectingFileSystem fs;
  {
    auto store = open_store(fs);
    REQUIRE(store->append(make_entries(1, 3, 1)).is_ok());
    REQUIRE(store->set_hard_state({Term(1), NodeId("node-1"), LogIndex(2)}).is_ok());
    CHECK(sync_ok(*store) == LogIndex(3));
    REQUIRE(store->append(make_entries(4, 6, 1)).is_ok());
    REQUIRE(store->set_hard_state({Term(2), NodeId(), LogIndex(3)}).is_ok());
  }
  fs.crash();
  auto store = open_store(fs);
  CHECK(store->last_index() == LogIndex(3));
  CHECK(store->hard_state() == HardState{Term(1), NodeId("node-1"), LogIndex(2)});
}

TEST_CASE("FileLogStore: what a store reopened after a process exit calls durable is durable",
          "[file_log_store]") {
  FaultInjectingFileSystem fs;
  {
    FileLogStoreOptions options;
    options.max_unwritten_bytes = 1;  // written to the OS at once, never synced
    auto store = open_store(fs, options);
    REQUIRE(store->append(make_entries(1, 5, 1)).is_ok());
  }
  // The process ended without sync(); the OS still has the bytes.
  auto store = open_store(fs);
  CHECK(store->last_index() == LogIndex(5));
  CHECK(sync_ok(*store) == LogIndex(5));
  store.reset();
  fs.crash();
  store = open_store(fs);
  CHECK(store->last_index() == LogIndex(5));
}

TEST_CASE("FileLogStore: segments rotate at segment_bytes, each restating the state",
          "[file_log_store]") {
  FaultInjectingFileSystem fs;
  constexpr std::uint64_t kSegmentBytes = 1024;
  auto store = open_store(fs, small_segments(kSegmentBytes));
  REQUIRE(store->set_hard_state({Term(1), NodeId("node-2"), LogIndex(0)}).is_ok());
  for (std::uint64_t i = 1; i <= 100; ++i) {
    REQUIRE(store->append(std::vector<Entry>{make_entry(i, 1, std::string(60, 'x'))}).is_ok());
  }
  sync_ok(*store);
  const std::vector<std::string> paths = segment_paths(fs);
  CHECK(paths.size() >= 8);
  CHECK(store->stats().active_segment == paths.size());
  for (std::size_t i = 0; i < paths.size(); ++i) {
    INFO(paths[i]);
    CHECK(paths[i] == join_path(kDir, fmt_::segment_file_name(i + 1)));
    const std::vector<RecordSpan> spans = record_spans(fs, paths[i]);
    REQUIRE_FALSE(spans.empty());
    CHECK(spans.front().offset == 0);
    CHECK(spans.front().type == fmt_::RecordType::kSegmentStart);
    // Rotation happens before the record that would start past the limit.
    CHECK(spans.back().offset < kSegmentBytes);
    if (i + 1 < paths.size()) CHECK(spans.back().end >= kSegmentBytes);
  }
  CHECK(read_whole_file(fs, paths[3]).value().find("node-2") != std::string::npos);
}

TEST_CASE("FileLogStore: compaction deletes covered segments once durable", "[file_log_store]") {
  FaultInjectingFileSystem fs;
  auto store = open_store(fs, small_segments(1024));
  for (std::uint64_t i = 1; i <= 100; ++i) {
    REQUIRE(store->append(std::vector<Entry>{make_entry(i, 1, std::string(60, 'x'))}).is_ok());
  }
  sync_ok(*store);
  const std::size_t before = segment_paths(fs).size();
  REQUIRE(store->compact(make_snapshot(50, 1)).is_ok());
  CHECK(segment_paths(fs).size() == before);  // not before the compaction record is durable
  sync_ok(*store);
  const std::vector<std::string> after = segment_paths(fs);
  CHECK(after.size() < before);
  const FileLogStoreStats stats = store->stats();
  CHECK(stats.segments_deleted == stats.oldest_segment - 1);  // numbered from 1, deleted in order
  CHECK(after.size() == stats.active_segment - stats.oldest_segment + 1);
  CHECK(join_path(kDir, fmt_::segment_file_name(store->stats().oldest_segment)) == after.front());
  // The oldest segment kept holds entry 51, the first the snapshot does not
  // cover; every segment before it held covered entries only.
  const std::vector<std::uint64_t> kept = entry_indexes(fs, after.front());
  REQUIRE_FALSE(kept.empty());
  CHECK(kept.front() <= 51);
  CHECK(kept.back() >= 51);
  CHECK(store->entries(LogIndex(51), LogIndex(101), UINT64_MAX).value().size() == 50);

  SECTION("the deletion survives a power loss") {
    store.reset();
    fs.crash();
    CHECK(segment_paths(fs) == after);
    store = open_store(fs, small_segments(1024));
    CHECK(store->first_index() == LogIndex(51));
    CHECK(store->last_index() == LogIndex(100));
    CHECK(store->entries(LogIndex(51), LogIndex(101), UINT64_MAX).value().size() == 50);
  }
  SECTION("install_snapshot leaves only the segment being written") {
    REQUIRE(store->install_snapshot(make_snapshot(500, 3)).is_ok());
    sync_ok(*store);
    CHECK(segment_paths(fs).size() == 1);
    store.reset();
    fs.crash();
    store = open_store(fs, small_segments(1024));
    CHECK(store->snapshot_meta() == make_snapshot(500, 3));
    CHECK(store->last_index() == LogIndex(500));
  }
}

TEST_CASE("FileLogStore: an unsynced compaction deletes nothing", "[file_log_store]") {
  FaultInjectingFileSystem fs;
  auto store = open_store(fs, small_segments(1024));
  for (std::uint64_t i = 1; i <= 60; ++i) {
    REQUIRE(store->append(std::vector<Entry>{make_entry(i, 1, std::string(60, 'y'))}).is_ok());
  }
  sync_ok(*store);
  const std::vector<std::string> before = segment_paths(fs);
  REQUIRE(store->compact(make_snapshot(55, 1)).is_ok());
  store.reset();
  fs.crash();
  CHECK(segment_paths(fs) == before);
  store = open_store(fs, small_segments(1024));
  CHECK(store->first_index() == LogIndex(1));
  CHECK(store->entries(LogIndex(1), LogIndex(61), UINT64_MAX).value().size() == 60);
}

TEST_CASE("FileLogStore: append writes through past max_unwritten_bytes", "[file_log_store]") {
  FaultInjectingFileSystem fs;
  FileLogStoreOptions options;
  options.max_unwritten_bytes = 4096;
  auto store = open_store(fs, options);
  for (std::uint64_t i = 1; i <= 200; ++i) {
    REQUIRE(store->append(std::vector<Entry>{make_entry(i, 1, std::string(100, 'w'))}).is_ok());
    CHECK(store->stats().unwritten_bytes <= options.max_unwritten_bytes);
  }
  const FileLogStoreStats stats = store->stats();
  CHECK(stats.bytes_written > 200 * 100 - options.max_unwritten_bytes);
  CHECK(stats.fsyncs == 0);  // written, not synced: durability is still sync()'s job
  CHECK(store->entries(LogIndex(1), LogIndex(201), UINT64_MAX).value().size() == 200);
  store.reset();
  fs.crash();
  store = open_store(fs, options);
  CHECK(store->last_index() == LogIndex(0));
}

TEST_CASE("FileLogStore: entries read back from a segment share its read buffer",
          "[file_log_store]") {
  FaultInjectingFileSystem fs;
  auto store = open_store(fs);
  std::vector<Entry> batch;
  for (std::uint64_t i = 1; i <= 50; ++i) {
    batch.push_back(make_entry(i, 1, std::string(1024, static_cast<char>('a' + i % 26))));
  }
  REQUIRE(store->append(batch).is_ok());
  sync_ok(*store);
  store.reset();
  store = open_store(fs);  // nothing queued: every read comes from the file

  std::vector<Entry> read = store->entries(LogIndex(1), LogIndex(51), UINT64_MAX).value();
  REQUIRE(read == batch);
  for (const Entry& e : read) CHECK(e.data.shares_owner());
  // One buffer for the run: each entry's bytes follow the previous entry's
  // record (its data plus the record's framing).
  for (std::size_t i = 1; i < read.size(); ++i) {
    const std::ptrdiff_t gap = read[i].data.data() - read[i - 1].data.data();
    CHECK(gap > 1024);
    CHECK(gap < 1024 + 64);
  }
  // A slice outlives the store and the rest of its run.
  const SharedBytes kept = read[7].data;
  read.clear();
  store.reset();
  CHECK(kept == std::string(1024, static_cast<char>('a' + 8 % 26)));
}

TEST_CASE("FileLogStore: open refuses bad options", "[file_log_store]") {
  FaultInjectingFileSystem fs;
  FileLogStoreOptions options;
  options.segment_bytes = 10;
  auto opened = FileLogStore::open(fs, kDir, options);
  CHECK(opened.status().is(StatusCode::kInvalidArgument));
  CHECK_THAT(std::string(opened.status().message()), Contains("segment_bytes is 10"));
  options.segment_bytes = FileLogStoreOptions::kMaxSegmentBytes + 1;
  CHECK(FileLogStore::open(fs, kDir, options).status().is(StatusCode::kInvalidArgument));
  options = {};
  options.max_unwritten_bytes = 0;
  CHECK(FileLogStore::open(fs, kDir, options).status().is(StatusCode::kInvalidArgument));
}

TEST_CASE("FileLogStore: open refuses a segment of another format version", "[file_log_store]") {
  FaultInjectingFileSystem fs;
  fmt_::SegmentStart start;
  start.seq = 1;
  start.version = 2;
  std::string payload;
  fmt_::encode_segment_start(payload, start);
  std::string framed;
  record::encode(framed, payload);
  REQUIRE(fs.create_dirs(kDir).is_ok());
  REQUIRE(write_file_atomically(fs, join_path(kDir, fmt_::segment_file_name(1)), framed).is_ok());
  auto opened = FileLogStore::open(fs, kDir);
  CHECK(opened.status().is(StatusCode::kNotSupported));
  CHECK_THAT(std::string(opened.status().message()),
             Contains("log-00000000000000000001.seg") && Contains("version 2"));
}

TEST_CASE("FileLogStore: an entry over the record size limit is refused", "[file_log_store]") {
  FaultInjectingFileSystem fs;
  auto store = open_store(fs);
  std::vector<Entry> batch = make_entries(1, 1, 1);
  batch.push_back(make_entry(2, 1, std::string(fmt_::kMaxEntryDataBytes + 1, 'b')));
  const Status st = store->append(batch);
  CHECK(st.is(StatusCode::kInvalidArgument));
  CHECK_THAT(std::string(st.message()), Contains("entry 2") && Contains("limit"));
  CHECK(store->last_index() == LogIndex(0));  // all or nothing
}

TEST_CASE("FileLogStore: works on the real disk", "[file_log_store][posix]") {
  char pattern[] = "/tmp/nodenomad-log-store-test-XXXXXX";
  REQUIRE(::mkdtemp(pattern) != nullptr);
  const std::string root = pattern;
  PosixFileSystem& fs = PosixFileSystem::instance();
  const std::string dir = join_path(root, "group-1");
  ModelLog model;
  {
    auto store = open_store(fs, small_segments(2048), dir);
    model = fill(*store);
    sync_ok(*store);
    REQUIRE(store->compact(make_snapshot(25, 2)).is_ok());
    model.compact(make_snapshot(25, 2));
    sync_ok(*store);
  }
  {
    auto store = open_store(fs, small_segments(2048), dir);
    CHECK(observe(*store) == model);
  }
  CHECK(fs.remove_all(root).is_ok());
}

}  // namespace nodenomad::log_store_test
