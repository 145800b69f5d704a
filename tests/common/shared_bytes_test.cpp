#include <catch2/catch.hpp>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "nodenomad/shared_bytes.hpp"

namespace nodenomad {

TEST_CASE("SharedBytes takes a string's buffer and compares like a string", "[shared_bytes]") {
  std::string text(2000, 'v');
  const char* buffer = text.data();
  SharedBytes bytes(std::move(text));
  CHECK(bytes.data() == buffer);  // moved in, not copied
  CHECK(bytes.size() == 2000);
  CHECK(bytes == std::string(2000, 'v'));
  CHECK_FALSE(bytes == std::string(1999, 'v'));
  CHECK_FALSE(bytes.shares_owner());

  const SharedBytes copy = bytes;
  CHECK(copy.data() == bytes.data());  // a copy shares the bytes
  CHECK(copy == bytes);

  const SharedBytes small = "abc";
  CHECK(small == "abc");
  CHECK(small.view() == std::string_view("abc"));
  CHECK(small.str() == "abc");
  CHECK_FALSE(small == "abd");
  std::ostringstream out;
  out << small;
  CHECK(out.str() == "abc");

  const SharedBytes empty;
  CHECK(empty.empty());
  CHECK(empty == "");
  CHECK(SharedBytes(std::string()).empty());
}

TEST_CASE("a SharedBytes slice keeps its owner alive and sees only its part", "[shared_bytes]") {
  auto owner = std::make_shared<std::string>("header|payload|trailer");
  std::weak_ptr<const std::string> watch = owner;
  const std::string_view whole(*owner);
  SharedBytes part = SharedBytes::slice(owner, whole.substr(7, 7));
  const SharedBytes none = SharedBytes::slice(owner, whole.substr(3, 0));
  owner.reset();
  CHECK_FALSE(watch.expired());  // the slice holds it
  CHECK(part == "payload");
  CHECK(part.shares_owner());
  CHECK(none.empty());

  // Copies dropped on other threads release the owner once, when the last goes.
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([copy = part] { CHECK(copy == "payload"); });
  }
  for (std::thread& t : threads) t.join();
  CHECK_FALSE(watch.expired());
  part = SharedBytes();
  CHECK(watch.expired());
}

}  // namespace nodenomad
