// Fuzzes the node-to-node request layer's decoders (src/node/node_rpc.hpp):
// forwarded requests, their responses and replica stats arrive from peers,
// so any bytes must decode to a value or a clean error, never a crash or an
// allocation driven by a length in the input. What decodes must re-encode
// to bytes that decode to the same value. The first byte picks the decoder.
#include <cstdint>
#include <string>

#include "node/node_rpc.hpp"
#include "nodenomad/assert.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace nodenomad;
  if (size == 0) return 0;
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0: {
      Result<node::RpcRequest> request = node::decode_rpc_request(bytes);
      if (request.is_ok()) {
        Result<node::RpcRequest> again =
            node::decode_rpc_request(node::encode_rpc_request(*request));
        NN_ASSERT(again.is_ok() && *again == *request, "a request does not round-trip");
      }
      break;
    }
    case 1: {
      Result<node::RpcResponse> response = node::decode_rpc_response(bytes);
      if (response.is_ok()) {
        Result<node::RpcResponse> again =
            node::decode_rpc_response(node::encode_rpc_response(*response));
        NN_ASSERT(again.is_ok() && again->reply.version == response->reply.version &&
                      again->reply.value == response->reply.value &&
                      again->reply.status.code() == response->reply.status.code() &&
                      again->leader_hint == response->leader_hint,
                  "a response does not round-trip");
      }
      break;
    }
    default: {
      Result<std::vector<node::ReplicaStats>> stats = node::decode_replica_stats(bytes);
      if (stats.is_ok()) {
        NN_ASSERT(node::decode_replica_stats(node::encode_replica_stats(*stats)).is_ok(),
                  "stats do not round-trip");
      }
      break;
    }
  }
  return 0;
}
