// A real HTTP receiver for webhook tests on 127.0.0.1 (an ephemeral port):
// it records each request (headers and body) and answers with the next
// status of a script (the last one repeats), or never answers at all.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace nightshift::testing {

class Receiver {
 public:
  struct Request {
    std::map<std::string, std::string> headers;  // names lowercased
    std::string body;
  };

  // `statuses`: the answer to the 1st, 2nd, ... request; 0 means never
  // answer (the connection is held open until the receiver stops).
  explicit Receiver(std::vector<int> statuses = {200}, std::uint16_t port = 0)
      : statuses_(std::move(statuses)),
        acceptor_(ioc_, {boost::asio::ip::make_address("127.0.0.1"), port}) {
    thread_ = std::thread([this] { serve(); });
  }
  ~Receiver() {
    stopping_ = true;
    boost::system::error_code ignored;
    {
      std::lock_guard lock(mutex_);
      for (auto& socket : held_) socket->close(ignored);
    }
    // Wakes a blocking accept with a connection of its own; the acceptor is
    // closed only once the serving thread is gone (closing it under a
    // blocking accept is a data race).
    try {
      boost::asio::io_context ioc;
      boost::asio::ip::tcp::socket poke(ioc);
      poke.connect({boost::asio::ip::make_address("127.0.0.1"), port()}, ignored);
      thread_.join();
    } catch (...) {
      if (thread_.joinable()) thread_.join();
    }
    acceptor_.close(ignored);
  }

  std::uint16_t port() const { return port_; }
  std::string url(const std::string& path = "/hook") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::vector<Request> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  std::size_t count() const {
    std::lock_guard lock(mutex_);
    return requests_.size();
  }

 private:
  void serve() {
    namespace http = boost::beast::http;
    while (!stopping_) {
      auto socket = std::make_shared<boost::asio::ip::tcp::socket>(ioc_);
      boost::system::error_code error;
      acceptor_.accept(*socket, error);
      if (error || stopping_) return;
      boost::beast::flat_buffer buffer;
      http::request<http::string_body> request;
      http::read(*socket, buffer, request, error);
      if (error) continue;
      int status = 200;
      {
        std::lock_guard lock(mutex_);
        Request recorded;
        for (const auto& field : request) {
          std::string name(field.name_string());
          for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          recorded.headers[name] = std::string(field.value());
        }
        recorded.body = request.body();
        requests_.push_back(std::move(recorded));
        const std::size_t index = requests_.size() - 1;
        status = statuses_.empty() ? 200 : statuses_[std::min(index, statuses_.size() - 1)];
        if (status == 0) {
          held_.push_back(socket);  // never answered
          continue;
        }
      }
      http::response<http::string_body> response{static_cast<http::status>(status), 11};
      response.set(http::field::content_type, "text/plain");
      response.body() = "ok";
      response.keep_alive(false);
      response.prepare_payload();
      http::write(*socket, response, error);
      socket->shutdown(boost::asio::ip::tcp::socket::shutdown_both, error);
    }
  }

  std::vector<int> statuses_;
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  const std::uint16_t port_ = acceptor_.local_endpoint().port();
  std::atomic<bool> stopping_{false};
  mutable std::mutex mutex_;
  std::vector<Request> requests_;
  std::vector<std::shared_ptr<boost::asio::ip::tcp::socket>> held_;
  std::thread thread_;
};

}  // namespace nightshift::testing
