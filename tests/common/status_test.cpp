#include <catch2/catch.hpp>

#include "nodenomad/status.hpp"
#include "nodenomad/types.hpp"

namespace nodenomad {
namespace {

Result<int> parse_positive(int x) {
  if (x <= 0) return Status::invalid_argument("x must be > 0");
  return x;
}

Status doubled(int x, int& out) {
  NN_ASSIGN_OR_RETURN(int v, parse_positive(x));
  out = v * 2;
  return Status::ok();
}

}  // namespace

TEST_CASE("an OK status is empty and cheap", "[status]") {
  Status s;
  CHECK(s.is_ok());
  CHECK(s.code() == StatusCode::kOk);
  CHECK(s.message().empty());
  CHECK(s.to_string() == "ok");
  CHECK(sizeof(Status) == sizeof(void*));
}

TEST_CASE("an error status carries its code and message, and copies deeply", "[status]") {
  Status s = Status::corruption("wal/1.log: bad checksum at offset 12");
  CHECK_FALSE(s.is_ok());
  CHECK(s.is(StatusCode::kCorruption));
  CHECK(s.to_string() == "corruption: wal/1.log: bad checksum at offset 12");
  Status copy = s;
  CHECK(copy == s);
  CHECK(s.with_context("open").message() == "open: wal/1.log: bad checksum at offset 12");
  CHECK(status_code_name(StatusCode::kVersionMismatch) == "version_mismatch");
}

TEST_CASE("Result propagates values and errors", "[status]") {
  int out = 0;
  CHECK(doubled(21, out).is_ok());
  CHECK(out == 42);
  Status bad = doubled(-1, out);
  CHECK(bad.is(StatusCode::kInvalidArgument));
  CHECK(out == 42);
  Result<std::string> r = std::string("v");
  REQUIRE(r.is_ok());
  CHECK(*r == "v");
}

TEST_CASE("strong ids compare and count without mixing kinds", "[types]") {
  LogIndex a(5);
  CHECK(a.next() == LogIndex(6));
  CHECK(LogIndex(9) - a == 4u);
  CHECK(a < LogIndex(6));
  CHECK(Term(0).prev() == Term(0));
  CHECK(NodeId("node-1") < NodeId("node-2"));
  STATIC_REQUIRE_FALSE(std::is_convertible_v<Term, LogIndex>);
}

}  // namespace nodenomad
