// FileLogStore::release_cache: after a sync, the writer asks the OS to drop
// the page cache of the entries released (WritableFile::drop_synced), up to
// the end of the newest released entry's record; a segment it leaves, all
// of it. Nothing is dropped without a hint.
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "file_log_store_test_support.hpp"

namespace nodenomad::log_store_test {
namespace {

using testing::FaultInjectingFileSystem;
namespace fmt_ = file_log_store_format;

// Notes every drop_synced() of the files it opens for writing. The store's
// writer runs on the thread that calls sync(): this test's.
class DropRecordingFileSystem final : public FileSystemWrapper {
 public:
  struct Drop {
    std::string path;
    std::uint64_t before = 0;
  };
  explicit DropRecordingFileSystem(FileSystem& inner) : FileSystemWrapper(inner) {}

  Result<std::unique_ptr<WritableFile>> open_writable(const std::string& path,
                                                      WriteMode mode) override {
    NN_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file, inner().open_writable(path, mode));
    return std::unique_ptr<WritableFile>(std::make_unique<File>(std::move(file), drops));
  }

  std::vector<Drop> drops;

 private:
  class File final : public WritableFileWrapper {
   public:
    File(std::unique_ptr<WritableFile> inner, std::vector<Drop>& drops)
        : WritableFileWrapper(std::move(inner)), drops_(drops) {}
    void drop_synced(std::uint64_t before = kAllSynced) override {
      drops_.push_back(Drop{path(), before});
      WritableFileWrapper::drop_synced(before);
    }

   private:
    std::vector<Drop>& drops_;
  };
};

// Where each entry's record ends, by entry, over the segments in order.
std::vector<std::pair<std::string, std::uint64_t>> entry_ends(FileSystem& fs) {
  std::vector<std::pair<std::string, std::uint64_t>> ends;
  for (const std::string& path : segment_paths(fs)) {
    for (const RecordSpan& span : record_spans(fs, path)) {
      if (span.type == fmt_::RecordType::kEntry) ends.emplace_back(path, span.end);
    }
  }
  return ends;
}

}  // namespace

TEST_CASE("FileLogStore: released entries leave the page cache at the next sync",
          "[file_log_store]") {
  FaultInjectingFileSystem disk;
  DropRecordingFileSystem fs(disk);
  auto store = open_store(fs, small_segments(1 << 20));
  REQUIRE(store->append(make_entries(1, 20, 1)).is_ok());
  sync_ok(*store);
  CHECK(fs.drops.empty());  // no hint, no drop

  store->release_cache(LogIndex(11));  // entries 1..10 may go
  CHECK(fs.drops.empty());             // at the next sync, by the writer
  REQUIRE(store->append(make_entries(21, 25, 1)).is_ok());
  sync_ok(*store);
  auto ends = entry_ends(disk);
  REQUIRE(ends.size() == 25);
  REQUIRE(fs.drops.size() == 1);
  CHECK(fs.drops.back().path == ends[9].first);
  CHECK(fs.drops.back().before == ends[9].second);  // the end of entry 10's record

  store->release_cache(LogIndex(4));  // never back
  REQUIRE(store->append(make_entries(26, 26, 1)).is_ok());
  sync_ok(*store);
  CHECK(fs.drops.back().before == ends[9].second);

  store->release_cache(LogIndex(1000));  // past the end: through the last entry (26)
  REQUIRE(store->append(make_entries(27, 27, 1)).is_ok());
  sync_ok(*store);
  ends = entry_ends(disk);
  CHECK(fs.drops.back().before == ends[25].second);
  // What the cache lost, the store still reads.
  auto read = store->entries(LogIndex(1), LogIndex(28), UINT64_MAX);
  REQUIRE(read.is_ok());
  CHECK(read->size() == 27);
}

TEST_CASE("FileLogStore: a segment left behind is dropped whole once released past it",
          "[file_log_store]") {
  FaultInjectingFileSystem disk;
  DropRecordingFileSystem fs(disk);
  auto store = open_store(fs, small_segments(512));
  REQUIRE(store->append(make_entries(1, 4, 1)).is_ok());
  sync_ok(*store);
  const std::size_t segments_before = segment_paths(disk).size();
  // Queued over several segments, released, then written in one batch: the
  // writer leaves each of those segments with the release point past it.
  REQUIRE(store->append(make_entries(5, 40, 1)).is_ok());
  store->release_cache(LogIndex(1000));
  sync_ok(*store);
  const std::vector<std::string> paths = segment_paths(disk);
  REQUIRE(paths.size() > segments_before + 1);
  const auto ends = entry_ends(disk);
  const auto dropped = [&](const std::string& path, std::uint64_t before) {
    for (const auto& drop : fs.drops) {
      if (drop.path == path && drop.before == before) return true;
    }
    return false;
  };
  // Every segment the batch left (from the one open at the start), whole.
  for (std::size_t i = segments_before - 1; i + 1 < paths.size(); ++i) {
    CAPTURE(paths[i]);
    CHECK(dropped(paths[i], WritableFile::kAllSynced));
  }
  // The open one, through the last released entry (40).
  CHECK(ends.back().first == paths.back());
  CHECK(dropped(paths.back(), ends.back().second));
  CHECK_FALSE(dropped(paths.back(), WritableFile::kAllSynced));
}

}  // namespace nodenomad::log_store_test
