// FramedRecordReader (the restore path's framing) and SnapshotParser on
// streams cut at every kind of boundary: the records and the errors do not
// depend on the chunking, records that lie in one chunk are handed out in
// place, and a duplicated key is refused.
#include <algorithm>

#include <catch2/catch.hpp>

#include "common/record_format.hpp"
#include "storage/byte_codec.hpp"
#include "storage/snapshot.hpp"
#include "storage/snapshot_format.hpp"
#include "storage/storage_test_util.hpp"

namespace nodenomad {
namespace {

using storage::FramedRecordReader;

struct Framed {
  std::string stream;
  std::vector<std::string> payloads;
  std::vector<std::uint64_t> offsets;
};

Framed random_records(Rng& rng, int count) {
  Framed framed;
  for (int i = 0; i < count; ++i) {
    const std::size_t bytes = rng.chance(0.05) ? 20'000 + rng.uniform(80'000) : rng.uniform(300);
    std::string payload(bytes, '\0');
    for (char& c : payload) c = static_cast<char>(rng.uniform(256));
    framed.offsets.push_back(framed.stream.size());
    record::encode(framed.stream, payload);
    framed.payloads.push_back(std::move(payload));
  }
  return framed;
}

struct Outcome {
  std::vector<std::string> payloads;
  std::vector<std::uint64_t> offsets;
  std::string error;  // empty: none
  std::uint64_t end_offset = 0;
  bool holds_partial = false;
  std::size_t copied = 0;  // records handed out from outside their chunk
};

// Feeds `stream` in chunks of random sizes (max_chunk 0: all at once).
Outcome read_in_chunks(std::string_view stream, Rng& rng, std::size_t max_chunk) {
  Outcome out;
  FramedRecordReader reader;
  std::size_t pos = 0;
  while (pos < stream.size() && out.error.empty()) {
    const std::size_t n =
        max_chunk == 0 ? stream.size() : std::min(stream.size() - pos, 1 + rng.uniform(max_chunk));
    // A chunk of its own, as a transport hands it over.
    const std::string chunk(stream.substr(pos, n));
    const Status fed = reader.feed(chunk, [&](std::string_view payload, std::uint64_t offset) {
      const bool in_chunk = payload.data() >= chunk.data() &&
                            payload.data() + payload.size() <= chunk.data() + chunk.size();
      // Parsed in place when the whole record is in this chunk.
      const bool whole_in_chunk = offset >= pos && offset + record::kHeaderBytes +
                                                       payload.size() <= pos + n;
      if (whole_in_chunk && !in_chunk) return Status::invalid_argument("copied a whole record");
      if (!in_chunk) ++out.copied;
      out.payloads.emplace_back(payload);
      out.offsets.push_back(offset);
      return Status::ok();
    });
    if (!fed.is_ok()) out.error = fed.to_string();
    pos += n;
  }
  out.end_offset = reader.offset();
  out.holds_partial = reader.holds_partial();
  return out;
}

TEST_CASE("framed records read the same in any chunking, in place when whole",
          "[storage][snapshot]") {
  const std::uint64_t seed = storage_test::test_seed(501);
  Rng rng(seed);
  for (int round = 0; round < 30; ++round) {
    const Framed framed = random_records(rng, 1 + static_cast<int>(rng.uniform(200)));
    for (std::size_t max_chunk : {std::size_t{0}, std::size_t{1}, std::size_t{17},
                                  std::size_t{700}, std::size_t{70'000}}) {
      CAPTURE(round, max_chunk);
      const Outcome out = read_in_chunks(framed.stream, rng, max_chunk);
      REQUIRE(out.error.empty());
      CHECK(out.payloads == framed.payloads);
      CHECK(out.offsets == framed.offsets);
      CHECK(out.end_offset == framed.stream.size());
      CHECK_FALSE(out.holds_partial);
      if (max_chunk == 0) CHECK(out.copied == 0);
    }
    // Cut short: the incomplete record is held, nothing past it handed out.
    const std::size_t cut = rng.uniform(framed.stream.size());
    const Outcome partial = read_in_chunks(std::string_view(framed.stream).substr(0, cut), rng, 500);
    REQUIRE(partial.error.empty());
    CHECK(partial.holds_partial == (std::find(framed.offsets.begin(), framed.offsets.end(), cut) ==
                                    framed.offsets.end()));
  }
}

TEST_CASE("a damaged framed stream fails at the same record whatever the chunking",
          "[storage][snapshot]") {
  const std::uint64_t seed = storage_test::test_seed(502);
  Rng rng(seed);
  for (int round = 0; round < 200; ++round) {
    const Framed framed = random_records(rng, 1 + static_cast<int>(rng.uniform(40)));
    std::string damaged = framed.stream;
    damaged[rng.uniform(damaged.size())] ^= static_cast<char>(1 + rng.uniform(255));
    const Outcome whole = read_in_chunks(damaged, rng, 0);
    CAPTURE(round, whole.error);
    for (std::size_t max_chunk : {std::size_t{1}, std::size_t{9}, std::size_t{333},
                                  std::size_t{50'000}}) {
      const Outcome chunked = read_in_chunks(damaged, rng, max_chunk);
      CHECK(chunked.error == whole.error);
      CHECK(chunked.payloads == whole.payloads);
      CHECK(chunked.end_offset == whole.end_offset);
    }
  }
}

TEST_CASE("a snapshot with a key twice is refused, in any chunking", "[storage][snapshot]") {
  using namespace storage;
  std::string stream;
  std::string payload;
  put_u8(payload, kSnapshotKindHeader);
  put_u16(payload, kSnapshotFormat);
  put_u64(payload, 7);   // index
  put_u64(payload, 0);   // version floor
  put_u64(payload, 3);   // keys
  record::encode(stream, payload);
  payload.clear();
  put_u8(payload, kSnapshotKindEntries);
  put_u32(payload, 3);
  for (std::string_view key : {"a", "b", "a"}) {
    put_u64(payload, 1);
    put_u8(payload, 0);
    put_i64(payload, 0);
    put_sized(payload, key);
    put_sized(payload, "value");
  }
  record::encode(stream, payload);
  for (std::size_t chunk : {std::size_t{1}, std::size_t{5}, stream.size()}) {
    SnapshotParser parser(KvLimits{}, "twice");
    Status fed;
    for (std::size_t pos = 0; pos < stream.size() && fed.is_ok(); pos += chunk) {
      fed = parser.feed(std::string_view(stream).substr(pos, chunk));
    }
    CHECK(fed.is(StatusCode::kCorruption));
    CHECK(fed.message().find("a key appears twice") != std::string::npos);
  }
}

}  // namespace
}  // namespace nodenomad
