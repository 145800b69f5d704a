// The metadata group's state on disk: one snapshot file, replaced
// atomically (write a temporary, fsync, rename, fsync the directory). The
// metadata group's Raft log is compacted only behind a saved snapshot.
//
// Layout: <dir>/metadata.snap holds encode_metadata_snapshot()'s bytes
// (which carry their own magic and checksum).
#pragma once

#include <string>

#include "nodenomad/file_system.hpp"
#include "nodenomad/log_store.hpp"
#include "nodenomad/sharding/cluster_metadata.hpp"

namespace nodenomad::node {

Status save_metadata_snapshot(FileSystem& fs, const std::string& dir,
                              const MetadataStateMachine& machine);
// Restores `machine` from the file if there is one (none: left as is).
// kCorruption naming the file for a damaged snapshot.
Status load_metadata_snapshot(FileSystem& fs, const std::string& dir,
                              MetadataStateMachine& machine);

// The metadata group's first configuration: the first `max_voters` members
// by id vote, the rest learn.
ConfState metadata_conf(const ClusterMetadata& metadata, std::uint32_t max_voters);

}  // namespace nodenomad::node
