// Cleanup (docs/migration.md, "Execution"): the source drops its copy of a
// shard once its own view has the new placement. The replica goes on the
// loop; its state is freed and its files deleted by the disk worker.
#include <fmt/format.h>

#include "node/migration_support.hpp"
#include "node/node_impl.hpp"
#include "node/paced_removal.hpp"
#include "nodenomad/logging.hpp"

namespace nodenomad {

using node::answer_with;

namespace {

// A dropped shard's directories wait for deletion under this prefix.
constexpr std::string_view kTrashPrefix = ".trash-";
// The most a slice of a paced removal frees (remove_paced()).
constexpr std::uint64_t kRemovalStepBytes = 4ull << 20;

// Bytes of the files under `path` (a file or a directory tree). A directory
// is listed, never sized: stat gives a directory a size of its own.
Result<std::uint64_t> tree_bytes(FileSystem& fs, const std::string& path, int depth) {
  Result<std::vector<std::string>> names = fs.list(path);
  if (!names.is_ok()) {
    Result<std::uint64_t> size = fs.file_size(path);
    return size.is_ok() ? *size : std::uint64_t{0};  // gone already
  }
  if (depth == 0) return std::uint64_t{0};
  std::uint64_t total = 0;
  for (const std::string& name : *names) {
    NN_ASSIGN_OR_RETURN(const std::uint64_t n, tree_bytes(fs, path + "/" + name, depth - 1));
    total += n;
  }
  return total;
}

}  // namespace

// --- Cleanup: the source drops the shard ---

void Node::Impl::serve_drop_shard(ShardId shard, Epoch min_epoch,
                                  std::function<void(node::RpcResponse)> answer, int tries) {
  const std::shared_ptr<const ClusterMetadata> current = metadata_->current();
  if (!current->initialized() || shard.value() >= current->shard_count()) {
    return answer(answer_with(Status::invalid_argument(
        fmt::format("shard {} does not exist here", shard.value()))));
  }
  const ShardPlacement& p = current->shard_map().placement(shard);
  // Only a placement at least as new as the coordinator's may drop a copy:
  // an older view could still list this node.
  if (p.epoch < min_epoch) {
    return answer(answer_with(Status::unavailable(fmt::format(
        "this node's view of shard {} is at epoch {}, behind {}", shard.value(),
        p.epoch.value(), min_epoch.value()))));
  }
  if (p.hosts(options_.id)) {
    return answer(answer_with(Status::invalid_argument(fmt::format(
        "{} is still a replica of shard {} at epoch {}; it is not dropped", options_.id.str(),
        shard.value(), p.epoch.value()))));
  }
  node::GroupReplica* replica = shard_replica(shard);
  if (replica != nullptr && replica->sync_in_flight()) {
    // The disk thread holds its log store: wait for it.
    if (tries <= 0) return answer(answer_with(Status::unavailable("the replica stays busy")));
    post_after(5, [shard, min_epoch, answer, tries](Impl& self) {
      self.serve_drop_shard(shard, min_epoch, answer, tries - 1);
    });
    return;
  }
  Result<std::uint64_t> freed = drop_shard_group(shard);
  if (!freed.is_ok()) return answer(answer_with(freed.status()));
  node::RpcResponse r = answer_with(Status::ok());
  r.reply.version = *freed;
  answer(std::move(r));
}

Result<std::uint64_t> Node::Impl::drop_shard_group(ShardId shard) {
  const GroupId group = group_of_shard(shard);
  const std::string log_dir = group_log_dir(group);
  const std::string data_dir = shard_data_dir(shard);
  NN_ASSIGN_OR_RETURN(const bool log_exists, fs_->exists(log_dir));
  NN_ASSIGN_OR_RETURN(const bool data_exists, fs_->exists(data_dir));
  if (!groups_.contains(group) && !log_exists && !data_exists) return std::uint64_t{0};
  std::uint64_t bytes = 0;
  if (log_exists) {
    NN_ASSIGN_OR_RETURN(const std::uint64_t n, tree_bytes(*fs_, log_dir, 3));
    bytes += n;
  }
  if (data_exists) {
    NN_ASSIGN_OR_RETURN(const std::uint64_t n, tree_bytes(*fs_, data_dir, 3));
    bytes += n;
  }
  // The replica goes first (its log store's files are open), on the loop.
  // Freeing the state (a record per key: a second per million) and
  // deleting the files go to the disk worker, after any compaction of this
  // shard still writing there; the directories are renamed aside first, so
  // the shard can come back here at once without meeting its old files.
  groups_.erase(group);
  std::shared_ptr<StorageEngine> engine;
  if (auto it = storage_.find(shard); it != storage_.end()) {
    engine = std::move(it->second);
    storage_.erase(it);
  }
  leader_hints_.forget(shard);
  verify_sessions_.erase(shard);
  target_sessions_.erase(shard);
  promoted_ops_.erase(shard);
  expiring_.erase(group);
  for (auto it = snapshot_queues_.begin(); it != snapshot_queues_.end();) {
    it = it->first.first == group ? snapshot_queues_.erase(it) : std::next(it);
  }
  // The log first: a data directory without its log is never opened, a log
  // without its data would be (an empty state behind a compacted log).
  std::vector<std::string> trash;
  if (log_exists) {
    NN_ASSIGN_OR_RETURN(std::string moved, move_to_trash(log_dir));
    trash.push_back(std::move(moved));
  }
  if (data_exists) {
    NN_ASSIGN_OR_RETURN(std::string moved, move_to_trash(data_dir));
    trash.push_back(std::move(moved));
  }
  FileSystem* fs = fs_;
  const std::string who = options_.id.str();
  std::weak_ptr<Impl> weak = weak_from_this();
  disk_worker_.submit([weak, fs, engine = std::move(engine), trash = std::move(trash),
                       who]() mutable {
    // The last reference but a compaction's, which ran before this task.
    // The records go back to the loop, which allocated them, to be freed a
    // slice at a time (StorageEngine::take_state says why); the rest of
    // the engine (the table, its files' handles) goes here.
    std::shared_ptr<StateRemains> remains;
    if (engine) remains = engine->take_state();
    engine.reset();
    if (remains) {
      if (auto self = weak.lock()) {
        self->post([remains](Impl& me) { me.release_remains(remains); });
      }
    }
    Result<std::unique_ptr<node::PacedRemoval>> removal =
        node::PacedRemoval::plan(*fs, trash, kRemovalStepBytes);
    if (removal.is_ok()) {
      if (auto self = weak.lock()) {
        std::shared_ptr<node::PacedRemoval> shared = std::move(removal).value();
        return self->post([shared](Impl& me) { me.remove_paced(shared); });
      }
    }
    for (const std::string& dir : trash) {
      if (Status removed = fs->remove_all(dir); !removed.is_ok()) {
        nodenomad::log(LogLevel::kWarn, "migration",
                       fmt::format("{}: {} is left behind: {}", who, dir, removed.to_string()));
      }
    }
  });
  ++shards_dropped_;
  bytes_freed_ += bytes;
  nodenomad::log(LogLevel::kInfo, "migration",
                 fmt::format("{}: dropped shard {} ({} bytes freed)", options_.id.str(),
                             shard.value(), bytes));
  return bytes;
}

void Node::Impl::release_remains(const std::shared_ptr<StateRemains>& remains) {
  // Freeing a million 1 KiB records costs glibc about 0.7 s of CPU
  // (coalescing free chunks, then sorting them for the next mallocs), and
  // on the loop every client request waits behind it: a slice of about a
  // millisecond, then a pause, keeps it under a fifth of the loop (a 1 GiB
  // shard is freed in about 3 s).
  constexpr std::size_t kRecordsPerSlice = 2048;
  constexpr std::uint64_t kPauseMs = 5;
  if (remains->release(kRecordsPerSlice)) return;
  post_after(kPauseMs, [remains](Impl& me) { me.release_remains(remains); });
}

void Node::Impl::remove_paced(std::shared_ptr<node::PacedRemoval> removal) {
  // At most 4 MiB freed per slice, one slice per 10 ms (under 400 MB/s: a
  // 1 GiB shard in about 3 s). The commit that carries a slice trims it
  // in about a millisecond (migration_bench's disk: 0.2 ms per MiB, so a
  // 16 MiB slice held the fsyncs in its commit 3-7 ms).
  constexpr std::uint64_t kPauseMs = 10;
  std::weak_ptr<Impl> weak = weak_from_this();
  post_after(kPauseMs, [weak, removal](Impl& me) {
    me.disk_worker_.submit([weak, removal] {
      Result<bool> done = removal->step();
      if (done.is_ok() && *done) return;
      if (!done.is_ok()) {
        // The rest goes at once; what cannot go waits for the next open().
        nodenomad::log(LogLevel::kWarn, "migration",
                       fmt::format("paced removal stopped ({}); removing the rest at once",
                                   done.status().to_string()));
        if (Status rest = removal->remove_rest(); !rest.is_ok()) {
          nodenomad::log(LogLevel::kWarn, "migration",
                         fmt::format("trash is left behind: {}", rest.to_string()));
        }
        return;
      }
      if (auto self = weak.lock()) self->post([removal](Impl& me2) { me2.remove_paced(removal); });
    });
  });
}

Result<std::string> Node::Impl::move_to_trash(const std::string& dir) {
  const std::size_t slash = dir.find_last_of('/');
  const std::string parent = slash == std::string::npos ? "." : dir.substr(0, slash);
  const std::string name = slash == std::string::npos ? dir : dir.substr(slash + 1);
  std::string to;
  do {
    to = fmt::format("{}/{}{}-{}", parent, kTrashPrefix, name, ++trash_seq_);
    NN_ASSIGN_OR_RETURN(const bool taken, fs_->exists(to));
    if (!taken) break;
  } while (true);
  NN_RETURN_IF_ERROR(fs_->rename(dir, to));
  // Durable before the next rename: the data directory must never be gone
  // while its log directory is still there after a crash.
  NN_RETURN_IF_ERROR(fs_->sync_dir(parent));
  return to;
}

Status Node::Impl::remove_trash() {
  const std::string& wal_base = options_.wal_dir.empty() ? options_.data_dir : options_.wal_dir;
  for (const std::string& parent : {wal_base + "/raft", options_.data_dir + "/shards"}) {
    NN_ASSIGN_OR_RETURN(const bool exists, fs_->exists(parent));
    if (!exists) continue;
    NN_ASSIGN_OR_RETURN(const std::vector<std::string> names, fs_->list(parent));
    for (const std::string& name : names) {
      if (name.rfind(kTrashPrefix, 0) == 0) NN_RETURN_IF_ERROR(fs_->remove_all(parent + "/" + name));
    }
  }
  return Status::ok();
}

}  // namespace nodenomad
