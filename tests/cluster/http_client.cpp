// RawSocket, HttpConnection (declared in http_client.hpp): non-blocking
// sockets driven by poll(), so that every wait ends at its deadline.
#include "cluster/http_client.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

namespace nodenomad::process_testing {
namespace {

constexpr std::size_t kReadChunkBytes = 64 * 1024;
// A response head longer than this is not one of our server's answers.
constexpr std::size_t kMaxResponseHeadBytes = 64 * 1024;

std::string errno_text(const char* what, int error) {
  return std::string(what) + ": " + std::strerror(error);
}

int remaining_ms(Deadline deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
  return static_cast<int>(std::clamp<std::int64_t>(left.count(), 0, 60'000));
}

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

std::string trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return std::string(text);
}

// Parses "HTTP/1.1 200 OK\r\nName: value\r\n..." (without the blank line).
bool parse_head(std::string_view head, HttpReply& reply) {
  const std::size_t line_end = std::min(head.find("\r\n"), head.size());
  const std::string_view status_line = head.substr(0, line_end);
  if (status_line.size() < 12 || status_line.substr(0, 5) != "HTTP/") return false;
  const std::string_view code = status_line.substr(9, 3);
  if (!std::all_of(code.begin(), code.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  reply.status = std::stoi(std::string(code));
  std::size_t at = line_end;
  while (at < head.size()) {
    at += 2;
    const std::size_t next = std::min(head.find("\r\n", at), head.size());
    const std::string_view line = head.substr(at, next - at);
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) return false;
    reply.headers[lower(std::string(line.substr(0, colon)))] = trim(line.substr(colon + 1));
    at = next;
  }
  return true;
}

}  // namespace

RawSocket& RawSocket::operator=(RawSocket&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

void RawSocket::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool RawSocket::wait_for(short events, Deadline deadline) const {
  for (;;) {
    pollfd waiting{fd_, events, 0};
    const int ready = ::poll(&waiting, 1, remaining_ms(deadline));
    if (ready > 0) return true;
    if (ready == 0 && SteadyClock::now() >= deadline) return false;
    if (ready < 0 && errno != EINTR) return false;
  }
}

bool RawSocket::connect(std::uint16_t port, Deadline deadline, std::string& error) {
  close();
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    error = errno_text("socket", errno);
    return false;
  }
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0) return true;
  if (errno != EINPROGRESS) {
    error = errno_text("connect", errno);
    close();
    return false;
  }
  if (!wait_for(POLLOUT, deadline)) {
    error = "connect: no answer before the deadline";
    close();
    return false;
  }
  int result = 0;
  socklen_t length = sizeof result;
  ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &result, &length);
  if (result != 0) {
    error = errno_text("connect", result);
    close();
    return false;
  }
  return true;
}

bool RawSocket::send_all(std::string_view bytes, Deadline deadline, bool& sent_any,
                         std::string& error) {
  while (!bytes.empty()) {
    const ssize_t sent = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (sent > 0) {
      sent_any = true;
      bytes.remove_prefix(static_cast<std::size_t>(sent));
      continue;
    }
    if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      if (!wait_for(POLLOUT, deadline)) {
        error = "send: the peer did not take the bytes before the deadline";
        return false;
      }
      continue;
    }
    error = errno_text("send", errno);
    return false;
  }
  return true;
}

RawSocket::Read RawSocket::read_some(std::string& out, Deadline deadline, std::string& error) {
  char chunk[kReadChunkBytes];
  for (;;) {
    const ssize_t got = ::recv(fd_, chunk, sizeof chunk, 0);
    if (got > 0) {
      out.append(chunk, static_cast<std::size_t>(got));
      return Read::kData;
    }
    if (got == 0) {
      error = "the peer closed the connection";
      return Read::kEof;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
      if (!wait_for(POLLIN, deadline)) {
        error = "no answer before the deadline";
        return Read::kTimeout;
      }
      continue;
    }
    error = errno_text("recv", errno);
    return Read::kError;
  }
}

bool RawSocket::wait_closed(Deadline deadline, std::string& received) {
  std::string error;
  for (;;) {
    switch (read_some(received, deadline, error)) {
      case Read::kData: continue;
      case Read::kEof:
      case Read::kError: return true;
      case Read::kTimeout: return false;
    }
  }
}

bool RawSocket::peer_closed_now() const {
  if (fd_ < 0) return true;
  pollfd waiting{fd_, POLLIN, 0};
  if (::poll(&waiting, 1, 0) <= 0) return false;
  if ((waiting.revents & (POLLERR | POLLHUP)) != 0) return true;
  char byte;
  const ssize_t got = ::recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  // Bytes nobody asked for also make the connection unusable.
  return got >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
}

std::uint16_t RawSocket::local_port() const {
  sockaddr_in address{};
  socklen_t length = sizeof address;
  if (fd_ < 0 || ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) return 0;
  return ntohs(address.sin_port);
}

std::optional<std::string> HttpReply::header(const std::string& lower_case_name) const {
  const auto it = headers.find(lower_case_name);
  if (it == headers.end()) return std::nullopt;
  return it->second;
}

bool HttpReply::closes_connection() const {
  const std::optional<std::string> connection = header("connection");
  return connection && lower(*connection) == "close";
}

std::optional<HttpReply> read_http_reply(RawSocket& socket, std::string& buffer, Deadline deadline,
                                         std::string& error) {
  std::size_t head_end;
  while ((head_end = buffer.find("\r\n\r\n")) == std::string::npos) {
    if (buffer.size() > kMaxResponseHeadBytes) {
      error = "a response head over 64 KiB";
      return std::nullopt;
    }
    if (socket.read_some(buffer, deadline, error) != RawSocket::Read::kData) return std::nullopt;
  }
  HttpReply reply;
  if (!parse_head(std::string_view(buffer).substr(0, head_end), reply)) {
    error = "not an HTTP response: " + buffer.substr(0, std::min<std::size_t>(head_end, 80));
    return std::nullopt;
  }
  buffer.erase(0, head_end + 4);
  std::size_t length = 0;
  if (const std::optional<std::string> header = reply.header("content-length")) {
    length = std::stoull(*header);
  } else if (reply.status >= 200 && reply.status != 204 && reply.status != 304) {
    error = "a response without Content-Length";
    return std::nullopt;
  }
  while (buffer.size() < length) {
    if (socket.read_some(buffer, deadline, error) != RawSocket::Read::kData) return std::nullopt;
  }
  reply.body = buffer.substr(0, length);
  buffer.erase(0, length);
  return reply;
}

std::string make_http_request(std::string_view method, std::string_view target,
                              std::string_view body, std::string_view extra_headers) {
  std::string out;
  out.reserve(128 + target.size() + body.size());
  out.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  out.append(extra_headers);
  if (!body.empty() || method == "PUT" || method == "POST") {
    out.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  }
  out.append("\r\n").append(body);
  return out;
}

HttpResult HttpConnection::request(std::string_view method, std::string_view target,
                                   std::string_view body) {
  return raw_request(make_http_request(method, target, body));
}

HttpResult HttpConnection::raw_request(std::string_view bytes) {
  HttpResult result;
  const Deadline deadline = deadline_after(timeout_);
  if (!socket_.is_open() || socket_.peer_closed_now()) {
    buffer_.clear();
    if (!socket_.connect(port_, deadline, result.error)) return result;
  }
  if (!socket_.send_all(bytes, deadline, result.request_sent, result.error)) {
    socket_.close();
    return result;
  }
  result.reply = read_http_reply(socket_, buffer_, deadline, result.error);
  if (!result.reply || result.reply->closes_connection()) socket_.close();
  return result;
}

HttpResult http_once(std::uint16_t port, std::string_view method, std::string_view target,
                     std::string_view body, std::chrono::milliseconds timeout) {
  HttpConnection connection(port, timeout);
  return connection.request(method, target, body);
}

std::string percent_encode(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : bytes) {
    const auto byte = static_cast<unsigned char>(c);
    if (std::isalnum(byte) != 0 || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[byte >> 4]);
      out.push_back(kHex[byte & 0xF]);
    }
  }
  return out;
}

}  // namespace nodenomad::process_testing
