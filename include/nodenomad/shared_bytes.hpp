// SharedBytes: an immutable run of bytes whose copies share one buffer.
//
// A log entry's payload is copied many times on its way through a node: into
// the unstable log, the entry cache, each follower's append, the batch the
// state machine applies. As std::string each copy was an allocation and a
// memcpy (for a 1 KiB value, a glibc large-bin allocation, the costliest
// kind). As SharedBytes a copy is a reference count.
//
// A SharedBytes either owns a whole string (built from one) or is a slice of
// a bigger buffer it keeps alive: the read buffer a run of log records came
// from, or a peer frame its entries were decoded from. A slice keeps all of
// its owner alive, so a producer slices only where the slices are most of the
// owner (see where slice() is called).
//
// The bytes never change once made; copies may be used and dropped from any
// thread (the count is atomic). It compares, converts and prints like the
// std::string it replaced, so `entry.data == "x"` and `std::string_view
// v = entry.data` keep working.
#pragma once

#include <cstddef>
#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>

namespace nodenomad {

class SharedBytes {
 public:
  SharedBytes() = default;
  // Takes the string's buffer; no copy of its bytes.
  SharedBytes(std::string bytes);  // NOLINT(google-explicit-constructor)
  SharedBytes(const char* bytes) : SharedBytes(std::string(bytes)) {}  // NOLINT
  SharedBytes(std::string_view bytes) : SharedBytes(std::string(bytes)) {}  // NOLINT

  // `part`, which must lie within `*owner`, sharing (and keeping alive) the
  // owner.
  static SharedBytes slice(std::shared_ptr<const std::string> owner, std::string_view part);

  const char* data() const { return data_; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const char* begin() const { return data_; }
  const char* end() const { return data_ + size_; }

  std::string_view view() const { return {data_, size_}; }
  operator std::string_view() const { return view(); }  // NOLINT
  std::string str() const { return std::string(view()); }

  // Whether this is a slice of a bigger buffer (for tests and accounting).
  bool shares_owner() const { return owner_ != nullptr && owner_->size() != size_; }

  bool operator==(const SharedBytes& other) const { return view() == other.view(); }
  friend bool operator==(const SharedBytes& a, std::string_view b) { return a.view() == b; }
  friend bool operator==(const SharedBytes& a, const std::string& b) { return a.view() == b; }
  friend bool operator==(const SharedBytes& a, const char* b) { return a.view() == b; }

 private:
  std::shared_ptr<const std::string> owner_;  // null when empty
  const char* data_ = nullptr;
  std::size_t size_ = 0;
};

std::ostream& operator<<(std::ostream& out, const SharedBytes& bytes);

}  // namespace nodenomad
