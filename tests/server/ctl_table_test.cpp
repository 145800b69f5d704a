#include <catch2/catch.hpp>
#include <string>

#include "server/ctl_cli.hpp"

namespace nodenomad::ctl {
namespace {

// A GET /v1/cluster answer in API.md's shape.
constexpr std::string_view kCluster = R"({
  "cluster_id": "nodenomad",
  "metadata_leader": "node-1",
  "nodes": [
    {"id": "node-1", "address": "127.0.0.1:3000", "status": "up", "shards_hosted": 3, "shards_led": 2},
    {"id": "node-2", "address": "127.0.0.1:3001", "status": "up", "shards_hosted": 3, "shards_led": 1},
    {"id": "node-3", "address": "127.0.0.1:3002", "status": "down", "shards_hosted": 2, "shards_led": 0}
  ],
  "shards": [
    {"id": 0, "epoch": 1, "replicas": ["node-1", "node-2", "node-3"], "learners": [],
     "leader": "node-1", "keys": 1024, "bytes": 65536},
    {"id": 1, "epoch": 12, "replicas": ["node-1", "node-2"], "learners": ["node-3"],
     "leader": "node-2", "keys": 7, "bytes": 900},
    {"id": 10, "epoch": 3, "replicas": ["node-1", "node-2", "node-3"], "learners": [],
     "leader": "", "keys": 0, "bytes": 1610612736}
  ]
})";

TEST_CASE("ctl: status renders the nodes and shards tables", "[server][ctl]") {
  auto table = render_cluster_table(kCluster);
  REQUIRE(table.is_ok());
  const std::string expected =
      "cluster nodenomad, metadata leader node-1\n"
      "\n"
      "NODE    ADDRESS         STATUS  HOSTED  LEADS\n"
      "node-1  127.0.0.1:3000  up           3      2\n"
      "node-2  127.0.0.1:3001  up           3      1\n"
      "node-3  127.0.0.1:3002  down         2      0\n"
      "\n"
      "SHARD  EPOCH  LEADER  KEYS    SIZE  REPLICAS              LEARNERS\n"
      "    0      1  node-1  1024  64.0KB  node-1,node-2,node-3  -\n"
      "    1     12  node-2     7    900B  node-1,node-2         node-3\n"
      "   10      3  -          0   1.5GB  node-1,node-2,node-3  -\n";
  CHECK(*table == expected);
}

TEST_CASE("ctl: status tolerates missing and unexpected fields", "[server][ctl]") {
  auto empty = render_cluster_table("{}");
  REQUIRE(empty.is_ok());
  CHECK(*empty == "cluster -, metadata leader -\n\nno nodes\n\nno shards\n");

  auto odd = render_cluster_table(
      R"({"cluster_id":"c","nodes":[{"id":"n\u001b[2J","extra":true}, 5],
          "shards":[{"id":0,"replicas":"node-1","keys":null,"bytes":-1}]})");
  REQUIRE(odd.is_ok());
  CHECK(odd->find("n?[2J") != std::string::npos);  // no escape sequence reaches the terminal
  CHECK(odd->find('\x1b') == std::string::npos);
  CHECK(odd->find("NODE   ADDRESS  STATUS  HOSTED  LEADS\n") != std::string::npos);
  CHECK(odd->find("    0      -  -          -    -1  node-1    -\n") != std::string::npos);

  CHECK_FALSE(render_cluster_table("not json").is_ok());
  CHECK_FALSE(render_cluster_table("[]").is_ok());
}

}  // namespace
}  // namespace nodenomad::ctl
