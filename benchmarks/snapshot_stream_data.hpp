// Realistic snapshot chunk data for codec_bench's compression figures: a
// replicated StorageEngine holding keys with values of one kind, and its
// snapshot stream (open_snapshot) cut into chunks as a shard migration sends
// them (MIGRATION_CHUNK_SIZE, 1 MiB by default). Records, keys, versions and
// the stream's framing are all in the bytes, as on the wire.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "nodenomad/storage/command.hpp"
#include "nodenomad/storage/storage_engine.hpp"
#include "storage_bench_common.hpp"

namespace nodenomad::bench {

enum class ValueKind : std::uint8_t {
  kRandomBytes,    // uniform bytes: incompressible, zstd's worst case
  kRandomLetters,  // uniform 'a'..'z', as the storage benchmarks write (4.7 bits a byte)
  kText,           // JSON documents of words and numbers, like an application's records
};

inline constexpr std::array<ValueKind, 3> kValueKinds = {
    ValueKind::kRandomBytes, ValueKind::kRandomLetters, ValueKind::kText};

inline std::string_view value_kind_name(ValueKind kind) {
  switch (kind) {
    case ValueKind::kRandomBytes: return "random_bytes";
    case ValueKind::kRandomLetters: return "random_letters";
    case ValueKind::kText: return "text";
  }
  return "unknown";
}

// A JSON document of `bytes` bytes: a user record whose fields draw from a
// vocabulary of 64 words, with numbers, ids and a free-text note.
inline std::string make_text_value(Rng& rng, std::size_t bytes) {
  // clang-format off
  static constexpr std::array<std::string_view, 64> kWords = {
      "the", "of", "and", "to", "in", "is", "for", "on", "with", "as", "by", "at", "from",
      "order", "account", "payment", "shipping", "address", "customer", "product", "price",
      "status", "pending", "delivered", "cancelled", "returned", "invoice", "warehouse",
      "berlin", "paris", "london", "madrid", "rome", "vienna", "oslo", "lisbon", "dublin",
      "blue", "green", "red", "large", "small", "premium", "standard", "express", "gift",
      "note", "please", "leave", "door", "call", "before", "after", "monday", "friday",
      "weekend", "morning", "evening", "thanks", "again", "new", "first", "last", "email"};
  // clang-format on
  const auto word = [&] { return kWords[rng.uniform(kWords.size())]; };
  std::string out = fmt::format(
      R"({{"id":"u-{:08}","name":"{} {}","city":"{}","balance":{}.{:02},"status":"{}","tags":["{}","{}"],"note":")",
      rng.uniform(100'000'000), word(), word(), word(), rng.uniform(100'000), rng.uniform(100),
      word(), word(), word());
  while (out.size() + 2 < bytes) {
    out += word();
    out += rng.chance(0.1) ? fmt::format(" {} ", rng.uniform(10'000)) : " ";
  }
  out.resize(bytes - 2);
  out += "\"}";
  return out;
}

inline std::string make_value_of(ValueKind kind, Rng& rng, std::size_t bytes) {
  switch (kind) {
    case ValueKind::kRandomBytes: {
      std::string value(bytes, '\0');
      for (char& c : value) c = static_cast<char>(rng.uniform(256));
      return value;
    }
    case ValueKind::kRandomLetters: return make_value(rng, bytes);
    case ValueKind::kText: return make_text_value(rng, bytes);
  }
  return {};
}

// The snapshot stream of a replicated engine holding `keys` keys of 16
// bytes with `value_bytes` values of `kind`, written through apply, cut in
// chunks of `chunk_bytes`.
inline std::vector<std::string> snapshot_stream_chunks(ValueKind kind, std::uint64_t keys,
                                                       std::size_t value_bytes,
                                                       std::size_t chunk_bytes, Rng& rng) {
  StorageOptions options;
  options.mode = StorageMode::kReplicated;
  auto opened = StorageEngine::open(options);
  require(opened.is_ok(), opened.status().to_string());
  auto engine = std::move(opened).value();
  std::string command;
  for (std::uint64_t i = 0; i < keys; ++i) {
    const std::string key = make_key(i, 16);
    const std::string value = make_value_of(kind, rng, value_bytes);
    KvCommand set;
    set.issued_at = WallTime{std::chrono::milliseconds{1'700'000'000'000}};
    set.key = key;
    set.value = value;
    command.clear();
    encode_kv_command(set, command);
    require(engine->apply(LogIndex(i + 1), command).is_ok(), "apply");
  }
  auto source = engine->open_snapshot();
  require(source.is_ok(), "open_snapshot");
  std::vector<std::string> chunks;
  for (;;) {
    Result<std::string> chunk = (*source)->next_chunk(chunk_bytes);
    require(chunk.is_ok(), "next_chunk");
    if (chunk->empty()) return chunks;
    chunks.push_back(std::move(*chunk));
  }
}

}  // namespace nodenomad::bench
