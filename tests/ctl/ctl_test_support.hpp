// What the migration-command tests share: argv from a list of words, and a
// CtlIo whose HTTP exchanges go to the real HttpRouter over a FakeClientApi
// (no socket), whose clock and sleeps are counters, and whose output is kept.
#pragma once

#include <catch2/catch.hpp>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "http/fake_client_api.hpp"
#include "http/http_router.hpp"
#include "migrate_cli.hpp"

namespace nodenomad::ctl::testing {

inline Result<MigrateInvocation> parse(std::vector<std::string> args,
                                       std::map<std::string, std::string> env = {}) {
  std::vector<const char*> argv = {"nodenomadctl"};
  for (const auto& a : args) argv.push_back(a.c_str());
  return parse_migrate_args(static_cast<int>(argv.size()), argv.data(), env_from_map(env));
}

inline MigrateInvocation parse_ok(std::vector<std::string> args,
                                  std::map<std::string, std::string> env = {}) {
  auto inv = parse(std::move(args), std::move(env));
  INFO(inv.status().to_string());
  REQUIRE(inv.is_ok());
  return std::move(inv).value();
}

inline bool is_migrate(std::vector<std::string> args) {
  std::vector<const char*> argv = {"nodenomadctl"};
  for (const auto& a : args) argv.push_back(a.c_str());
  return is_migrate_command(static_cast<int>(argv.size()), argv.data());
}

inline HttpResult reply(unsigned status, std::string body) {
  HttpResult result;
  result.reply = HttpReply{status, std::move(body), std::nullopt, std::nullopt};
  return result;
}

inline HttpResult failure(TransportFailure kind, std::string detail) {
  HttpResult result;
  result.failure = kind;
  result.detail = std::move(detail);
  return result;
}

// A CtlIo over the router. `on_sleep` runs at each sleep (the test moves the
// fake's operations along there); `intercept` may answer an exchange instead
// of the router (a failure, an odd body).
struct RouterIo {
  net::testing::FakeClientApi api;
  net::HttpRouter router{api, net::RouterLimits{}, nullptr};
  std::vector<std::string> requests;  // "GET /v1/migrations"
  std::vector<std::uint64_t> sleeps;
  std::string out;
  std::string err;
  std::uint64_t now_ms = 1'764'151'200'000;  // 2025-11-26T10:00:00Z
  std::function<void()> on_sleep;
  std::function<std::optional<HttpResult>(const HttpRequestSpec&)> intercept;
  bool terminal = false;
  std::size_t width = 80;

  HttpResult exchange(const HttpRequestSpec& spec) {
    requests.push_back(spec.method + " " + spec.target);
    if (intercept) {
      if (auto answer = intercept(spec)) return *answer;
    }
    std::optional<net::RouterResponse> response;
    router.route({spec.method, spec.target, spec.body},
                 [&](net::RouterResponse r) { response = std::move(r); });
    REQUIRE(response.has_value());  // the fake answers inline
    return reply(response->status, response->body);
  }

  CtlIo io() {
    CtlIo io;
    io.exchange = [this](const HttpRequestSpec& spec) { return exchange(spec); };
    io.sleep_ms = [this](std::uint64_t ms) {
      sleeps.push_back(ms);
      now_ms += ms;
      if (on_sleep) on_sleep();
    };
    io.now_ms = [this] { return now_ms; };
    io.out = [this](std::string_view text) { out += text; };
    io.err = [this](std::string_view text) { err += text; };
    io.terminal = terminal;
    io.width = width;
    return io;
  }

  int run(const MigrateInvocation& inv, std::uint64_t max_frames = 0) {
    CtlIo ctl_io = io();
    return run_migrate_command(inv, ctl_io, max_frames);
  }
};

}  // namespace nodenomad::ctl::testing
