#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "common/record_format.hpp"
#include "common/record_io.hpp"
#include "nodenomad/testing/fault_injecting_file_system.hpp"

namespace nodenomad {
namespace {

using testing::FaultInjectingFileSystem;

const std::vector<std::string> kPayloads = {"first", "", std::string("bin\0ary", 7),
                                            std::string(3000, 'x'), "last"};

std::string framed(const std::vector<std::string>& payloads) {
  std::string out;
  for (const auto& p : payloads) record::encode(out, p);
  return out;
}

void put_file(FaultInjectingFileSystem& fs, const std::string& path, std::string_view bytes) {
  REQUIRE(fs.create_dirs(parent_dir(path)).is_ok());
  auto f = fs.open_writable(path, WriteMode::kTruncate);
  REQUIRE(f.is_ok());
  REQUIRE((*f)->append(bytes).is_ok());
  REQUIRE((*f)->sync().is_ok());
}

Result<record::ScanResult> collect(FileSystem& fs, const std::string& path,
                                   std::vector<std::string>& out, bool recover) {
  out.clear();
  auto visit = [&](std::string_view payload, std::uint64_t) {
    out.emplace_back(payload);
    return Status::ok();
  };
  return recover ? record::recover(fs, path, 0, visit) : record::scan(fs, path, 0, visit);
}

}  // namespace

TEST_CASE("records round-trip in order", "[record_io]") {
  FaultInjectingFileSystem fs;
  put_file(fs, "/r/f", framed(kPayloads));
  std::vector<std::string> got;
  auto r = collect(fs, "/r/f", got, false);
  REQUIRE(r.is_ok());
  CHECK(got == kPayloads);
  CHECK(r->records == kPayloads.size());
  CHECK_FALSE(r->torn_tail);
  CHECK(r->valid_bytes == r->file_bytes);
}

TEST_CASE("every cut of the last record is a torn tail, truncated on recover", "[record_io]") {
  const std::string bytes = framed(kPayloads);
  const std::size_t last_start = bytes.size() - record::framed_size(kPayloads.back().size());
  for (std::size_t cut = last_start + 1; cut < bytes.size(); ++cut) {
    FaultInjectingFileSystem fs;
    put_file(fs, "/r/f", bytes.substr(0, cut));
    std::vector<std::string> got;
    auto r = collect(fs, "/r/f", got, true);
    REQUIRE(r.is_ok());
    CHECK(r->torn_tail);
    CHECK(r->valid_bytes == last_start);
    CHECK(got == std::vector<std::string>(kPayloads.begin(), kPayloads.end() - 1));
    CHECK(*fs.file_size("/r/f") == last_start);
  }
}

TEST_CASE("a zero-filled tail is torn, garbage after a bad record is corruption", "[record_io]") {
  FaultInjectingFileSystem fs;
  const std::string good = framed({"a", "b"});
  put_file(fs, "/r/zeros", good + std::string(100, '\0'));
  std::vector<std::string> got;
  auto r = collect(fs, "/r/zeros", got, true);
  REQUIRE(r.is_ok());
  CHECK(r->torn_tail);
  CHECK(got.size() == 2);
  CHECK(*fs.file_size("/r/zeros") == good.size());

  put_file(fs, "/r/junk", good + std::string(100, '\x5a'));
  auto bad = collect(fs, "/r/junk", got, true);
  CHECK(bad.status().is(StatusCode::kCorruption));
}

TEST_CASE("a flipped bit anywhere before the last record is refused with file and offset",
          "[record_io]") {
  const std::string bytes = framed(kPayloads);
  const std::size_t last_start = bytes.size() - record::framed_size(kPayloads.back().size());
  for (std::size_t offset = 0; offset < last_start; ++offset) {
    FaultInjectingFileSystem fs;
    put_file(fs, "/r/f", bytes);
    REQUIRE(fs.corrupt_byte("/r/f", offset, 0x10).is_ok());
    std::vector<std::string> got;
    auto r = collect(fs, "/r/f", got, true);
    INFO("flipped byte at offset " << offset);
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().is(StatusCode::kCorruption));
    CHECK(r.status().message().find("/r/f") != std::string_view::npos);
    CHECK(r.status().message().find("offset") != std::string_view::npos);
    CHECK(*fs.file_size("/r/f") == bytes.size());  // nothing cut on corruption
  }
}

TEST_CASE("a huge length from disk is corruption, not an allocation", "[record_io]") {
  FaultInjectingFileSystem fs;
  std::string bytes = framed({"ok"});
  const std::uint32_t huge = 0x7fffffff;
  const std::uint32_t header_sum = record::header_checksum(huge);
  for (int i = 0; i < 4; ++i) bytes += static_cast<char>((huge >> (8 * i)) & 0xff);
  for (int i = 0; i < 4; ++i) bytes += static_cast<char>((header_sum >> (8 * i)) & 0xff);
  bytes += std::string(8, '\x01') + "trailing";
  put_file(fs, "/r/f", bytes);
  std::vector<std::string> got;
  auto r = collect(fs, "/r/f", got, false);
  CHECK(r.status().is(StatusCode::kCorruption));
  CHECK(r.status().message().find("limit") != std::string_view::npos);
}

TEST_CASE("a flipped bit in a length is corruption even when it points past the end",
          "[record_io]") {
  // Without the header checksum this would pass for a torn tail and silently
  // drop every record after it.
  FaultInjectingFileSystem fs;
  put_file(fs, "/r/f", framed(kPayloads));
  REQUIRE(fs.corrupt_byte("/r/f", 2, 0x01).is_ok());  // length += 65536
  std::vector<std::string> got;
  CHECK(collect(fs, "/r/f", got, true).status().is(StatusCode::kCorruption));
}

TEST_CASE("a visitor error stops the scan and is returned", "[record_io]") {
  FaultInjectingFileSystem fs;
  put_file(fs, "/r/f", framed(kPayloads));
  int seen = 0;
  auto r = record::scan(fs, "/r/f", 0, [&](std::string_view, std::uint64_t) {
    return ++seen == 2 ? Status::invalid_argument("stop here") : Status::ok();
  });
  CHECK(r.status().message() == "stop here");
  CHECK(seen == 2);
}

}  // namespace nodenomad
