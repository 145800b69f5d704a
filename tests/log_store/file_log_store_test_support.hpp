// Helpers for the FileLogStore-only tests.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/record_io.hpp"
#include "log_store/file_log_store_format.hpp"
#include "log_store_test_support.hpp"
#include "nodenomad/file_log_store.hpp"
#include "nodenomad/logging.hpp"
#include "nodenomad/testing/fault_injecting_file_system.hpp"

namespace nodenomad::log_store_test {

inline const std::string kDir = "/data/group-7/log";

inline FileLogStoreOptions small_segments(std::uint64_t segment_bytes = 512) {
  FileLogStoreOptions options;
  options.segment_bytes = segment_bytes;
  return options;
}

inline std::unique_ptr<FileLogStore> open_store(FileSystem& fs, FileLogStoreOptions options = {},
                                                const std::string& dir = kDir) {
  auto opened = FileLogStore::open(fs, dir, options);
  INFO(opened.status().to_string());
  REQUIRE(opened.is_ok());
  return std::move(opened).value();
}

inline LogIndex sync_ok(LogStore& store) {
  auto durable = store.sync();
  INFO(durable.status().to_string());
  REQUIRE(durable.is_ok());
  return *durable;
}

// Paths of the segment files in `dir`, oldest first.
inline std::vector<std::string> segment_paths(FileSystem& fs, const std::string& dir = kDir) {
  auto names = fs.list(dir);
  REQUIRE(names.is_ok());
  std::vector<std::string> out;
  for (const std::string& name : *names) {
    if (file_log_store_format::parse_segment_file_name(name)) out.push_back(join_path(dir, name));
  }
  return out;
}

struct RecordSpan {
  std::uint64_t offset = 0;
  std::uint64_t end = 0;
  file_log_store_format::RecordType type{};
};

// The records of a segment file, in order.
inline std::vector<RecordSpan> record_spans(FileSystem& fs, const std::string& path) {
  std::vector<RecordSpan> out;
  auto scanned = record::scan(fs, path, 0, [&](std::string_view payload, std::uint64_t offset) {
    out.push_back(RecordSpan{offset, offset + record::framed_size(payload.size()),
                             static_cast<file_log_store_format::RecordType>(payload[0])});
    return Status::ok();
  });
  REQUIRE(scanned.is_ok());
  REQUIRE_FALSE(scanned->torn_tail);
  return out;
}

// Collects what the library logs while alive; restores the default sink after.
class LogCapture {
 public:
  LogCapture() {
    set_log_sink([this](LogLevel, std::string_view component, std::string_view message) {
      std::lock_guard lock(mu_);
      lines_.push_back(std::string(component) + ": " + std::string(message));
    });
  }
  ~LogCapture() { set_log_sink(nullptr); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  std::vector<std::string> lines() const {
    std::lock_guard lock(mu_);
    return lines_;
  }
  bool contains(std::string_view needle) const {
    for (const std::string& line : lines()) {
      if (line.find(needle) != std::string::npos) return true;
    }
    return false;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

}  // namespace nodenomad::log_store_test
