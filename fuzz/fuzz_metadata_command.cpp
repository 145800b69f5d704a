// Fuzzes the metadata group's decoders: commands (Raft entries), apply's
// results and snapshots. Any bytes must decode to a value or a clean error,
// never a crash, a hang or an allocation driven by a length in the input.
// What decodes must re-encode to something that decodes to the same value,
// and a decoded command applied to a live state must keep its invariants.
//
// The first byte picks the decoder. For snapshots the harness recomputes
// the trailing checksum (selector 2), or the fuzzer would never get past it;
// selector 3 feeds the bytes as they are.
#include <cstdint>
#include <string>
#include <xxhash.h>

#include "nodenomad/assert.hpp"
#include "nodenomad/sharding/cluster_metadata.hpp"

namespace {

using namespace nodenomad;

const ClusterMetadata& live_state() {
  static const ClusterMetadata state = [] {
    ClusterMetadata s;
    std::vector<Member> members;
    for (int i = 0; i < 4; ++i) {
      members.push_back(Member{NodeId("node-" + std::to_string(i)),
                               "127.0.0.1:" + std::to_string(3000 + i)});
    }
    const MetadataResult result = s.apply(metadata::Bootstrap{"fuzz", members, 8, 3});
    NN_ASSERT(result.ok(), result.status.to_string());
    return s;
  }();
  return state;
}

void fuzz_command(std::string_view bytes) {
  Result<MetadataCommand> command = decode_metadata_command(bytes);
  if (!command.is_ok()) {
    NN_ASSERT(command.status().is(StatusCode::kCorruption) ||
                  command.status().is(StatusCode::kNotSupported),
              command.status().to_string());
    return;
  }
  Result<MetadataCommand> again = decode_metadata_command(encode_metadata_command(*command));
  NN_ASSERT(again.is_ok() && *again == *command, "a decoded command must round-trip");
  ClusterMetadata state = live_state();
  (void)state.apply(*command);
  NN_ASSERT(state.validate().is_ok(), state.validate().to_string());
}

void fuzz_result(std::string_view bytes) {
  Result<MetadataResult> result = decode_metadata_result(bytes);
  if (!result.is_ok()) {
    NN_ASSERT(result.status().is(StatusCode::kCorruption), result.status().to_string());
    return;
  }
  Result<MetadataResult> again = decode_metadata_result(encode_metadata_result(*result));
  NN_ASSERT(again.is_ok() && *again == *result, "a decoded result must round-trip");
}

void fuzz_snapshot(std::string bytes, bool fix_checksum) {
  if (fix_checksum && bytes.size() >= 8) {
    const std::size_t covered = bytes.size() - 8;
    const std::uint64_t sum = XXH3_64bits(bytes.data(), covered);
    for (std::size_t i = 0; i < 8; ++i) {
      bytes[covered + i] = static_cast<char>((sum >> (8 * i)) & 0xff);
    }
  }
  Result<MetadataSnapshot> snapshot = decode_metadata_snapshot(bytes);
  if (!snapshot.is_ok()) {
    NN_ASSERT(snapshot.status().is(StatusCode::kCorruption), snapshot.status().to_string());
    return;
  }
  NN_ASSERT(snapshot->metadata.validate().is_ok());
  Result<MetadataSnapshot> again = decode_metadata_snapshot(
      encode_metadata_snapshot(snapshot->applied_index, snapshot->metadata));
  NN_ASSERT(again.is_ok() && again->metadata == snapshot->metadata &&
                again->applied_index == snapshot->applied_index,
            "a decoded snapshot must round-trip");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0: fuzz_command(bytes); break;
    case 1: fuzz_result(bytes); break;
    case 2: fuzz_snapshot(std::string(bytes), true); break;
    default: fuzz_snapshot(std::string(bytes), false); break;
  }
  return 0;
}
