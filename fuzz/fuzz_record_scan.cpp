// Fuzzes the record scanner that every WAL, snapshot and log segment is read
// with: any bytes must give either records or a clean error, never a crash,
// a hang or an allocation driven by a length read from the input. What it
// accepts must re-encode to exactly the bytes it accepted.
#include <cstdint>
#include <string>
#include <vector>

#include "common/record_format.hpp"
#include "common/record_io.hpp"
#include "nodenomad/assert.hpp"
#include "nodenomad/logging.hpp"
#include "nodenomad/testing/fault_injecting_file_system.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace nodenomad;
  set_log_level(LogLevel::kError);
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  testing::FaultInjectingFileSystem fs;
  NN_ASSERT(fs.create_dirs("/f").is_ok());
  {
    auto file = fs.open_writable("/f/x", WriteMode::kTruncate);
    NN_ASSERT(file.is_ok());
    NN_ASSERT((*file)->append(bytes).is_ok());
  }
  std::string reencoded;
  auto result = record::scan(fs, "/f/x", 0, [&](std::string_view payload, std::uint64_t) {
    record::encode(reencoded, payload);
    return Status::ok();
  });
  if (result.is_ok()) {
    NN_ASSERT(result->valid_bytes <= size);
    NN_ASSERT(reencoded == bytes.substr(0, result->valid_bytes),
              "accepted records must re-encode to the accepted bytes");
    NN_ASSERT(result->torn_tail == (result->valid_bytes < size));
  } else {
    NN_ASSERT(result.status().is(StatusCode::kCorruption), result.status().to_string());
  }
  return 0;
}
