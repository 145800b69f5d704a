// AsioEventLoop: tasks and timers on an io_context.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#pragma GCC diagnostic pop

#include <memory>

#include "nodenomad/net/asio_event_loop.hpp"

namespace nodenomad::net {

void AsioEventLoop::post(Task task) { boost::asio::post(io_, std::move(task)); }

void AsioEventLoop::post_after(std::chrono::milliseconds delay, Task task) {
  if (delay.count() <= 0) {
    post(std::move(task));
    return;
  }
  // The timer owns itself until it fires (or the io_context is destroyed).
  auto timer = std::make_shared<boost::asio::steady_timer>(io_, delay);
  timer->async_wait([timer, task = std::move(task)](const boost::system::error_code& ec) {
    if (!ec) task();
  });
}

bool AsioEventLoop::in_loop() const { return io_.get_executor().running_in_this_thread(); }

}  // namespace nodenomad::net
