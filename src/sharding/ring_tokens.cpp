#include "sharding/ring_tokens.hpp"

namespace nodenomad::sharding_detail {

void merge_node_tokens(std::vector<std::uint64_t>& tokens, std::vector<std::uint32_t>& owners,
                       std::span<const std::uint64_t> fresh_sorted, std::uint32_t slot) {
  std::vector<std::uint64_t> merged_tokens;
  std::vector<std::uint32_t> merged_owners;
  merged_tokens.reserve(tokens.size() + fresh_sorted.size());
  merged_owners.reserve(tokens.size() + fresh_sorted.size());
  std::size_t old_i = 0;
  std::size_t new_i = 0;
  while (old_i < tokens.size() || new_i < fresh_sorted.size()) {
    // Existing owners are never equal to `slot` here (the new node takes it),
    // so owners[old_i] < slot decides ties by node id.
    const bool take_old =
        new_i == fresh_sorted.size() ||
        (old_i < tokens.size() &&
         (tokens[old_i] < fresh_sorted[new_i] ||
          (tokens[old_i] == fresh_sorted[new_i] && owners[old_i] < slot)));
    if (take_old) {
      const std::uint32_t owner = owners[old_i];
      merged_tokens.push_back(tokens[old_i]);
      merged_owners.push_back(owner >= slot ? owner + 1 : owner);
      ++old_i;
    } else {
      merged_tokens.push_back(fresh_sorted[new_i]);
      merged_owners.push_back(slot);
      ++new_i;
    }
  }
  tokens = std::move(merged_tokens);
  owners = std::move(merged_owners);
}

void erase_node_tokens(std::vector<std::uint64_t>& tokens, std::vector<std::uint32_t>& owners,
                       std::uint32_t slot) {
  // Compacts in place: no allocation, and the survivors keep their order.
  std::size_t kept = 0;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const std::uint32_t owner = owners[i];
    if (owner == slot) continue;
    tokens[kept] = tokens[i];
    owners[kept] = owner > slot ? owner - 1 : owner;
    ++kept;
  }
  tokens.resize(kept);
  owners.resize(kept);
}

bool tokens_ordered(std::span<const std::uint64_t> tokens, std::span<const std::uint32_t> owners) {
  if (tokens.size() != owners.size()) return false;
  for (std::size_t i = 1; i < tokens.size(); ++i) {
    const bool ordered = tokens[i - 1] < tokens[i] ||
                         (tokens[i - 1] == tokens[i] && owners[i - 1] <= owners[i]);
    if (!ordered) return false;
  }
  return true;
}

}  // namespace nodenomad::sharding_detail
