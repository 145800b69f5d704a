// PrefetchingSnapshotSource: the chunks come out in order and unchanged,
// at most `depth` are read ahead, the loop is told when one is ready after
// it found none, an error arrives in its place, and dropping the source
// mid-read lets go of the inner one.
#include <catch2/catch.hpp>

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "node/background_worker.hpp"
#include "node/snapshot_prefetch.hpp"

namespace nodenomad::node {
namespace {

// 'a'.. bytes in chunks of at most max_bytes; fails at `fail_at` if set.
class CountingSource final : public SnapshotSource {
 public:
  CountingSource(std::size_t total, int* alive, std::size_t fail_at = 0)
      : total_(total), alive_(alive), fail_at_(fail_at) {
    ++*alive_;
  }
  ~CountingSource() override { --*alive_; }
  LogIndex index() const override { return LogIndex(7); }
  Result<std::string> next_chunk(std::size_t max_bytes) override {
    ++reads;
    if (fail_at_ != 0 && pos_ >= fail_at_) return Status::io_error("disk gone at " + std::to_string(pos_));
    std::string out;
    while (out.size() < max_bytes && pos_ < total_) {
      out.push_back(static_cast<char>('a' + pos_ % 26));
      ++pos_;
    }
    return out;
  }
  int reads = 0;

 private:
  std::size_t total_;
  int* alive_;
  std::size_t fail_at_;
  std::size_t pos_ = 0;
};

std::string expected_bytes(std::size_t total) {
  std::string out;
  for (std::size_t i = 0; i < total; ++i) out.push_back(static_cast<char>('a' + i % 26));
  return out;
}

// A worker the test runs by hand.
struct ManualWorker {
  std::deque<std::function<void()>> tasks;
  int notified = 0;
  std::function<void(std::function<void()>)> schedule() {
    return [this](std::function<void()> t) { tasks.push_back(std::move(t)); };
  }
  std::function<void()> on_ready() {
    return [this] { ++notified; };
  }
  void run_all() {
    while (!tasks.empty()) {
      auto t = std::move(tasks.front());
      tasks.pop_front();
      t();
    }
  }
};

TEST_CASE("snapshot prefetch: chunks come out in order, at most depth read ahead",
          "[node][prefetch]") {
  int alive = 0;
  ManualWorker worker;
  auto inner = std::make_unique<CountingSource>(1000, &alive);
  CountingSource* raw = inner.get();
  PrefetchingSnapshotSource source(std::move(inner), 64, 3, worker.schedule(), worker.on_ready());
  CHECK(source.index() == LogIndex(7));
  REQUIRE(worker.tasks.size() == 1);  // reading starts at once
  CHECK_FALSE(source.chunk_ready());
  worker.run_all();
  CHECK(raw->reads == 3);             // depth 3
  CHECK(worker.notified == 1);        // the loop had found nothing ready
  std::string got;
  while (true) {
    REQUIRE(source.chunk_ready() == true);
    Result<std::string> chunk = source.next_chunk(64);
    REQUIRE(chunk.is_ok());
    if (chunk->empty()) break;
    CHECK(chunk->size() <= 64);
    got += *chunk;
    if (!source.chunk_ready()) worker.run_all();
  }
  CHECK(got == expected_bytes(1000));
  CHECK(alive == 0);  // read to the end: the inner source is gone
  CHECK(worker.tasks.empty());
}

TEST_CASE("snapshot prefetch: an error comes out after the chunks before it",
          "[node][prefetch]") {
  int alive = 0;
  ManualWorker worker;
  PrefetchingSnapshotSource source(std::make_unique<CountingSource>(1000, &alive, 128), 64, 8,
                                   worker.schedule(), worker.on_ready());
  worker.run_all();
  CHECK(alive == 0);
  REQUIRE(source.next_chunk(64).is_ok());
  REQUIRE(source.next_chunk(64).is_ok());
  Result<std::string> failed = source.next_chunk(64);
  REQUIRE_FALSE(failed.is_ok());
  CHECK(failed.status().message().find("disk gone at 128") != std::string_view::npos);
  CHECK_FALSE(source.chunk_ready());
  CHECK(worker.tasks.empty());  // nothing more is read after the error
}

TEST_CASE("snapshot prefetch: a smaller chunk than the source was made for is refused",
          "[node][prefetch]") {
  int alive = 0;
  ManualWorker worker;
  PrefetchingSnapshotSource source(std::make_unique<CountingSource>(100, &alive), 64, 2,
                                   worker.schedule(), worker.on_ready());
  worker.run_all();
  Result<std::string> small = source.next_chunk(32);
  REQUIRE_FALSE(small.is_ok());
  CHECK(small.status().is(StatusCode::kInvalidArgument));
  CHECK(small.status().message().find("64") != std::string_view::npos);
}

TEST_CASE("snapshot prefetch: dropped before or while reading, the inner source goes",
          "[node][prefetch]") {
  int alive = 0;
  ManualWorker worker;
  {
    // Dropped with a read scheduled: the task finds it cancelled.
    PrefetchingSnapshotSource source(std::make_unique<CountingSource>(1000, &alive), 64, 2,
                                     worker.schedule(), worker.on_ready());
    REQUIRE(alive == 1);
  }
  CHECK(alive == 1);  // the scheduled task still shares it
  worker.run_all();
  CHECK(alive == 0);
  CHECK(worker.notified == 0);
  {
    // Dropped with nothing scheduled: it goes at once.
    PrefetchingSnapshotSource source(std::make_unique<CountingSource>(1000, &alive), 64, 2,
                                     worker.schedule(), worker.on_ready());
    worker.run_all();
    REQUIRE(alive == 1);
  }
  CHECK(alive == 0);
}

TEST_CASE("snapshot prefetch: on a worker thread, every byte arrives once, in order",
          "[node][prefetch]") {
  int alive = 0;  // touched by the worker only while the source lives
  BackgroundWorker worker("nn-test-prefetch", 10);
  std::mutex mu;
  std::condition_variable cv;
  int ready_calls = 0;
  const std::size_t total = 3'000'001;
  std::string got;
  {
    PrefetchingSnapshotSource source(
        std::make_unique<CountingSource>(total, &alive), 4096, 4,
        [&](std::function<void()> t) { worker.submit(std::move(t)); },
        [&] {
          std::lock_guard lock(mu);
          ++ready_calls;
          cv.notify_all();
        });
    while (true) {
      int seen = 0;
      {
        std::lock_guard lock(mu);
        seen = ready_calls;
      }
      if (!source.chunk_ready()) {
        // chunk_ready() asked to be told: the next chunk the worker makes
        // calls on_ready. A lost call would hang here (and fail the test).
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return ready_calls != seen; });
        continue;
      }
      Result<std::string> chunk = source.next_chunk(4096);
      REQUIRE(chunk.is_ok());
      if (chunk->empty()) break;
      got += *chunk;
    }
  }
  worker.stop();
  CHECK(got.size() == total);
  CHECK(got == expected_bytes(total));
  CHECK(alive == 0);
}

}  // namespace
}  // namespace nodenomad::node
