// GatedFileSystem: forwards to another FileSystem, but can hold every file
// sync() at a gate until the test opens it. Lets a test put an fsync "in
// flight" for as long as it needs, and see who waits behind it, without
// sleeping.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>

#include "nodenomad/file_system.hpp"

namespace nodenomad::log_store_test {

class GatedFileSystem final : public FileSystem {
 public:
  explicit GatedFileSystem(FileSystem& inner) : inner_(inner) {}

  // From now on, file syncs block until open_gate().
  void close_gate() {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  void open_gate() {
    std::lock_guard lock(mu_);
    closed_ = false;
    cv_.notify_all();
  }
  // Waits until `n` syncs are blocked at the gate; false after `deadline`.
  bool wait_blocked(int n, std::chrono::milliseconds deadline) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, deadline, [&] { return blocked_ >= n; });
  }
  int syncs_passed() const {
    std::lock_guard lock(mu_);
    return passed_;
  }

  Result<std::unique_ptr<WritableFile>> open_writable(const std::string& path,
                                                      WriteMode mode) override {
    NN_ASSIGN_OR_RETURN(auto file, inner_.open_writable(path, mode));
    return std::unique_ptr<WritableFile>(std::make_unique<GatedFile>(*this, std::move(file)));
  }
  Result<std::unique_ptr<ReadableFile>> open_readable(const std::string& path) override {
    return inner_.open_readable(path);
  }
  Status rename(const std::string& from, const std::string& to) override {
    return inner_.rename(from, to);
  }
  Status remove(const std::string& path) override { return inner_.remove(path); }
  Status truncate(const std::string& path, std::uint64_t size) override {
    return inner_.truncate(path, size);
  }
  Result<std::vector<std::string>> list(const std::string& dir) override {
    return inner_.list(dir);
  }
  Status create_dirs(const std::string& dir) override { return inner_.create_dirs(dir); }
  Status remove_all(const std::string& dir) override { return inner_.remove_all(dir); }
  Status sync_dir(const std::string& dir) override { return inner_.sync_dir(dir); }
  Result<bool> exists(const std::string& path) override { return inner_.exists(path); }
  Result<std::uint64_t> file_size(const std::string& path) override {
    return inner_.file_size(path);
  }

 private:
  class GatedFile final : public WritableFile {
   public:
    GatedFile(GatedFileSystem& fs, std::unique_ptr<WritableFile> inner)
        : fs_(fs), inner_(std::move(inner)) {}
    Status append(std::string_view data) override { return inner_->append(data); }
    Status sync() override {
      fs_.pass_gate();
      return inner_->sync();
    }
    Status close() override { return inner_->close(); }
    std::uint64_t size() const override { return inner_->size(); }
    const std::string& path() const override { return inner_->path(); }

   private:
    GatedFileSystem& fs_;
    std::unique_ptr<WritableFile> inner_;
  };

  void pass_gate() {
    std::unique_lock lock(mu_);
    ++blocked_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return !closed_; });
    --blocked_;
    ++passed_;
  }

  FileSystem& inner_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool closed_ = false;
  int blocked_ = 0;
  int passed_ = 0;
};

}  // namespace nodenomad::log_store_test
