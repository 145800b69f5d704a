// Fuzzes what a replica reads from a peer during a migration's Verify stage:
// a shard digest (decode_shard_digest) and a bucket export (the parser behind
// StorageEngine::replace_buckets). Any bytes must give a value or a clean
// error, never a crash, a hang or an allocation driven by a length in the
// input.
//
// The first byte picks the target:
//   0: the bytes as a digest, checksum as given. A decoded digest must
//      re-encode to exactly the same bytes (the encoding is canonical).
//   1: the same with the trailing checksum recomputed, so that the fuzzer
//      reaches the field checks behind it.
//   2: the bytes as a bucket export, cut into chunks of 1 + byte 1 bytes.
//   3: the bytes as payloads ([u16 length][payload] ...) that the harness
//      frames itself, so that the fuzzer gets past the record checksums and
//      reaches the export's own checks. The export is expected to carry
//      bucket (byte 1) at index 0.
#include <cstdint>
#include <string>
#include <vector>
#include <xxhash.h>

#include "common/record_format.hpp"
#include "nodenomad/assert.hpp"
#include "nodenomad/storage/shard_digest.hpp"
#include "storage/byte_codec.hpp"
#include "storage/snapshot.hpp"

namespace {

using namespace nodenomad;

void fuzz_digest(std::string bytes, bool fix_checksum) {
  if (fix_checksum && bytes.size() >= 8) {
    const std::size_t covered = bytes.size() - 8;
    std::string sum;
    storage::put_u64(sum, XXH3_64bits(bytes.data(), covered));
    bytes.replace(covered, 8, sum);
  }
  Result<ShardDigest> digest = decode_shard_digest(bytes);
  if (!digest.is_ok()) {
    NN_ASSERT(digest.status().is(StatusCode::kCorruption), digest.status().to_string());
    return;
  }
  NN_ASSERT(encode_shard_digest(*digest) == bytes, "a decoded digest must re-encode exactly");
  (void)digest->root();
}

void fuzz_export(const std::vector<std::string>& chunks, std::uint32_t bucket) {
  storage::BucketSet buckets;
  buckets.set(bucket % kDigestBuckets);
  Result<storage::BucketImport> parsed =
      storage::parse_bucket_export(chunks, buckets, LogIndex(0), storage::KvLimits{});
  if (!parsed.is_ok()) {
    NN_ASSERT(parsed.status().is(StatusCode::kInvalidArgument), parsed.status().to_string());
    return;
  }
  for (const storage::RecordRef& r : parsed->records) {
    NN_ASSERT(digest_bucket(r->key()) == bucket % kDigestBuckets, "a key outside the bucket");
  }
}

std::vector<std::string> cut(std::string_view bytes, std::size_t chunk_bytes) {
  std::vector<std::string> chunks;
  for (std::size_t pos = 0; pos < bytes.size(); pos += chunk_bytes) {
    chunks.emplace_back(bytes.substr(pos, chunk_bytes));
  }
  return chunks;
}

std::string frame_payloads(std::string_view bytes) {
  std::string stream;
  storage::ByteReader reader(bytes);
  std::uint16_t length = 0;
  std::string_view payload;
  while (reader.read_u16(length)) {
    if (!reader.read_bytes(length, payload)) payload = bytes.substr(reader.position());
    record::encode(stream, payload);
    if (payload.size() < length) break;
  }
  return stream;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0: fuzz_digest(std::string(bytes), false); break;
    case 1: fuzz_digest(std::string(bytes), true); break;
    case 2: fuzz_export(cut(bytes.substr(1), 1 + data[1]), data[1]); break;
    default: fuzz_export(cut(frame_payloads(bytes.substr(1)), 1 << 16), data[1]); break;
  }
  return 0;
}
