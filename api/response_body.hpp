// The body of every HTTP response the API sends: text of its own before and
// after an optional shared, immutable middle that is sent without being
// copied. GET /background-agents puts the cached, already serialized history
// page in the middle, so a busy client costs neither a copy of the page nor
// an allocation of its size per request; every other response has only text
// of its own (`before`).
//
// A Boost.Beast Body (value_type, size, writer), so that a message with it
// is prepared and serialized like any other: Content-Length comes from
// size(), and the writer hands the three parts to the socket as one buffer
// sequence.
//
// serialize_head() writes a response's status line and fields, so that the
// server sends the head and the body's parts in one gathered write.
//
// Thread safety: a value is owned by one response; the shared middle is
// immutable, so any number of responses may hold it on any threads.
#pragma once

#include <array>
#include <boost/asio/buffer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/optional.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace nightshift::api {

struct ResponseBody {
  class value_type {
   public:
    value_type() = default;
    // A body that is this text alone.
    value_type(std::string text) : before_(std::move(text)) {}  // implicit: any text is a body
    // `before`, then `shared` (kept alive by `owner`), then `after`.
    value_type(std::string before, std::shared_ptr<const void> owner, std::string_view shared,
               std::string after)
        : before_(std::move(before)),
          owner_(std::move(owner)),
          shared_(shared),
          after_(std::move(after)) {}

    std::uint64_t size() const noexcept { return before_.size() + shared_.size() + after_.size(); }

    // The whole body as one string (a copy; for tests and logs).
    std::string str() const {
      std::string text;
      text.reserve(size());
      text.append(before_).append(shared_).append(after_);
      return text;
    }

    std::array<boost::asio::const_buffer, 3> buffers() const noexcept {
      return {boost::asio::buffer(before_), boost::asio::buffer(shared_.data(), shared_.size()),
              boost::asio::buffer(after_)};
    }

   private:
    std::string before_;
    std::shared_ptr<const void> owner_;
    std::string_view shared_;
    std::string after_;
  };

  static std::uint64_t size(const value_type& body) noexcept { return body.size(); }

  class writer {
   public:
    using const_buffers_type = std::array<boost::asio::const_buffer, 3>;

    template <bool isRequest, class Fields>
    writer(const boost::beast::http::header<isRequest, Fields>&, const value_type& body)
        : body_(body) {}

    void init(boost::beast::error_code& error) { error = {}; }

    boost::optional<std::pair<const_buffers_type, bool>> get(boost::beast::error_code& error) {
      error = {};
      return std::pair<const_buffers_type, bool>{body_.buffers(), false};
    }

   private:
    const value_type& body_;
  };
};

// Replaces `head` with the status line and the fields of `header` and the
// empty line that ends them: the bytes Beast's serializer writes before the
// body of a response that has a Content-Length (every response the API sends
// has one; prepare_payload sets it). Beast's serializer hands these bytes to
// the socket as a dozen small buffers that its composed write walks again on
// every partial write; a profile of GET /background-agents showed that
// costing more than routing the request.
void serialize_head(const boost::beast::http::response_header<>& header, std::string& head);

}  // namespace nightshift::api
