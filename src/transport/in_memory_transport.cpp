// InMemoryTransport: direct hand-off between handlers in one process.
#include "nodenomad/in_memory_transport.hpp"

#include "nodenomad/assert.hpp"

namespace nodenomad {

std::unique_ptr<InMemoryTransport> InMemoryNetwork::connect(const NodeId& self) {
  return std::make_unique<InMemoryTransport>(*this, self);
}

void InMemoryNetwork::cut(const NodeId& from, const NodeId& to) {
  std::lock_guard lock(mu_);
  cut_.emplace(from, to);
}

void InMemoryNetwork::partition(const NodeId& a, const NodeId& b) {
  std::lock_guard lock(mu_);
  cut_.emplace(a, b);
  cut_.emplace(b, a);
}

void InMemoryNetwork::isolate(const NodeId& node) {
  std::lock_guard lock(mu_);
  isolated_.insert(node);
}

void InMemoryNetwork::heal() {
  std::lock_guard lock(mu_);
  cut_.clear();
  isolated_.clear();
}

void InMemoryNetwork::set_drop_probability(double probability) {
  std::lock_guard lock(mu_);
  drop_probability_ = probability;
}

std::uint64_t InMemoryNetwork::delivered() const {
  std::lock_guard lock(mu_);
  return delivered_;
}

std::uint64_t InMemoryNetwork::dropped() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

void InMemoryNetwork::attach(const NodeId& id, TransportHandler* handler) {
  std::lock_guard lock(mu_);
  NN_ASSERT(handlers_.count(id) == 0, "two started in-memory transports for ", id.str());
  handlers_[id] = handler;
}

void InMemoryNetwork::detach(const NodeId& id) {
  std::lock_guard lock(mu_);
  handlers_.erase(id);
}

void InMemoryNetwork::deliver(Envelope envelope) {
  // The lock is held across the hand-off so that detach() (stop) cannot
  // return while a delivery to that handler is running; handlers only queue.
  std::lock_guard lock(mu_);
  auto it = handlers_.find(envelope.to);
  const bool blocked = cut_.count({envelope.from, envelope.to}) != 0 ||
                       isolated_.count(envelope.from) != 0 || isolated_.count(envelope.to) != 0;
  if (it == handlers_.end() || blocked ||
      (drop_probability_ > 0 && rng_.chance(drop_probability_))) {
    ++dropped_;
    return;
  }
  ++delivered_;
  it->second->on_envelope(std::move(envelope));
}

InMemoryTransport::InMemoryTransport(InMemoryNetwork& network, NodeId self)
    : network_(network), self_(std::move(self)) {}

InMemoryTransport::~InMemoryTransport() { stop(); }

Status InMemoryTransport::start(TransportHandler& handler) {
  NN_ASSERT(!started_, "InMemoryTransport::start() twice for ", self_.str());
  network_.attach(self_, &handler);
  started_ = true;
  return Status::ok();
}

void InMemoryTransport::stop() {
  if (!started_) return;
  network_.detach(self_);
  started_ = false;
}

void InMemoryTransport::send(Envelope envelope) {
  envelope.from = self_;
  network_.deliver(std::move(envelope));
}

}  // namespace nodenomad
