#include "nodenomad/testing/fault_injecting_file_system.hpp"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

namespace nodenomad::testing {

// One file's bytes. `durable` is what a crash leaves; `live` is what reads see.
struct FaultInjectingFileSystem::Inode {
  std::string live;
  std::string durable;
  // False while `live` is `durable` plus appended bytes, so a sync copies only
  // the new tail and a crash can tear it; set by truncation.
  bool diverged = false;
};

namespace {

Status injected(std::string_view what, const std::string& path) {
  return Status::io_error(fmt::format("{} {}: Input/output error (injected)", what, path));
}

Status stale_handle(const std::string& path) {
  return Status::io_error(fmt::format("{}: file handle from before a simulated crash", path));
}

std::string normalize(std::string_view path) {
  std::string out(path);
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

bool under_dir(const std::string& path, const std::string& dir) {
  return path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
         path[dir.size()] == '/';
}

}  // namespace

class FaultInjectingFileSystem::Writable final : public WritableFile {
 public:
  Writable(FaultInjectingFileSystem& fs, std::string path, std::shared_ptr<Inode> inode,
           std::uint64_t generation)
      : fs_(fs), path_(std::move(path)), inode_(std::move(inode)), generation_(generation) {}

  Status append(std::string_view data) override {
    std::lock_guard lock(fs_.mu_);
    if (closed_) return Status::io_error(fmt::format("append to closed file {}", path_));
    return fs_.append_locked(*inode_, generation_, path_, data);
  }
  Status sync() override {
    std::lock_guard lock(fs_.mu_);
    if (closed_) return Status::io_error(fmt::format("sync of closed file {}", path_));
    return fs_.sync_locked(*inode_, generation_, path_);
  }
  Status close() override {
    closed_ = true;
    return Status::ok();
  }
  std::uint64_t size() const override {
    std::lock_guard lock(fs_.mu_);
    return inode_->live.size();
  }
  const std::string& path() const override { return path_; }

 private:
  FaultInjectingFileSystem& fs_;
  std::string path_;
  std::shared_ptr<Inode> inode_;
  std::uint64_t generation_;
  bool closed_ = false;
};

class FaultInjectingFileSystem::Readable final : public ReadableFile {
 public:
  Readable(FaultInjectingFileSystem& fs, std::string path, std::shared_ptr<Inode> inode,
           std::uint64_t generation)
      : fs_(fs), path_(std::move(path)), inode_(std::move(inode)), generation_(generation) {}

  Result<std::size_t> read_at(std::uint64_t offset, std::span<char> dst) override {
    std::lock_guard lock(fs_.mu_);
    if (generation_ != fs_.generation_) return stale_handle(path_);
    const std::string& bytes = inode_->live;
    if (offset >= bytes.size()) return std::size_t{0};
    const std::size_t n = std::min<std::size_t>(dst.size(), bytes.size() - offset);
    std::memcpy(dst.data(), bytes.data() + offset, n);
    return n;
  }
  Result<std::uint64_t> size() override {
    std::lock_guard lock(fs_.mu_);
    if (generation_ != fs_.generation_) return stale_handle(path_);
    return static_cast<std::uint64_t>(inode_->live.size());
  }
  const std::string& path() const override { return path_; }

 private:
  FaultInjectingFileSystem& fs_;
  std::string path_;
  std::shared_ptr<Inode> inode_;
  std::uint64_t generation_;
};

FaultInjectingFileSystem::FaultInjectingFileSystem(std::uint64_t seed) : rng_(seed) {
  dirs_.insert(".");
  dirs_.insert("/");
}

FaultInjectingFileSystem::~FaultInjectingFileSystem() = default;

Status FaultInjectingFileSystem::check_mutation_locked(FaultOp op, const std::string& path,
                                                       bool is_fault_op) {
  const std::uint64_t op_number = ops_++;
  if (op_number >= die_at_op_) return injected("operation after simulated power loss on", path);
  if (!is_fault_op) return Status::ok();
  for (auto it = faults_.begin(); it != faults_.end(); ++it) {
    if (it->op != op || path.find(it->path_substring) == std::string::npos) continue;
    if (--it->remaining == 0) faults_.erase(it);
    return injected(op == FaultOp::kWrite ? "write" : "sync", path);
  }
  return Status::ok();
}

std::shared_ptr<FaultInjectingFileSystem::Inode> FaultInjectingFileSystem::find_locked(
    const std::string& path) const {
  auto it = live_.find(path);
  return it == live_.end() ? nullptr : it->second;
}

bool FaultInjectingFileSystem::dir_exists_locked(const std::string& dir) const {
  return dirs_.count(dir) > 0;
}

Status FaultInjectingFileSystem::append_locked(Inode& inode, std::uint64_t generation,
                                               const std::string& path, std::string_view data) {
  if (generation != generation_) return stale_handle(path);
  NN_RETURN_IF_ERROR(check_mutation_locked(FaultOp::kWrite, path, true));
  inode.live.append(data);
  bytes_appended_ += data.size();
  return Status::ok();
}

Status FaultInjectingFileSystem::sync_locked(Inode& inode, std::uint64_t generation,
                                             const std::string& path) {
  if (generation != generation_) return stale_handle(path);
  NN_RETURN_IF_ERROR(check_mutation_locked(FaultOp::kSync, path, true));
  if (inode.diverged) {
    inode.durable = inode.live;
    inode.diverged = false;
  } else {
    inode.durable.append(inode.live, inode.durable.size());
  }
  ++syncs_;
  return Status::ok();
}

Result<std::unique_ptr<WritableFile>> FaultInjectingFileSystem::open_writable(
    const std::string& raw_path, WriteMode mode) {
  const std::string path = normalize(raw_path);
  std::lock_guard lock(mu_);
  NN_RETURN_IF_ERROR(check_mutation_locked(FaultOp::kWrite, path, false));
  if (!dir_exists_locked(parent_dir(path))) {
    return Status::not_found(fmt::format("open for writing {}: No such file or directory", path));
  }
  auto inode = find_locked(path);
  if (!inode) {
    inode = std::make_shared<Inode>();
    live_[path] = inode;
  } else if (mode == WriteMode::kTruncate) {
    inode->live.clear();
    inode->diverged = true;
  }
  return std::unique_ptr<WritableFile>(std::make_unique<Writable>(*this, path, inode, generation_));
}

Result<std::unique_ptr<ReadableFile>> FaultInjectingFileSystem::open_readable(
    const std::string& raw_path) {
  const std::string path = normalize(raw_path);
  std::lock_guard lock(mu_);
  auto inode = find_locked(path);
  if (!inode) {
    return Status::not_found(fmt::format("open for reading {}: No such file or directory", path));
  }
  return std::unique_ptr<ReadableFile>(std::make_unique<Readable>(*this, path, inode, generation_));
}

Status FaultInjectingFileSystem::rename(const std::string& raw_from, const std::string& raw_to) {
  const std::string from = normalize(raw_from);
  const std::string to = normalize(raw_to);
  std::lock_guard lock(mu_);
  NN_RETURN_IF_ERROR(check_mutation_locked(FaultOp::kWrite, from, false));
  if (dir_exists_locked(from)) return rename_dir_locked(from, to);
  auto inode = find_locked(from);
  if (!inode) return Status::not_found(fmt::format("rename {} -> {}: No such file", from, to));
  if (!dir_exists_locked(parent_dir(to))) {
    return Status::not_found(fmt::format("rename {} -> {}: No such directory", from, to));
  }
  live_.erase(from);
  live_[to] = std::move(inode);
  return Status::ok();
}

// A directory's rename is durable at once, like the directories themselves:
// the tree moves whole, in the live and the durable view alike.
Status FaultInjectingFileSystem::rename_dir_locked(const std::string& from, const std::string& to) {
  if (dir_exists_locked(to) || live_.count(to) > 0) {
    return Status::invalid_argument(fmt::format("rename {} -> {}: the target exists", from, to));
  }
  if (!dir_exists_locked(parent_dir(to))) {
    return Status::not_found(fmt::format("rename {} -> {}: No such directory", from, to));
  }
  if (to == from || under_dir(to, from)) {
    return Status::invalid_argument(fmt::format("rename {} -> {}: into itself", from, to));
  }
  const auto moved = [&](const std::string& path) { return to + path.substr(from.size()); };
  for (auto* names : {&live_, &durable_}) {
    std::vector<std::string> paths;
    for (const auto& [path, inode] : *names) {
      if (under_dir(path, from)) paths.push_back(path);
    }
    for (const std::string& path : paths) {
      auto node = names->extract(path);
      node.key() = moved(path);
      names->insert(std::move(node));
    }
  }
  std::vector<std::string> dirs;
  for (const std::string& d : dirs_) {
    if (d == from || under_dir(d, from)) dirs.push_back(d);
  }
  for (const std::string& d : dirs) {
    dirs_.erase(d);
    dirs_.insert(moved(d));
  }
  return Status::ok();
}

Status FaultInjectingFileSystem::remove(const std::string& raw_path) {
  const std::string path = normalize(raw_path);
  std::lock_guard lock(mu_);
  NN_RETURN_IF_ERROR(check_mutation_locked(FaultOp::kWrite, path, false));
  if (live_.erase(path) == 0) {
    return Status::not_found(fmt::format("remove {}: No such file or directory", path));
  }
  return Status::ok();
}

Status FaultInjectingFileSystem::truncate(const std::string& raw_path, std::uint64_t size) {
  const std::string path = normalize(raw_path);
  std::lock_guard lock(mu_);
  NN_RETURN_IF_ERROR(check_mutation_locked(FaultOp::kSync, path, true));
  auto inode = find_locked(path);
  if (!inode) return Status::not_found(fmt::format("truncate {}: No such file", path));
  inode->live.resize(static_cast<std::size_t>(size), '\0');
  inode->durable = inode->live;  // truncate() is durable by contract
  inode->diverged = false;
  return Status::ok();
}

Result<std::vector<std::string>> FaultInjectingFileSystem::list(const std::string& raw_dir) {
  const std::string dir = normalize(raw_dir);
  std::lock_guard lock(mu_);
  if (!dir_exists_locked(dir)) {
    return Status::not_found(fmt::format("list {}: No such directory", dir));
  }
  std::vector<std::string> names;
  for (const auto& [path, inode] : live_) {
    if (parent_dir(path) == dir) names.push_back(path.substr(path.rfind('/') + 1));
  }
  for (const auto& d : dirs_) {
    if (d != dir && parent_dir(d) == dir) names.push_back(d.substr(d.rfind('/') + 1));
  }
  std::sort(names.begin(), names.end());
  return names;
}

Status FaultInjectingFileSystem::create_dirs(const std::string& raw_dir) {
  const std::string dir = normalize(raw_dir);
  std::lock_guard lock(mu_);
  NN_RETURN_IF_ERROR(check_mutation_locked(FaultOp::kWrite, dir, false));
  for (std::string d = dir; !dirs_.count(d); d = parent_dir(d)) {
    if (live_.count(d)) {
      return Status::io_error(fmt::format("create directory {}: {} is a file", dir, d));
    }
    dirs_.insert(d);
  }
  return Status::ok();
}

Status FaultInjectingFileSystem::remove_all(const std::string& raw_dir) {
  const std::string dir = normalize(raw_dir);
  std::lock_guard lock(mu_);
  NN_RETURN_IF_ERROR(check_mutation_locked(FaultOp::kWrite, dir, false));
  // Removing a whole tree is treated as durable at once (as the directories
  // themselves are), so a crash never resurrects half of it.
  for (auto* names : {&live_, &durable_}) {
    std::erase_if(*names, [&](const auto& kv) { return kv.first == dir || under_dir(kv.first, dir); });
  }
  std::erase_if(dirs_, [&](const std::string& d) { return d == dir || under_dir(d, dir); });
  return Status::ok();
}

Status FaultInjectingFileSystem::sync_dir(const std::string& raw_dir) {
  const std::string dir = normalize(raw_dir);
  std::lock_guard lock(mu_);
  NN_RETURN_IF_ERROR(check_mutation_locked(FaultOp::kSync, dir, true));
  if (!dir_exists_locked(dir)) {
    return Status::not_found(fmt::format("sync directory {}: No such directory", dir));
  }
  std::erase_if(durable_, [&](const auto& kv) { return parent_dir(kv.first) == dir; });
  for (const auto& [path, inode] : live_) {
    if (parent_dir(path) == dir) durable_[path] = inode;
  }
  ++syncs_;
  return Status::ok();
}

Result<bool> FaultInjectingFileSystem::exists(const std::string& raw_path) {
  const std::string path = normalize(raw_path);
  std::lock_guard lock(mu_);
  return live_.count(path) > 0 || dirs_.count(path) > 0;
}

Result<std::uint64_t> FaultInjectingFileSystem::file_size(const std::string& raw_path) {
  const std::string path = normalize(raw_path);
  std::lock_guard lock(mu_);
  auto inode = find_locked(path);
  if (!inode) return Status::not_found(fmt::format("stat {}: No such file", path));
  return static_cast<std::uint64_t>(inode->live.size());
}

void FaultInjectingFileSystem::crash(CrashOptions options) {
  std::lock_guard lock(mu_);
  ++generation_;
  live_ = durable_;
  for (auto& [path, inode] : live_) {
    std::string next = inode->durable;
    const std::string& lost = inode->live;
    // The unsynced tail is what follows the durable bytes, when the live
    // bytes still extend them (an append-only file).
    const bool extends = !inode->diverged && lost.size() > next.size();
    if (options.tear_unsynced_tail && extends) {
      const std::size_t keep = rng_.uniform(lost.size() - next.size() + 1);
      next.append(lost, next.size(), keep);
    }
    inode->live = next;
    inode->durable = std::move(next);
    inode->diverged = false;
  }
  faults_.clear();
  die_at_op_ = UINT64_MAX;
}

void FaultInjectingFileSystem::fail_next(FaultOp op, std::string path_substring,
                                         std::uint32_t count) {
  std::lock_guard lock(mu_);
  if (count > 0) faults_.push_back({op, std::move(path_substring), count});
}

void FaultInjectingFileSystem::die_after_ops(std::uint64_t n) {
  std::lock_guard lock(mu_);
  die_at_op_ = ops_ + n;
}

bool FaultInjectingFileSystem::dead() const {
  std::lock_guard lock(mu_);
  return ops_ >= die_at_op_;
}

std::uint64_t FaultInjectingFileSystem::mutating_op_count() const {
  std::lock_guard lock(mu_);
  return ops_;
}

Status FaultInjectingFileSystem::corrupt_byte(const std::string& raw_path, std::uint64_t offset,
                                              std::uint8_t mask) {
  const std::string path = normalize(raw_path);
  std::lock_guard lock(mu_);
  auto inode = find_locked(path);
  if (!inode) return Status::not_found(fmt::format("corrupt {}: No such file", path));
  if (offset >= inode->live.size()) {
    return Status::invalid_argument(fmt::format("corrupt {}: offset {} is past the end ({} bytes)",
                                                path, offset, inode->live.size()));
  }
  inode->live[offset] = static_cast<char>(inode->live[offset] ^ mask);
  if (offset < inode->durable.size()) {
    inode->durable[offset] = static_cast<char>(inode->durable[offset] ^ mask);
  }
  return Status::ok();
}

std::uint64_t FaultInjectingFileSystem::sync_count() const {
  std::lock_guard lock(mu_);
  return syncs_;
}

std::uint64_t FaultInjectingFileSystem::bytes_appended() const {
  std::lock_guard lock(mu_);
  return bytes_appended_;
}

}  // namespace nodenomad::testing
