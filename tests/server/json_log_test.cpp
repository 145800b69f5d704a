#include "nodenomad/server/json_log.hpp"

#include <unistd.h>

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "nodenomad/logging.hpp"
#include "server/json_text.hpp"

namespace nodenomad {
namespace {

using std::chrono::milliseconds;
using std::chrono::system_clock;

const system_clock::time_point kTs{milliseconds(1714566896789)};  // 2024-05-01T12:34:56.789Z

boost::json::object parse_line(const std::string& line) {
  REQUIRE(!line.empty());
  REQUIRE(line.back() == '\n');
  boost::system::error_code ec;
  auto value = boost::json::parse(line, ec);
  INFO(line);
  REQUIRE(!ec);
  REQUIRE(value.is_object());
  return value.as_object();
}

std::string msg_of(std::string_view message) {
  const auto object = parse_line(format_json_log_line(kTs, LogLevel::kInfo, "n", "c", message));
  return std::string(object.at("msg").as_string());
}

std::string escaped(std::string_view text) {
  std::string out;
  server::append_json_string(out, text);
  return out;
}

TEST_CASE("a log line has ts, level, node, component and msg", "[server][log]") {
  CHECK(format_json_log_line(kTs, LogLevel::kWarn, "node-1", "wal", "torn tail truncated") ==
        "{\"ts\":\"2024-05-01T12:34:56.789Z\",\"level\":\"warn\",\"node\":\"node-1\","
        "\"component\":\"wal\",\"msg\":\"torn tail truncated\"}\n");
  const auto object = parse_line(format_json_log_line(kTs, LogLevel::kError, "n", "c", "m"));
  CHECK(object.at("level").as_string() == "error");
  CHECK(
      format_json_log_line(system_clock::time_point{milliseconds(-1)}, LogLevel::kDebug, "", "", "")
          .substr(0, 33) == "{\"ts\":\"1969-12-31T23:59:59.999Z\",");
  CHECK(
      format_json_log_line(system_clock::time_point{milliseconds(5)}, LogLevel::kDebug, "", "", "")
          .substr(0, 33) == "{\"ts\":\"1970-01-01T00:00:00.005Z\",");
}

TEST_CASE("JSON escaping: quotes, backslashes, control characters", "[server][log]") {
  CHECK(escaped("say \"hi\" \\ bye") == "\"say \\\"hi\\\" \\\\ bye\"");
  CHECK(escaped("\b\f\n\r\t") == "\"\\b\\f\\n\\r\\t\"");
  CHECK(escaped(std::string("\0\x01\x1f\x7f", 4)) == "\"\\u0000\\u0001\\u001f\\u007f\"");
  CHECK(escaped("/ <script>") == "\"/ <script>\"");
  CHECK(msg_of(std::string("a\0b\n\"c\"\\", 8)) == std::string("a\0b\n\"c\"\\", 8));
}

TEST_CASE("JSON escaping: valid UTF-8 passes, each invalid byte becomes U+FFFD", "[server][log]") {
  // é (2 bytes), € (3), 😀 (4), U+10FFFF (the last code point)
  const std::string valid = "\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf";
  CHECK(escaped(valid) == "\"" + valid + "\"");
  CHECK(msg_of(valid) == valid);

  CHECK(escaped("\xff") == "\"\\ufffd\"");
  CHECK(escaped("a\x80z") == "\"a\\ufffdz\"");                               // lone continuation
  CHECK(escaped("\xc0\xaf") == "\"\\ufffd\\ufffd\"");                        // overlong '/'
  CHECK(escaped("\xe0\x80\xaf") == "\"\\ufffd\\ufffd\\ufffd\"");             // overlong 3-byte
  CHECK(escaped("\xed\xa0\x80") == "\"\\ufffd\\ufffd\\ufffd\"");             // surrogate U+D800
  CHECK(escaped("\xf4\x90\x80\x80") == "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");  // > U+10FFFF
  CHECK(escaped("\xf5\x80") == "\"\\ufffd\\ufffd\"");
  CHECK(escaped("x\xe2\x82") == "\"x\\ufffd\\ufffd\"");  // cut at the end
  CHECK(escaped("\xe2\x82x") == "\"\\ufffd\\ufffdx\"");  // cut in the middle
  CHECK(msg_of("\xff\xfe") == "\xef\xbf\xbd\xef\xbf\xbd");

  CHECK(server::is_valid_utf8(valid));
  CHECK(server::is_valid_utf8(""));
  CHECK_FALSE(server::is_valid_utf8("\xc3"));
  CHECK_FALSE(server::is_valid_utf8("\xed\xbf\xbf"));
}

TEST_CASE("node and component are escaped too", "[server][log]") {
  const auto object =
      parse_line(format_json_log_line(kTs, LogLevel::kInfo, "n\"1", "c\n\xff", "m"));
  CHECK(object.at("node").as_string() == "n\"1");
  CHECK(object.at("component").as_string() == "c\n\xef\xbf\xbd");
}

TEST_CASE("a long message is cut at a character boundary and says so", "[server][log]") {
  const std::string long_ascii(kMaxLogMessageBytes + 100, 'a');
  auto object = parse_line(format_json_log_line(kTs, LogLevel::kInfo, "n", "c", long_ascii));
  CHECK(object.at("msg").as_string().size() == kMaxLogMessageBytes);
  CHECK(object.at("truncated_bytes").as_int64() == 100);

  // A 3-byte character straddling the limit goes whole.
  std::string straddling(kMaxLogMessageBytes - 1, 'a');
  straddling += "\xe2\x82\xac";
  object = parse_line(format_json_log_line(kTs, LogLevel::kInfo, "n", "c", straddling));
  CHECK(object.at("msg").as_string().size() == kMaxLogMessageBytes - 1);
  CHECK(object.at("truncated_bytes").as_int64() == 3);

  const std::string exact(kMaxLogMessageBytes, 'b');
  object = parse_line(format_json_log_line(kTs, LogLevel::kInfo, "n", "c", exact));
  CHECK(object.count("truncated_bytes") == 0);
}

TEST_CASE("utf8_prefix never splits a character", "[server][log]") {
  CHECK(server::utf8_prefix("abc", 5) == "abc");
  CHECK(server::utf8_prefix("ab\xe2\x82\xac", 4) == "ab");
  CHECK(server::utf8_prefix("ab\xe2\x82\xac", 5) == "ab\xe2\x82\xac");
  CHECK(server::utf8_prefix("ab\xe2\x82\xac", 2) == "ab");
  // A run of stray continuation bytes is invalid anyway: cut at the limit.
  CHECK(server::utf8_prefix("a\x80\x80\x80\x80\x80", 4) == "a\x80\x80\x80");
}

// A temp file the sink writes to, read back whole.
struct TempLogFile {
  std::string path;
  int fd = -1;
  TempLogFile() {
    path = (std::filesystem::temp_directory_path() / "nn-log-XXXXXX").string();
    fd = ::mkstemp(path.data());
    REQUIRE(fd >= 0);
  }
  ~TempLogFile() {
    ::close(fd);
    std::filesystem::remove(path);
  }
  std::vector<std::string> lines() const {
    std::ifstream in(path, std::ios::binary);
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) out.push_back(line + "\n");
    return out;
  }
};

TEST_CASE("the sink writes whole lines from many threads at once", "[server][log]") {
  TempLogFile file;
  const LogSink sink = make_json_log_sink("node-1", file.fd);
  constexpr int kThreads = 4;
  constexpr int kLinesPerThread = 200;
  // Lines longer than PIPE_BUF (4096), where the kernel promises nothing.
  const std::string payload(6000, 'x');
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kLinesPerThread; ++i) {
        sink(LogLevel::kInfo, "test", std::to_string(t) + ":" + std::to_string(i) + payload);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  const auto lines = file.lines();
  REQUIRE(lines.size() == kThreads * kLinesPerThread);
  for (const auto& line : lines) {
    const auto object = parse_line(line);
    CHECK(object.at("node").as_string() == "node-1");
    CHECK(object.at("msg").as_string().size() > payload.size());
  }
}

TEST_CASE("installed with set_log_sink, it receives the library's log()", "[server][log]") {
  TempLogFile file;
  set_log_sink(make_json_log_sink("node-9", file.fd));
  log(LogLevel::kWarn, "peer", "refused \"node-7\": wrong cluster id");
  set_log_sink(nullptr);
  const auto lines = file.lines();
  REQUIRE(lines.size() == 1);
  const auto object = parse_line(lines[0]);
  CHECK(object.at("node").as_string() == "node-9");
  CHECK(object.at("level").as_string() == "warn");
  CHECK(object.at("component").as_string() == "peer");
  CHECK(object.at("msg").as_string() == "refused \"node-7\": wrong cluster id");
  const std::string ts(object.at("ts").as_string());
  CHECK(ts.size() == 24);
  CHECK(ts.back() == 'Z');
}

}  // namespace
}  // namespace nodenomad
