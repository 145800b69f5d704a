// log_store_bench: FileLogStore append throughput next to the disk's own
// sequential write speed, measured in the same run on the same directory, as
// JSON lines.
//
//   log_store_bench [--dir DIR] [--total-mib N] [--entry-bytes N]
//                   [--batch-entries N] [--segment-mib N] [--repetitions N] [--quick]
//
// What is measured (each repeated, the median reported):
//   store        FileLogStore::append() of batches of --batch-entries entries
//                of --entry-bytes each (default 64 x 1 KiB), sync() after each
//                batch; MB/s of entry data (10^6 bytes per MB).
//   disk_sync_each   the same total written through the same FileSystem in
//                appends of one batch's size (64 KiB), fdatasync after each:
//                the disk doing exactly the durable work the store must do.
//   disk_one_sync    the same appends with one fdatasync at the end: the
//                disk's plain sequential bandwidth.
// The goal is store >= 70% of disk_sync_each; the summary line gives both
// ratios. The store also reads the log back (entries() in 1 MiB steps,
// mostly from the page cache), reported as store_read.
//
// Defaults: 64 MiB per measurement, 3 repetitions, 64 MiB segments. Everything
// is written under a fresh directory inside --dir (default /tmp), removed at
// exit. --quick is the CI smoke run: 8 MiB, one repetition (about a second
// at 15 MB/s of synced writes).
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "nodenomad/file_log_store.hpp"
#include "nodenomad/file_system.hpp"

namespace {

using nodenomad::Entry;
using nodenomad::FileLogStore;
using nodenomad::FileLogStoreOptions;
using nodenomad::LogIndex;
using nodenomad::PosixFileSystem;
using nodenomad::Status;
using nodenomad::Term;
using Clock = std::chrono::steady_clock;

constexpr std::uint64_t kMiB = 1ull << 20;
constexpr std::uint64_t kReadStepBytes = kMiB;

struct Config {
  std::string parent_dir = "/tmp";
  std::uint64_t total_bytes = 64 * kMiB;
  std::uint64_t entry_bytes = 1024;
  std::uint64_t batch_entries = 64;
  std::uint64_t segment_bytes = FileLogStoreOptions::kDefaultSegmentBytes;
  int repetitions = 3;
  bool quick = false;
};

// The bench's own directory, removed when the bench ends, however it ends.
class ScratchDir {
 public:
  explicit ScratchDir(std::string path) : path_(std::move(path)) {}
  ~ScratchDir() { (void)PosixFileSystem::instance().remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

ScratchDir* g_scratch = nullptr;

[[noreturn]] void die(std::string_view what, const Status& status) {
  fmt::print(stderr, "log_store_bench: {}: {}\n", what, status.to_string());
  if (g_scratch != nullptr) (void)PosixFileSystem::instance().remove_all(g_scratch->path());
  std::exit(1);
}

void check(std::string_view what, const Status& status) {
  if (!status.is_ok()) die(what, status);
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double mb_per_s(std::uint64_t bytes, double seconds) { return bytes / 1e6 / seconds; }

std::uint64_t parse_count(const char* flag, const char* value) {
  char* end = nullptr;
  const unsigned long long v = value ? std::strtoull(value, &end, 10) : 0;
  if (value == nullptr || *end != '\0' || v == 0) {
    fmt::print(stderr, "log_store_bench: {} needs a positive integer\n", flag);
    std::exit(2);
  }
  return v;
}

Config parse_flags(int argc, char** argv) {
  Config c;
  // --quick sets the defaults first, so explicit sizes override it wherever
  // they appear.
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--quick") {
      c.quick = true;
      c.total_bytes = 8 * kMiB;
      c.repetitions = 1;
    }
  }
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
    if (flag == "--quick") continue;
    if (flag == "--dir" && value != nullptr) {
      c.parent_dir = value;
    } else if (flag == "--total-mib") {
      c.total_bytes = parse_count(argv[i], value) * kMiB;
    } else if (flag == "--entry-bytes") {
      c.entry_bytes = parse_count(argv[i], value);
    } else if (flag == "--batch-entries") {
      c.batch_entries = parse_count(argv[i], value);
    } else if (flag == "--segment-mib") {
      c.segment_bytes = parse_count(argv[i], value) * kMiB;
    } else if (flag == "--repetitions") {
      c.repetitions = static_cast<int>(parse_count(argv[i], value));
    } else {
      fmt::print(stderr,
                 "usage: log_store_bench [--dir DIR] [--total-mib N] [--entry-bytes N] "
                 "[--batch-entries N] [--segment-mib N] [--repetitions N] [--quick]\n");
      std::exit(2);
    }
    ++i;
  }
  return c;
}

std::uint64_t batch_bytes(const Config& c) { return c.entry_bytes * c.batch_entries; }
std::uint64_t batch_count(const Config& c) {
  return std::max<std::uint64_t>(1, c.total_bytes / batch_bytes(c));
}

// Writes total bytes in batch-sized appends; fdatasync after each append or
// once at the end. Returns seconds.
double disk_write(const Config& c, const std::string& path, bool sync_each) {
  PosixFileSystem& fs = PosixFileSystem::instance();
  const std::string buffer(batch_bytes(c), 'd');
  const auto start = Clock::now();
  auto file = fs.open_writable(path, nodenomad::WriteMode::kTruncate);
  if (!file.is_ok()) die("open " + path, file.status());
  check("sync_dir", fs.sync_dir(nodenomad::parent_dir(path)));
  for (std::uint64_t b = 0; b < batch_count(c); ++b) {
    check("append", (*file)->append(buffer));
    if (sync_each) check("fdatasync", (*file)->sync());
  }
  if (!sync_each) check("fdatasync", (*file)->sync());
  const double seconds = seconds_since(start);
  check("close", (*file)->close());
  check("remove", fs.remove(path));
  return seconds;
}

struct StoreRun {
  double append_seconds = 0;
  double read_seconds = 0;
  std::uint64_t file_bytes = 0;
};

StoreRun store_run(const Config& c, const std::string& dir) {
  PosixFileSystem& fs = PosixFileSystem::instance();
  FileLogStoreOptions options;
  options.segment_bytes = c.segment_bytes;
  std::vector<Entry> batch(c.batch_entries);
  for (Entry& e : batch) e.data = std::string(c.entry_bytes, 's');
  StoreRun run;
  const auto start = Clock::now();
  auto opened = FileLogStore::open(fs, dir, options);
  if (!opened.is_ok()) die("open store", opened.status());
  FileLogStore& store = **opened;
  std::uint64_t next = 1;
  for (std::uint64_t b = 0; b < batch_count(c); ++b) {
    for (Entry& e : batch) {
      e.index = LogIndex(next++);
      e.term = Term(1);
    }
    check("append", store.append(batch));
    auto durable = store.sync();
    if (!durable.is_ok()) die("sync", durable.status());
  }
  run.append_seconds = seconds_since(start);
  run.file_bytes = store.stats().bytes_written;
  const auto read_start = Clock::now();
  for (LogIndex lo(1); lo < LogIndex(next);) {
    auto got = store.entries(lo, LogIndex(next), kReadStepBytes);
    if (!got.is_ok()) die("entries", got.status());
    lo = got->back().index.next();
  }
  run.read_seconds = seconds_since(read_start);
  opened->reset();  // close the store before its files go
  check("remove store", fs.remove_all(dir));
  return run;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

void print_line(const Config& c, std::string_view what, std::string_view mode, std::uint64_t bytes,
                double seconds, int repetition) {
  fmt::print(
      "{{\"bench\":\"log_store_bench\",\"what\":\"{}\",\"mode\":\"{}\",\"repetition\":{},"
      "\"bytes\":{},\"entry_bytes\":{},\"batch_entries\":{},\"seconds\":{:.4f},"
      "\"mb_per_s\":{:.1f}}}\n",
      what, mode, repetition, bytes, c.entry_bytes, c.batch_entries, seconds,
      mb_per_s(bytes, seconds));
}

}  // namespace

int main(int argc, char** argv) {
  const Config c = parse_flags(argc, argv);
  PosixFileSystem& fs = PosixFileSystem::instance();
  ScratchDir scratch(nodenomad::join_path(
      c.parent_dir, fmt::format("nodenomad-log-store-bench-{}", static_cast<long>(::getpid()))));
  g_scratch = &scratch;
  check("create " + scratch.path(), fs.remove_all(scratch.path()));
  check("create " + scratch.path(), fs.create_dirs(scratch.path()));
  const std::uint64_t bytes = batch_count(c) * batch_bytes(c);
  const std::string disk_file = nodenomad::join_path(scratch.path(), "disk.dat");
  const std::string store_dir = nodenomad::join_path(scratch.path(), "store");
  const std::string sync_each_mode =
      fmt::format("{} KiB appends, fdatasync after each", batch_bytes(c) / 1024);
  const std::string one_sync_mode =
      fmt::format("{} KiB appends, one fdatasync at the end", batch_bytes(c) / 1024);
  std::vector<double> store_s, read_s, sync_each_s, one_sync_s;
  for (int r = 0; r < c.repetitions; ++r) {
    // Interleaved, so that a slow patch of a shared disk hits all three.
    sync_each_s.push_back(disk_write(c, disk_file, true));
    print_line(c, "disk_sync_each", sync_each_mode, bytes, sync_each_s.back(), r);
    const StoreRun run = store_run(c, store_dir);
    store_s.push_back(run.append_seconds);
    read_s.push_back(run.read_seconds);
    print_line(c, "store", "append batch + sync", bytes, run.append_seconds, r);
    print_line(c, "store_read", "entries() in 1 MiB steps", bytes, run.read_seconds, r);
    one_sync_s.push_back(disk_write(c, disk_file, false));
    print_line(c, "disk_one_sync", one_sync_mode, bytes, one_sync_s.back(), r);
  }
  const double store = mb_per_s(bytes, median(store_s));
  const double sync_each = mb_per_s(bytes, median(sync_each_s));
  const double one_sync = mb_per_s(bytes, median(one_sync_s));
  fmt::print(
      "{{\"bench\":\"log_store_bench\",\"what\":\"summary\",\"dir\":\"{}\",\"quick\":{},"
      "\"repetitions\":{},\"bytes\":{},\"store_mb_per_s\":{:.1f},\"store_read_mb_per_s\":{:.1f},"
      "\"disk_sync_each_mb_per_s\":{:.1f},\"disk_one_sync_mb_per_s\":{:.1f},"
      "\"ratio_vs_disk_sync_each\":{:.3f},\"ratio_vs_disk_one_sync\":{:.3f},\"goal_ratio\":0.7}}\n",
      c.parent_dir, c.quick, c.repetitions, bytes, store, mb_per_s(bytes, median(read_s)),
      sync_each, one_sync, store / sync_each, store / one_sync);
  return 0;
}
