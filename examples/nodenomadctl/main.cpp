// nodenomadctl: the command-line client of a NodeNomad cluster (docs/cli.md).
//
// The logic lives in src/server/ctl_* (parsing, requests, output, exit
// codes) where it is unit-tested; this file only reads stdin, does the one
// HTTP exchange and writes the output.
#include <cstdio>
#include <string>
#include <string_view>

#include "http_client.hpp"
#include "server/ctl_cli.hpp"

namespace {

using namespace nodenomad;

// `put KEY -` reads the value from stdin; the server refuses anything over
// its MAX_VALUE_SIZE (64MB at most) anyway, so reading stops a little above.
constexpr std::size_t kMaxStdinValueBytes = (64u << 20) + 1;

Result<std::string> read_stdin() {
  std::string value;
  char chunk[64 * 1024];
  while (value.size() < kMaxStdinValueBytes) {
    const std::size_t n = std::fread(chunk, 1, sizeof chunk, stdin);
    value.append(chunk, n);
    if (n < sizeof chunk) break;
  }
  if (std::ferror(stdin)) return Status::io_error("cannot read the value from stdin");
  if (value.size() >= kMaxStdinValueBytes) {
    return Status::invalid_argument("the value on stdin is larger than 64MB");
  }
  return value;
}

int emit(const ctl::CtlOutput& output) {
  std::fwrite(output.out.data(), 1, output.out.size(), stdout);
  std::fwrite(output.err.data(), 1, output.err.size(), stderr);
  // A full disk or closed pipe on stdout must not pass for success.
  if (std::fflush(stdout) != 0 && output.exit_code == ctl::kExitOk) return ctl::kExitOther;
  return output.exit_code;
}

bool wants_json(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--json") return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  auto invocation = ctl::parse_ctl_args(argc, argv, process_env());
  if (!invocation.is_ok()) {
    return emit(ctl::render_usage_error(wants_json(argc, argv), invocation.status().message()));
  }
  if (invocation->command == ctl::Command::kHelp) {
    std::fputs(ctl::ctl_help().c_str(), stdout);
    return ctl::kExitOk;
  }
  if (invocation->value_from_stdin) {
    auto value = read_stdin();
    if (!value.is_ok())
      return emit(ctl::render_usage_error(invocation->json, value.status().message()));
    invocation->value = std::move(*value);
  }
  const ctl::HttpRequestSpec request = ctl::build_request(*invocation);
  const ctl::HttpResult result =
      ctl::http_request(invocation->endpoint, request, invocation->timeout_ms);
  if (result.reply) return emit(ctl::render_reply(*invocation, *result.reply));
  return emit(ctl::render_transport_failure(*invocation, result.failure, result.detail));
}
