// Saving and loading the metadata snapshot file.
#include "node/metadata_persistence.hpp"

#include <fmt/format.h>

namespace nodenomad::node {

namespace {

constexpr const char* kSnapshotFile = "metadata.snap";
constexpr std::uint64_t kReadChunkBytes = 1u << 20;

}  // namespace

Status save_metadata_snapshot(FileSystem& fs, const std::string& dir,
                              const MetadataStateMachine& machine) {
  const auto [index, metadata] = machine.current_with_index();
  const std::string bytes = encode_metadata_snapshot(index, *metadata);
  const std::string path = dir + "/" + kSnapshotFile;
  const std::string tmp = path + ".tmp";
  NN_ASSIGN_OR_RETURN(auto file, fs.open_writable(tmp, WriteMode::kTruncate));
  NN_RETURN_IF_ERROR(file->append(bytes));
  NN_RETURN_IF_ERROR(file->sync());
  NN_RETURN_IF_ERROR(file->close());
  NN_RETURN_IF_ERROR(fs.rename(tmp, path));
  return fs.sync_dir(dir);
}

Status load_metadata_snapshot(FileSystem& fs, const std::string& dir,
                              MetadataStateMachine& machine) {
  const std::string path = dir + "/" + kSnapshotFile;
  NN_ASSIGN_OR_RETURN(const bool present, fs.exists(path));
  if (!present) return Status::ok();
  NN_ASSIGN_OR_RETURN(auto file, fs.open_readable(path));
  NN_ASSIGN_OR_RETURN(const std::uint64_t size, file->size());
  if (size > kMaxMetadataSnapshotBytes) {
    return Status::corruption(fmt::format("{}: {} bytes, over the {} byte limit", path, size,
                                          kMaxMetadataSnapshotBytes));
  }
  std::string bytes(size, '\0');
  std::uint64_t done = 0;
  while (done < size) {
    const std::size_t want = static_cast<std::size_t>(std::min(kReadChunkBytes, size - done));
    NN_ASSIGN_OR_RETURN(const std::size_t got,
                        file->read_at(done, std::span<char>(bytes.data() + done, want)));
    if (got == 0) return Status::corruption(fmt::format("{}: ends early at {}", path, done));
    done += got;
  }
  Result<MetadataSnapshot> snapshot = decode_metadata_snapshot(bytes);
  if (!snapshot.is_ok()) return snapshot.status().with_context(path);
  NN_ASSIGN_OR_RETURN(auto sink, machine.begin_restore(snapshot->applied_index));
  NN_RETURN_IF_ERROR(sink->write_chunk(bytes));
  return sink->finish();
}

ConfState metadata_conf(const ClusterMetadata& metadata, std::uint32_t max_voters) {
  ConfState conf;
  for (const Member& m : metadata.members()) {
    if (conf.voters.size() < max_voters) {
      conf.voters.push_back(m.id);
    } else {
      conf.learners.push_back(m.id);
    }
  }
  return conf;
}

}  // namespace nodenomad::node
