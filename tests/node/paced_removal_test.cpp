// PacedRemoval: a removal frees at most a step's bytes per step (cutting a
// big file from its end, unlinking it once it fits), takes the small files
// first, ends with the directories gone, skips a directory that is not
// there, and a failed step leaves remove_rest() to finish.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "node/node_test_util.hpp"
#include "node/paced_removal.hpp"

namespace nodenomad::node {
namespace {

constexpr std::uint64_t kMiB = 1ull << 20;

// Records what is freed, and can fail a truncate.
class RecordingFileSystem final : public FileSystemWrapper {
 public:
  explicit RecordingFileSystem(FileSystem& inner) : FileSystemWrapper(inner) {}
  Status truncate(const std::string& path, std::uint64_t size) override {
    if (fail_truncate) return Status::io_error("truncate " + path + ": injected");
    const std::uint64_t before = std::filesystem::file_size(path);
    freed += before - size;
    ops.push_back("truncate " + std::filesystem::path(path).filename().string());
    return FileSystemWrapper::truncate(path, size);
  }
  Status remove(const std::string& path) override {
    freed += std::filesystem::file_size(path);
    ops.push_back("remove " + std::filesystem::path(path).filename().string());
    return FileSystemWrapper::remove(path);
  }
  std::uint64_t freed = 0;
  std::vector<std::string> ops;
  bool fail_truncate = false;
};

// A file of `size` bytes (sparse: only its length matters here).
void make_file(const std::filesystem::path& path, std::uint64_t size) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path).put('x');
  std::filesystem::resize_file(path, size);
}

TEST_CASE("paced removal: each step frees at most a step, small files first", "[paced_removal]") {
  node_test::TempDir tmp;
  const std::filesystem::path root = tmp.path();
  make_file(root / "log" / "big", 40 * kMiB);
  make_file(root / "data" / "snapshots" / "snap", 5 * kMiB);
  make_file(root / "data" / "small", 100);
  RecordingFileSystem fs(PosixFileSystem::instance());
  Result<std::unique_ptr<PacedRemoval>> planned = PacedRemoval::plan(
      fs, {(root / "log").string(), (root / "data").string(), (root / "absent").string()},
      16 * kMiB);
  REQUIRE(planned.is_ok());
  PacedRemoval& removal = **planned;
  CHECK(removal.bytes_left() == 45 * kMiB + 100);
  int steps = 0;
  bool done = false;
  while (!done) {
    const std::uint64_t freed_before = fs.freed;
    Result<bool> step = removal.step();
    REQUIRE(step.is_ok());
    done = *step;
    ++steps;
    INFO("step " << steps);
    CHECK(fs.freed - freed_before <= 16 * kMiB);
    CHECK(removal.bytes_left() == 45 * kMiB + 100 - fs.freed);
    REQUIRE(steps < 10);
  }
  // 100 B + 5 MiB + the first 11 MiB of big; 16 MiB of big; its last 13 MiB.
  CHECK(steps == 3);
  CHECK(fs.freed == 45 * kMiB + 100);
  CHECK(fs.ops == std::vector<std::string>{"remove small", "remove snap", "truncate big",
                                           "truncate big", "remove big"});
  CHECK_FALSE(std::filesystem::exists(root / "log"));
  CHECK_FALSE(std::filesystem::exists(root / "data"));
}

TEST_CASE("paced removal: empty directories go in one step; a step of 0 is refused",
          "[paced_removal]") {
  node_test::TempDir tmp;
  const std::filesystem::path root = tmp.path();
  std::filesystem::create_directories(root / "empty" / "snapshots");
  Result<std::unique_ptr<PacedRemoval>> planned =
      PacedRemoval::plan(PosixFileSystem::instance(), {(root / "empty").string()}, kMiB);
  REQUIRE(planned.is_ok());
  Result<bool> step = (*planned)->step();
  REQUIRE(step.is_ok());
  CHECK(*step);
  CHECK_FALSE(std::filesystem::exists(root / "empty"));
  Result<std::unique_ptr<PacedRemoval>> zero =
      PacedRemoval::plan(PosixFileSystem::instance(), {(root / "empty").string()}, 0);
  REQUIRE(zero.status().is(StatusCode::kInvalidArgument));
  CHECK(std::string(zero.status().message()).find("step_bytes") != std::string::npos);
}

TEST_CASE("paced removal: after a failed step, remove_rest() removes everything",
          "[paced_removal]") {
  node_test::TempDir tmp;
  const std::filesystem::path root = tmp.path();
  make_file(root / "log" / "big", 40 * kMiB);
  RecordingFileSystem fs(PosixFileSystem::instance());
  fs.fail_truncate = true;
  Result<std::unique_ptr<PacedRemoval>> planned =
      PacedRemoval::plan(fs, {(root / "log").string()}, 16 * kMiB);
  REQUIRE(planned.is_ok());
  Result<bool> step = (*planned)->step();
  REQUIRE(step.status().is(StatusCode::kIOError));
  CHECK(std::string(step.status().message()).find("injected") != std::string::npos);
  CHECK(std::filesystem::exists(root / "log" / "big"));
  REQUIRE((*planned)->remove_rest().is_ok());
  CHECK_FALSE(std::filesystem::exists(root / "log"));
  CHECK((*planned)->bytes_left() == 0);
}

}  // namespace
}  // namespace nodenomad::node
