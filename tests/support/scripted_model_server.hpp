// A scripted OpenAI-compatible model server for tests and benchmarks: real
// HTTP (or HTTPS) on 127.0.0.1 on an ephemeral port, served by threads of
// the test process. Each request takes the next answer of a script (or asks
// a responder function), and every request is recorded (method, target,
// headers, body, when it came) so tests can assert on what a client sent.
//
//   nightshift::testing::ScriptedModelServer server;
//   server.push(ScriptedAnswer::sse({chunks::text("hello"), chunks::finish("stop")}));
//   server.push(ScriptedAnswer::json(R"({"error": "busy"})", 429).with_header("Retry-After", "1"));
//   ... point the client at server.base_url() ...
//   EXPECT_EQ(server.requests().size(), 2u);
//
// An answer can stream its body in pieces cut anywhere (each piece is its
// own write, and its own HTTP chunk when chunked), stop after some pieces
// and close the connection (a cut stream), wait before answering (a slow
// server), or carry any status, headers and body (429 with Retry-After,
// 5xx, text that is not JSON). A request that finds the script empty gets
// 500 and is counted in unscripted().
//
// Needs Boost (Beast, Asio, JSON) and, for HTTPS, OpenSSL.
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace nightshift::testing {

struct ScriptedAnswer {
  enum class Framing { content_length, chunked, close_delimited };

  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::vector<std::string> pieces;  // the body, each piece written on its own
  Framing framing = Framing::content_length;
  std::optional<std::size_t> cut_after;  // send only this many pieces, then close
  std::chrono::milliseconds delay{0};    // before the status line
  std::function<void()> before_answer;   // called on the server's thread before answering
  bool close_after = false;  // close the connection after a whole answer, without saying so

  // A JSON body, sent whole.
  static ScriptedAnswer json(std::string body, int status = 200) {
    ScriptedAnswer answer;
    answer.status = status;
    answer.pieces.push_back(std::move(body));
    return answer;
  }
  // Any body with any content type.
  static ScriptedAnswer text(std::string body, int status = 200,
                             std::string content_type = "text/plain") {
    ScriptedAnswer answer = json(std::move(body), status);
    answer.content_type = std::move(content_type);
    return answer;
  }
  // An event stream of these chunks (JSON texts), each as `data: ...` and a
  // blank line, then `data: [DONE]`, sent chunked; with split_every > 0 the
  // stream is cut into pieces of that many bytes (anywhere: inside a line,
  // a JSON string, between "\r" and "\n" ...), each its own HTTP chunk.
  static ScriptedAnswer sse(const std::vector<std::string>& chunks, std::size_t split_every = 0,
                            bool done = true, std::string_view line_end = "\n") {
    std::string stream;
    for (const std::string& chunk : chunks) {
      stream += "data: " + chunk + std::string(line_end) + std::string(line_end);
    }
    if (done) stream += "data: [DONE]" + std::string(line_end) + std::string(line_end);
    return sse_text(stream, split_every);
  }
  static ScriptedAnswer sse_text(const std::string& stream, std::size_t split_every = 0) {
    ScriptedAnswer answer;
    answer.content_type = "text/event-stream";
    answer.framing = Framing::chunked;
    if (split_every == 0) {
      answer.pieces.push_back(stream);
    } else {
      for (std::size_t at = 0; at < stream.size(); at += split_every) {
        answer.pieces.push_back(stream.substr(at, split_every));
      }
    }
    return answer;
  }

  ScriptedAnswer&& with_header(std::string name, std::string value) && {
    headers.emplace_back(std::move(name), std::move(value));
    return std::move(*this);
  }
  ScriptedAnswer&& with_delay(std::chrono::milliseconds wait) && {
    delay = wait;
    return std::move(*this);
  }
  ScriptedAnswer&& cut_after_pieces(std::size_t count) && {
    cut_after = count;
    return std::move(*this);
  }
  // As a server does with a connection idle for too long: the client finds
  // out only when it sends the next request on it.
  ScriptedAnswer&& then_close() && {
    close_after = true;
    return std::move(*this);
  }
  ScriptedAnswer&& with_framing(Framing how) && {
    framing = how;
    return std::move(*this);
  }
};

// Chunks and answers in the chat completions format.
namespace chunks {

inline std::string text(std::string_view content) {
  namespace json = boost::json;
  return json::serialize(json::object{
      {"id", "chatcmpl-1"},
      {"object", "chat.completion.chunk"},
      {"choices", json::array{json::object{{"index", 0},
                                           {"delta", json::object{{"content", content}}},
                                           {"finish_reason", nullptr}}}}});
}

// A tool-call fragment: id and name only when not empty (the first fragment
// of a call carries them; later ones carry only the index and more
// arguments).
inline std::string tool_call(int index, std::string_view id, std::string_view name,
                             std::string_view arguments) {
  namespace json = boost::json;
  json::object function{{"arguments", arguments}};
  if (!name.empty()) function["name"] = name;
  json::object call{{"index", index}, {"function", std::move(function)}};
  if (!id.empty()) {
    call["id"] = id;
    call["type"] = "function";
  }
  return json::serialize(json::object{
      {"id", "chatcmpl-1"},
      {"object", "chat.completion.chunk"},
      {"choices",
       json::array{json::object{{"index", 0},
                                {"delta", json::object{{"tool_calls", json::array{call}}}},
                                {"finish_reason", nullptr}}}}});
}

// The finishing chunk; with usage when prompt/completion are given.
inline std::string finish(std::string_view reason, std::optional<std::uint64_t> prompt = {},
                          std::optional<std::uint64_t> completion = {}) {
  namespace json = boost::json;
  json::object chunk{
      {"id", "chatcmpl-1"},
      {"object", "chat.completion.chunk"},
      {"choices", json::array{json::object{
                      {"index", 0}, {"delta", json::object{}}, {"finish_reason", reason}}}}};
  if (prompt) {
    chunk["usage"] = json::object{{"prompt_tokens", *prompt},
                                  {"completion_tokens", completion.value_or(0)},
                                  {"total_tokens", *prompt + completion.value_or(0)}};
  }
  return json::serialize(chunk);
}

// The last chunk of a stream asked for usage: no choices, the counts.
inline std::string usage(std::uint64_t prompt, std::uint64_t completion) {
  namespace json = boost::json;
  return json::serialize(
      json::object{{"id", "chatcmpl-1"},
                   {"object", "chat.completion.chunk"},
                   {"choices", json::array{}},
                   {"usage", json::object{{"prompt_tokens", prompt},
                                          {"completion_tokens", completion},
                                          {"total_tokens", prompt + completion}}}});
}

struct Call {
  std::string id;
  std::string name;
  std::string arguments;
};

// A whole (non-streamed) answer.
inline std::string answer(std::string_view content, const std::vector<Call>& calls = {},
                          std::string_view reason = "stop", std::uint64_t prompt = 10,
                          std::uint64_t completion = 5) {
  namespace json = boost::json;
  json::object message{{"role", "assistant"}};
  if (content.empty() && !calls.empty()) {
    message["content"] = nullptr;
  } else {
    message["content"] = content;
  }
  if (!calls.empty()) {
    json::array list;
    for (const Call& call : calls) {
      list.push_back(json::object{
          {"id", call.id},
          {"type", "function"},
          {"function", json::object{{"name", call.name}, {"arguments", call.arguments}}}});
    }
    message["tool_calls"] = std::move(list);
  }
  return json::serialize(json::object{
      {"id", "chatcmpl-1"},
      {"object", "chat.completion"},
      {"choices", json::array{json::object{
                      {"index", 0}, {"message", std::move(message)}, {"finish_reason", reason}}}},
      {"usage", json::object{{"prompt_tokens", prompt},
                             {"completion_tokens", completion},
                             {"total_tokens", prompt + completion}}}});
}

}  // namespace chunks

struct RecordedRequest {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  std::chrono::steady_clock::time_point received;  // when the whole request was read
  std::chrono::steady_clock::time_point answered;  // when the answer was written (or cut)

  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
  boost::json::value json() const { return boost::json::parse(body); }
};

// A self-signed certificate for 127.0.0.1 and localhost, made with OpenSSL.
struct TestCertificate {
  std::string certificate_pem;
  std::string private_key_pem;

  static TestCertificate make() {
    const auto check = [](bool ok, const char* what) {
      if (!ok) throw std::runtime_error(std::string("making a test certificate: ") + what);
    };
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), &EVP_PKEY_free);
    check(key != nullptr, "EVP_EC_gen");
    std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), &X509_free);
    check(cert != nullptr, "X509_new");
    check(X509_set_version(cert.get(), 2) == 1, "X509_set_version");
    check(ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1) == 1, "serial number");
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
    check(X509_set_pubkey(cert.get(), key.get()) == 1, "X509_set_pubkey");
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
    check(X509_set_issuer_name(cert.get(), name) == 1, "X509_set_issuer_name");
    X509V3_CTX context;
    X509V3_set_ctx_nodb(&context);
    X509V3_set_ctx(&context, cert.get(), cert.get(), nullptr, nullptr, 0);
    for (const auto& [nid, value] : {std::pair{NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost"},
                                     std::pair{NID_basic_constraints, "critical,CA:TRUE"}}) {
      X509_EXTENSION* extension =
          X509V3_EXT_conf_nid(nullptr, &context, nid, const_cast<char*>(value));
      check(extension != nullptr, "X509V3_EXT_conf_nid");
      X509_add_ext(cert.get(), extension, -1);
      X509_EXTENSION_free(extension);
    }
    check(X509_sign(cert.get(), key.get(), EVP_sha256()) > 0, "X509_sign");

    const auto to_pem = [&](auto write) {
      std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
      check(write(bio.get()) == 1, "PEM_write");
      char* data = nullptr;
      const long size = BIO_get_mem_data(bio.get(), &data);
      return std::string(data, static_cast<std::size_t>(size));
    };
    TestCertificate out;
    out.certificate_pem = to_pem([&](BIO* bio) { return PEM_write_bio_X509(bio, cert.get()); });
    out.private_key_pem = to_pem([&](BIO* bio) {
      return PEM_write_bio_PrivateKey(bio, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
    });
    return out;
  }
};

class ScriptedModelServer {
 public:
  using Responder = std::function<ScriptedAnswer(const RecordedRequest&)>;

  // Plain HTTP, or HTTPS with this certificate.
  explicit ScriptedModelServer(std::optional<TestCertificate> tls = std::nullopt) : acceptor_(io_) {
    if (tls) {
      tls_.emplace(boost::asio::ssl::context::tls_server);
      tls_->use_certificate_chain(boost::asio::buffer(tls->certificate_pem));
      tls_->use_private_key(boost::asio::buffer(tls->private_key_pem),
                            boost::asio::ssl::context::pem);
    }
    const boost::asio::ip::tcp::endpoint endpoint(boost::asio::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(boost::asio::socket_base::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(1024);
    port_ = acceptor_.local_endpoint().port();
    accept_thread_ = std::thread([this] { accept_loop(); });
  }

  ~ScriptedModelServer() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
      for (int fd : open_sockets_) ::shutdown(fd, SHUT_RDWR);
    }
    wake_.notify_all();
    // Wakes the blocking accept.
    try {
      boost::asio::io_context io;
      boost::asio::ip::tcp::socket poke(io);
      poke.connect({boost::asio::ip::make_address("127.0.0.1"), port_});
    } catch (...) {
    }
    if (accept_thread_.joinable()) accept_thread_.join();
    std::vector<std::thread> threads;
    {
      std::lock_guard lock(mutex_);
      threads.swap(connection_threads_);
    }
    for (std::thread& thread : threads) thread.join();
  }
  ScriptedModelServer(const ScriptedModelServer&) = delete;
  ScriptedModelServer& operator=(const ScriptedModelServer&) = delete;

  unsigned short port() const noexcept { return port_; }
  std::string base_url() const {
    return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_) + "/v1";
  }

  void push(ScriptedAnswer answer) {
    std::lock_guard lock(mutex_);
    script_.push_back(std::move(answer));
  }
  // Answers every request the script has no answer for (the script first).
  void set_responder(Responder responder) {
    std::lock_guard lock(mutex_);
    responder_ = std::move(responder);
  }
  // Whether requests (bodies included) are kept; a benchmark turns it off.
  void set_recording(bool on) {
    std::lock_guard lock(mutex_);
    recording_ = on;
  }

  std::vector<RecordedRequest> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  std::size_t request_count() const {
    std::lock_guard lock(mutex_);
    return request_count_;
  }
  std::size_t unscripted() const {
    std::lock_guard lock(mutex_);
    return unscripted_;
  }
  std::size_t connections() const {
    std::lock_guard lock(mutex_);
    return connections_;
  }

 private:
  using tcp = boost::asio::ip::tcp;

  void accept_loop() {
    while (true) {
      tcp::socket socket(io_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      if (ec) continue;
      ++connections_;
      open_sockets_.insert(socket.native_handle());
      connection_threads_.emplace_back([this, s = std::make_shared<tcp::socket>(std::move(
                                                  socket))]() mutable { serve(std::move(*s)); });
    }
  }

  void serve(tcp::socket socket) {
    const int fd = socket.native_handle();
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    try {
      if (tls_) {
        boost::asio::ssl::stream<tcp::socket&> stream(socket, *tls_);
        stream.handshake(boost::asio::ssl::stream_base::server);
        serve_requests(stream);
      } else {
        serve_requests(socket);
      }
    } catch (const std::exception&) {
      // The client went away, or the server is stopping: the connection ends.
    }
    std::lock_guard lock(mutex_);
    open_sockets_.erase(fd);
    socket.close(ignored);
  }

  template <class Stream>
  void serve_requests(Stream& stream) {
    namespace http = boost::beast::http;
    boost::beast::flat_buffer buffer;
    while (true) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(256 * 1024 * 1024);
      boost::system::error_code ec;
      http::read(stream, buffer, parser, ec);
      if (ec) return;
      const auto& request = parser.get();
      RecordedRequest record;
      record.method = std::string(request.method_string());
      record.target = std::string(request.target());
      for (const auto& field : request) {
        std::string name(field.name_string());
        std::transform(name.begin(), name.end(), name.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        record.headers[name] = std::string(field.value());
      }
      record.body = request.body();
      record.received = std::chrono::steady_clock::now();
      const bool keep_alive = request.keep_alive();

      ScriptedAnswer answer = next_answer(record);
      if (answer.before_answer) answer.before_answer();
      if (answer.delay.count() > 0) {
        std::unique_lock lock(mutex_);
        if (wake_.wait_for(lock, answer.delay, [this] { return stopping_; })) return;
      }
      const bool closed = write_answer(stream, answer);
      record.answered = std::chrono::steady_clock::now();
      {
        std::lock_guard lock(mutex_);
        if (recording_) requests_.push_back(std::move(record));
      }
      if (closed || !keep_alive) return;
    }
  }

  ScriptedAnswer next_answer(const RecordedRequest& request) {
    Responder responder;
    {
      std::lock_guard lock(mutex_);
      ++request_count_;
      if (!script_.empty()) {
        ScriptedAnswer answer = std::move(script_.front());
        script_.pop_front();
        return answer;
      }
      responder = responder_;
      if (!responder) ++unscripted_;
    }
    if (responder) return responder(request);
    return ScriptedAnswer::json(R"({"error": {"message": "the test's script has no answer left"}})",
                                500);
  }

  // Writes the answer; true when the connection must close after it.
  template <class Stream>
  static bool write_answer(Stream& stream, const ScriptedAnswer& answer) {
    using Framing = ScriptedAnswer::Framing;
    std::size_t length = 0;
    for (const std::string& piece : answer.pieces) length += piece.size();
    std::string head = "HTTP/1.1 " + std::to_string(answer.status) + " Scripted\r\n";
    head += "Content-Type: " + answer.content_type + "\r\n";
    for (const auto& [name, value] : answer.headers) head += name + ": " + value + "\r\n";
    switch (answer.framing) {
      case Framing::content_length:
        head += "Content-Length: " + std::to_string(length) + "\r\n";
        break;
      case Framing::chunked:
        head += "Transfer-Encoding: chunked\r\n";
        break;
      case Framing::close_delimited:
        head += "Connection: close\r\n";
        break;
    }
    head += "\r\n";
    boost::asio::write(stream, boost::asio::buffer(head));
    const std::size_t count = std::min(answer.pieces.size(), answer.cut_after.value_or(SIZE_MAX));
    for (std::size_t i = 0; i < count; ++i) {
      const std::string& piece = answer.pieces[i];
      if (piece.empty()) continue;
      if (answer.framing == Framing::chunked) {
        char size[32];
        std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
        boost::asio::write(stream, boost::asio::buffer(size + piece + "\r\n"));
      } else {
        boost::asio::write(stream, boost::asio::buffer(piece));
      }
    }
    if (answer.cut_after) return true;
    if (answer.framing == Framing::chunked) {
      boost::asio::write(stream, boost::asio::buffer(std::string_view("0\r\n\r\n")));
    }
    return answer.close_after || answer.framing == Framing::close_delimited;
  }

  boost::asio::io_context io_;
  tcp::acceptor acceptor_;
  std::optional<boost::asio::ssl::context> tls_;
  unsigned short port_ = 0;
  std::thread accept_thread_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::deque<ScriptedAnswer> script_;
  Responder responder_;
  bool recording_ = true;
  std::vector<RecordedRequest> requests_;
  std::size_t request_count_ = 0;
  std::size_t unscripted_ = 0;
  std::size_t connections_ = 0;
  std::set<int> open_sockets_;
  std::vector<std::thread> connection_threads_;
};

}  // namespace nightshift::testing
