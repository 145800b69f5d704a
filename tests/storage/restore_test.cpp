// Restoring from a snapshot stream with a directory: the restore file is
// written (and synced as it grows) by a writer thread of the sink's own, or
// on the calling thread when StorageOptions::restore_writer_thread is off;
// write and sync errors surface, never lost; a dropped sink leaves no file.
// And the RestoreFileWriter's own bound and error contract.
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include <catch2/catch.hpp>

#include "storage/digest_test_util.hpp"
#include "storage/restore_writer.hpp"

namespace nodenomad {
namespace {

using digest_test::build_random_log;
using digest_test::digest_of;
using digest_test::open_replicated;
using storage::RestoreFileWriter;
using storage::RestoreWriterOptions;
using storage_test::dump_engine;
using storage_test::ModelState;
using storage_test::open_or_fail;
using storage_test::test_options;
using testing::FaultInjectingFileSystem;
using testing::FaultOp;

bool has_restore_temp(FileSystem& fs, const std::string& dir = "/db") {
  const std::vector<std::string> names = fs.list(dir).value();
  for (const std::string& name : names) {
    if (name.starts_with("restore-")) return true;
  }
  return false;
}

// Records which threads append to restore files.
class ThreadRecordingFileSystem final : public FileSystemWrapper {
 public:
  using FileSystemWrapper::FileSystemWrapper;

  Result<std::unique_ptr<WritableFile>> open_writable(const std::string& path,
                                                      WriteMode mode) override {
    NN_ASSIGN_OR_RETURN(auto file, inner().open_writable(path, mode));
    if (path.find("restore-") == std::string::npos) return file;
    return std::unique_ptr<WritableFile>(std::make_unique<File>(std::move(file), *this));
  }

  std::set<std::thread::id> appending_threads() const {
    std::lock_guard lock(mu_);
    return threads_;
  }

 private:
  class File final : public WritableFileWrapper {
   public:
    File(std::unique_ptr<WritableFile> inner, ThreadRecordingFileSystem& fs)
        : WritableFileWrapper(std::move(inner)), fs_(fs) {}
    Status append(std::string_view data) override {
      {
        std::lock_guard lock(fs_.mu_);
        fs_.threads_.insert(std::this_thread::get_id());
      }
      return inner().append(data);
    }

   private:
    ThreadRecordingFileSystem& fs_;
  };

  mutable std::mutex mu_;
  std::set<std::thread::id> threads_;
};

// A leader's snapshot stream cut into chunks, and the state it carries.
struct Stream {
  std::vector<std::string> chunks;
  LogIndex index;
  ModelState state;
  std::size_t bytes = 0;
};

Stream leader_stream(std::uint64_t seed, std::size_t commands, std::size_t chunk_bytes) {
  Rng rng(seed);
  auto leader = open_replicated();
  (void)build_random_log(*leader, rng, commands, 2000);
  Stream stream;
  stream.state = dump_engine(*leader, &stream.index);
  auto source = std::move(leader->open_snapshot()).value();
  for (auto chunk = source->next_chunk(chunk_bytes); !chunk->empty();
       chunk = source->next_chunk(chunk_bytes)) {
    stream.bytes += chunk->size();
    stream.chunks.push_back(std::move(*chunk));
  }
  return stream;
}

StorageOptions restore_options(FileSystem& fs, Clock& clock, bool writer_thread) {
  StorageOptions options = test_options(fs, clock);
  options.mode = StorageMode::kReplicated;
  options.restore_writer_thread = writer_thread;
  options.restore_max_queued_bytes = 16u << 10;
  options.restore_sync_every_bytes = 8u << 10;
  return options;
}

TEST_CASE("a restore writes and syncs its file as it goes, on a thread or not",
          "[storage][restore]") {
  const bool writer_thread = GENERATE(true, false);
  CAPTURE(writer_thread);
  const Stream stream = leader_stream(storage_test::test_seed(401), 3000, 1000);
  REQUIRE(stream.bytes > 64u << 10);
  FaultInjectingFileSystem disk;
  ThreadRecordingFileSystem fs(disk);
  ManualClock clock;
  const StorageOptions options = restore_options(fs, clock, writer_thread);
  auto engine = open_or_fail(options);
  const std::uint64_t syncs_before = disk.sync_count();
  auto sink = std::move(engine->begin_restore(stream.index)).value();
  for (const std::string& chunk : stream.chunks) REQUIRE(sink->write_chunk(chunk).is_ok());
  REQUIRE(sink->finish().is_ok());
  // One sync per 8 KiB written, then the final one and the directory's.
  CHECK(disk.sync_count() - syncs_before >= stream.bytes / (8u << 10));
  const std::set<std::thread::id> threads = fs.appending_threads();
  REQUIRE(threads.size() == 1);
  CHECK((*threads.begin() == std::this_thread::get_id()) == !writer_thread);
  CHECK(dump_engine(*engine) == stream.state);
  CHECK_FALSE(has_restore_temp(disk));
  // Durable: a crash right after finish() keeps the restored state.
  engine.reset();
  disk.crash();
  auto reopened = open_or_fail(options);
  CHECK(reopened->last_applied_index() == stream.index);
  CHECK(dump_engine(*reopened) == stream.state);
}

// Feeds every chunk and finishes, stopping at the first error, which it returns.
Status restore_all(StorageEngine& engine, const Stream& stream, std::size_t* failed_at = nullptr) {
  auto sink = std::move(engine.begin_restore(stream.index)).value();
  for (std::size_t i = 0; i < stream.chunks.size(); ++i) {
    Status written = sink->write_chunk(stream.chunks[i]);
    if (!written.is_ok()) {
      if (failed_at != nullptr) *failed_at = i;
      return written;
    }
  }
  if (failed_at != nullptr) *failed_at = stream.chunks.size();
  return sink->finish();
}

TEST_CASE("a failed restore write surfaces and only fails the restore", "[storage][restore]") {
  const bool writer_thread = GENERATE(true, false);
  const std::uint32_t failing_append = GENERATE(1u, 5u, 40u);
  CAPTURE(writer_thread, failing_append);
  const Stream stream = leader_stream(storage_test::test_seed(402), 3000, 1000);
  REQUIRE(stream.chunks.size() > 40);
  FaultInjectingFileSystem fs;
  ManualClock clock;
  auto engine = open_or_fail(restore_options(fs, clock, writer_thread));
  const ShardDigest before = digest_of(*engine);
  // Appends to the restore file fail from the one of chunk failing_append
  // on (with a writer thread, a little later or earlier: whichever append
  // the writer is at when the fault is armed).
  std::size_t failed_at = 0;
  {
    auto sink = std::move(engine->begin_restore(stream.index)).value();
    Status result;
    std::size_t i = 0;
    for (; i < stream.chunks.size() && result.is_ok(); ++i) {
      if (i + 1 == failing_append) fs.fail_next(FaultOp::kWrite, "restore-", 1000);
      result = sink->write_chunk(stream.chunks[i]);
    }
    failed_at = i;
    if (result.is_ok()) result = sink->finish();
    INFO(result.to_string());
    CHECK(result.is(StatusCode::kIOError));
    // Never lost: once failed, every later call says so too.
    if (failed_at < stream.chunks.size()) {
      CHECK(sink->write_chunk(stream.chunks[failed_at]).is(StatusCode::kIOError));
    }
  }
  CHECK_FALSE(engine->failed());
  CHECK(digest_of(*engine) == before);
  CHECK_FALSE(has_restore_temp(fs));
  // The next restore, on a healthy disk, goes through.
  fs.crash();  // clears the pending faults; the engine's files are all durable
  auto reopened = open_or_fail(restore_options(fs, clock, writer_thread));
  REQUIRE(restore_all(*reopened, stream).is_ok());
  CHECK(dump_engine(*reopened) == stream.state);
}

TEST_CASE("a failed restore sync fails the engine, progressive or final", "[storage][restore]") {
  const bool writer_thread = GENERATE(true, false);
  const bool progressive = GENERATE(true, false);
  CAPTURE(writer_thread, progressive);
  const Stream stream = leader_stream(storage_test::test_seed(403), 3000, 1000);
  FaultInjectingFileSystem fs;
  ManualClock clock;
  StorageOptions options = restore_options(fs, clock, writer_thread);
  if (!progressive) options.restore_sync_every_bytes = 0;  // only the sync in finish()
  auto engine = open_or_fail(options);
  const ShardDigest before = digest_of(*engine);
  fs.fail_next(FaultOp::kSync, "restore-");
  const Status result = restore_all(*engine, stream);
  INFO(result.to_string());
  CHECK(result.is(StatusCode::kIOError));
  CHECK(engine->failed());
  CHECK(digest_of(*engine) == before);  // reads go on serving the old state
  CHECK(engine->begin_restore(stream.index).status().is(StatusCode::kFailed));
}

TEST_CASE("a sink dropped mid-restore joins its writer and removes its file",
          "[storage][restore]") {
  const bool writer_thread = GENERATE(true, false);
  CAPTURE(writer_thread);
  const Stream stream = leader_stream(storage_test::test_seed(404), 3000, 1000);
  FaultInjectingFileSystem fs;
  ManualClock clock;
  auto engine = open_or_fail(restore_options(fs, clock, writer_thread));
  const ShardDigest before = digest_of(*engine);
  for (std::size_t cut : {std::size_t{0}, std::size_t{1}, stream.chunks.size() / 2,
                          stream.chunks.size()}) {
    auto sink = std::move(engine->begin_restore(stream.index)).value();
    for (std::size_t i = 0; i < cut; ++i) REQUIRE(sink->write_chunk(stream.chunks[i]).is_ok());
    CHECK(has_restore_temp(fs));
    sink.reset();
    CHECK_FALSE(has_restore_temp(fs));
    CHECK(digest_of(*engine) == before);
  }
  REQUIRE(restore_all(*engine, stream).is_ok());
  CHECK(dump_engine(*engine) == stream.state);
}

// A file whose appends wait at a gate the test opens.
class GatedFile final : public WritableFile {
 public:
  Status append(std::string_view data) override {
    std::unique_lock lock(mu_);
    ++entered_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return open_; });
    content_.append(data);
    return Status::ok();
  }
  Status sync() override { return Status::ok(); }
  Status close() override { return Status::ok(); }
  std::uint64_t size() const override {
    std::lock_guard lock(mu_);
    return content_.size();
  }
  const std::string& path() const override { return path_; }

  void open_gate() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  // Waits until `n` appends have started (a real thread: with a deadline).
  bool wait_entered(int n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(30), [&] { return entered_ >= n; });
  }
  std::string content() const {
    std::lock_guard lock(mu_);
    return content_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  int entered_ = 0;
  std::string content_;
  std::string path_ = "gated";
};

TEST_CASE("the restore writer's queue is bounded: append waits for the writer",
          "[storage][restore]") {
  auto owned = std::make_unique<GatedFile>();
  GatedFile& file = *owned;
  RestoreWriterOptions options;
  options.max_queued_bytes = 4096;
  options.sync_every_bytes = 0;
  RestoreFileWriter writer(std::move(owned), options);
  std::mutex mu;
  std::condition_variable cv;
  int returned = 0;
  std::size_t most_queued = 0;
  std::string expected;
  std::vector<std::string> chunks;
  for (int i = 0; i < 10; ++i) {
    chunks.emplace_back(1024, static_cast<char>('a' + i));
    expected += chunks.back();
  }
  std::thread feeder([&] {
    for (const std::string& chunk : chunks) {
      const Status appended = writer.append(chunk);
      std::lock_guard lock(mu);
      if (!appended.is_ok()) return;
      ++returned;
      most_queued = std::max(most_queued, writer.queued_bytes());
      cv.notify_all();
    }
  });
  // The writer holds chunk 0 at the gate; chunks 1-3 fill the 4 KiB queue;
  // the fifth append must wait.
  REQUIRE(file.wait_entered(1));
  {
    std::unique_lock lock(mu);
    REQUIRE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return returned >= 4; }));
    CHECK(returned == 4);
    CHECK(writer.queued_bytes() == 4096);
  }
  file.open_gate();
  feeder.join();
  CHECK(returned == 10);
  CHECK(most_queued <= 4096);
  auto finished = writer.finish();
  REQUIRE(finished.is_ok());
  CHECK(file.content() == expected);
}

// Fails the n-th append or the n-th sync.
class FailingFile final : public WritableFile {
 public:
  FailingFile(int failing_append, int failing_sync)
      : failing_append_(failing_append), failing_sync_(failing_sync) {}
  Status append(std::string_view data) override {
    if (++appends_ == failing_append_) return Status::io_error("injected append failure");
    size_ += data.size();
    return Status::ok();
  }
  Status sync() override {
    if (++syncs_ == failing_sync_) return Status::io_error("injected sync failure");
    return Status::ok();
  }
  Status close() override { return Status::ok(); }
  std::uint64_t size() const override { return size_; }
  const std::string& path() const override { return path_; }

 private:
  int failing_append_;
  int failing_sync_;
  int appends_ = 0;
  int syncs_ = 0;
  std::uint64_t size_ = 0;
  std::string path_ = "failing";
};

TEST_CASE("a restore writer's first error is answered by every later call",
          "[storage][restore]") {
  const bool use_thread = GENERATE(true, false);
  const bool in_sync = GENERATE(true, false);
  CAPTURE(use_thread, in_sync);
  RestoreWriterOptions options;
  options.use_thread = use_thread;
  options.max_queued_bytes = 2048;
  options.sync_every_bytes = 3000;
  RestoreFileWriter writer(std::make_unique<FailingFile>(in_sync ? 0 : 4, in_sync ? 2 : 0),
                           options);
  const std::string chunk(1000, 'x');
  Status first_error;
  int calls_after_error = 0;
  for (int i = 0; i < 20; ++i) {
    const Status appended = writer.append(chunk);
    if (!first_error.is_ok()) {
      CHECK(appended.to_string() == first_error.to_string());
      ++calls_after_error;
    } else if (!appended.is_ok()) {
      first_error = appended;
    }
  }
  auto finished = writer.finish();
  REQUIRE_FALSE(finished.is_ok());
  CHECK(finished.status().is(StatusCode::kIOError));
  if (!first_error.is_ok()) CHECK(finished.status().to_string() == first_error.to_string());
  CHECK(writer.sync_failed() == in_sync);
  if (!use_thread) CHECK(calls_after_error > 0);  // inline: at the very next call
}

// Records the file size at each sync and writeback; fails the n-th writeback.
class WritebackRecordingFile final : public WritableFile {
 public:
  explicit WritebackRecordingFile(int failing_writeback = 0) : failing_(failing_writeback) {}
  Status append(std::string_view data) override {
    size_ += data.size();
    return Status::ok();
  }
  Status sync() override {
    syncs.push_back(size_);
    return Status::ok();
  }
  Status start_writeback() override {
    writebacks.push_back(size_);
    if (static_cast<int>(writebacks.size()) == failing_) {
      return Status::io_error("injected writeback failure");
    }
    return Status::ok();
  }
  void drop_synced(std::uint64_t before = kAllSynced) override {
    CHECK(before == kAllSynced);
    drops.push_back(syncs.empty() ? 0 : syncs.back());
  }
  Status close() override { return Status::ok(); }
  std::uint64_t size() const override { return size_; }
  const std::string& path() const override { return path_; }

  std::vector<std::uint64_t> syncs;
  std::vector<std::uint64_t> writebacks;
  std::vector<std::uint64_t> drops;  // the size at the last sync, at each drop

 private:
  int failing_;
  std::uint64_t size_ = 0;
  std::string path_ = "recording";
};

TEST_CASE("the restore writer starts the writeback every few bytes between its syncs",
          "[storage][restore]") {
  const bool use_thread = GENERATE(true, false);
  CAPTURE(use_thread);
  auto owned = std::make_unique<WritebackRecordingFile>();
  WritebackRecordingFile& file = *owned;
  RestoreWriterOptions options;
  options.use_thread = use_thread;
  options.sync_every_bytes = 5000;
  options.writeback_every_bytes = 1000;
  RestoreFileWriter writer(std::move(owned), options);
  for (int i = 0; i < 20; ++i) REQUIRE(writer.append(std::string(600, 'x')).is_ok());
  // finish() joins the thread and hands the file back: the vectors are ours.
  Result<std::unique_ptr<WritableFile>> back = writer.finish();
  REQUIRE(back.is_ok());
  // 600 bytes a chunk: a writeback once 1000 are unflushed, a sync (which
  // also flushes) once 5000 are unsynced; the counts restart at each.
  CHECK(file.syncs == std::vector<std::uint64_t>{5400, 10800});
  CHECK(file.writebacks ==
        std::vector<std::uint64_t>{1200, 2400, 3600, 4800, 6600, 7800, 9000, 10200, 12000});
  // Each progressive sync lets the file's pages go, right after it.
  CHECK(file.drops == file.syncs);
}

TEST_CASE("a failed writeback is kept like a failed sync", "[storage][restore]") {
  RestoreWriterOptions options;
  options.use_thread = false;
  options.sync_every_bytes = 0;
  options.writeback_every_bytes = 1000;
  RestoreFileWriter writer(std::make_unique<WritebackRecordingFile>(2), options);
  CHECK(writer.append(std::string(1000, 'x')).is_ok());
  // Its writeback fails; without a thread the error is answered at once.
  const Status next = writer.append(std::string(1000, 'x'));
  REQUIRE_FALSE(next.is_ok());
  CHECK(next.message().find("injected writeback failure") != std::string_view::npos);
  CHECK(writer.sync_failed());
  CHECK_FALSE(writer.finish().is_ok());
}

}  // namespace
}  // namespace nodenomad
