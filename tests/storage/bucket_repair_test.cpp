// Bucket repair: StateCapture::export_buckets on one replica,
// StorageEngine::replace_buckets on another, and every way a bad export is
// refused with the state left as it was.
#include <algorithm>
#include <set>

#include <catch2/catch.hpp>

#include "storage/digest_test_util.hpp"

namespace nodenomad {
namespace {

using digest_test::apply_log;
using digest_test::apply_next;
using digest_test::apply_noop;
using digest_test::build_random_log;
using digest_test::digest_of;
using digest_test::entries_in;
using digest_test::forge_export;
using digest_test::ForgedEntry;
using digest_test::key_in_bucket;
using digest_test::kT0;
using digest_test::open_replicated;
using digest_test::set_command;
using storage_test::dump_engine;
using storage_test::ModelState;

std::vector<std::string> export_of(const StorageEngine& engine,
                                   const std::vector<std::uint32_t>& buckets,
                                   std::size_t max_chunk_bytes) {
  auto captured = std::move(engine.capture()).value();
  auto chunks = captured->export_buckets(buckets, max_chunk_bytes);
  INFO(chunks.status().to_string());
  REQUIRE(chunks.is_ok());
  for (const std::string& chunk : *chunks) {
    CHECK(!chunk.empty());
    CHECK(chunk.size() <= max_chunk_bytes);
  }
  return std::move(chunks).value();
}

// A leader and a follower that applied the same random log, except that at
// some indexes the follower applied another command: a diverged replica at
// the same index.
struct Diverged {
  std::unique_ptr<StorageEngine> leader = open_replicated();
  std::unique_ptr<StorageEngine> follower = open_replicated();
  std::vector<std::uint32_t> differing;

  explicit Diverged(Rng& rng, std::size_t commands = 1500, int divergences = 6) {
    const std::vector<std::string> log = build_random_log(*leader, rng, commands, 400);
    std::set<std::size_t> swapped;
    while (swapped.size() < static_cast<std::size_t>(divergences)) {
      swapped.insert(rng.uniform(log.size()));
    }
    for (std::size_t i = 0; i < log.size(); ++i) {
      if (swapped.count(i) == 0) {
        apply_next(*follower, log[i]);
        continue;
      }
      const std::string key = "diverged-" + std::to_string(i);
      apply_next(*follower, set_command(key, "wrong", kT0));
    }
    REQUIRE(leader->last_applied_index() == follower->last_applied_index());
    differing = digest_of(*leader).differing_buckets(digest_of(*follower));
    REQUIRE(differing.size() >= 2);
  }
};

TEST_CASE("export and replace repair a diverged replica, bucket by bucket", "[storage][repair]") {
  const std::uint64_t seed = storage_test::test_seed(201);
  Rng rng(seed);
  Diverged d(rng);
  const LogIndex index = d.follower->last_applied_index();
  const ShardDigest leader_digest = digest_of(*d.leader);
  const ShardDigest before = digest_of(*d.follower);
  const ModelState follower_before = dump_engine(*d.follower);
  const ModelState leader_state = dump_engine(*d.leader);

  // First every differing bucket but one, and one that was already equal.
  std::vector<std::uint32_t> repaired(d.differing.begin() + 1, d.differing.end());
  std::uint32_t equal_bucket = 0;
  while (std::count(d.differing.begin(), d.differing.end(), equal_bucket) != 0) ++equal_bucket;
  repaired.push_back(equal_bucket);
  const std::size_t chunk_bytes = 64 + rng.uniform(2000);
  CAPTURE(chunk_bytes);
  const std::vector<std::string> chunks = export_of(*d.leader, repaired, chunk_bytes);
  CHECK(chunks.size() > 1);
  const Status replaced = d.follower->replace_buckets(repaired, chunks);
  INFO(replaced.to_string());
  REQUIRE(replaced.is_ok());

  CHECK(d.follower->last_applied_index() == index);
  const ShardDigest after = digest_of(*d.follower);
  CHECK(after.index == index);
  for (std::uint32_t b = 0; b < kDigestBuckets; ++b) {
    const bool was_repaired = std::count(repaired.begin(), repaired.end(), b) != 0;
    CAPTURE(b);
    CHECK(after.buckets[b] == (was_repaired ? leader_digest.buckets[b] : before.buckets[b]));
  }
  CHECK(after.differing_buckets(leader_digest) == std::vector<std::uint32_t>{d.differing[0]});
  // Record by record: the repaired buckets hold the leader's records, the
  // others the follower's own, untouched.
  const ModelState follower_after = dump_engine(*d.follower);
  CHECK(entries_in(follower_after, repaired) == entries_in(leader_state, repaired));
  CHECK(entries_in(follower_after, repaired, false) ==
        entries_in(follower_before, repaired, false));

  // Then the last one: the replicas are identical.
  const std::vector<std::uint32_t> last = {d.differing[0]};
  REQUIRE(d.follower->replace_buckets(last, export_of(*d.leader, last, 4096)).is_ok());
  CHECK(digest_of(*d.follower) == leader_digest);
  CHECK(dump_engine(*d.follower) == leader_state);
  // And it goes on applying the log as a replica should.
  apply_next(*d.leader, set_command("after", "repair", kT0));
  apply_next(*d.follower, set_command("after", "repair", kT0));
  CHECK(digest_of(*d.follower) == digest_of(*d.leader));
}

TEST_CASE("a replica rebuilt from every bucket equals its source", "[storage][repair]") {
  const std::uint64_t seed = storage_test::test_seed(202);
  Rng rng(seed);
  auto leader = open_replicated();
  (void)build_random_log(*leader, rng, 2000, 600);
  auto empty = open_replicated();
  while (empty->last_applied_index() < leader->last_applied_index()) apply_noop(*empty);
  std::vector<std::uint32_t> every(kDigestBuckets);
  for (std::uint32_t b = 0; b < kDigestBuckets; ++b) every[b] = b;
  // In any order, with a duplicate: a bucket list is a set.
  std::vector<std::uint32_t> listed = every;
  std::reverse(listed.begin(), listed.end());
  listed.push_back(7);
  REQUIRE(empty->replace_buckets(every, export_of(*leader, listed, 1 << 16)).is_ok());
  CHECK(digest_of(*empty) == digest_of(*leader));
  CHECK(dump_engine(*empty) == dump_engine(*leader));
}

TEST_CASE("the version floor is repaired with any bucket set, even none", "[storage][repair]") {
  auto leader = open_replicated();
  auto follower = open_replicated();
  apply_next(*leader, set_command("gone", "v", kT0));
  apply_next(*leader, digest_test::remove_command("gone", kT0));
  apply_noop(*follower);
  apply_noop(*follower);
  REQUIRE(digest_of(*leader).differing_buckets(digest_of(*follower)).empty());
  REQUIRE(digest_of(*leader).root() != digest_of(*follower).root());
  REQUIRE(follower->replace_buckets({}, export_of(*leader, {}, 1024)).is_ok());
  CHECK(digest_of(*follower) == digest_of(*leader));
  CHECK(follower->stats().version_floor == 1);
}

TEST_CASE("a value bigger than a chunk survives export and replace", "[storage][repair]") {
  const std::uint64_t seed = storage_test::test_seed(203);
  Rng rng(seed);
  std::string big(300 * 1024, '\0');
  for (char& c : big) c = static_cast<char>(rng.uniform(256));
  const std::string key = key_in_bucket(9, "big");
  auto leader = open_replicated();
  auto follower = open_replicated();
  apply_next(*leader, set_command(key, big, kT0, kT0 + std::chrono::hours(1)));
  apply_next(*leader, set_command(key_in_bucket(9, "small"), "s", kT0));
  apply_noop(*follower);
  apply_noop(*follower);
  const std::vector<std::string> chunks = export_of(*leader, {9}, 4096);
  CHECK(chunks.size() >= big.size() / 4096);
  REQUIRE(follower->replace_buckets({9}, chunks).is_ok());
  auto read = follower->get(key, kT0);
  REQUIRE(read.is_ok());
  CHECK(read->value == big);
  CHECK(read->version == 1);
  CHECK(read->expiry == kT0 + std::chrono::hours(1));
  CHECK(digest_of(*follower) == digest_of(*leader));
}

TEST_CASE("bad exports are refused and leave the state as it was", "[storage][repair]") {
  const std::uint64_t seed = storage_test::test_seed(204);
  Rng rng(seed);
  Diverged d(rng, 600, 3);
  const std::vector<std::uint32_t> buckets = d.differing;
  const std::vector<std::string> chunks = export_of(*d.leader, buckets, 300);
  REQUIRE(chunks.size() >= 3);
  const ShardDigest before = digest_of(*d.follower);
  const ModelState state_before = dump_engine(*d.follower);
  const LogIndex index = d.follower->last_applied_index();

  // Refused with `code`, and nothing changed; the message, for checks.
  auto refused = [&](const std::vector<std::uint32_t>& b, const std::vector<std::string>& c,
                     StatusCode code = StatusCode::kInvalidArgument) {
    const Status status = d.follower->replace_buckets(b, c);
    INFO(status.to_string());
    CHECK(status.is(code));
    CHECK(digest_of(*d.follower) == before);
    return std::string(status.message());
  };
  auto unchanged = [&] {
    CHECK(dump_engine(*d.follower) == state_before);
    CHECK(d.follower->last_applied_index() == index);
  };

  SECTION("any byte of any chunk changed") {
    for (std::size_t c = 0; c < chunks.size(); ++c) {
      for (std::size_t i = 0; i < chunks[c].size(); ++i) {
        std::vector<std::string> damaged = chunks;
        damaged[c][i] = static_cast<char>(damaged[c][i] ^ (1 + rng.uniform(255)));
        refused(buckets, damaged);
      }
    }
    unchanged();
  }
  SECTION("a chunk missing, cut short, repeated, or out of order") {
    for (std::size_t c = 0; c < chunks.size(); ++c) {
      std::vector<std::string> missing = chunks;
      missing.erase(missing.begin() + static_cast<std::ptrdiff_t>(c));
      refused(buckets, missing);
      std::vector<std::string> cut = chunks;
      cut[c].pop_back();
      refused(buckets, cut);
      std::vector<std::string> repeated = chunks;
      repeated.insert(repeated.begin() + static_cast<std::ptrdiff_t>(c), chunks[c]);
      refused(buckets, repeated);
    }
    std::vector<std::string> swapped = chunks;
    std::swap(swapped[0], swapped[1]);
    refused(buckets, swapped);
    CHECK(refused(buckets, {}).find("before its trailer") != std::string::npos);
    unchanged();
  }
  SECTION("an export of other buckets than those replaced") {
    const std::vector<std::uint32_t> fewer(buckets.begin() + 1, buckets.end());
    CHECK(refused(fewer, chunks).find("is in the export but is not being replaced") !=
          std::string::npos);
    std::vector<std::uint32_t> more = buckets;
    more.push_back(buckets.back() == 255 ? 0 : 255);
    CHECK(refused(more, chunks).find("is not in the export but is being replaced") !=
          std::string::npos);
    CHECK(refused({buckets[0], 256}, chunks).find("bucket 256 is out of range") !=
          std::string::npos);
    unchanged();
  }
  SECTION("a key outside the buckets, or sums that do not match") {
    const std::uint32_t b = buckets[0];
    const std::uint32_t other = (b + 1) % kDigestBuckets;
    const std::vector<std::uint32_t> both = {std::min(b, other), std::max(b, other)};
    const std::uint64_t floor = before.version_floor;
    // The forged export is right when its keys are in its buckets...
    auto forged_ok = forge_export(index, floor, both, {{key_in_bucket(b), "v", 3}});
    // ...so what is refused below is the foreign key and the wrong sum.
    const std::vector<ForgedEntry> foreign = {{key_in_bucket(b), "v", 3},
                                              {key_in_bucket(other), "v", 1}};
    CHECK(refused({b}, forge_export(index, floor, {b}, foreign)).find("outside the buckets") !=
          std::string::npos);
    CHECK(refused({b}, forge_export(index, floor, {b}, {{key_in_bucket(b), "v", 3}}, 1))
              .find("the trailer says") != std::string::npos);
    CHECK(refused({b}, forge_export(index, floor, {b}, {{key_in_bucket(b), "v", 3},
                                                        {key_in_bucket(b), "w", 4}}))
              .find("appears twice") != std::string::npos);
    CHECK(refused({b}, forge_export(index, floor, {b}, {{key_in_bucket(b), "v", 0}}))
              .find("malformed") != std::string::npos);
    unchanged();
    REQUIRE(d.follower->replace_buckets(both, forged_ok).is_ok());
    CHECK(d.follower->get(key_in_bucket(b), kT0)->version == 3);
    CHECK(entries_in(dump_engine(*d.follower), both).size() == 1);
  }
  SECTION("an export taken at another index") {
    apply_noop(*d.leader);
    CHECK(refused(buckets, export_of(*d.leader, buckets, 300)).find("taken at index") !=
          std::string::npos);
    unchanged();
  }
  SECTION("a snapshot stream instead of an export") {
    auto source = std::move(d.leader->open_snapshot()).value();
    std::vector<std::string> snapshot;
    for (auto chunk = source->next_chunk(300); !chunk->empty(); chunk = source->next_chunk(300)) {
      snapshot.push_back(*chunk);
    }
    CHECK(refused(buckets, snapshot).find("a snapshot, not a bucket export") != std::string::npos);
    unchanged();
  }
  SECTION("a record over this replica's limits") {
    auto strict = open_replicated(/*max_value_bytes=*/8);
    while (strict->last_applied_index() < index) apply_noop(*strict);
    const std::uint32_t b = buckets[0];
    const Status status = strict->replace_buckets(
        {b}, forge_export(index, 0, {b}, {{key_in_bucket(b), std::string(9, 'v'), 1}}));
    CHECK(status.is(StatusCode::kInvalidArgument));
    CHECK(status.message().find("max_value_bytes") != std::string_view::npos);
    CHECK(strict->stats().keys == 0);
  }
}

TEST_CASE("export and replace refuse bad arguments and the wrong mode", "[storage][repair]") {
  auto leader = open_replicated();
  apply_next(*leader, set_command("k", "v", kT0));
  auto captured = std::move(leader->capture()).value();
  CHECK(captured->export_buckets({kDigestBuckets}, 100).status().is(StatusCode::kInvalidArgument));
  CHECK(captured->export_buckets({1}, 0).status().is(StatusCode::kInvalidArgument));
  const std::vector<std::string> chunks = captured->export_buckets({1}, 100).value();

  ManualClock clock;
  StorageOptions options;
  options.clock = &clock;
  auto standalone = storage_test::open_or_fail(options);
  REQUIRE(standalone->set("x", "y").ok());
  CHECK(standalone->replace_buckets({1}, chunks).is(StatusCode::kNotSupported));
  CHECK(standalone->get("x")->value == "y");
}

}  // namespace
}  // namespace nodenomad
