// Records handed back (docs/storage.md): with KvMap::set_writer_frees the
// records a capture kept are not freed by the thread that drops it but
// handed back to the map, whose writer frees them in steps; a replicated
// engine does so one per apply. Run under ASan, a record left behind is a
// leak and one freed twice an error.
#include <algorithm>
#include <thread>

#include <catch2/catch.hpp>

#include "storage/digest_test_util.hpp"
#include "storage/kv_map.hpp"

namespace nodenomad {
namespace {

using digest_test::apply_next;
using digest_test::kT0;
using digest_test::open_replicated;
using digest_test::set_command;
using storage::KvMap;
using storage::Record;
using storage::RecordRef;

RecordRef record(std::string_view key, std::string_view value, std::uint64_t version) {
  return RecordRef::adopt(Record::create(key, value, version, /*has_expiry=*/false, 0));
}

TEST_CASE("records a capture kept go back to the map's writer, which frees them in steps",
          "[storage][capture]") {
  KvMap map;
  map.set_writer_frees(true);
  for (int i = 0; i < 100; ++i) map.put(record("k" + std::to_string(i), "old", 1));
  RecordRef watched(record("k7", "old", 1));
  map.put(watched);  // a second reference, ours, to see when the map lets go
  REQUIRE(watched->refs_for_testing() == 2);
  KvMap::Capture captured = map.capture();
  for (int i = 0; i < 100; ++i) map.put(record("k" + std::to_string(i), "new", 2));
  CHECK(map.newest_graveyard_size_for_testing() == 100);
  CHECK(map.returned() == 0);

  // The capture dies on another thread: its records are not freed there.
  std::thread([c = std::move(captured)]() mutable { c = KvMap::Capture(); }).join();
  CHECK(map.newest_graveyard_size_for_testing() == 0);
  CHECK(map.returned() == 100);
  CHECK(watched->refs_for_testing() == 2);

  // The writer frees them, up to a bound at a time.
  std::size_t left = 100;
  while (left > 0) {
    const std::size_t before = left;
    left = map.free_returned(30);
    CHECK(left == before - std::min<std::size_t>(30, before));
    CHECK(map.returned() == left);
  }
  CHECK(watched->refs_for_testing() == 1);  // ours alone now
  CHECK(map.free_returned(30) == 0);

  // Off (the default), the thread that drops the last capture frees them.
  KvMap plain;
  RecordRef kept(record("a", "old", 1));
  plain.put(kept);
  KvMap::Capture other = plain.capture();
  plain.put(record("a", "new", 2));
  other = KvMap::Capture();
  CHECK(plain.returned() == 0);
  CHECK(kept->refs_for_testing() == 1);
}

TEST_CASE("records handed back and never freed by the writer go with the map",
          "[storage][capture]") {
  // Under ASan a record left behind is a leak, one freed twice an error.
  RecordRef watched(record("k", "old", 1));
  auto map = std::make_unique<KvMap>();
  map->set_writer_frees(true);
  map->put(watched);
  for (int i = 0; i < 50; ++i) map->put(record("x" + std::to_string(i), "v", 1));
  {
    KvMap::Capture first = map->capture();
    map->put(record("k", "new", 2));
    for (int i = 0; i < 50; ++i) map->put(record("x" + std::to_string(i), "w", 2));
  }
  CHECK(map->returned() == 51);
  CHECK(watched->refs_for_testing() == 2);

  // take_all() hands them out with the map's own records.
  KvMap::Capture second = map->capture();
  map->put(record("k", "newer", 3));  // "new" is kept for `second`
  second = KvMap::Capture();
  CHECK(map->returned() == 52);
  std::vector<RecordRef> all = map->take_all();
  CHECK(all.size() == 51 + 52);  // 51 current (k and x0..x49) and 52 handed back
  CHECK(map->returned() == 0);
  all.clear();
  CHECK(watched->refs_for_testing() == 1);

  // The map's destruction frees what waits; a capture outliving the map
  // frees its own records when it goes.
  map->put(watched);
  KvMap::Capture third = map->capture();
  map->put(record("k", "again", 4));
  KvMap::Capture fourth = map->capture();
  map->put(record("k", "last", 5));
  third = KvMap::Capture();
  CHECK(map->returned() == 1);  // `watched`; "again" is kept for `fourth`
  map.reset();
  CHECK(watched->refs_for_testing() == 1);
  fourth = KvMap::Capture();  // frees "again" here: the map is gone
}

TEST_CASE("a replicated engine frees what captures kept one per apply, or when asked",
          "[storage][capture]") {
  auto engine = open_replicated();
  for (int i = 0; i < 200; ++i) {
    apply_next(*engine, set_command("key-" + std::to_string(i), "first", kT0));
  }
  CHECK(engine->free_released_records(1000) == 0);
  auto capture = std::move(engine->capture()).value();
  const ShardDigest at_capture = capture->digest();
  for (int i = 0; i < 100; ++i) {
    apply_next(*engine, set_command("key-" + std::to_string(i), "second", kT0));
  }
  CHECK(capture->digest() == at_capture);
  std::thread([c = std::move(capture)]() mutable { c.reset(); }).join();
  // Handed back, none freed yet: asking for none says how many wait.
  CHECK(engine->free_released_records(0) == 100);
  for (int i = 0; i < 10; ++i) {
    apply_next(*engine, set_command("other-" + std::to_string(i), "v", kT0));
  }
  CHECK(engine->free_released_records(0) == 100 - 10);
  CHECK(engine->free_released_records(50) == 40);
  CHECK(engine->free_released_records(50) == 0);
  CHECK(engine->stats().keys == 210);
}

}  // namespace
}  // namespace nodenomad
