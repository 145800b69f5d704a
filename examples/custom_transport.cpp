// A Transport written from scratch: NodeNomad nodes talking over UDP
// datagrams on loopback, one socket per node. It shows everything a host
// has to do to bring its own networking (nodenomad/transport.hpp): encode
// envelopes to bytes, deliver decoded ones to the handler, never block.
// UDP may drop, duplicate and reorder datagrams; Raft does not mind. A
// datagram holds at most 64 KiB, so Raft's appends and snapshot chunks are
// kept smaller than that (max_append_bytes, snapshot_chunk_bytes).
//
//   custom_transport [DATA_DIR]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <mutex>
#include <thread>

#include "nodenomad/logging.hpp"
#include "nodenomad/node.hpp"
#include "nodenomad/transport.hpp"

using namespace nodenomad;

class UdpTransport final : public Transport {
 public:
  explicit UdpTransport(std::uint16_t port) : port_(port) {}
  ~UdpTransport() override { stop(); }

  Status start(TransportHandler& handler) override {
    fd_ = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in addr = loopback(port_);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      return Status::io_error("udp bind on 127.0.0.1:" + std::to_string(port_) + " failed");
    }
    running_ = true;
    receiver_ = std::thread([this, &handler] { receive(handler); });
    return Status::ok();
  }

  void stop() override {
    if (!running_.exchange(false)) return;
    receiver_.join();  // the receive loop polls running_ every 50 ms
    ::close(fd_);
  }

  void send(Envelope envelope) override {
    std::uint16_t port = 0;
    {
      std::lock_guard lock(mu_);
      auto it = peers_.find(envelope.to);
      if (it == peers_.end()) return;  // unknown peer: dropped, as the contract allows
      port = it->second;
    }
    const std::string bytes = encode_envelope(envelope);
    sockaddr_in to = loopback(port);
    // Never blocks for long: a datagram too large or a full buffer is lost.
    (void)::sendto(fd_, bytes.data(), bytes.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&to),
                   sizeof to);
  }

  void set_peer(const NodeId& peer, std::string address) override {
    std::lock_guard lock(mu_);
    // "host:port"; this example only speaks loopback, so the port is enough.
    peers_[peer] = static_cast<std::uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
  }
  void remove_peer(const NodeId& peer) override {
    std::lock_guard lock(mu_);
    peers_.erase(peer);
  }

 private:
  static sockaddr_in loopback(std::uint16_t port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return addr;
  }

  void receive(TransportHandler& handler) {
    std::string buffer(65536, '\0');
    while (running_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const ssize_t n = ::recv(fd_, buffer.data(), buffer.size(), 0);
      if (n <= 0) continue;
      // Bytes from the network are untrusted: a bad datagram is dropped.
      Result<Envelope> envelope = decode_envelope(std::string_view(buffer.data(), n));
      if (envelope.is_ok()) handler.on_envelope(std::move(*envelope));
    }
  }

  std::uint16_t port_;
  int fd_ = -1;
  std::atomic<bool> running_{false};
  std::thread receiver_;
  std::mutex mu_;
  std::map<NodeId, std::uint16_t> peers_;
};

int main(int argc, char** argv) {
  const std::string data = argc > 1 ? argv[1] : "custom-transport-data";
  set_log_level(LogLevel::kWarn);
  std::vector<NodeMember> members;
  for (int i = 1; i <= 3; ++i) {
    members.push_back({NodeId("node-" + std::to_string(i)), "127.0.0.1:" + std::to_string(47100 + i)});
  }
  std::vector<std::unique_ptr<UdpTransport>> transports;
  std::vector<std::unique_ptr<Node>> nodes;
  for (std::size_t i = 0; i < members.size(); ++i) {
    transports.push_back(std::make_unique<UdpTransport>(47101 + i));
    NodeOptions options;
    options.id = members[i].id;
    options.initial_members = members;
    options.data_dir = data + "/" + members[i].id.str();
    options.shard_count = 4;
    options.raft.max_append_bytes = 16 << 10;      // well inside one datagram
    options.raft.snapshot_chunk_bytes = 16 << 10;
    options.transport = transports.back().get();
    Result<std::unique_ptr<Node>> node = Node::open(options);
    if (!node.is_ok()) {
      std::fprintf(stderr, "%s\n", node.status().to_string().c_str());
      return 1;
    }
    nodes.push_back(std::move(*node));
  }
  KvReply put;
  put.status = Status::unavailable("not tried yet");
  for (int attempt = 0; attempt < 50 && !put.status.is_ok(); ++attempt) {
    put = nodes[1]->put("transport", "udp").get();
  }
  const KvReply got = nodes[2]->get("transport").get();
  std::printf("put: %s; node-3 reads \"%s\" (%s)\n", put.status.to_string().c_str(),
              got.value.c_str(), got.status.to_string().c_str());
  nodes.clear();
  return got.status.is_ok() ? 0 : 1;
}
