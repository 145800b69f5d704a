// AsioEventLoop: an EventLoop over a host's boost::asio::io_context, so that
// a Node, its AsioTransport and its HttpApi all run on one loop (DESIGN.md
// section 5). The host runs the io_context (io.run() on one thread).
//
// Thread safety: post() and post_after() from any thread. Tasks run on the
// thread that runs the io_context; with one such thread they run one at a
// time, which is what a Node requires.
// Lifetime: the io_context must outlive the loop; tasks still queued when
// the io_context is destroyed are dropped.
#pragma once

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <boost/asio/io_context.hpp>
#pragma GCC diagnostic pop

#include "nodenomad/event_loop.hpp"

namespace nodenomad::net {

class AsioEventLoop final : public EventLoop {
 public:
  explicit AsioEventLoop(boost::asio::io_context& io) : io_(io) {}

  void post(Task task) override;
  void post_after(std::chrono::milliseconds delay, Task task) override;
  bool in_loop() const override;

 private:
  boost::asio::io_context& io_;
};

}  // namespace nodenomad::net
