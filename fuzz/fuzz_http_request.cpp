// Fuzzes the HTTP router, which reads every request target, query string and
// JSON body a client sends: any method, target and body must get exactly one
// answer, at once (the fake ClientApi answers inline), with a known status;
// every JSON answer must parse, whatever bytes the key or path held. Beast's
// own parser is Beast's business; this covers what NodeNomad adds on top.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json.hpp>

#include "../tests/http/fake_client_api.hpp"
#include "http/http_router.hpp"
#include "http/http_text.hpp"
#include "nodenomad/assert.hpp"

namespace {

using nodenomad::net::HttpRouter;
using nodenomad::net::RouterLimits;
using nodenomad::net::RouterRequest;
using nodenomad::net::RouterResponse;

constexpr std::string_view kMethods[] = {"GET", "PUT", "DELETE", "POST", "HEAD", "PATCH"};

bool known_status(unsigned status) {
  for (unsigned s :
       {200u, 201u, 202u, 400u, 404u, 405u, 409u, 412u, 413u, 500u, 501u, 503u, 504u}) {
    if (status == s) return true;
  }
  return false;
}

}  // namespace

// Input layout: [method selector byte][target bytes]['\n'][body bytes].
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static nodenomad::net::testing::FakeClientApi api;
  static const HttpRouter router(api, RouterLimits{4096, 1024, 1}, [] { return std::string(); });
  if (size == 0) return 0;
  // Bounds the fake's memory over millions of runs; keeps some state between
  // runs so that version mismatches are reached too.
  if (api.calls() % 256 == 255) api.clear_entries();
  const std::string_view method = kMethods[data[0] % std::size(kMethods)];
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::size_t newline = rest.find('\n');
  const std::string_view target = rest.substr(0, newline);
  const std::string body(newline == std::string_view::npos ? std::string_view()
                                                           : rest.substr(newline + 1));

  int answers = 0;
  std::optional<RouterResponse> response;
  router.route(RouterRequest{method, target, body}, [&](RouterResponse r) {
    ++answers;
    response = std::move(r);
  });
  NN_ASSERT(answers == 1, "the router must answer exactly once, got ", answers);
  NN_ASSERT(known_status(response->status), "unexpected status ", response->status);
  if (response->content_type == "application/json") {
    boost::system::error_code ec;
    (void)boost::json::parse(response->body, ec);
    NN_ASSERT(!ec, "invalid JSON answer: ", response->body);
  }

  const std::string valid = nodenomad::net::to_valid_utf8(target);
  NN_ASSERT(nodenomad::net::to_valid_utf8(valid) == valid, "to_valid_utf8 must be idempotent");
  (void)nodenomad::net::percent_decode(target);
  return 0;
}
