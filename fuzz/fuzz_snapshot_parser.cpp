// Fuzzes what a replica parses while it restores a shard from a peer's
// snapshot stream (InstallSnapshot chunks, a migration's Transfer):
// SnapshotParser::feed over any bytes, cut into chunks of 1 + byte 0 bytes,
// either raw (byte 1 even) or framed as records (byte 1 odd: the rest is
// read as u16-length payloads, each framed with its checksum, so that the
// fuzzer reaches the entry checks behind the framing). Any bytes must give a
// state or a kCorruption error, never a crash, a hang or an allocation
// driven by a length in the input.
#include <cstdint>
#include <string>

#include "common/record_format.hpp"
#include "nodenomad/assert.hpp"
#include "storage/byte_codec.hpp"
#include "storage/snapshot.hpp"
using namespace nodenomad;

static std::string frame_payloads(std::string_view bytes) {
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

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 2, size - 2);
  const std::string stream = data[1] % 2 ? frame_payloads(rest) : std::string(rest);
  const std::size_t chunk = 1 + data[0];
  storage::SnapshotParser parser(storage::KvLimits{}, "fuzz");
  Status fed;
  for (std::size_t pos = 0; pos < stream.size() && fed.is_ok(); pos += chunk) {
    fed = parser.feed(std::string_view(stream).substr(pos, chunk));
  }
  if (!fed.is_ok()) {
    NN_ASSERT(fed.is(StatusCode::kCorruption), fed.to_string());
    return 0;
  }
  auto state = parser.finish();
  if (state.is_ok()) {
    auto captured = (*state)->map().capture();
    (void)captured.size();
  }
  return 0;
}
