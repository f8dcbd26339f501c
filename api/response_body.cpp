#include "api/response_body.hpp"

namespace nightshift::api {

void serialize_head(const boost::beast::http::response_header<>& header, std::string& head) {
  head.clear();
  head += header.version() == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  head += std::to_string(header.result_int());
  head += ' ';
  const auto reason = header.reason();
  head.append(reason.data(), reason.size());
  head += "\r\n";
  for (const auto& field : header) {
    const auto name = field.name_string();
    const auto value = field.value();
    head.append(name.data(), name.size());
    head += ": ";
    head.append(value.data(), value.size());
    head += "\r\n";
  }
  head += "\r\n";
}

}  // namespace nightshift::api
