#include "cli/follow.hpp"

#include <algorithm>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

#include "cli/exit_codes.hpp"
#include "cli/format.hpp"

namespace nightshift::cli {
namespace json = boost::json;
namespace websocket = boost::beast::websocket;
using WebSocket = websocket::stream<boost::asio::ip::tcp::socket>;

namespace {

// A host may drop a client that falls behind (close 1013); the client then
// reconnects and resumes after the last entry it printed.
constexpr int kMaxReconnects = 5;
constexpr int kProgressBarWidth = 30;
// After a run ends its last log entries may still be on their way into the
// store; the log reports `complete` once they are all there.
constexpr int kCompleteLogAttempts = 200;
constexpr auto kCompleteLogRetryDelay = std::chrono::milliseconds(10);

Style level_style(std::string_view level) {
  if (level == "error") return Style::red;
  if (level == "warn") return Style::yellow;
  if (level == "debug" || level == "trace") return Style::dim;
  return Style::none;
}

std::uint64_t seq_of(const json::object& entry) {
  return static_cast<std::uint64_t>(int_member(entry, "seq"));
}

std::optional<double> progress_of(const json::object& run) {
  const auto* progress = run.if_contains("progress");
  if (!progress || !progress->is_number()) return std::nullopt;
  return progress->to_number<double>();
}

json::object read_message(WebSocket& socket, boost::beast::flat_buffer& buffer) {
  buffer.clear();
  socket.read(buffer);
  boost::system::error_code error;
  auto message = json::parse(boost::beast::buffers_to_string(buffer.data()), error);
  if (error || !message.is_object()) {
    throw CliError(ExitCode::error, "the host sent a WebSocket message that is not a JSON object");
  }
  return std::move(message.as_object());
}

WebSocket open_socket(ApiClient& api) {
  const auto& endpoint = api.endpoint();
  WebSocket socket(api.connection().connect_socket());
  socket.set_option(
      websocket::stream_base::decorator([&endpoint](websocket::request_type& request) {
        request.set(boost::beast::http::field::user_agent, "nightshift-cli");
        if (!endpoint.token.empty()) {
          request.set(boost::beast::http::field::authorization, "Bearer " + endpoint.token);
        }
      }));
  websocket::response_type response;
  boost::system::error_code error;
  socket.handshake(response, endpoint.host_header, endpoint.base_path + "/background-agent-ws",
                   error);
  if (response.result_int() == 401) {
    throw CliError(ExitCode::unauthorized, "the host at " + endpoint.url +
                                               " refused the token (401 unauthorized); pass "
                                               "--token or set NIGHTSHIFT_TOKEN");
  }
  if (error) {
    throw CliError(ExitCode::error, "could not open the WebSocket at " + endpoint.url +
                                        "/background-agent-ws: " + error.message());
  }
  return socket;
}

const json::object* find_run(const json::array& runs, const std::string& instance_id) {
  for (const auto& run : runs) {
    if (run.is_object() && string_member(run.as_object(), "instanceId") == instance_id) {
      return &run.as_object();
    }
  }
  return nullptr;
}

// The run has ended: prints the rest of its log and returns its final state.
json::object finish(ApiClient& api, const std::string& instance_id, LogPrinter& printer,
                    bool print_logs) {
  if (print_logs) {
    for (int attempt = 0; !print_log_pages(api, instance_id, printer); ++attempt) {
      if (attempt == kCompleteLogAttempts) break;
      std::this_thread::sleep_for(kCompleteLogRetryDelay);
    }
  }
  printer.clear_progress();
  return api.run(instance_id);
}

void close_quietly(WebSocket& socket) {
  boost::system::error_code ignored;
  socket.close(websocket::close_code::normal, ignored);
}

// One WebSocket connection's worth of following. Returns the final run, or
// nullopt when the host closed the connection before the run ended.
std::optional<json::object> follow_once(ApiClient& api, const std::string& instance_id,
                                        LogPrinter& printer, bool print_logs) {
  auto socket = open_socket(api);
  boost::beast::flat_buffer buffer;
  try {
    const auto snapshot = read_message(socket, buffer);
    const auto* active = snapshot.contains("active") && snapshot.at("active").is_array()
                             ? find_run(snapshot.at("active").as_array(), instance_id)
                             : nullptr;
    if (!active) {  // ended before we connected (or unknown: finish says so)
      close_quietly(socket);
      return finish(api, instance_id, printer, print_logs);
    }
    if (auto progress = progress_of(*active)) printer.show_progress(*progress);
    if (print_logs) {
      socket.write(boost::asio::buffer(json::serialize(json::object{
          {"type", "subscribe"}, {"instanceId", instance_id}, {"after", printer.last_seq()}})));
    }
    while (true) {
      const auto message = read_message(socket, buffer);
      const auto type = string_member(message, "type");
      if (type == "logs" && string_member(message, "instanceId") == instance_id) {
        for (const auto& entry : message.at("entries").as_array()) printer.print(entry.as_object());
      } else if (type == "run") {
        const auto& run = message.at("run").as_object();
        if (string_member(run, "instanceId") != instance_id) continue;
        if (string_member(message, "event") == "deleted") {
          throw CliError(ExitCode::run_not_found, "run " + instance_id + " was removed");
        }
        if (auto progress = progress_of(run)) printer.show_progress(*progress);
        if (is_terminal_status(string_member(run, "status"))) {
          close_quietly(socket);
          return finish(api, instance_id, printer, print_logs);
        }
      } else if (type == "error" && string_member(message, "code") == "run_not_found") {
        throw CliError(ExitCode::run_not_found, "no run with id '" + instance_id + "'");
      }
    }
  } catch (const boost::system::system_error&) {
    return std::nullopt;  // the host closed the connection; the caller reconnects
  }
}

}  // namespace

LogPrinter::LogPrinter(bool json_lines, bool colour, bool progress_bar)
    : json_lines_(json_lines), colour_(colour), progress_bar_(progress_bar) {}

LogPrinter::~LogPrinter() {
  clear_progress();
}

std::uint64_t LogPrinter::print(const json::object& entry) {
  const auto seq = seq_of(entry);
  if (seq != 0 && seq <= last_seq_) return last_seq_;
  const bool redraw = bar_visible_;
  clear_progress();
  if (json_lines_) {
    std::cout << json::serialize(entry) << '\n';
  } else {
    const auto when = parse_timestamp(string_member(entry, "ts"));
    const auto level = string_member(entry, "level");
    std::string padded_level = level;
    padded_level.resize(std::max<std::size_t>(level.size(), 5), ' ');
    std::cout << paint(when ? format_clock(*when) : "", Style::dim, colour_) << ' '
              << paint(padded_level, level_style(level), colour_) << ' '
              << string_member(entry, "message") << '\n';
  }
  std::cout.flush();
  if (redraw && progress_) show_progress(*progress_);
  last_seq_ = std::max(last_seq_, seq);
  return last_seq_;
}

void LogPrinter::show_progress(double fraction) {
  progress_ = std::clamp(fraction, 0.0, 1.0);
  if (!progress_bar_) return;
  const int filled = static_cast<int>(*progress_ * kProgressBarWidth + 0.5);
  std::fprintf(stderr, "\r\033[K[%s%s] %3d%%", std::string(filled, '#').c_str(),
               std::string(kProgressBarWidth - filled, '-').c_str(),
               static_cast<int>(*progress_ * 100 + 0.5));
  std::fflush(stderr);
  bar_visible_ = true;
}

void LogPrinter::clear_progress() {
  if (!bar_visible_) return;
  std::fputs("\r\033[K", stderr);
  std::fflush(stderr);
  bar_visible_ = false;
}

bool print_log_pages(ApiClient& api, const std::string& instance_id, LogPrinter& printer) {
  while (true) {
    const auto page = api.logs_page(instance_id, printer.last_seq());
    const auto& entries = page.at("entries").as_array();
    for (const auto& entry : entries) printer.print(entry.as_object());
    const auto* complete = page.if_contains("complete");
    if (complete && complete->is_bool() && complete->as_bool()) return true;
    if (entries.empty()) return false;
  }
}

json::object follow_run(ApiClient& api, const std::string& instance_id, LogPrinter& printer,
                        bool print_logs) {
  for (int attempt = 0;; ++attempt) {
    if (auto run = follow_once(api, instance_id, printer, print_logs)) return std::move(*run);
    if (attempt == kMaxReconnects) {
      throw CliError(ExitCode::error,
                     "lost the WebSocket connection to " + api.endpoint().url + " repeatedly");
    }
  }
}

int exit_code_for_outcome(const json::object& run) {
  const auto status = string_member(run, "status");
  if (status == "completed") return static_cast<int>(ExitCode::ok);
  if (status == "cancelled") return static_cast<int>(ExitCode::run_cancelled);
  return static_cast<int>(ExitCode::run_failed);
}

}  // namespace nightshift::cli
