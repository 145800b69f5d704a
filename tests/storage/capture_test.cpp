// Captures (KvMap::capture, StorageEngine::capture, open_snapshot): each sees
// exactly the records of its point in time while writes, removes, clears,
// restores, bucket repairs and the engine's destruction happen after it; the
// records it points at are kept by the map's graveyards and freed when the
// captures die, on any thread. Run under ASan, a record freed too early is a
// use-after-free here.
#include <pthread.h>

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include <catch2/catch.hpp>

#include "storage/digest_test_util.hpp"
#include "storage/kv_map.hpp"

namespace nodenomad {
namespace {

using digest_test::apply_log;
using digest_test::apply_next;
using digest_test::build_random_log;
using digest_test::digest_from_dump;
using digest_test::digest_of;
using digest_test::kT0;
using digest_test::open_replicated;
using digest_test::remove_command;
using digest_test::set_command;
using storage::KvMap;
using storage::Record;
using storage::RecordRef;
using storage_test::dump_engine;
using storage_test::dump_snapshot;
using storage_test::ModelState;

struct Stored {
  std::string value;
  std::uint64_t version = 0;
  bool operator==(const Stored&) const = default;
};
using MapModel = std::map<std::string, Stored>;

RecordRef make_record(std::string_view key, std::string_view value, std::uint64_t version,
                      bool has_expiry = false, std::int64_t expiry_ms = 0) {
  return RecordRef::adopt(Record::create(key, value, version, has_expiry, expiry_ms));
}

// What a capture points at, read record by record (each key once). Lists
// the rest of a capture not listed yet (the caller holds its map still).
MapModel read_capture(const KvMap::Capture& captured) {
  MapModel seen;
  CHECK(captured.step(SIZE_MAX));
  REQUIRE(captured.records().size() == captured.size());
  for (const Record* r : captured.records()) {
    const bool fresh =
        seen.emplace(std::string(r->key()), Stored{std::string(r->value()), r->version()}).second;
    REQUIRE(fresh);
  }
  return seen;
}

// Runs `body` on a thread with a stack of 256 KiB, and waits for it.
void run_on_small_stack(std::function<void()> body) {
  pthread_attr_t attr;
  REQUIRE(pthread_attr_init(&attr) == 0);
  REQUIRE(pthread_attr_setstacksize(&attr, 256u << 10) == 0);
  pthread_t thread;
  const auto trampoline = [](void* arg) -> void* {
    (*static_cast<std::function<void()>*>(arg))();
    return nullptr;
  };
  REQUIRE(pthread_create(&thread, &attr, trampoline, &body) == 0);
  REQUIRE(pthread_join(thread, nullptr) == 0);
  pthread_attr_destroy(&attr);
}

struct LiveCapture {
  KvMap::Capture captured;
  MapModel expected;
};

TEST_CASE("KvMap captures see exactly their point in time", "[storage][capture]") {
  const std::uint64_t seed = storage_test::test_seed(301);
  Rng rng(seed);
  auto map = std::make_unique<KvMap>();
  MapModel model;
  std::vector<LiveCapture> live;
  std::uint64_t version = 0;
  const auto check_all = [&] {
    for (const LiveCapture& c : live) CHECK(read_capture(c.captured) == c.expected);
  };
  for (int step = 0; step < 20'000; ++step) {
    const std::string key = "key-" + std::to_string(rng.uniform(200));
    const std::uint64_t pick = rng.uniform(1000);
    if (pick < 450) {
      const std::string value(rng.uniform(40), static_cast<char>('a' + rng.uniform(26)));
      const bool has_expiry = rng.chance(0.2);
      RecordRef record = make_record(key, value, ++version, has_expiry, rng.uniform(1000));
      if (rng.chance(0.5)) {
        map->put(std::move(record));
      } else {
        const KvMap::Spot spot = map->locate(key);
        CHECK((spot.record() != nullptr) == model.contains(key));
        map->put(spot, std::move(record));
      }
      model[key] = Stored{value, version};
    } else if (pick < 500) {
      const bool inserted = map->insert_new(make_record(key, "new", ++version));
      CHECK(inserted == !model.contains(key));
      if (inserted) model[key] = Stored{"new", version};
    } else if (pick < 700) {
      CHECK(map->erase(key) == (model.erase(key) == 1));
    } else if (pick < 705) {
      map->clear();
      model.clear();
    } else if (pick < 800) {
      if (live.size() == 8) live.erase(live.begin() + static_cast<long>(rng.uniform(8)));
      // Half listed in steps, with writes between them (kv_map.hpp).
      live.push_back(LiveCapture{map->capture(rng.chance(0.5) ? 0 : SIZE_MAX), model});
    } else if (pick < 880) {
      if (!live.empty()) {
        const std::size_t i = rng.uniform(live.size());
        CHECK(read_capture(live[i].captured) == live[i].expected);
        live.erase(live.begin() + static_cast<long>(i));
      }
    } else if (pick < 890) {
      check_all();
    } else if (pick < 892) {
      map = std::make_unique<KvMap>();  // the old map dies with captures alive
      model.clear();
    } else if (pick < 950) {
      if (!live.empty()) live[rng.uniform(live.size())].captured.step(1 + rng.uniform(20));
    } else if (pick < 990) {
      // A write at the slot a listing walks next: replaced in place, or erased
      // (the walk's position moves on first).
      const Record* next = live.empty() ? nullptr : live.back().captured.next_for_testing();
      if (next != nullptr) {
        const std::string at(next->key());
        if (rng.chance(0.5)) {
          CHECK(map->erase(at));
          model.erase(at);
        } else {
          map->put(make_record(at, "at-walk", ++version));
          model[at] = Stored{"at-walk", version};
        }
      }
    }
    REQUIRE(map->size() == model.size());
  }
  check_all();
  map.reset();
  check_all();
}

TEST_CASE("a record no capture saw is freed at once, whatever captures live",
          "[storage][capture]") {
  KvMap map;
  map.put(make_record("hot", "v1", 1));
  map.put(make_record("cold", "c", 1));
  for (std::uint64_t v = 2; v < 100; ++v) map.put(make_record("hot", "x", v));
  CHECK(map.newest_graveyard_size_for_testing() == 0);  // no capture: nothing kept

  KvMap::Capture first = map.capture();
  // 1,000 writes of one key keep one old record (the captured one), not 1,000.
  for (std::uint64_t v = 100; v < 1100; ++v) map.put(make_record("hot", "y", v));
  CHECK(map.newest_graveyard_size_for_testing() == 1);
  CHECK(map.erase("hot"));  // entered after the capture: freed
  CHECK(map.newest_graveyard_size_for_testing() == 1);

  map.put(make_record("hot", "v2", 2000));
  KvMap::Capture second = map.capture();  // a graveyard of its own: the first is not empty
  CHECK(map.newest_graveyard_size_for_testing() == 0);
  for (std::uint64_t v = 2001; v < 2100; ++v) map.put(make_record("hot", "z", v));
  CHECK(map.erase("cold"));  // seen by both captures
  CHECK(map.newest_graveyard_size_for_testing() == 2);
  KvMap::Capture third = map.capture();  // shares the second's graveyard? No: it is not empty
  CHECK(map.newest_graveyard_size_for_testing() == 0);
  KvMap::Capture fourth = map.capture();  // nothing retired since the third: shares its graveyard
  map.put(make_record("hot", "w", 3000));
  CHECK(map.newest_graveyard_size_for_testing() == 1);

  CHECK(read_capture(first) == MapModel{{"hot", {"x", 99}}, {"cold", {"c", 1}}});
  CHECK(read_capture(second) == MapModel{{"hot", {"v2", 2000}}, {"cold", {"c", 1}}});
  CHECK(read_capture(third) == MapModel{{"hot", {"z", 2099}}});
  CHECK(read_capture(fourth) == MapModel{{"hot", {"z", 2099}}});

  first = KvMap::Capture();
  second = KvMap::Capture();
  third = KvMap::Capture();
  fourth = KvMap::Capture();
  CHECK(map.newest_graveyard_size_for_testing() == 0);  // every graveyard is gone
  map.put(make_record("hot", "after", 4000));
  CHECK(map.newest_graveyard_size_for_testing() == 0);
}

TEST_CASE("the capture epoch's wraparound keeps old records for live captures",
          "[storage][capture]") {
  KvMap map;
  map.put(make_record("old", "first", 1));  // stamped with epoch 1
  KvMap::Capture early = map.capture();     // epoch 2
  // As if 2^32 - 3 more captures had come and gone: the next capture wraps
  // the counter round to 1, the epoch "old" was stamped with. Without the
  // restamp at the wrap, overwriting "old" would free the record `early`
  // points at.
  map.set_capture_epoch_for_testing(UINT32_MAX);
  KvMap::Capture late = map.capture();
  CHECK(map.capture_epoch() == 1);
  map.put(make_record("old", "second", 2));
  CHECK(map.newest_graveyard_size_for_testing() == 1);
  CHECK(read_capture(early) == MapModel{{"old", {"first", 1}}});
  CHECK(read_capture(late) == MapModel{{"old", {"first", 1}}});
  // A record put after the wrap is new again: replaced, it is freed at once.
  map.put(make_record("old", "third", 3));
  CHECK(map.newest_graveyard_size_for_testing() == 1);
}

TEST_CASE("a long chain of graveyards is freed without deep recursion", "[storage][capture]") {
  // 100,000 captures, each followed by a write, so each holds a graveyard of
  // its own, chained to the next. Dropping the newest first keeps the chain
  // whole; dropping the oldest last frees all of it at once (a recursive
  // destructor would need a stack frame per graveyard).
  KvMap map;
  map.put(make_record("k", "v", 1));
  std::vector<KvMap::Capture> captures;
  constexpr int kCaptures = 100'000;
  captures.reserve(kCaptures);
  for (int i = 0; i < kCaptures; ++i) {
    captures.push_back(map.capture());
    map.put(make_record("k", "v", static_cast<std::uint64_t>(i) + 2));
  }
  CHECK(read_capture(captures.front()) == MapModel{{"k", {"v", 1}}});
  while (captures.size() > 1) captures.pop_back();
  CHECK(read_capture(captures.front()) == MapModel{{"k", {"v", 1}}});
  // The last one dies on a thread with a small stack (256 KiB): 100,000
  // nested destructors would not fit in it.
  run_on_small_stack([&captures] { captures.clear(); });
  CHECK(captures.empty());
  CHECK(map.newest_graveyard_size_for_testing() == 0);
}

// The graveyard hook below is a plain function pointer: its state is here.
struct DyingGate {
  std::mutex mu;
  std::condition_variable cv;
  int stage = 0;  // 1: a graveyard is dying, in the hook; 2: let it go on
};
DyingGate g_dying_gate;

TEST_CASE("a record that leaves while the last graveyard is being freed waits for it",
          "[storage][capture]") {
  KvMap map;
  map.put(make_record("k", "old", 1));
  KvMap::Capture captured = map.capture();
  KvMap::graveyard_dying_hook_for_testing = [] {
    std::unique_lock lock(g_dying_gate.mu);
    g_dying_gate.stage = 1;
    g_dying_gate.cv.notify_all();
    g_dying_gate.cv.wait(lock, [] { return g_dying_gate.stage == 2; });
  };
  MapModel seen;
  std::thread dropper([&] {
    seen = read_capture(captured);
    captured = KvMap::Capture();  // the graveyard dies here, and stops in the hook
  });
  {
    std::unique_lock lock(g_dying_gate.mu);
    REQUIRE(g_dying_gate.cv.wait_for(lock, std::chrono::seconds(30),
                                     [] { return g_dying_gate.stage == 1; }));
  }
  // The capture is gone (the map cannot reach its graveyard), but the thread
  // that read "old" through it is still inside the graveyard's destructor:
  // replaced now, "old" waits with the census instead of being freed here.
  map.put(make_record("k", "new", 2));
  CHECK(map.parked_for_testing() == 1);
  {
    std::lock_guard lock(g_dying_gate.mu);
    g_dying_gate.stage = 2;
  }
  g_dying_gate.cv.notify_all();
  dropper.join();
  KvMap::graveyard_dying_hook_for_testing = nullptr;
  CHECK(seen == MapModel{{"k", {"old", 1}}});
  CHECK(map.parked_for_testing() == 0);  // freed by the last graveyard, on the dropper's thread
  map.put(make_record("k", "newer", 3));
  CHECK(map.parked_for_testing() == 0);
  CHECK(map.newest_graveyard_size_for_testing() == 0);
}

TEST_CASE("captures die on other threads while the map goes on", "[storage][capture]") {
  const std::uint64_t seed = storage_test::test_seed(302);
  Rng rng(seed);
  KvMap map;
  MapModel model;
  std::uint64_t version = 0;
  for (int round = 0; round < 50; ++round) {
    std::vector<LiveCapture> batch;
    for (int i = 0; i < 4; ++i) {
      for (int w = 0; w < 200; ++w) {
        const std::string key = "k" + std::to_string(rng.uniform(300));
        if (rng.chance(0.2)) {
          map.erase(key);
          model.erase(key);
        } else {
          ++version;
          map.put(make_record(key, "v" + std::to_string(version), version));
          model[key] = Stored{"v" + std::to_string(version), version};
        }
      }
      batch.push_back(LiveCapture{map.capture(), model});
    }
    // Another thread reads the captures and drops them, freeing what they
    // kept, while this one goes on writing (the engine's lock is not needed:
    // a capture and its graveyards are not the map's).
    bool all_matched = true;
    std::thread reader([&all_matched, batch = std::move(batch)]() mutable {
      for (LiveCapture& c : batch) all_matched = all_matched && read_capture(c.captured) == c.expected;
      batch.clear();
    });
    for (int w = 0; w < 500; ++w) {
      const std::string key = "k" + std::to_string(rng.uniform(300));
      map.put(make_record(key, "late", ++version));
      model[key] = Stored{"late", version};
    }
    reader.join();
    CHECK(all_matched);
  }
}

TEST_CASE("engine captures hold through writes, a restore, a repair and the engine's end",
          "[storage][capture]") {
  const std::uint64_t seed = storage_test::test_seed(303);
  Rng rng(seed);
  auto engine = open_replicated();
  (void)build_random_log(*engine, rng, 1500, 300);
  const LogIndex first_index = engine->last_applied_index();
  const ModelState first_state = dump_engine(*engine);
  const ShardDigest first_digest = digest_from_dump(first_state, first_index);
  auto first_capture = std::move(engine->capture()).value();
  auto first_source = std::move(engine->open_snapshot()).value();

  // Writes and removes after the capture; a second capture in between.
  (void)build_random_log(*engine, rng, 800, 300);
  const ModelState second_state = dump_engine(*engine);
  const LogIndex second_index = engine->last_applied_index();
  auto second_capture = std::move(engine->capture()).value();
  for (int i = 0; i < 300; ++i) {
    apply_next(*engine, remove_command("key-" + std::to_string(i), kT0));
  }
  CHECK(first_capture->digest() == first_digest);
  CHECK(second_capture->digest() == digest_from_dump(second_state, second_index));

  // A repair with another replica's records, at the same index.
  auto other = open_replicated();
  (void)build_random_log(*other, rng, engine->last_applied_index().value(), 300);
  REQUIRE(other->last_applied_index() == engine->last_applied_index());
  const std::vector<std::uint32_t> buckets = {0, 1, 2, 3, 200};
  auto other_capture = std::move(other->capture()).value();
  const auto chunks = std::move(other_capture->export_buckets(buckets, 4096)).value();
  auto before_repair = std::move(engine->capture()).value();
  const ShardDigest before_repair_digest = before_repair->digest();
  REQUIRE(engine->replace_buckets(buckets, chunks).is_ok());
  CHECK(before_repair->digest() == before_repair_digest);
  const ShardDigest repaired = digest_of(*engine);
  for (std::uint32_t b : buckets) CHECK(repaired.buckets[b] == other_capture->digest().buckets[b]);

  // A restore swaps the whole state; the captures keep theirs.
  auto source = std::move(other->open_snapshot()).value();
  const LogIndex restore_index = source->index();
  auto sink = std::move(engine->begin_restore(restore_index)).value();
  for (auto chunk = source->next_chunk(3000); !chunk->empty(); chunk = source->next_chunk(3000)) {
    REQUIRE(sink->write_chunk(*chunk).is_ok());
  }
  REQUIRE(sink->finish().is_ok());
  CHECK(digest_of(*engine) == digest_of(*other));
  CHECK(first_capture->digest() == first_digest);
  CHECK(before_repair->digest() == before_repair_digest);

  // The engine goes; the captures and the stream stay whole.
  engine.reset();
  other.reset();
  CHECK(first_capture->digest() == first_digest);
  CHECK(second_capture->digest() == digest_from_dump(second_state, second_index));
  CHECK(before_repair->digest() == before_repair_digest);
  LogIndex streamed_index;
  CHECK(dump_snapshot(*first_source, &streamed_index, 777) == first_state);
  CHECK(streamed_index == first_index);
}

TEST_CASE("captures taken and digested on another thread while a log is applied",
          "[storage][capture]") {
  const std::uint64_t seed = storage_test::test_seed(304);
  Rng rng(seed);
  std::vector<std::string> log;
  {
    auto scratch = open_replicated();
    log = build_random_log(*scratch, rng, 6000, 500);
  }
  auto engine = open_replicated();
  struct Seen {
    LogIndex index;
    ShardDigest digest;
  };
  std::vector<Seen> seen;
  std::atomic<bool> applying{true};
  std::atomic<bool> started{false};
  bool stable = true;
  std::thread capturer([&] {
    // Keeps the last few captures alive and digests each again later: a
    // capture's digest must not move while the engine does.
    std::vector<std::pair<std::shared_ptr<const StateCapture>, ShardDigest>> held;
    for (bool more = true; more;) {
      more = applying.load();  // one more capture after the log is applied
      auto captured = std::move(engine->capture()).value();
      const ShardDigest digest = captured->digest();
      seen.push_back(Seen{captured->index(), digest});
      held.emplace_back(std::move(captured), digest);
      if (held.size() > 6) {
        stable = stable && held.front().first->digest() == held.front().second;
        held.erase(held.begin());
      }
      started.store(true);
    }
    for (const auto& [captured, digest] : held) stable = stable && captured->digest() == digest;
  });
  while (!started.load()) std::this_thread::yield();  // the first capture is taken
  apply_log(*engine, log);
  applying.store(false);
  capturer.join();
  CHECK(stable);
  REQUIRE(!seen.empty());
  // Replay the log on a fresh engine and compare each capture with the
  // state at its index.
  auto replay = open_replicated();
  std::size_t next = 0;
  for (const Seen& s : seen) {
    while (replay->last_applied_index() < s.index) apply_next(*replay, log[next++]);
    CHECK(digest_of(*replay) == s.digest);
  }
  CHECK(seen.size() >= 2);
}

TEST_CASE("take_state hands the records out to be freed in slices, unless a capture shares them",
          "[storage][capture]") {
  const std::uint64_t seed = storage_test::test_seed(404);
  Rng rng(seed);
  auto engine = open_replicated();
  (void)build_random_log(*engine, rng, 1200, 300);
  const std::uint64_t keys = engine->stats().keys;
  REQUIRE(keys > 100);
  const ModelState state = dump_engine(*engine);
  const LogIndex index = engine->last_applied_index();
  {
    // A live capture (or snapshot stream) keeps the records: nothing taken.
    auto capture = std::move(engine->capture()).value();
    CHECK(engine->take_state() == nullptr);
    CHECK(engine->stats().keys == keys);
    CHECK(capture->digest() == digest_from_dump(state, index));
  }
  std::unique_ptr<StateRemains> remains = engine->take_state();
  REQUIRE(remains != nullptr);
  CHECK(remains->records_left() == keys);
  CHECK(engine->stats().keys == 0);
  CHECK(engine->stats().bytes == 0);
  std::size_t slices = 0;
  while (!remains->release(100)) {
    ++slices;
    CHECK(remains->records_left() == keys - 100 * slices);
  }
  CHECK(remains->records_left() == 0);
  CHECK(slices == (keys - 1) / 100);
  engine.reset();  // an emptied engine closes as any other
}

TEST_CASE("a large capture is listed in steps while another thread applies writes",
          "[storage][capture]") {
  const std::uint64_t seed = storage_test::test_seed(306);
  Rng rng(seed);
  // More keys than a map lists at once (kv_map.hpp): the capture and the
  // stream are listed in steps by their first reader, here, while the writer
  // below replaces, removes and adds keys (the adds grow the table: the
  // rehash lists the rest at once).
  const auto fill = [](StorageEngine& engine) {
    for (int i = 0; i < 40'000; ++i) {
      apply_next(engine, set_command("key-" + std::to_string(i), "v" + std::to_string(i), kT0));
    }
  };
  auto engine = open_replicated();
  fill(*engine);
  std::vector<std::string> log;
  {
    auto scratch = open_replicated();
    fill(*scratch);
    log = build_random_log(*scratch, rng, 30'000, 90'000);
  }
  REQUIRE(engine->stats().keys > storage::KvMap::kListAtOnce);
  const LogIndex index = engine->last_applied_index();
  const ModelState state = dump_engine(*engine);
  // One listing is pending at a time: the second capture lists the first.
  auto source = std::move(engine->open_snapshot()).value();
  auto captured = std::move(engine->capture()).value();
  CHECK(captured->keys() == 40'000);
  std::atomic<bool> reading{true};
  std::atomic<std::size_t> applied{0};
  bool all_ok = true;
  std::thread writer([&] {  // no Catch assertions off the main thread
    for (const std::string& command : log) {
      all_ok = all_ok && engine->apply(index + applied.load() + 1, command).is_ok();
      applied.fetch_add(1);
      if (!reading.load() && applied.load() >= 2'000) break;
    }
  });
  while (applied.load() < 1'000) std::this_thread::yield();  // listed after writes began
  const ShardDigest digest = captured->digest();
  LogIndex streamed_index;
  const ModelState streamed = dump_snapshot(*source, &streamed_index, 64 << 10);
  reading.store(false);
  writer.join();
  CHECK(all_ok);
  CHECK(engine->last_applied_index() == index + applied.load());
  CHECK(digest == digest_from_dump(state, index));
  CHECK(streamed == state);
  CHECK(streamed_index == index);
}

}  // namespace
}  // namespace nodenomad
