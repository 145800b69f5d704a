// PacedRemoval: see paced_removal.hpp.
#include "node/paced_removal.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace nodenomad::node {

namespace {
// Trash is a shard's log or data directory: two levels deep today.
constexpr int kMaxDepth = 8;
}  // namespace

Result<std::unique_ptr<PacedRemoval>> PacedRemoval::plan(FileSystem& fs,
                                                         std::vector<std::string> dirs,
                                                         std::uint64_t step_bytes) {
  if (step_bytes == 0) return Status::invalid_argument("PacedRemoval: step_bytes must be > 0");
  std::unique_ptr<PacedRemoval> r(new PacedRemoval(fs, std::move(dirs), step_bytes));
  for (const std::string& dir : r->dirs_) {
    NN_ASSIGN_OR_RETURN(const bool exists, fs.exists(dir));
    if (exists) NN_RETURN_IF_ERROR(r->walk(dir, 0));
  }
  // The biggest last: step() frees from the back, so small files (many
  // unlinks, each one a journal entry) go while the big one still waits.
  std::stable_sort(r->files_.begin(), r->files_.end(),
                   [](const File& a, const File& b) { return a.size > b.size; });
  return r;
}

Status PacedRemoval::walk(const std::string& dir, int depth) {
  if (depth > kMaxDepth) {
    return Status::invalid_argument(fmt::format("{}: more than {} levels deep", dir, kMaxDepth));
  }
  NN_ASSIGN_OR_RETURN(const std::vector<std::string> names, fs_.list(dir));
  for (const std::string& name : names) {
    const std::string path = dir + "/" + name;
    if (fs_.list(path).is_ok()) {
      NN_RETURN_IF_ERROR(walk(path, depth + 1));
      continue;
    }
    NN_ASSIGN_OR_RETURN(const std::uint64_t size, fs_.file_size(path));
    files_.push_back({path, size});
    bytes_left_ += size;
  }
  return Status::ok();
}

Result<bool> PacedRemoval::step() {
  std::uint64_t budget = step_bytes_;
  while (!files_.empty() && budget > 0) {
    File& f = files_.back();
    if (f.size > budget) {
      // Cut from the end; the slice's extents are freed by this commit.
      NN_RETURN_IF_ERROR(fs_.truncate(f.path, f.size - budget));
      f.size -= budget;
      bytes_left_ -= budget;
      return false;
    }
    NN_RETURN_IF_ERROR(fs_.remove(f.path));
    budget -= std::min(budget, std::max<std::uint64_t>(f.size, 1));
    bytes_left_ -= f.size;
    files_.pop_back();
  }
  if (!files_.empty()) return false;
  for (const std::string& dir : dirs_) NN_RETURN_IF_ERROR(fs_.remove_all(dir));
  return true;
}

Status PacedRemoval::remove_rest() {
  files_.clear();
  bytes_left_ = 0;
  Status first = Status::ok();
  for (const std::string& dir : dirs_) {
    Status removed = fs_.remove_all(dir);
    if (first.is_ok() && !removed.is_ok()) first = std::move(removed);
  }
  return first;
}

}  // namespace nodenomad::node
