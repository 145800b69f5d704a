// ShardDigest (its definition is in shard_digest.hpp), its wire form, and
// StateCapture: a capture's digest and its bucket exports.
#include "nodenomad/storage/shard_digest.hpp"

#include <tuple>

#include <fmt/format.h>
#include <xxhash.h>

#include "nodenomad/storage/storage_engine.hpp"
#include "storage/byte_codec.hpp"
#include "storage/digest_term.hpp"
#include "storage/kv_state.hpp"
#include "storage/snapshot.hpp"

namespace nodenomad {
namespace {

// The bucket is the top byte of the key's hash (digest_bucket_of_hash): the
// hash the KvMap keeps in its table slots too, so replace_buckets finds a
// bucket's keys from the slots alone.
static_assert(digest_bucket_of_hash(~std::uint64_t{0}) == kDigestBuckets - 1,
              "buckets are the hash's top byte");

constexpr std::uint64_t kRootSeed = 0x4e4e53442d726f6fULL;  // "NNSD-roo"
constexpr std::uint32_t kDigestMagic = 0x44534e4eu;           // "NNSD" in little endian
constexpr std::uint16_t kDigestFormat = 1;

// The map keeps one sum per bucket, indexed by the key hash's top byte.
static_assert(std::tuple_size_v<decltype(storage::KvMap::DigestSums::buckets)> == kDigestBuckets,
              "the map keeps one sum per digest bucket");

// How far ahead of the scan a record's first cache line is prefetched. The
// loop is bound by one cache miss per record (the records are scattered over
// the heap); prefetching lets those misses overlap.
constexpr std::size_t kDigestPrefetchRecords = 8;

Status corrupt_digest(std::string_view what, std::size_t offset) {
  return Status::corruption(fmt::format("shard digest: {} at offset {}", what, offset));
}

}  // namespace

std::uint32_t digest_bucket(std::string_view key) {
  return digest_bucket_of_hash(XXH3_64bits(key.data(), key.size()));
}

std::uint64_t digest_record_hash(std::string_view key, std::string_view value,
                                 std::uint64_t version, std::optional<WallTime> expiry) {
  return storage::digest_term(storage::key_hash_of(key), value, version, expiry.has_value(),
                              expiry ? storage::to_ms(*expiry) : 0);
}

std::uint64_t ShardDigest::root() const {
  std::string covered;
  covered.reserve(3 * 8 + kDigestBuckets * 8);
  storage::put_u64(covered, version_floor);
  storage::put_u64(covered, keys);
  storage::put_u64(covered, bytes);
  for (std::uint64_t sum : buckets) storage::put_u64(covered, sum);
  return XXH3_64bits_withSeed(covered.data(), covered.size(), kRootSeed);
}

std::vector<std::uint32_t> ShardDigest::differing_buckets(const ShardDigest& other) const {
  std::vector<std::uint32_t> differing;
  for (std::uint32_t b = 0; b < kDigestBuckets; ++b) {
    if (buckets[b] != other.buckets[b]) differing.push_back(b);
  }
  return differing;
}

std::string encode_shard_digest(const ShardDigest& digest) {
  std::string out;
  out.reserve(kShardDigestEncodedBytes);
  storage::put_u32(out, kDigestMagic);
  storage::put_u16(out, kDigestFormat);
  storage::put_u64(out, digest.index.value());
  storage::put_u64(out, digest.keys);
  storage::put_u64(out, digest.bytes);
  storage::put_u64(out, digest.version_floor);
  storage::put_u16(out, static_cast<std::uint16_t>(kDigestBuckets));
  for (std::uint64_t sum : digest.buckets) storage::put_u64(out, sum);
  storage::put_u64(out, XXH3_64bits(out.data(), out.size()));
  NN_ASSERT(out.size() == kShardDigestEncodedBytes, "digest encoding of ", out.size(), " bytes");
  return out;
}

Result<ShardDigest> decode_shard_digest(std::string_view bytes) {
  storage::ByteReader reader(bytes);
  ShardDigest d;
  std::uint32_t magic = 0;
  std::uint16_t format = 0;
  std::uint64_t index = 0;
  std::uint16_t bucket_count = 0;
  // Each field in order; a short input names the first field it cuts.
  const auto field = [&](bool read, std::string_view name) -> Status {
    if (read) return Status::ok();
    return corrupt_digest(fmt::format("{} truncated", name), reader.position());
  };
  NN_RETURN_IF_ERROR(field(reader.read_u32(magic), "magic"));
  if (magic != kDigestMagic) return corrupt_digest(fmt::format("magic {:#x}", magic), 0);
  NN_RETURN_IF_ERROR(field(reader.read_u16(format), "format"));
  if (format != kDigestFormat) return corrupt_digest(fmt::format("unknown format {}", format), 4);
  NN_RETURN_IF_ERROR(field(reader.read_u64(index), "index"));
  NN_RETURN_IF_ERROR(field(reader.read_u64(d.keys), "keys"));
  NN_RETURN_IF_ERROR(field(reader.read_u64(d.bytes), "bytes"));
  NN_RETURN_IF_ERROR(field(reader.read_u64(d.version_floor), "version_floor"));
  const std::size_t count_at = reader.position();
  NN_RETURN_IF_ERROR(field(reader.read_u16(bucket_count), "bucket_count"));
  if (bucket_count != kDigestBuckets) {
    return corrupt_digest(
        fmt::format("bucket_count {} (expected {})", bucket_count, kDigestBuckets), count_at);
  }
  for (std::uint64_t& sum : d.buckets) NN_RETURN_IF_ERROR(field(reader.read_u64(sum), "buckets"));
  const std::size_t checksum_at = reader.position();
  std::uint64_t checksum = 0;
  NN_RETURN_IF_ERROR(field(reader.read_u64(checksum), "checksum"));
  if (!reader.done()) {
    return corrupt_digest(fmt::format("{} bytes after the checksum", reader.remaining()),
                          reader.position());
  }
  if (checksum != XXH3_64bits(bytes.data(), checksum_at)) {
    return corrupt_digest("checksum mismatch", checksum_at);
  }
  // Consistency a correct encoder always has: every key has at least one
  // byte, and an empty state has empty buckets.
  if (d.bytes < d.keys) return corrupt_digest("bytes below keys", 22);
  if (d.keys == 0) {
    for (std::uint64_t sum : d.buckets) {
      if (sum != 0) return corrupt_digest("buckets of an empty state are not zero", count_at + 2);
    }
  }
  d.index = LogIndex(index);
  return d;
}

namespace storage {

ShardDigest kept_digest(const KvState& state) {
  const KvMap::DigestSums& sums = state.map().digest_sums();
  ShardDigest d;
  d.index = state.last_applied();
  d.version_floor = state.version_floor();
  d.keys = state.map().size();
  d.bytes = sums.bytes;
  d.buckets = sums.buckets;
  return d;
}

}  // namespace storage

// --- StateCapture ---------------------------------------------------------------

StateCapture::StateCapture(std::shared_ptr<const storage::CapturedState> captured)
    : captured_(std::move(captured)) {
  NN_ASSERT(captured_ != nullptr, "a StateCapture needs a captured state");
}

LogIndex StateCapture::index() const { return captured_->index; }
std::uint64_t StateCapture::keys() const { return captured_->capture.size(); }
std::uint64_t StateCapture::version_floor() const { return captured_->version_floor; }

ShardDigest StateCapture::digest() const { return captured_->digest; }

ShardDigest StateCapture::scan_digest() const {
  ShardDigest d;
  d.index = captured_->index;
  d.version_floor = captured_->version_floor;
  const std::vector<const storage::Record*>& records = captured_->records();
  const std::size_t n = records.size();
  for (std::size_t i = 0; i < n; ++i) {
    if (i + kDigestPrefetchRecords < n) __builtin_prefetch(records[i + kDigestPrefetchRecords]);
    const storage::Record& r = *records[i];
    const std::string_view key = r.key();
    const std::uint64_t key_hash = storage::key_hash_of(key);
    // Recomputed from the bytes, not read from the record's digest_term.
    d.buckets[digest_bucket_of_hash(key_hash)] +=
        storage::digest_term(key_hash, r.value(), r.version(), r.has_expiry(), r.expiry_ms());
    d.bytes += key.size() + r.value().size();
  }
  d.keys = n;
  return d;
}

Result<std::vector<std::string>> StateCapture::export_buckets(
    const std::vector<std::uint32_t>& buckets, std::size_t max_chunk_bytes) const {
  NN_ASSIGN_OR_RETURN(storage::BucketSet set, storage::make_bucket_set(buckets));
  return storage::export_captured_buckets(*captured_, set, max_chunk_bytes);
}

}  // namespace nodenomad
