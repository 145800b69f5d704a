// Reading and checking migrations on a real cluster (migration_checks.hpp).
#include "cluster/migration_checks.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <charconv>
#include <filesystem>
#include <mutex>
#include <thread>

#include "nodenomad/rng.hpp"

namespace nodenomad::process_testing {
namespace {

using namespace std::chrono_literals;

constexpr std::chrono::milliseconds kPreloadTimeout{30'000};    // scaled, all keys together
constexpr std::chrono::milliseconds kReadBackTimeout{30'000};   // scaled, all keys together
constexpr std::chrono::milliseconds kRetryPause{20};            // after an answer other than 200
constexpr std::chrono::milliseconds kHostingPollInterval{250};  // between /metrics rounds
constexpr std::size_t kMaxMismatchesShown = 10;

std::vector<std::uint16_t> running_ports(const ProcessCluster& cluster) {
  std::vector<std::uint16_t> ports;
  for (std::size_t i = 0; i < cluster.size(); ++i) {
    if (cluster.running(i)) ports.push_back(cluster.port(i));
  }
  return ports;
}

std::string describe_result(const HttpResult& result) {
  if (!result.reply) return "no answer: " + result.error;
  return fmt::format("{} {}", result.reply->status, result.reply->body.substr(0, 200));
}

// One client of preload(): writes data[first], data[first + step], ...
// rotating over `ports`; returns a description of the first key it could not
// write before `deadline`, or an empty string.
std::string preload_slice(const Preload& data, std::size_t first, std::size_t step,
                          const std::vector<std::uint16_t>& ports, Deadline deadline) {
  std::vector<HttpConnection> connections;
  for (const std::uint16_t port : ports) connections.emplace_back(port, kProbeTimeout);
  std::size_t turn = first;
  for (std::size_t i = first; i < data.size(); i += step) {
    const auto& [key, value] = data[i];
    for (;;) {
      const HttpResult put = connections[turn++ % connections.size()].request(
          "PUT", "/v1/kv/" + percent_encode(key), value);
      if (put.reply && put.reply->status == 200) break;
      // The same value again: a retried write that had been applied changes nothing.
      if (SteadyClock::now() >= deadline) return key + ": " + describe_result(put);
      std::this_thread::sleep_for(kRetryPause);
    }
  }
  return {};
}

}  // namespace

Preload make_preload(std::uint64_t seed, std::size_t keys, std::size_t value_bytes) {
  Preload data;
  Rng rng(seed ^ 0x7072656c6f6164ULL);
  for (std::size_t i = 0; i < keys; ++i) {
    std::string value = fmt::format("preload-{}-{:016x}-", i, rng.next_u64());
    value.resize(std::max(value.size(), value_bytes), static_cast<char>('a' + i % 26));
    data.emplace_back(fmt::format("preload-{}", i), std::move(value));
  }
  return data;
}

void preload(ProcessCluster& cluster, const Preload& data, std::size_t threads) {
  const std::vector<std::uint16_t> ports = running_ports(cluster);
  REQUIRE_FALSE(ports.empty());
  REQUIRE(threads >= 1);
  const auto started = SteadyClock::now();
  const Deadline deadline = deadline_after(scaled(kPreloadTimeout));
  std::vector<std::string> failures(threads);
  std::vector<std::thread> clients;
  for (std::size_t t = 0; t < threads; ++t) {
    clients.emplace_back(
        [&, t] { failures[t] = preload_slice(data, t, threads, ports, deadline); });
  }
  for (std::thread& client : clients) client.join();
  for (const std::string& failure : failures) {
    INFO("waited " << scaled(kPreloadTimeout).count() << " ms to preload " << data.size()
                   << " keys; this one was never answered 200: " << failure);
    REQUIRE(failure.empty());
  }
  std::size_t bytes = 0;
  for (const auto& [key, value] : data) bytes += value.size();
  std::printf("[preload] %zu keys, %zu bytes in %lld ms\n", data.size(), bytes,
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         SteadyClock::now() - started)
                                         .count()));
  std::fflush(stdout);
}

void check_preloaded(ProcessCluster& cluster, const Preload& data) {
  const std::vector<std::uint16_t> ports = running_ports(cluster);
  REQUIRE_FALSE(ports.empty());
  std::vector<HttpConnection> connections;
  for (const std::uint16_t port : ports) connections.emplace_back(port, kProbeTimeout);
  const Deadline deadline = deadline_after(scaled(kReadBackTimeout));
  std::vector<std::string> wrong;
  std::size_t turn = 0;
  for (const auto& [key, value] : data) {
    for (;;) {
      const HttpResult get = connections[turn++ % connections.size()].request(
          "GET", "/v1/kv/" + percent_encode(key) + "?consistency=linearizable");
      const bool answered = get.reply && (get.reply->status == 200 || get.reply->status == 404);
      if (answered || SteadyClock::now() >= deadline) {
        if (!get.reply || get.reply->status != 200 || get.reply->body != value) {
          wrong.push_back(
              key + ": " +
              (get.reply && get.reply->status == 200
                   ? fmt::format("a different value of {} bytes", get.reply->body.size())
                   : describe_result(get)));
        }
        break;
      }
      std::this_thread::sleep_for(kRetryPause);
    }
  }
  std::string shown;
  for (std::size_t i = 0; i < std::min(wrong.size(), kMaxMismatchesShown); ++i) {
    shown += "\n  " + wrong[i];
  }
  INFO(wrong.size() << " of " << data.size() << " preloaded keys do not read back:" << shown);
  CHECK(wrong.empty());
  std::printf("[preload] %zu of %zu keys read back with their values\n", data.size() - wrong.size(),
              data.size());
  std::fflush(stdout);
}

std::optional<std::vector<MigrationView>> list_migrations(ProcessCluster& cluster) {
  for (const std::uint16_t port : running_ports(cluster)) {
    const HttpResult answer = http_once(port, "GET", "/v1/migrations", {}, kProbeTimeout);
    if (!answer.reply || answer.reply->status != 200) continue;
    if (auto ops = parse_migrations(answer.reply->body)) return ops;
  }
  return std::nullopt;
}

std::optional<MigrationView> get_migration(ProcessCluster& cluster, const std::string& id) {
  for (const std::uint16_t port : running_ports(cluster)) {
    const HttpResult answer =
        http_once(port, "GET", "/v1/migrations/" + percent_encode(id), {}, kProbeTimeout);
    if (!answer.reply || answer.reply->status != 200) continue;
    if (auto op = parse_migration(answer.reply->body)) return op;
  }
  return std::nullopt;
}

std::string describe_migrations(const std::vector<MigrationView>& ops) {
  std::string out;
  for (const MigrationView& op : ops) {
    out +=
        fmt::format("{} shard {} {}->{} {}{}{} {}/{}{}\n", op.id, op.shard, op.source, op.target,
                    op.stage, op.queued ? " queued" : "", op.paused ? " paused" : "", op.bytes_done,
                    op.bytes_total, op.error.empty() ? "" : " error: " + op.error);
  }
  return out.empty() ? "no operation\n" : out;
}

std::vector<MigrationView> wait_migrations(
    ProcessCluster& cluster, const std::function<bool(const std::vector<MigrationView>&)>& wanted,
    const std::string& what, std::chrono::milliseconds timeout,
    std::chrono::milliseconds interval) {
  const Deadline deadline = deadline_after(timeout);
  std::string last = "no answer to GET /v1/migrations yet";
  for (;;) {
    cluster.require_running();
    if (std::optional<std::vector<MigrationView>> ops = list_migrations(cluster)) {
      if (wanted(*ops)) return *ops;
      last = describe_migrations(*ops);
    }
    if (SteadyClock::now() >= deadline) {
      FAIL("waited " << timeout.count() << " ms for GET /v1/migrations to show " << what
                     << "; last seen:\n"
                     << last);
    }
    std::this_thread::sleep_for(interval);
  }
}

std::set<std::uint64_t> hosted_shards_in_metrics(std::string_view metrics) {
  constexpr std::string_view kPrefix = "nodenomad_raft_term{group=\"";
  std::set<std::uint64_t> shards;
  std::size_t at = 0;
  while ((at = metrics.find(kPrefix, at)) != std::string_view::npos) {
    const bool line_start = at == 0 || metrics[at - 1] == '\n';
    at += kPrefix.size();
    std::uint64_t group = 0;
    const auto [end, error] =
        std::from_chars(metrics.data() + at, metrics.data() + metrics.size(), group);
    const bool closed =
        error == std::errc() && end < metrics.data() + metrics.size() && *end == '"';
    if (line_start && closed && group > 0) shards.insert(group - 1);
  }
  return shards;
}

namespace {

// The numbers N of the entries `<prefix>N` of `dir` (none if it is missing).
std::set<std::uint64_t> numbered_entries(const std::filesystem::path& dir,
                                         std::string_view prefix) {
  std::set<std::uint64_t> numbers;
  std::error_code error;
  for (std::filesystem::directory_iterator it(dir, error), end; !error && it != end;
       it.increment(error)) {
    const std::string name = it->path().filename().string();
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    std::uint64_t number = 0;
    const char* last = name.data() + name.size();
    const auto [end_of_number, parse_error] =
        std::from_chars(name.data() + prefix.size(), last, number);
    if (parse_error == std::errc() && end_of_number == last) numbers.insert(number);
  }
  return numbers;
}

}  // namespace

std::set<std::uint64_t> shards_on_disk(const std::string& data_dir) {
  const std::filesystem::path base(data_dir);
  std::set<std::uint64_t> shards = numbered_entries(base / "shards", "s-");
  for (const std::uint64_t group : numbered_entries(base / "wal" / "raft", "g-")) {
    if (group > 0) shards.insert(group - 1);  // group 0 is the metadata group
  }
  return shards;
}

std::set<std::uint64_t> placed_shards(const ClusterView& view, const std::string& node) {
  std::set<std::uint64_t> shards;
  for (const ShardView& shard : view.shards) {
    const bool voter =
        std::find(shard.replicas.begin(), shard.replicas.end(), node) != shard.replicas.end();
    const bool learner =
        std::find(shard.learners.begin(), shard.learners.end(), node) != shard.learners.end();
    if (voter || learner) shards.insert(shard.id);
  }
  return shards;
}

namespace {

std::string describe_set(const std::set<std::uint64_t>& shards) {
  return shards.empty() ? "none" : fmt::format("{}", fmt::join(shards, ","));
}

// Empty when every running node hosts what the placement gives it;
// otherwise one line per node that differs (or could not be asked).
std::string hosting_difference(ProcessCluster& cluster) {
  const std::optional<ClusterView> view = cluster.cluster_view();
  if (!view) return "no answer to GET /v1/cluster";
  std::string difference;
  for (std::size_t i = 0; i < cluster.size(); ++i) {
    if (!cluster.running(i)) continue;
    const HttpResult metrics = http_once(cluster.port(i), "GET", "/metrics", {}, kProbeTimeout);
    if (!metrics.reply || metrics.reply->status != 200) {
      difference += cluster.node_id(i) + " GET /metrics: " + describe_result(metrics) + "\n";
      continue;
    }
    const std::set<std::uint64_t> hosted = hosted_shards_in_metrics(metrics.reply->body);
    const std::set<std::uint64_t> placed = placed_shards(*view, cluster.node_id(i));
    const std::set<std::uint64_t> on_disk = shards_on_disk(cluster.data_dir(i));
    if (hosted != placed || on_disk != placed) {
      difference += fmt::format("{} hosts shards {} (on disk {}), the placement gives it {}\n",
                                cluster.node_id(i), describe_set(hosted), describe_set(on_disk),
                                describe_set(placed));
    }
  }
  return difference;
}

}  // namespace

std::chrono::milliseconds wait_hosting_matches_placement(ProcessCluster& cluster,
                                                         std::chrono::milliseconds timeout) {
  const auto started = SteadyClock::now();
  const Deadline deadline = started + timeout;
  for (;;) {
    cluster.require_running();
    const std::string difference = hosting_difference(cluster);
    const auto took =
        std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - started);
    if (difference.empty()) return took;
    if (SteadyClock::now() >= deadline) {
      FAIL("waited " << timeout.count()
                     << " ms for every node to host exactly the shards the placement gives it "
                        "(orphan copies swept); still:\n"
                     << difference);
    }
    std::this_thread::sleep_for(kHostingPollInterval);
  }
}

}  // namespace nodenomad::process_testing
