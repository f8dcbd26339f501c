// The API's response body and head: a shared middle sent without a copy and
// kept alive by the response, Content-Length from the three parts, and a
// head written byte for byte as Beast's own serializer writes it.
#include "api/response_body.hpp"

#include <gtest/gtest.h>

#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <sstream>

namespace nightshift::api {
namespace {

namespace http = boost::beast::http;

using Response = http::response<ResponseBody>;

// What Beast's serializer writes for the same message with a string body.
std::string beast_serialized(const http::response_header<>& header, const std::string& body) {
  http::response<http::string_body> reference(header);
  reference.body() = body;
  reference.prepare_payload();
  std::ostringstream out;
  out << reference;
  return out.str();
}

std::string gathered(const Response& response) {
  std::string head;
  serialize_head(response, head);
  return head + response.body().str();
}

TEST(ResponseBody, TheSharedMiddleIsSentInPlaceAndKeptAliveByTheResponse) {
  auto page = std::make_shared<std::string>("[1,2,3]");
  const char* const middle = page->data();
  Response response{http::status::ok, 11};
  response.body() = ResponseBody::value_type("{\"a\":", page, *page, "}");
  page.reset();  // the response now holds the only reference
  response.prepare_payload();
  EXPECT_EQ(response[http::field::content_length], "13");
  const auto buffers = response.body().buffers();
  EXPECT_EQ(buffers[1].data(), middle);  // not copied
  EXPECT_EQ(response.body().str(), "{\"a\":[1,2,3]}");
}

TEST(ResponseBody, ABodyOfTextAloneIsThatText) {
  Response response{http::status::not_found, 11};
  response.body() = std::string("{\"error\":{}}");
  response.prepare_payload();
  EXPECT_EQ(response.body().str(), "{\"error\":{}}");
  EXPECT_EQ(response[http::field::content_length], "12");
  EXPECT_EQ(response.body().buffers()[1].size(), 0u);
  EXPECT_EQ(response.body().buffers()[2].size(), 0u);
}

TEST(ResponseBody, BeastSerializesItAsItSerializesAStringBody) {
  auto page = std::make_shared<const std::string>("[{\"x\":1}]");
  Response response{http::status::ok, 11};
  response.set(http::field::content_type, "application/json");
  response.body() = ResponseBody::value_type("{\"h\":", page, *page, "}");
  response.prepare_payload();
  std::ostringstream out;
  out << response;
  EXPECT_EQ(out.str(), beast_serialized(response, "{\"h\":[{\"x\":1}]}"));
}

TEST(ResponseHead, IsWhatBeastsSerializerWritesForEveryKindOfResponse) {
  struct Case {
    http::status status;
    unsigned version;
    bool keep_alive;
    std::string body;
  };
  const std::vector<Case> cases{
      {http::status::ok, 11, true, "{}"},
      {http::status::created, 11, true, "{\"instanceId\":\"x\"}"},
      {http::status::unauthorized, 11, false, "{\"error\":{}}"},
      {http::status::too_many_requests, 10, false, ""},
      {http::status::ok, 10, true, "[]"},
      {http::status::service_unavailable, 11, false, std::string(70000, 'x')},
  };
  for (const Case& c : cases) {
    Response response{c.status, c.version};
    response.keep_alive(c.keep_alive);
    response.set(http::field::content_type, "application/json");
    response.set(http::field::www_authenticate, "Bearer");
    response.set(http::field::retry_after, "1");
    response.set(http::field::server, "nightshift");
    response.body() = c.body;
    response.prepare_payload();
    EXPECT_EQ(gathered(response), beast_serialized(response, c.body))
        << "status " << response.result_int() << ", HTTP/" << c.version;
  }
}

TEST(ResponseHead, ReplacesWhatTheStringHeldBefore) {
  Response response{http::status::no_content, 11};
  response.prepare_payload();
  std::string head = "left over from the last response on this connection";
  serialize_head(response, head);
  EXPECT_EQ(head.rfind("HTTP/1.1 204 No Content\r\n", 0), 0u);
  EXPECT_EQ(head.substr(head.size() - 4), "\r\n\r\n");
}

}  // namespace
}  // namespace nightshift::api
