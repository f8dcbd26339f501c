// The HTTP and WebSocket server of api.md over Boost.Beast, over a Host: an
// acceptor on its own strand, a small pool of io_context threads that never
// wait, and a worker pool for the handlers that need the store, a plugin or
// the disk; one session object per connection, kept alive by the handlers it
// has in flight.
//
// Thread safety: start, stop_accepting and stop are called from one thread
// (the one that owns the Server); the getters are [thread-safe].
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <vector>

#include "api/metrics.hpp"
#include "api/router.hpp"
#include "api/server_options.hpp"
#include "host.hpp"

namespace nightshift::api {

class Server {
 public:
  // Serves `host`, which must outlive the Server. Throws
  // std::invalid_argument when options.listen_host is not an address.
  Server(ServerOptions options, Host& host);
  // Calls stop().
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds, listens and starts the I/O threads. Throws when the address
  // cannot be bound (e.g. the port is in use).
  void start();

  // The address actually bound (the real port when options.port was 0).
  boost::asio::ip::tcp::endpoint local_endpoint() const;

  // Closes the listening socket; connections already open keep working.
  void stop_accepting();

  // Closes every connection (WebSocket clients get 1001 going away), waits
  // up to 2 s for them to end, drops answers still waiting for a commit, and
  // joins the worker pool and the I/O threads. Idempotent.
  void stop();

  std::vector<RouteSpec> routes() const;
  const Metrics& metrics() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace nightshift::api
