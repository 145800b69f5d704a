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

class GatedFileSystem final : public FileSystemWrapper {
 public:
  explicit GatedFileSystem(FileSystem& inner) : FileSystemWrapper(inner) {}

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
    NN_ASSIGN_OR_RETURN(auto file, inner().open_writable(path, mode));
    return std::unique_ptr<WritableFile>(std::make_unique<GatedFile>(*this, std::move(file)));
  }

 private:
  class GatedFile final : public WritableFileWrapper {
   public:
    GatedFile(GatedFileSystem& fs, std::unique_ptr<WritableFile> inner)
        : WritableFileWrapper(std::move(inner)), fs_(fs) {}
    Status sync() override {
      fs_.pass_gate();
      return WritableFileWrapper::sync();
    }

   private:
    GatedFileSystem& fs_;
  };

  void pass_gate() {
    std::unique_lock lock(mu_);
    ++blocked_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return !closed_; });
    --blocked_;
    ++passed_;
  }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool closed_ = false;
  int blocked_ = 0;
  int passed_ = 0;
};

}  // namespace nodenomad::log_store_test
