#include "sim_cluster/sim_transport.hpp"

#include <fmt/format.h>

#include "nodenomad/assert.hpp"

namespace nodenomad::sim_cluster {

// One node's Transport for one incarnation.
class SimTransport final : public Transport {
 public:
  SimTransport(SimNetwork& network, std::uint32_t index) : network_(network), index_(index) {}
  ~SimTransport() override { stop(); }

  Status start(TransportHandler& handler) override {
    NN_ASSERT(!started_, "SimTransport::start() twice");
    network_.attach(index_, &handler);
    started_ = true;
    return Status::ok();
  }
  void stop() override {
    if (!started_) return;
    network_.detach(index_);
    started_ = false;
  }
  void send(Envelope envelope) override {
    if (started_) network_.send(index_, envelope);
  }
  // Nodes are reached by id; addresses mean nothing here.
  void set_peer(const NodeId& /*peer*/, std::string /*address*/) override {}
  void remove_peer(const NodeId& /*peer*/) override {}

 private:
  SimNetwork& network_;
  std::uint32_t index_;
  bool started_ = false;
};

SimNetwork::SimNetwork(Scheduler& scheduler, Rng rng, testing::ClusterFaultProfile profile,
                       ClusterTrace& trace, std::vector<NodeId> ids)
    : scheduler_(scheduler),
      rng_(rng),
      profile_(std::move(profile)),
      trace_(trace),
      ids_(std::move(ids)),
      handlers_(ids_.size(), nullptr) {}

std::unique_ptr<Transport> SimNetwork::connect(std::uint32_t index) {
  NN_ASSERT(index < ids_.size(), "connect() of an unknown node");
  return std::make_unique<SimTransport>(*this, index);
}

void SimNetwork::attach(std::uint32_t index, TransportHandler* handler) {
  NN_ASSERT(handlers_[index] == nullptr, "two started transports for ", ids_[index].str());
  handlers_[index] = handler;
  std::erase_if(reported_, [index](const auto& link) { return link.first == index; });
}

void SimNetwork::detach(std::uint32_t index) { handlers_[index] = nullptr; }

void SimNetwork::cut(std::uint32_t from, std::uint32_t to) {
  if (from != to) cut_.emplace(from, to);
}

void SimNetwork::heal() { cut_.clear(); }

bool SimNetwork::linked(std::uint32_t from, std::uint32_t to) const {
  return cut_.count({from, to}) == 0;
}

int SimNetwork::index_of(const NodeId& id) const {
  for (std::size_t i = 0; i < ids_.size(); ++i) {
    if (ids_[i] == id) return static_cast<int>(i);
  }
  return -1;
}

SimTime SimNetwork::latency() {
  SimTime us = rng_.uniform_in(profile_.min_latency_us, profile_.max_latency_us);
  if (!calm_ && profile_.long_delay_probability > 0 && rng_.chance(profile_.long_delay_probability)) {
    us += rng_.uniform_in(0, profile_.long_delay_max_us);
  }
  return us;
}

void SimNetwork::send(std::uint32_t from, const Envelope& envelope) {
  ++stats_.sent;
  std::string bytes = encode_envelope(envelope);
  trace_.hash_u64(from);
  trace_.hash_bytes(bytes);
  if (traced_group_ && envelope.kind == EnvelopeKind::kRaft &&
      envelope.group.value() == *traced_group_) {
    const Message& m = envelope.message;
    trace_.note(scheduler_.now(),
                fmt::format("raft g{} {} -> {} {} term {} index {} log_term {} entries {} commit {}{}"
                            "{}",
                            envelope.group.value(), envelope.from.str(), envelope.to.str(),
                            message_type_name(m.type), m.term.value(), m.index.value(),
                            m.log_term.value(), m.entries.size(), m.commit.value(),
                            m.reject ? fmt::format(" REJECT hint {}", m.hint_index.value()) : "",
                            m.type == MessageType::kSnapshot || m.type == MessageType::kSnapshotResponse
                                ? fmt::format(" snap idx {} off {} bytes {}",
                                              m.snapshot.meta.index.value(), m.snapshot.offset,
                                              m.snapshot.data.size())
                                : ""));
  }
  const int to_index = index_of(envelope.to);
  if (to_index < 0) {
    ++stats_.dropped;
    return;
  }
  const auto to = static_cast<std::uint32_t>(to_index);
  if (handlers_[to] == nullptr || !linked(from, to)) {
    ++stats_.dropped;
    unreachable(from, to);
    return;
  }
  int copies = 1;
  if (!calm_ && profile_.drop_probability > 0 && rng_.chance(profile_.drop_probability)) {
    copies = 0;
  } else if (!calm_ && profile_.duplicate_probability > 0 &&
             rng_.chance(profile_.duplicate_probability) &&
             (envelope.kind != EnvelopeKind::kRequest || duplicate_requests_)) {
    copies = 2;
    ++stats_.duplicated;
    if (envelope.kind == EnvelopeKind::kRequest) {
      trace_.note(scheduler_.now(), fmt::format("network: duplicated request {} {} -> {}",
                                                envelope.request_id, envelope.from.str(),
                                                envelope.to.str()));
    }
  }
  if (copies == 0) {
    ++stats_.dropped;
    if (envelope.kind != EnvelopeKind::kRaft) {
      trace_.note(scheduler_.now(), fmt::format("network: lost {} {} {} -> {}",
                                                envelope.kind == EnvelopeKind::kRequest ? "request"
                                                                                        : "response",
                                                envelope.request_id, envelope.from.str(),
                                                envelope.to.str()));
    }
  }
  for (int c = 0; c < copies; ++c) {
    const SimTime when = scheduler_.now() + latency();
    const bool queued = scheduler_.at(when, to, [this, from, to, bytes] { deliver(from, to, bytes); });
    if (!queued) ++stats_.dropped;
  }
}

void SimNetwork::deliver(std::uint32_t from, std::uint32_t to, const std::string& bytes) {
  TransportHandler* handler = handlers_[to];
  if (handler == nullptr || !linked(from, to)) {
    ++stats_.dropped;
    return;
  }
  Result<Envelope> envelope = decode_envelope(bytes);
  NN_ASSERT(envelope.is_ok(), "an envelope the codec wrote does not decode: ",
            envelope.status().to_string());
  ++stats_.delivered;
  reported_.erase({from, to});
  handler->on_envelope(std::move(*envelope));
}

// The sender's connection attempt fails a moment later (a connect timeout).
void SimNetwork::unreachable(std::uint32_t from, std::uint32_t to) {
  if (!reported_.emplace(from, to).second) return;
  TransportHandler* expected = handlers_[from];
  if (expected == nullptr) return;
  const SimTime when = scheduler_.now() + rng_.uniform_in(1'000, 20'000);
  scheduler_.at(when, from, [this, from, to, expected] {
    if (handlers_[from] != expected) return;  // restarted since: a new connection
    expected->on_peer_unreachable(ids_[to]);
  });
}

}  // namespace nodenomad::sim_cluster
