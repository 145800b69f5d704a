#include "nodenomad/shared_bytes.hpp"

#include <ostream>

#include "nodenomad/assert.hpp"

namespace nodenomad {

SharedBytes::SharedBytes(std::string bytes) {
  if (bytes.empty()) return;
  owner_ = std::make_shared<const std::string>(std::move(bytes));
  data_ = owner_->data();
  size_ = owner_->size();
}

SharedBytes SharedBytes::slice(std::shared_ptr<const std::string> owner, std::string_view part) {
  SharedBytes out;
  if (part.empty()) return out;
  NN_ASSERT(owner != nullptr && part.data() >= owner->data() &&
                part.data() + part.size() <= owner->data() + owner->size(),
            "a slice of ", part.size(), " bytes outside its owner");
  out.owner_ = std::move(owner);
  out.data_ = part.data();
  out.size_ = part.size();
  return out;
}

std::ostream& operator<<(std::ostream& out, const SharedBytes& bytes) {
  return out << bytes.view();
}

}  // namespace nodenomad
