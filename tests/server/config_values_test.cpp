#include "server/config_values.hpp"

#include <catch2/catch.hpp>
#include <string>

namespace nodenomad::server {
namespace {

template <typename T>
std::string error_of(const Result<T>& result) {
  REQUIRE_FALSE(result.is_ok());
  CHECK(result.status().is(StatusCode::kInvalidArgument));
  return std::string(result.status().message());
}

TEST_CASE("sizes: binary units, any case, bytes without a unit", "[server][config]") {
  CHECK(*parse_size_bytes("0") == 0u);
  CHECK(*parse_size_bytes("512") == 512u);
  CHECK(*parse_size_bytes("512B") == 512u);
  CHECK(*parse_size_bytes("1KB") == 1024u);
  CHECK(*parse_size_bytes("64KiB") == 64u * 1024);
  CHECK(*parse_size_bytes("64k") == 64u * 1024);
  CHECK(*parse_size_bytes("1MB") == 1u << 20);
  CHECK(*parse_size_bytes("512mb") == 512ull << 20);
  CHECK(*parse_size_bytes("1MiB") == 1u << 20);
  CHECK(*parse_size_bytes("1GB") == 1ull << 30);
  CHECK(*parse_size_bytes("1G") == 1ull << 30);
  CHECK(*parse_size_bytes("2TiB") == 2ull << 40);
  CHECK(*parse_size_bytes(" 1 GB ") == 1ull << 30);
  CHECK(*parse_size_bytes("18446744073709551615") == 18446744073709551615ull);
  CHECK(*parse_size_bytes("16777215TB") == 16777215ull << 40);
}

TEST_CASE("sizes: every bad form says why and what is accepted", "[server][config]") {
  const std::string form =
      "expected a whole number with an optional unit B, KB, MB, GB or TB (1KB = 1024 bytes; "
      "e.g. 1GB)";
  CHECK(error_of(parse_size_bytes("12XB")) == "not a size (unknown unit \"XB\"); " + form);
  CHECK(error_of(parse_size_bytes("")) == "not a size (empty); " + form);
  CHECK(error_of(parse_size_bytes("   ")) == "not a size (empty); " + form);
  CHECK(error_of(parse_size_bytes("-1GB")) == "not a size (negative); " + form);
  CHECK(error_of(parse_size_bytes("GB")) == "not a size (no number); " + form);
  CHECK(error_of(parse_size_bytes("1.5GB")) ==
        "not a size (not a whole number; use a smaller unit); " + form);
  CHECK(error_of(parse_size_bytes("18446744073709551616")) == "not a size (too large); " + form);
  CHECK(error_of(parse_size_bytes("99999999999999999999999GB")) ==
        "not a size (too large); " + form);
  CHECK(error_of(parse_size_bytes("16777216TB")) == "not a size (too large); " + form);
  CHECK(error_of(parse_size_bytes("1GB1")) == "not a size (unknown unit \"GB1\"); " + form);
  CHECK(error_of(parse_size_bytes("1 G B")) == "not a size (unknown unit \"G B\"); " + form);
}

TEST_CASE("sizes: format is the shortest exact spelling and parses back", "[server][config]") {
  CHECK(format_size_bytes(0) == "0");
  CHECK(format_size_bytes(1000) == "1000");
  CHECK(format_size_bytes(1024) == "1KB");
  CHECK(format_size_bytes(1536 * 1024) == "1536KB");
  CHECK(format_size_bytes(1ull << 30) == "1GB");
  CHECK(format_size_bytes(3ull << 40) == "3TB");
  for (const std::uint64_t bytes : {1ull, 4095ull, 1ull << 20, (1ull << 50) + 1024, ~0ull}) {
    CHECK(*parse_size_bytes(format_size_bytes(bytes)) == bytes);
  }
}

TEST_CASE("durations: units ms s m h, sums, case-insensitive", "[server][config]") {
  CHECK(*parse_duration_ms("500ms") == 500u);
  CHECK(*parse_duration_ms("30s") == 30'000u);
  CHECK(*parse_duration_ms("2m") == 120'000u);
  CHECK(*parse_duration_ms("1h") == 3'600'000u);
  CHECK(*parse_duration_ms("1m30s") == 90'000u);
  CHECK(*parse_duration_ms("1h2m3s4ms") == 3'723'004u);
  CHECK(*parse_duration_ms("30S") == 30'000u);
  CHECK(*parse_duration_ms("0ms") == 0u);
  CHECK(*parse_duration_ms(" 5s ") == 5'000u);
}

TEST_CASE("durations: every bad form says why and what is accepted", "[server][config]") {
  const std::string form =
      "expected a whole number with a unit ms, s, m or h, or a sum such as 1m30s (e.g. 30s)";
  CHECK(error_of(parse_duration_ms("30")) == "not a duration (a unit is required); " + form);
  CHECK(error_of(parse_duration_ms("")) == "not a duration (empty); " + form);
  CHECK(error_of(parse_duration_ms("-5s")) == "not a duration (negative); " + form);
  CHECK(error_of(parse_duration_ms("s")) == "not a duration (no number); " + form);
  CHECK(error_of(parse_duration_ms("1.5s")) ==
        "not a duration (not a whole number; use a smaller unit); " + form);
  CHECK(error_of(parse_duration_ms("3d")) == "not a duration (unknown unit \"d\"); " + form);
  CHECK(error_of(parse_duration_ms("1m 30s")) ==
        "not a duration (a number must follow each unit); " + form);
  CHECK(error_of(parse_duration_ms("5124095576030432h")) == "not a duration (too large); " + form);
  CHECK(error_of(parse_duration_ms("18446744073709551615ms1ms")) ==
        "not a duration (too large); " + form);
  CHECK(error_of(parse_duration_ms("99999999999999999999s")) ==
        "not a duration (too large); " + form);
}

TEST_CASE("durations: format is exact and parses back", "[server][config]") {
  CHECK(format_duration_ms(0) == "0ms");
  CHECK(format_duration_ms(1500) == "1500ms");
  CHECK(format_duration_ms(30'000) == "30s");
  CHECK(format_duration_ms(90'000) == "1m30s");
  CHECK(format_duration_ms(3'600'000) == "1h");
  CHECK(format_duration_ms(3'661'000) == "1h1m1s");
  for (const std::uint64_t ms : {1ull, 999ull, 86'400'000ull, ~0ull}) {
    CHECK(*parse_duration_ms(format_duration_ms(ms)) == ms);
  }
}

TEST_CASE("bounded whole numbers", "[server][config]") {
  CHECK(*parse_bounded_uint("3", 1, 64) == 3u);
  CHECK(*parse_bounded_uint("64", 1, 64) == 64u);
  CHECK(error_of(parse_bounded_uint("0", 1, 64)) ==
        "out of range; expected a whole number from 1 to 64");
  CHECK(error_of(parse_bounded_uint("99999999999999999999", 1, 64)) ==
        "out of range; expected a whole number from 1 to 64");
  for (const char* bad : {"", "-1", "+1", "3x", "0x10", "1e3"}) {
    CHECK(error_of(parse_bounded_uint(bad, 1, 64)) ==
          "not a whole number; expected a whole number from 1 to 64");
  }
}

TEST_CASE("on/off switches", "[server][config]") {
  for (const char* on : {"on", "ON", "On", " on "}) CHECK(*parse_on_off(on));
  for (const char* off : {"off", "OFF", "Off", "\toff"}) CHECK_FALSE(*parse_on_off(off));
  for (const char* bad : {"", "1", "0", "true", "false", "yes", "no", "onn", "o n", "of"}) {
    INFO("\"" << bad << "\"");
    CHECK(error_of(parse_on_off(bad)) == "not on or off; expected on or off");
  }
  CHECK(*parse_on_off(format_on_off(true)));
  CHECK_FALSE(*parse_on_off(format_on_off(false)));
}

TEST_CASE("node ids", "[server][config]") {
  CHECK(parse_node_id("node-1")->str() == "node-1");
  CHECK(parse_node_id("db_2.eu")->str() == "db_2.eu");
  CHECK(parse_node_id(std::string(64, 'a')).is_ok());
  for (const std::string& bad :
       {std::string(), std::string(65, 'a'), std::string("a@b"), std::string("a:b"),
        std::string("a,b"), std::string("a b"), std::string("n\xc3\xa9")}) {
    CHECK(error_of(parse_node_id(bad)) ==
          "not a node id; expected 1 to 64 letters, digits, '.', '_' or '-' (e.g. node-1)");
  }
}

TEST_CASE("host:port: names, IPv4, bracketed IPv6", "[server][config]") {
  CHECK(*parse_host_port("127.0.0.1:3000") == HostPort{"127.0.0.1", 3000});
  CHECK(*parse_host_port("node-1:3000") == HostPort{"node-1", 3000});
  CHECK(*parse_host_port("[::1]:3000") == HostPort{"::1", 3000});
  CHECK(*parse_host_port("my_service:65535") == HostPort{"my_service", 65535});
  CHECK(HostPort{"::1", 3000}.to_string() == "[::1]:3000");
  CHECK(HostPort{"node-1", 3000}.to_string() == "node-1:3000");

  const std::string form = "; expected host:port (e.g. 127.0.0.1:3000, node-1:3000 or [::1]:3000)";
  CHECK(error_of(parse_host_port("node-1")) == "not an address (no port)" + form);
  CHECK(error_of(parse_host_port(":3000")) == "not an address (no host)" + form);
  CHECK(error_of(parse_host_port("")) == "not an address (empty)" + form);
  CHECK(error_of(parse_host_port("h:0")) == "not an address (bad port \"0\")" + form);
  CHECK(error_of(parse_host_port("h:65536")) == "not an address (bad port \"65536\")" + form);
  CHECK(error_of(parse_host_port("h:")) == "not an address (bad port \"\")" + form);
  CHECK(error_of(parse_host_port("::1:3000")) ==
        "not an address (an IPv6 host needs brackets)" + form);
  CHECK(error_of(parse_host_port("[::1:3000")) == "not an address (no closing ']')" + form);
  CHECK(error_of(parse_host_port("[::1]3000")) == "not an address (no port)" + form);
  CHECK(error_of(parse_host_port("[zz]:3000")) ==
        "not an address (not an IPv6 address in the brackets)" + form);
  CHECK(error_of(parse_host_port("a..b:1")) == "not an address (bad host \"a..b\")" + form);
  CHECK(error_of(parse_host_port("a/b:1")) == "not an address (bad host \"a/b\")" + form);
}

TEST_CASE("hosts", "[server][config]") {
  CHECK(*parse_host("0.0.0.0") == "0.0.0.0");
  CHECK(*parse_host("[::]") == "::");
  CHECK(*parse_host("::1") == "::1");
  CHECK(*parse_host("node-1") == "node-1");
  CHECK_FALSE(parse_host("").is_ok());
  CHECK_FALSE(parse_host("a b").is_ok());
  CHECK_FALSE(parse_host("host:3000").is_ok());
}

TEST_CASE("CLUSTER_NODES: the full and the short form", "[server][config]") {
  auto full =
      parse_cluster_nodes("node-1@127.0.0.1:3000, node-2@127.0.0.1:3001 ,node-3@[::1]:3002");
  REQUIRE(full.is_ok());
  REQUIRE(full->size() == 3);
  CHECK((*full)[0] == ClusterMember{NodeId("node-1"), "127.0.0.1", 3000});
  CHECK((*full)[2] == ClusterMember{NodeId("node-3"), "::1", 3002});
  CHECK((*full)[2].address() == "[::1]:3002");

  auto short_form = parse_cluster_nodes("node-1:3000,node-2:3000,node-3:3000");
  REQUIRE(short_form.is_ok());
  REQUIRE(short_form->size() == 3);
  CHECK((*short_form)[1] == ClusterMember{NodeId("node-2"), "node-2", 3000});

  auto mixed = parse_cluster_nodes("a:1,b@10.0.0.2:1");
  REQUIRE(mixed.is_ok());
  CHECK((*mixed)[1] == ClusterMember{NodeId("b"), "10.0.0.2", 1});
}

TEST_CASE("CLUSTER_NODES: bad entries and duplicates are named", "[server][config]") {
  const std::string form =
      "; expected comma-separated id@host:port or name:port entries "
      "(e.g. node-1@127.0.0.1:3000,node-2@127.0.0.1:3001)";
  CHECK(error_of(parse_cluster_nodes("")) == "not a member list (empty)" + form);
  CHECK(error_of(parse_cluster_nodes("a:1,,b:2")) == "not a member list (entry 2 is empty)" + form);
  CHECK(error_of(parse_cluster_nodes("a:1,")) == "not a member list (entry 2 is empty)" + form);
  CHECK(error_of(parse_cluster_nodes("a:1,node-2@:3001")) ==
        "not a member list (entry 2 \"node-2@:3001\": no host)" + form);
  CHECK(error_of(parse_cluster_nodes("node-1")) ==
        "not a member list (entry 1 \"node-1\": no port)" + form);
  CHECK(error_of(parse_cluster_nodes("b@d@h:1")) ==
        "not a member list (entry 1 \"b@d@h:1\": bad host \"d@h\")" + form);
  CHECK(error_of(parse_cluster_nodes("@h:1")) ==
        "not a member list (entry 1 \"@h:1\": bad node id \"\")" + form);
  CHECK(error_of(parse_cluster_nodes("[::1]:3000")) ==
        "not a member list (entry 1 \"[::1]:3000\": the short form name:port needs a host "
        "name usable as a node id; write id@host:port)" +
            form);
  CHECK(error_of(parse_cluster_nodes("a@h:1,a@h:2")) ==
        "not a member list (node id a appears twice)" + form);
  CHECK(error_of(parse_cluster_nodes("a@h:1,b@H:1")) ==
        "not a member list (address H:1 appears twice)" + form);
  CHECK(error_of(parse_cluster_nodes("node-1:3000,node-1:3000")) ==
        "not a member list (node id node-1 appears twice)" + form);

  std::string many;
  for (int i = 0; i < 257; ++i) many += "n" + std::to_string(i) + ":1,";
  many.pop_back();
  CHECK(error_of(parse_cluster_nodes(many)) == "not a member list (more than 256 entries)" + form);
}

TEST_CASE("values in messages are quoted, escaped and cut", "[server][config]") {
  CHECK(quote_for_message("12XB") == "\"12XB\"");
  CHECK(quote_for_message("a\"b\\c") == "\"a\\\"b\\\\c\"");
  CHECK(quote_for_message(std::string("\n\x01\xff", 3)) == "\"\\x0a\\x01\\xff\"");
  CHECK(quote_for_message(std::string(100, 'x')) ==
        "\"" + std::string(80, 'x') + "\" (and 20 more bytes)");
}

}  // namespace
}  // namespace nodenomad::server
