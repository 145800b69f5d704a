// What the router tests share: a router over a FakeClientApi called without
// a socket, and checks of the JSON answers.
#pragma once

#include <catch2/catch.hpp>

#include <boost/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "http/fake_client_api.hpp"
#include "http/http_router.hpp"

namespace nodenomad::net::testing {

namespace json = boost::json;

struct RouterFixture {
  FakeClientApi api;
  HttpRouter router{api, RouterLimits{64, 1024, 7}, [] { return std::string("http_extra 1\n"); }};

  RouterResponse call(std::string method, std::string target, std::string body = "") {
    std::optional<RouterResponse> out;
    router.route(RouterRequest{method, target, std::move(body)},
                 [&](RouterResponse response) { out = std::move(response); });
    REQUIRE(out.has_value());
    return std::move(*out);
  }
};

inline json::value parse(const RouterResponse& response) {
  boost::system::error_code ec;
  json::value value = json::parse(response.body, ec);
  INFO(response.body);
  REQUIRE_FALSE(ec);
  return value;
}

inline std::string header(const RouterResponse& response, std::string_view name) {
  for (const auto& [key, value] : response.headers) {
    if (key == name) return value;
  }
  return "<absent>";
}

// Checks the API.md error shape and returns the message.
inline std::string expect_error(const RouterResponse& response, unsigned status,
                                std::string_view code) {
  INFO(response.body);
  CHECK(response.status == status);
  CHECK(response.content_type == "application/json");
  const json::value body = parse(response);
  const json::object& error = body.at("error").as_object();
  CHECK(error.at("code").as_string() == code);
  return std::string(error.at("message").as_string());
}

}  // namespace nodenomad::net::testing
