// What `nightshift serve` (or a test) configures about the HTTP/WebSocket
// server. The defaults are api.md's limits.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace nightshift::api {

struct ServerOptions {
  std::string listen_host = "127.0.0.1";  // an IP address; "localhost" is taken as 127.0.0.1
  std::uint16_t port = 7733;              // 0 picks a free port
  std::string token;                      // the bearer token every client must show
  std::size_t io_threads = 2;
  // Threads for what may not run on an I/O thread: store reads, stops and
  // deletes, rescans, the WebSocket snapshot and log backlogs.
  std::size_t worker_threads = 4;
  std::size_t max_connections = 4096;  // HTTP and WebSocket together
  std::size_t max_body_bytes = 1u << 20;
  std::size_t max_header_bytes = 16u << 10;
  std::size_t max_task_bytes = 64u << 10;
  std::size_t max_message_bytes = 64u << 10;         // POST .../messages text
  std::chrono::milliseconds request_timeout{30000};  // for a whole request to arrive
  // WebSocket
  std::size_t ws_max_message_bytes = 64u << 10;  // client messages; larger ones close with 1009
  std::size_t ws_send_queue_bytes = 8u << 20;    // per client; past it the client is closed (1013)
  std::size_t ws_send_queue_messages = 20000;    // per client, likewise
  // All clients together. Past it, a client holding more than its share
  // (this over the number of clients) is closed (1013) at its next message,
  // so clients that read keep receiving while those that do not are shed.
  std::size_t ws_total_send_queue_bytes = 256u << 20;
  std::chrono::milliseconds ws_idle_timeout{
      30000};  // a silent peer is pinged at half, dropped at it
  std::size_t ws_snapshot_history = 50;
};

}  // namespace nightshift::api
