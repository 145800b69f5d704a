// FaultInjectingFileSystem: an in-memory FileSystem that crashes on command.
//
// Used by NodeNomad's own tests and by the simulator, and usable by hosts to
// test their own recovery code. It models a disk with a volatile cache:
//
//   - Each file has its live bytes (what reads see) and its durable bytes
//     (what survived the last sync()). crash() throws the live bytes away and
//     keeps the durable ones; with tearing on, a random prefix of the unsynced
//     tail survives as well, as a torn write does on a real disk.
//   - Each directory has live entries and durable entries (as of its last
//     sync_dir()). crash() restores the durable entries, so a file created or
//     renamed without sync_dir() may vanish or revert.
//   - Directories themselves are durable as soon as create_dirs() returns,
//     and so is a directory's rename() (its whole tree moves).
//   - fail_next() makes a chosen write or sync fail with an I/O error;
//     die_after_ops() makes every mutating call fail from the n-th one on
//     (a machine that lost power mid-workload), which lets a test enumerate
//     crash points.
//
// Handles opened before a crash() fail every later call with IOError.
// Deterministic: the only randomness (tear lengths) comes from the seed.
// Thread safety: every method is safe from any thread (one internal mutex).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "nodenomad/file_system.hpp"
#include "nodenomad/rng.hpp"

namespace nodenomad::testing {

enum class FaultOp {
  kWrite,  // WritableFile::append
  kSync,   // WritableFile::sync and FileSystem::sync_dir
};

struct CrashOptions {
  // Keep a random prefix (0..all bytes) of each file's unsynced tail.
  bool tear_unsynced_tail = false;
};

class FaultInjectingFileSystem final : public FileSystem {
 public:
  explicit FaultInjectingFileSystem(std::uint64_t seed = 1);
  ~FaultInjectingFileSystem() override;

  // --- FileSystem ---
  Result<std::unique_ptr<WritableFile>> open_writable(const std::string& path,
                                                      WriteMode mode) override;
  Result<std::unique_ptr<ReadableFile>> open_readable(const std::string& path) override;
  Status rename(const std::string& from, const std::string& to) override;
  Status remove(const std::string& path) override;
  Status truncate(const std::string& path, std::uint64_t size) override;
  Result<std::vector<std::string>> list(const std::string& dir) override;
  Status create_dirs(const std::string& dir) override;
  Status remove_all(const std::string& dir) override;
  Status sync_dir(const std::string& dir) override;
  Result<bool> exists(const std::string& path) override;
  Result<std::uint64_t> file_size(const std::string& path) override;

  // --- Faults ---
  // Simulated power loss; clears die_after_ops() and pending fail_next().
  void crash(CrashOptions options = {});
  // The next `count` operations of kind `op` on a path containing
  // `path_substring` (empty: any path) fail with IOError ("injected EIO").
  void fail_next(FaultOp op, std::string path_substring = "", std::uint32_t count = 1);
  // Mutating calls (open for write, append, sync, rename, remove, truncate,
  // create_dirs, remove_all, sync_dir) number n, n+1, ... from now on fail
  // with IOError; n = 0 fails the very next one. crash() revives the disk.
  void die_after_ops(std::uint64_t n);
  bool dead() const;
  // Mutating calls made since construction; to size a crash-point search.
  std::uint64_t mutating_op_count() const;
  // XORs `mask` into the byte at `offset` of both the live and the durable
  // content (bit rot). NotFound / InvalidArgument if there is no such byte.
  Status corrupt_byte(const std::string& path, std::uint64_t offset, std::uint8_t mask);
  // Counters for assertions in tests.
  std::uint64_t sync_count() const;
  std::uint64_t bytes_appended() const;

 private:
  struct Inode;
  class Writable;
  class Readable;
  friend class Writable;
  friend class Readable;

  Status check_mutation_locked(FaultOp op, const std::string& path, bool is_fault_op);
  std::shared_ptr<Inode> find_locked(const std::string& path) const;
  bool dir_exists_locked(const std::string& dir) const;
  Status rename_dir_locked(const std::string& from, const std::string& to);
  Status append_locked(Inode& inode, std::uint64_t generation, const std::string& path,
                       std::string_view data);
  Status sync_locked(Inode& inode, std::uint64_t generation, const std::string& path);

  mutable std::mutex mu_;
  Rng rng_;
  std::uint64_t generation_ = 0;  // bumped by crash(); stale handles fail
  std::map<std::string, std::shared_ptr<Inode>> live_;     // path -> file
  std::map<std::string, std::shared_ptr<Inode>> durable_;  // as of sync_dir
  std::set<std::string> dirs_;
  struct PendingFault {
    FaultOp op;
    std::string path_substring;
    std::uint32_t remaining;
  };
  std::vector<PendingFault> faults_;
  std::uint64_t ops_ = 0;
  std::uint64_t die_at_op_ = UINT64_MAX;
  std::uint64_t syncs_ = 0;
  std::uint64_t bytes_appended_ = 0;
};

}  // namespace nodenomad::testing
