#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <memory>

#include "nodenomad/file_system.hpp"
#include "nodenomad/testing/fault_injecting_file_system.hpp"

namespace nodenomad {
namespace {

using testing::CrashOptions;
using testing::FaultInjectingFileSystem;
using testing::FaultOp;

// A fresh directory under the system temp dir, removed at scope exit.
struct TempDir {
  std::string path;
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "nn-fs-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

std::string read_all(FileSystem& fs, const std::string& path) {
  auto r = read_whole_file(fs, path);
  REQUIRE(r.is_ok());
  return *r;
}

void write(FileSystem& fs, const std::string& path, std::string_view data, bool sync) {
  auto file = fs.open_writable(path, WriteMode::kAppend);
  REQUIRE(file.is_ok());
  REQUIRE((*file)->append(data).is_ok());
  if (sync) REQUIRE((*file)->sync().is_ok());
}

// The contract every FileSystem keeps, run against both implementations.
void check_contract(FileSystem& fs, const std::string& root) {
  const std::string dir = join_path(root, "a/b");
  REQUIRE(fs.create_dirs(dir).is_ok());
  REQUIRE(fs.create_dirs(dir).is_ok());
  const std::string f = join_path(dir, "x.log");
  write(fs, f, "hello ", true);
  write(fs, f, "world", true);
  CHECK(read_all(fs, f) == "hello world");
  CHECK(*fs.file_size(f) == 11u);
  CHECK(*fs.exists(f));

  auto reader = fs.open_readable(f);
  REQUIRE(reader.is_ok());
  char buf[5];
  CHECK(*(*reader)->read_at(6, buf) == 5u);
  CHECK(std::string(buf, 5) == "world");
  CHECK(*(*reader)->read_at(20, buf) == 0u);

  REQUIRE(fs.truncate(f, 5).is_ok());
  CHECK(read_all(fs, f) == "hello");
  REQUIRE(write_file_atomically(fs, join_path(dir, "meta"), "v1").is_ok());
  REQUIRE(write_file_atomically(fs, join_path(dir, "meta"), "v2").is_ok());
  CHECK(read_all(fs, join_path(dir, "meta")) == "v2");
  auto names = fs.list(dir);
  REQUIRE(names.is_ok());
  CHECK(*names == std::vector<std::string>{"meta", "x.log"});

  REQUIRE(fs.rename(f, join_path(dir, "y.log")).is_ok());
  CHECK_FALSE(*fs.exists(f));
  CHECK(fs.remove(f).is(StatusCode::kNotFound));
  CHECK(fs.open_readable(f).status().is(StatusCode::kNotFound));
  CHECK(fs.remove(join_path(dir, "y.log")).is_ok());
  REQUIRE(fs.sync_dir(dir).is_ok());
  REQUIRE(fs.remove_all(join_path(root, "a")).is_ok());
  CHECK_FALSE(*fs.exists(dir));
  CHECK(fs.open_writable(join_path(root, "missing/z"), WriteMode::kAppend)
            .status()
            .is(StatusCode::kNotFound));
}

}  // namespace

TEST_CASE("paths join and split", "[file_system]") {
  CHECK(join_path("a/", "/b") == "a/b");
  CHECK(join_path("", "b") == "b");
  CHECK(join_path("/", "b") == "/b");
  CHECK(parent_dir("a/b/c") == "a/b");
  CHECK(parent_dir("c") == ".");
  CHECK(parent_dir("/c") == "/");
}

TEST_CASE("PosixFileSystem keeps the FileSystem contract", "[file_system]") {
  TempDir tmp;
  PosixFileSystem fs;
  check_contract(fs, tmp.path);
}

TEST_CASE("FaultInjectingFileSystem keeps the FileSystem contract", "[file_system]") {
  FaultInjectingFileSystem fs;
  REQUIRE(fs.create_dirs("/data").is_ok());
  check_contract(fs, "/data");
}

TEST_CASE("a crash drops unsynced bytes and keeps synced ones", "[file_system][crash]") {
  FaultInjectingFileSystem fs;
  REQUIRE(fs.create_dirs("/d").is_ok());
  write(fs, "/d/f", "durable", true);
  REQUIRE(fs.sync_dir("/d").is_ok());
  write(fs, "/d/f", "-lost", false);
  CHECK(read_all(fs, "/d/f") == "durable-lost");
  fs.crash();
  CHECK(read_all(fs, "/d/f") == "durable");
}

TEST_CASE("a crash forgets directory entries that were never synced", "[file_system][crash]") {
  FaultInjectingFileSystem fs;
  REQUIRE(fs.create_dirs("/d").is_ok());
  write(fs, "/d/new", "synced data, unsynced name", true);
  write(fs, "/d/old", "x", true);
  REQUIRE(fs.sync_dir("/d").is_ok());
  write(fs, "/d/newer", "y", true);
  REQUIRE(fs.rename("/d/old", "/d/renamed").is_ok());
  REQUIRE(fs.remove("/d/new").is_ok());
  fs.crash();
  CHECK(*fs.exists("/d/new"));
  CHECK(*fs.exists("/d/old"));
  CHECK_FALSE(*fs.exists("/d/renamed"));
  CHECK_FALSE(*fs.exists("/d/newer"));
}

TEST_CASE("a crash with tearing keeps a prefix of the unsynced tail", "[file_system][crash]") {
  const std::uint64_t seed = 99;
  INFO("seed " << seed);
  FaultInjectingFileSystem fs(seed);
  REQUIRE(fs.create_dirs("/d").is_ok());
  bool saw_partial = false;
  for (int round = 0; round < 50; ++round) {
    REQUIRE(fs.remove_all("/d").is_ok());
    REQUIRE(fs.create_dirs("/d").is_ok());
    write(fs, "/d/f", "base|", true);
    REQUIRE(fs.sync_dir("/d").is_ok());
    write(fs, "/d/f", "0123456789", false);
    fs.crash(CrashOptions{.tear_unsynced_tail = true});
    const std::string after = read_all(fs, "/d/f");
    REQUIRE(after.size() >= 5);
    CHECK(std::string("base|0123456789").compare(0, after.size(), after) == 0);
    saw_partial |= after.size() > 5 && after.size() < 15;
  }
  CHECK(saw_partial);
}

TEST_CASE("handles from before a crash fail", "[file_system][crash]") {
  FaultInjectingFileSystem fs;
  REQUIRE(fs.create_dirs("/d").is_ok());
  auto file = fs.open_writable("/d/f", WriteMode::kAppend);
  REQUIRE(file.is_ok());
  fs.crash();
  CHECK((*file)->append("x").is(StatusCode::kIOError));
  CHECK((*file)->sync().is(StatusCode::kIOError));
}

TEST_CASE("fail_next injects EIO into the chosen write or sync only", "[file_system][faults]") {
  FaultInjectingFileSystem fs;
  REQUIRE(fs.create_dirs("/d").is_ok());
  auto wal = fs.open_writable("/d/wal", WriteMode::kAppend);
  auto other = fs.open_writable("/d/other", WriteMode::kAppend);
  REQUIRE((wal.is_ok() && other.is_ok()));
  fs.fail_next(FaultOp::kSync, "wal");
  REQUIRE((*wal)->append("a").is_ok());
  REQUIRE((*other)->sync().is_ok());
  Status failed = (*wal)->sync();
  CHECK(failed.is(StatusCode::kIOError));
  CHECK(failed.message().find("/d/wal") != std::string_view::npos);
  CHECK((*wal)->sync().is_ok());
  fs.fail_next(FaultOp::kWrite, "", 2);
  CHECK((*wal)->append("b").is(StatusCode::kIOError));
  CHECK((*other)->append("b").is(StatusCode::kIOError));
  CHECK((*wal)->append("c").is_ok());
}

TEST_CASE("die_after_ops fails every mutation from the chosen one until a crash",
          "[file_system][faults]") {
  FaultInjectingFileSystem fs;
  REQUIRE(fs.create_dirs("/d").is_ok());
  auto file = fs.open_writable("/d/f", WriteMode::kAppend);
  REQUIRE(file.is_ok());
  fs.die_after_ops(2);
  CHECK((*file)->append("1").is_ok());
  CHECK((*file)->sync().is_ok());
  CHECK(fs.dead());
  CHECK((*file)->append("2").is(StatusCode::kIOError));
  CHECK(fs.sync_dir("/d").is(StatusCode::kIOError));
  fs.crash();
  CHECK_FALSE(fs.dead());
  CHECK_FALSE(*fs.exists("/d/f"));  // its name was never synced
}

TEST_CASE("corrupt_byte flips bits in live and durable content", "[file_system][faults]") {
  FaultInjectingFileSystem fs;
  REQUIRE(fs.create_dirs("/d").is_ok());
  write(fs, "/d/f", "abc", true);
  REQUIRE(fs.sync_dir("/d").is_ok());
  REQUIRE(fs.corrupt_byte("/d/f", 1, 0x01).is_ok());
  CHECK(read_all(fs, "/d/f") == "acc");
  fs.crash();
  CHECK(read_all(fs, "/d/f") == "acc");
  CHECK(fs.corrupt_byte("/d/f", 3, 1).is(StatusCode::kInvalidArgument));
}

}  // namespace nodenomad
