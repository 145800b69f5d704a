// ShardDigest: its definition, its independence from how a state was built,
// its sensitivity to any single change, captures, and its wire form.
#include <algorithm>
#include <thread>

#include <catch2/catch.hpp>

#include "storage/digest_test_util.hpp"

namespace nodenomad {
namespace {

using digest_test::apply_log;
using digest_test::apply_next;
using digest_test::apply_noop;
using digest_test::build_random_log;
using digest_test::digest_from_dump;
using digest_test::digest_of;
using digest_test::kT0;
using digest_test::open_replicated;
using digest_test::remove_command;
using digest_test::set_command;
using digest_test::stream_key_order;
using storage_test::dump_engine;
using storage_test::ModelState;

TEST_CASE("a digest is the sum of its records' hashes, recomputed from a dump",
          "[storage][digest]") {
  const std::uint64_t seed = storage_test::test_seed(101);
  Rng rng(seed);
  auto engine = open_replicated();
  (void)build_random_log(*engine, rng, 3000, 400);
  LogIndex index;
  const ModelState dumped = dump_engine(*engine, &index);
  const ShardDigest digest = digest_of(*engine);
  CHECK(digest == digest_from_dump(dumped, index));
  CHECK(digest.index == LogIndex(3000));
  CHECK(digest.keys == dumped.entries.size());
  CHECK(digest.version_floor == dumped.version_floor);
  // The random log made a state worth digesting: keys with and without a
  // TTL, some expired but not removed, and a version floor.
  CHECK(digest.keys > 100);
  CHECK(digest.version_floor > 0);
  const auto with_ttl = std::count_if(dumped.entries.begin(), dumped.entries.end(),
                                      [](const auto& e) { return e.second.expiry_ms.has_value(); });
  CHECK(with_ttl > 10);
  CHECK_FALSE(engine->find_due_keys(kT0 + std::chrono::milliseconds(3000), 1).empty());
}

TEST_CASE("the same state built two ways has the same digest", "[storage][digest]") {
  const std::uint64_t seed = storage_test::test_seed(102);
  Rng rng(seed);

  SECTION("restored from a snapshot, or applied command by command") {
    auto leader = open_replicated();
    const std::vector<std::string> log = build_random_log(*leader, rng, 2000, 500);
    auto restored = open_replicated();
    auto source = std::move(leader->open_snapshot()).value();
    auto sink = std::move(restored->begin_restore(source->index())).value();
    for (auto chunk = source->next_chunk(4096); !chunk->empty(); chunk = source->next_chunk(4096)) {
      REQUIRE(sink->write_chunk(*chunk).is_ok());
    }
    REQUIRE(sink->finish().is_ok());
    auto replayed = open_replicated();
    apply_log(*replayed, log);
    const ShardDigest expected = digest_of(*leader);
    CHECK(digest_of(*restored) == expected);
    CHECK(digest_of(*replayed) == expected);
    CHECK(digest_of(*restored).root() == expected.root());
  }

  SECTION("the same writes applied in different orders") {
    // Distinct keys, each written once: the state does not depend on the
    // order, but the hash table's order does.
    std::vector<std::string> commands;
    for (int i = 0; i < 3000; ++i) {
      const std::string key = "k" + std::to_string(i);
      const std::optional<WallTime> expiry =
          i % 3 == 0 ? std::optional<WallTime>(kT0 + std::chrono::seconds(i)) : std::nullopt;
      commands.push_back(set_command(key, std::string(i % 50, 'v'), kT0, expiry));
    }
    auto forward = open_replicated();
    apply_log(*forward, commands);
    std::vector<std::string> shuffled = commands;
    for (std::size_t i = shuffled.size(); i > 1; --i) {
      std::swap(shuffled[i - 1], shuffled[rng.uniform(i)]);
    }
    auto backward = open_replicated();
    apply_log(*backward, shuffled);
    CHECK(stream_key_order(*forward) != stream_key_order(*backward));
    CHECK(dump_engine(*forward) == dump_engine(*backward));
    CHECK(digest_of(*forward) == digest_of(*backward));
  }
}

// Two replicas that share `base` and then apply `a` and `b` (padded with
// no-ops to the same index).
struct Pair {
  std::unique_ptr<StorageEngine> a = open_replicated();
  std::unique_ptr<StorageEngine> b = open_replicated();

  Pair(const std::vector<std::string>& base, const std::vector<std::string>& only_a,
       const std::vector<std::string>& only_b) {
    apply_log(*a, base);
    apply_log(*b, base);
    apply_log(*a, only_a);
    apply_log(*b, only_b);
    while (a->last_applied_index() < b->last_applied_index()) apply_noop(*a);
    while (b->last_applied_index() < a->last_applied_index()) apply_noop(*b);
  }
};

TEST_CASE("any single change changes exactly its key's bucket and the root", "[storage][digest]") {
  std::vector<std::string> base;
  for (int i = 0; i < 500; ++i) {
    base.push_back(set_command("k" + std::to_string(i), "value-" + std::to_string(i), kT0));
  }
  const std::string key = "k42";
  const WallTime t1 = kT0 + std::chrono::seconds(1);
  const WallTime expiry = kT0 + std::chrono::hours(1);
  struct Variant {
    const char* name;
    std::vector<std::string> a;
    std::vector<std::string> b;
    std::string key;
  };
  const std::vector<Variant> variants = {
      {"one value byte", {set_command(key, "value-x", t1)}, {set_command(key, "value-y", t1)}, key},
      {"the version", {set_command(key, "same", t1)},
       {set_command(key, "same", t1), set_command(key, "same", t1)}, key},
      {"the expiry", {set_command(key, "v", t1, expiry)},
       {set_command(key, "v", t1, expiry + std::chrono::milliseconds(1))}, key},
      {"an expiry or none", {set_command(key, "v", t1)}, {set_command(key, "v", t1, expiry)}, key},
      {"an extra key", {}, {set_command("extra", "v", t1)}, "extra"},
      {"a key missing", {set_command("only-in-a", "v", t1)}, {}, "only-in-a"},
      // An expired key is stored, and digested, until an expire command
      // removes it.
      {"an expired key not yet removed", {set_command("ttl", "v", t1, t1)}, {}, "ttl"},
  };
  for (const Variant& v : variants) {
    DYNAMIC_SECTION(v.name) {
      Pair pair(base, v.a, v.b);
      const ShardDigest a = digest_of(*pair.a);
      const ShardDigest b = digest_of(*pair.b);
      REQUIRE(a.index == b.index);
      CHECK(a.differing_buckets(b) == std::vector<std::uint32_t>{digest_bucket(v.key)});
      CHECK(b.differing_buckets(a) == std::vector<std::uint32_t>{digest_bucket(v.key)});
      CHECK(a.root() != b.root());
      CHECK(a.version_floor == b.version_floor);
      CHECK(a != b);
    }
  }

  SECTION("only the version floor") {
    // a wrote and removed a key that b never had: the same records, but a
    // key re-created in a starts at version 2 and in b at version 1.
    Pair pair(base, {set_command("gone", "v", t1), remove_command("gone", t1)}, {});
    const ShardDigest a = digest_of(*pair.a);
    const ShardDigest b = digest_of(*pair.b);
    CHECK(a.differing_buckets(b).empty());
    CHECK(a.version_floor == 1);
    CHECK(b.version_floor == 0);
    CHECK(a.root() != b.root());
  }

  SECTION("an expire command removes the key from the digest") {
    Pair pair(base, {set_command("ttl", "v", t1, t1)}, {set_command("ttl", "v", t1, t1)});
    const ShardDigest before = digest_of(*pair.a);
    const std::vector<DueKey> due = pair.a->find_due_keys(t1, 10);
    REQUIRE(due.size() == 1);
    apply_next(*pair.a, encode_kv_command(make_expire_command(t1, due)));
    apply_noop(*pair.b);
    const ShardDigest after = digest_of(*pair.a);
    CHECK(before.differing_buckets(after) == std::vector<std::uint32_t>{digest_bucket("ttl")});
    CHECK(after.keys == before.keys - 1);
    CHECK(after.version_floor == 1);
    CHECK(digest_of(*pair.b).differing_buckets(after) ==
          std::vector<std::uint32_t>{digest_bucket("ttl")});
  }
}

TEST_CASE("a capture is a point in time, readable on any thread and after the engine",
          "[storage][digest]") {
  const std::uint64_t seed = storage_test::test_seed(103);
  Rng rng(seed);
  auto engine = open_replicated();
  (void)build_random_log(*engine, rng, 1000, 300);
  const ModelState at_capture = dump_engine(*engine);
  auto captured = std::move(engine->capture()).value();
  CHECK(captured->index() == LogIndex(1000));
  CHECK(captured->keys() == at_capture.entries.size());
  CHECK(captured->version_floor() == at_capture.version_floor);
  const ShardDigest expected = digest_from_dump(at_capture, LogIndex(1000));
  // Digest on another thread while the engine goes on applying.
  ShardDigest on_thread;
  std::thread digester([&] { on_thread = captured->digest(); });
  (void)build_random_log(*engine, rng, 1000, 300);
  digester.join();
  CHECK(on_thread == expected);
  CHECK(digest_of(*engine).root() != expected.root());  // the engine did move on
  engine.reset();
  CHECK(captured->digest() == expected);
  CHECK(captured->export_buckets({0, 1, 2}, 1024).is_ok());
}

TEST_CASE("a standalone engine captures and digests too", "[storage][digest]") {
  ManualClock clock;
  StorageOptions options;
  options.clock = &clock;
  auto engine = storage_test::open_or_fail(options);
  REQUIRE(engine->set("a", "1").ok());
  REQUIRE(engine->set("b", "2", {clock.wall_now() + std::chrono::minutes(1), std::nullopt}).ok());
  REQUIRE(engine->remove("a").ok());
  LogIndex index;
  const ModelState dumped = dump_engine(*engine, &index);
  const ShardDigest digest = digest_of(*engine);
  CHECK(digest.index == LogIndex(3));
  CHECK(digest == digest_from_dump(dumped, index));
  CHECK(digest.keys == 1);
  CHECK(digest.bytes == 2);
  CHECK(digest.version_floor == 1);
}

TEST_CASE("the digest an engine keeps equals the one recomputed from its records, at every step",
          "[storage][digest]") {
  // The kept sums change with every record in and out (kv_map.hpp,
  // "Digest"): through writes, overwrites, removes, expiries, bucket
  // repairs, restores, a WAL replay and a snapshot load.
  const std::uint64_t seed = storage_test::test_seed(107);
  Rng rng(seed);
  auto engine = open_replicated();
  auto other = open_replicated();
  const auto check_now = [](const StorageEngine& e) {
    auto captured = std::move(e.capture()).value();
    const ShardDigest scanned = captured->scan_digest();
    CHECK(e.digest() == scanned);
    CHECK(captured->digest() == scanned);
    return scanned;
  };
  for (int round = 0; round < 12; ++round) {
    CAPTURE(round);
    (void)build_random_log(*engine, rng, 150, 200);
    (void)build_random_log(*other, rng, 150, 200);
    check_now(*engine);
    const std::uint64_t pick = rng.uniform(3);
    if (pick == 0) {
      // A repair of some buckets from the other replica at the same index.
      while (other->last_applied_index() < engine->last_applied_index()) apply_noop(*other);
      while (engine->last_applied_index() < other->last_applied_index()) apply_noop(*engine);
      std::vector<std::uint32_t> buckets;
      for (int i = 0; i < 20; ++i) buckets.push_back(static_cast<std::uint32_t>(rng.uniform(256)));
      auto exporter = std::move(other->capture()).value();
      REQUIRE(engine->replace_buckets(buckets, exporter->export_buckets(buckets, 2048).value())
                  .is_ok());
      const ShardDigest repaired = check_now(*engine);
      for (std::uint32_t b : buckets) CHECK(repaired.buckets[b] == exporter->digest().buckets[b]);
    } else if (pick == 1) {
      // A restore of the other replica's whole state.
      auto source = std::move(other->open_snapshot()).value();
      auto sink = std::move(engine->begin_restore(source->index())).value();
      for (auto chunk = source->next_chunk(1500); !chunk->empty();
           chunk = source->next_chunk(1500)) {
        REQUIRE(sink->write_chunk(*chunk).is_ok());
      }
      REQUIRE(sink->finish().is_ok());
      CHECK(check_now(*engine) == check_now(*other));
    }
  }
  CHECK(check_now(*engine).keys > 50);  // the histories left a state worth digesting

  // A standalone engine on files: its kept sums after a WAL replay and
  // after loading a snapshot equal the recomputation, and the state's.
  testing::FaultInjectingFileSystem fs;
  ManualClock clock;
  StorageOptions options = storage_test::test_options(fs, clock);
  ShardDigest before;
  {
    auto standalone = storage_test::open_or_fail(options);
    for (int i = 0; i < 400; ++i) {
      const std::string key = "s" + std::to_string(rng.uniform(150));
      if (rng.chance(0.25)) {
        (void)standalone->remove(key);
      } else {
        REQUIRE(standalone->set(key, std::string(rng.uniform(90), 'w')).ok());
      }
      if (i == 200) REQUIRE(standalone->snapshot().is_ok());
    }
    before = check_now(*standalone);
  }
  auto reopened = storage_test::open_or_fail(options);
  CHECK(check_now(*reopened) == before);
}

TEST_CASE("a shard digest's encoding round-trips and refuses damaged bytes", "[storage][digest]") {
  const std::uint64_t seed = storage_test::test_seed(104);
  Rng rng(seed);
  auto engine = open_replicated();
  (void)build_random_log(*engine, rng, 500, 200);
  const ShardDigest digest = digest_of(*engine);
  const std::string encoded = encode_shard_digest(digest);
  REQUIRE(encoded.size() == kShardDigestEncodedBytes);
  auto decoded = decode_shard_digest(encoded);
  INFO(decoded.status().to_string());
  REQUIRE(decoded.is_ok());
  CHECK(*decoded == digest);
  CHECK(decoded->root() == digest.root());

  auto refused = [](std::string_view bytes) {
    auto result = decode_shard_digest(bytes);
    INFO((result.is_ok() ? std::string("accepted") : result.status().to_string()));
    CHECK(result.status().is(StatusCode::kCorruption));
    return result.is_ok() ? std::string() : std::string(result.status().message());
  };
  SECTION("cut short anywhere, naming the field") {
    for (std::size_t n = 0; n < encoded.size(); ++n) refused(encoded.substr(0, n));
    CHECK(refused(encoded.substr(0, 3)).find("magic truncated") != std::string::npos);
    CHECK(refused(encoded.substr(0, 10)).find("index truncated") != std::string::npos);
    CHECK(refused(encoded.substr(0, 20)).find("keys truncated") != std::string::npos);
    CHECK(refused(encoded.substr(0, 100)).find("buckets truncated") != std::string::npos);
    CHECK(refused(encoded.substr(0, encoded.size() - 1)).find("checksum truncated") !=
          std::string::npos);
  }
  SECTION("any byte changed, or one too many") {
    for (std::size_t i = 0; i < encoded.size(); ++i) {
      std::string damaged = encoded;
      damaged[i] = static_cast<char>(damaged[i] ^ (1 + rng.uniform(255)));
      refused(damaged);
    }
    CHECK(refused(encoded + "x").find("after the checksum") != std::string::npos);
  }
  SECTION("garbage of any size") {
    for (int i = 0; i < 200; ++i) {
      std::string garbage(i % 2 == 0 ? kShardDigestEncodedBytes : rng.uniform(4000), '\0');
      for (char& c : garbage) c = static_cast<char>(rng.uniform(256));
      if (i % 4 == 0) garbage.replace(0, 4, "NNSD");  // past the magic
      refused(garbage);
    }
  }
  SECTION("well framed but inconsistent") {
    ShardDigest odd = digest;
    odd.bytes = odd.keys - 1;
    CHECK(refused(encode_shard_digest(odd)).find("bytes below keys") != std::string::npos);
    ShardDigest empty_with_sums;
    empty_with_sums.buckets[7] = 1;
    CHECK(refused(encode_shard_digest(empty_with_sums)).find("empty state") != std::string::npos);
    CHECK(decode_shard_digest(encode_shard_digest(ShardDigest{})).is_ok());
  }
}

TEST_CASE("digest_bucket spreads keys over every bucket", "[storage][digest]") {
  std::array<int, kDigestBuckets> counts{};
  for (int i = 0; i < 256 * 64; ++i) ++counts[digest_bucket("key" + std::to_string(i))];
  // 64 keys per bucket on average; a bucket with none or with four times
  // as many would mean a broken bucket function.
  CHECK(*std::min_element(counts.begin(), counts.end()) > 16);
  CHECK(*std::max_element(counts.begin(), counts.end()) < 256);
}

}  // namespace
}  // namespace nodenomad
