// Small pieces shared by the node's migration files (node_migration*.cpp,
// migration_coordinator.cpp, metadata_upkeep.cpp). Internal.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "node/node_rpc.hpp"
#include "nodenomad/types.hpp"

namespace nodenomad::node {

inline bool contains(const std::vector<NodeId>& v, const NodeId& n) {
  return std::find(v.begin(), v.end(), n) != v.end();
}

inline RpcResponse answer_with(Status status, std::string value = {}, NodeId hint = {}) {
  RpcResponse r;
  r.reply.status = std::move(status);
  r.reply.value = std::move(value);
  r.leader_hint = std::move(hint);
  return r;
}

}  // namespace nodenomad::node
