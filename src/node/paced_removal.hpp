// Deleting a dropped shard's files a slice at a time.
//
// Freeing a 1 GiB file at once makes the next journal commit of the whole
// file system carry it: with online discard (ext4 `-o discard`, common on
// cloud disks) the commit also trims every freed extent before it ends, and
// every fsync on that file system waits for it. Measured by migration_bench:
// the Cleanup of a 1 GiB shard held both nodes' WAL fsyncs for 120 ms (three
// 30-50 ms fdatasyncs in a row), the clients' p99 after the move 15-20x
// what it was before. RocksDB's DeleteScheduler cuts files in chunks for the
// same reason.
//
// So a removal first plans the files under its directories, then each
// step() frees at most `step_bytes`: it cuts the file being freed by that
// much (truncate, which makes the new size durable: the commit it forces
// carries only that slice) or, once a file is no longer than a step,
// unlinks it. The last step removes the emptied directories. The caller
// paces the steps (the node, on its disk thread, one every few ms) and
// runs them in order; a crash in between leaves trash the next open()
// removes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nodenomad/file_system.hpp"
#include "nodenomad/status.hpp"

namespace nodenomad::node {

class PacedRemoval {
 public:
  // Walks `dirs` (each removed entirely; one that does not exist is
  // skipped). Directories are told from files by whether they list.
  static Result<std::unique_ptr<PacedRemoval>> plan(FileSystem& fs, std::vector<std::string> dirs,
                                                    std::uint64_t step_bytes);

  // Frees the next slice. true: everything is gone.
  Result<bool> step();
  // After a failed step: removes what is left at once.
  Status remove_rest();

  std::uint64_t bytes_left() const { return bytes_left_; }

 private:
  struct File {
    std::string path;
    std::uint64_t size;
  };
  PacedRemoval(FileSystem& fs, std::vector<std::string> dirs, std::uint64_t step_bytes)
      : fs_(fs), dirs_(std::move(dirs)), step_bytes_(step_bytes) {}
  Status walk(const std::string& dir, int depth);

  FileSystem& fs_;
  std::vector<std::string> dirs_;
  std::uint64_t step_bytes_;
  std::vector<File> files_;  // freed from the back
  std::uint64_t bytes_left_ = 0;
};

}  // namespace nodenomad::node
