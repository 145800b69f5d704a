#include "nodenomad/storage/command.hpp"

#include <string>

#include <catch2/catch.hpp>

#include "nodenomad/rng.hpp"
#include "storage/storage_test_util.hpp"

namespace nodenomad {
namespace {

using storage_test::ms_time;

std::vector<KvCommand> sample_commands() {
  std::vector<KvCommand> commands;
  KvCommand set;
  set.type = KvCommandType::kSet;
  set.issued_at = ms_time(1'700'000'000'123);
  set.key = std::string_view("k\0ey", 4);
  set.value = std::string_view("v\0\xff", 3);
  commands.push_back(set);
  set.expiry = ms_time(1'700'000'005'000);
  commands.push_back(set);
  set.if_version = 0;
  commands.push_back(set);
  set.expiry.reset();
  set.if_version = 42;
  set.value = "";
  commands.push_back(set);

  KvCommand remove;
  remove.type = KvCommandType::kRemove;
  remove.issued_at = ms_time(-5);  // before the epoch: still representable
  remove.key = "gone";
  commands.push_back(remove);
  remove.if_version = 7;
  commands.push_back(remove);

  KvCommand expire;
  expire.type = KvCommandType::kExpire;
  expire.issued_at = ms_time(99);
  commands.push_back(expire);  // no targets
  expire.expire_targets = {{"a", 1}, {std::string_view("\0b", 2), UINT64_MAX}};
  commands.push_back(expire);
  return commands;
}

TEST_CASE("command codec round-trips every command type", "[storage][command]") {
  for (const KvCommand& command : sample_commands()) {
    const std::string bytes = encode_kv_command(command);
    auto decoded = decode_kv_command(bytes);
    INFO(decoded.status().to_string());
    REQUIRE(decoded.is_ok());
    CHECK(*decoded == command);
    CHECK(encode_kv_command(*decoded) == bytes);
  }
}

TEST_CASE("command decode refuses every truncation and trailing byte", "[storage][command]") {
  for (const KvCommand& command : sample_commands()) {
    const std::string bytes = encode_kv_command(command);
    for (std::size_t n = 0; n < bytes.size(); ++n) {
      auto decoded = decode_kv_command(std::string_view(bytes).substr(0, n));
      INFO("prefix of " << n << " bytes");
      CHECK(decoded.status().is(StatusCode::kCorruption));
    }
    CHECK(decode_kv_command(bytes + '\0').status().is(StatusCode::kCorruption));
  }
}

TEST_CASE("command decode refuses unknown format, type and flags", "[storage][command]") {
  const std::string good = encode_kv_command(sample_commands()[0]);
  std::string bad = good;
  bad[0] = 2;  // format
  CHECK(decode_kv_command(bad).status().is(StatusCode::kCorruption));
  bad = good;
  bad[1] = 9;  // type
  CHECK(decode_kv_command(bad).status().is(StatusCode::kCorruption));
  bad = good;
  bad[2] = static_cast<char>(0x80);  // flag bit nobody defined
  CHECK(decode_kv_command(bad).status().is(StatusCode::kCorruption));
  KvCommand remove;
  remove.type = KvCommandType::kRemove;
  remove.key = "k";
  bad = encode_kv_command(remove);
  bad[2] = 1;  // "has expiry" on a remove
  CHECK(decode_kv_command(bad).status().is(StatusCode::kCorruption));
}

TEST_CASE("command decode never trusts a length or a count", "[storage][command]") {
  // An expire command that claims 4 billion targets in a few bytes must be
  // refused before anything is reserved.
  std::string forged = encode_kv_command(sample_commands()[6]);  // expire, no targets
  forged.replace(forged.size() - 4, 4, "\xff\xff\xff\xff");
  auto decoded = decode_kv_command(forged);
  CHECK(decoded.status().is(StatusCode::kCorruption));
  CHECK_THAT(std::string(decoded.status().message()), Catch::Contains("expire count"));

  // A key length far past the end.
  std::string long_key = encode_kv_command(sample_commands()[4]);  // remove "gone"
  long_key.replace(long_key.size() - 8, 4, "\xff\xff\xff\x7f");
  CHECK(decode_kv_command(long_key).status().is(StatusCode::kCorruption));
}

TEST_CASE("command decode survives random and mutated bytes", "[storage][command]") {
  const std::uint64_t seed = storage_test::test_seed(0xc0ffee);
  CAPTURE(seed);
  Rng rng(seed);
  const auto commands = sample_commands();
  for (int round = 0; round < 20000; ++round) {
    std::string bytes;
    if (rng.chance(0.5)) {
      bytes.resize(rng.uniform(64));
      for (char& c : bytes) c = static_cast<char>(rng.uniform(256));
    } else {
      bytes = encode_kv_command(commands[rng.uniform(commands.size())]);
      const std::uint64_t flips = 1 + rng.uniform(3);
      for (std::uint64_t i = 0; i < flips; ++i) {
        bytes[rng.uniform(bytes.size())] ^= static_cast<char>(1u << rng.uniform(8));
      }
    }
    auto decoded = decode_kv_command(bytes);
    // Whatever decodes must be exactly what those bytes encode.
    if (decoded.is_ok()) {
      CHECK(encode_kv_command(*decoded) == bytes);
    } else {
      CHECK(decoded.status().is(StatusCode::kCorruption));
    }
  }
}

TEST_CASE("write result codec round-trips and refuses damage", "[storage][command]") {
  WriteResult ok;
  ok.version = 12;
  ok.deleted = true;
  ok.expired_keys = {"a", std::string("\0z", 2)};
  WriteResult mismatch = WriteResult::refused(Status::version_mismatch("the key is at 3"));
  mismatch.current_version = 3;
  for (const WriteResult& result : {ok, mismatch}) {
    const std::string bytes = encode_write_result(result);
    auto decoded = decode_write_result(bytes);
    REQUIRE(decoded.is_ok());
    CHECK(decoded->status == result.status);
    CHECK(decoded->version == result.version);
    CHECK(decoded->current_version == result.current_version);
    CHECK(decoded->deleted == result.deleted);
    CHECK(decoded->expired_keys == result.expired_keys);
    for (std::size_t n = 0; n < bytes.size(); ++n) {
      CHECK_FALSE(decode_write_result(std::string_view(bytes).substr(0, n)).is_ok());
    }
  }
  std::string bad_code = encode_write_result(ok);
  bad_code[1] = static_cast<char>(200);
  CHECK_FALSE(decode_write_result(bad_code).is_ok());
}

}  // namespace
}  // namespace nodenomad
