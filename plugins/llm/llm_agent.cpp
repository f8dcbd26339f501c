// installed:llm: works on the task by talking to a language model through
// the OpenAI-compatible chat completions API, with tools in the workspace.
//
// The remix's instructions become the system prompt (after a short preamble
// about the tools and the workspace) and the task the first user message.
// Each turn is one model call; the tool calls of an answer run in order and
// their results join the conversation; the run ends when the model answers
// without calling a tool (its answer is the summary), when a stop is asked,
// or when a limit is reached (maxTurns, maxTokens), which fails the run.
#include <time.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <nightshift/agent.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chat.hpp"
#include "http_client.hpp"
#include "settings.hpp"
#include "sse_parser.hpp"
#include "tools.hpp"

namespace nightshift::llm {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

// The largest non-streamed answer body taken.
constexpr std::size_t max_answer_bytes = 64 * 1024 * 1024;
// The longest model line logged as one entry; longer ones are split.
constexpr std::size_t max_log_line_bytes = 4096;
constexpr std::chrono::milliseconds max_backoff = 60s;

std::string seconds_text(std::chrono::milliseconds duration) {
  const double seconds = static_cast<double>(duration.count()) / 1000.0;
  char text[32];
  std::snprintf(text, sizeof text, seconds < 10 ? "%.1f" : "%.0f", seconds);
  return text;
}

// Replaces every occurrence of the key in text that came from the server
// (some servers quote the key they refused).
std::string redact(std::string text, const std::string& key) {
  if (key.size() < 4) return text;
  for (std::size_t at = text.find(key); at != std::string::npos; at = text.find(key, at)) {
    text.replace(at, key.size(), "[redacted]");
  }
  return text;
}

// The model's text, logged a line at a time as it streams (without the key,
// should the model ever write it).
class LineLog {
 public:
  LineLog(const RunContext& ctx, const std::string& key) : ctx_(ctx), key_(key) {}
  void feed(std::string_view text) {
    while (!text.empty()) {
      const std::size_t newline = text.find('\n');
      pending_.append(text.substr(0, newline));
      while (pending_.size() > max_log_line_bytes) {
        std::size_t cut = max_log_line_bytes;
        while (cut > 0 && (static_cast<unsigned char>(pending_[cut]) & 0xC0) == 0x80) --cut;
        ctx_.info(redact(pending_.substr(0, cut), key_));
        pending_.erase(0, cut);
      }
      if (newline == std::string_view::npos) return;
      emit();
      text.remove_prefix(newline + 1);
    }
  }
  void flush() { emit(); }
  void discard() { pending_.clear(); }

 private:
  void emit() {
    if (!pending_.empty() && pending_.back() == '\r') pending_.pop_back();
    if (pending_.find_first_not_of(" \t") != std::string::npos) ctx_.info(redact(pending_, key_));
    pending_.clear();
  }
  const RunContext& ctx_;
  const std::string& key_;
  std::string pending_;
};

// `{"path": "src/main.cpp"}`: the arguments as a log line, long strings cut.
std::string describe_arguments(std::string_view arguments) {
  json::error_code ec;
  const json::value value = json::parse(arguments, ec);
  if (ec || !value.is_object()) {
    std::string raw(arguments.substr(0, 200));
    return arguments.size() > 200 ? raw + "..." : raw;
  }
  std::string out = "{";
  bool first = true;
  for (const auto& [key, field] : value.get_object()) {
    if (!first) out += ", ";
    first = false;
    out += json::serialize(json::string(key)) + ": ";
    if (field.is_string() && field.get_string().size() > 120) {
      const std::string_view text = field.get_string();
      std::size_t cut = 80;
      while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
      out += json::serialize(json::string(text.substr(0, cut))) + "... (" +
             std::to_string(text.size()) + " bytes)";
    } else {
      std::string text = json::serialize(field);
      if (text.size() > 200) text = text.substr(0, 200) + "...";
      out += text;
    }
  }
  return out + "}";
}

// Retry-After: delay-seconds or an HTTP-date.
std::optional<std::chrono::milliseconds> parse_retry_after(const std::string& value) {
  if (value.empty()) return std::nullopt;
  char* end = nullptr;
  const double seconds = std::strtod(value.c_str(), &end);
  if (end != value.c_str() && *end == '\0') {
    if (!(seconds >= 0)) return std::nullopt;
    return std::chrono::milliseconds(static_cast<std::int64_t>(std::min(seconds, 1e6) * 1000));
  }
  std::tm tm{};
  if (::strptime(value.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm) == nullptr) return std::nullopt;
  const auto at = std::chrono::system_clock::from_time_t(::timegm(&tm));
  const auto wait = at - std::chrono::system_clock::now();
  return std::max(std::chrono::milliseconds(0),
                  std::chrono::duration_cast<std::chrono::milliseconds>(wait));
}

std::string preamble(const Tools& tools) {
  std::string list;
  for (const std::string& tool : tools.enabled()) list += (list.empty() ? "" : ", ") + tool;
  std::string text = "You are an agent working on a task in a workspace: the directory " +
                     tools.root().string() + ". ";
  if (list.empty()) {
    text += "You have no tools in this run: answer from what you are told. ";
  } else {
    text += "You act on it through these tools: " + list +
            ". Every path you give a tool is relative to the workspace; a path that leads out of "
            "it is refused. A tool's error comes back as its result: read it and correct "
            "yourself. ";
  }
  if (!tools.is_enabled("write_file") && !tools.is_enabled("edit_file")) {
    text += "You cannot change files in this run. ";
  }
  text +=
      "Work step by step: look before you change anything, and check your work when you can. "
      "When you are done, answer without calling a tool, with a short plain account of what you "
      "found or did: that answer is the run's summary.";
  return text;
}

enum class Finish { stop, max_turns, max_tokens, cancelled };

std::string_view finish_name(Finish finish) {
  switch (finish) {
    case Finish::stop:
      return "stop";
    case Finish::max_turns:
      return "max_turns";
    case Finish::max_tokens:
      return "max_tokens";
    case Finish::cancelled:
      return "cancelled";
  }
  return "stop";
}

class Conversation {
 public:
  Conversation(RunContext& ctx, Settings settings)
      : ctx_(ctx),
        settings_(std::move(settings)),
        client_(parse_endpoint(settings_.base_url), [this] { return ctx_.cancelled(); }),
        tools_(workspace(ctx), settings_.tools, std::string(ctx.instance_id()),
               [this] { return ctx_.cancelled(); }, {settings_.api_key_env}) {}

  void run() {
    std::string tool_list;
    for (const std::string& tool : tools_.enabled()) {
      tool_list += (tool_list.empty() ? "" : ", ") + tool;
    }
    ctx_.info("model " + settings_.model + " at " + client_.endpoint().display +
              "; tools: " + (tool_list.empty() ? "none" : tool_list));
    if (settings_.api_key.empty()) {
      ctx_.debug("no key in $" + settings_.api_key_env + ": sending no Authorization header");
    }
    std::string system = preamble(tools_);
    if (!settings_.instructions.empty()) system += "\n\n" + settings_.instructions;
    messages_.push_back(json::object{{"role", "system"}, {"content", system}});
    std::string task = ctx_.task();
    if (task.find_first_not_of(" \t\r\n") == std::string::npos) {
      if (settings_.instructions.empty()) {
        ctx_.fail("nothing to do: give the run a task (what the model should do)");
      }
      task = "Do what your instructions say.";
    }
    messages_.push_back(json::object{{"role", "user"}, {"content", task}});
    const Finish finish = converse();
    finish_with(finish);
  }

 private:
  static Endpoint parse_endpoint(const std::string& url) {
    try {
      return Endpoint::parse(url);
    } catch (const std::invalid_argument& e) {
      throw AgentFailure(e.what());
    }
  }
  static std::filesystem::path workspace(const RunContext& ctx) {
    const std::string path = ctx.workspace();
    return path.empty() ? std::filesystem::current_path() : std::filesystem::path(path);
  }

  Finish converse() {
    while (true) {
      if (ctx_.cancelled()) return Finish::cancelled;
      take_messages();
      if (turns_ >= settings_.max_turns) return Finish::max_turns;
      if (prompt_tokens_ + completion_tokens_ >= settings_.max_tokens) return Finish::max_tokens;
      std::optional<Answer> answer = ask();
      if (!answer) return Finish::cancelled;
      ++turns_;
      account_usage(*answer);
      ctx_.progress(static_cast<double>(turns_) / static_cast<double>(settings_.max_turns));
      for (std::size_t i = 0; i < answer->tool_calls.size(); ++i) {
        ToolCall& call = answer->tool_calls[i];
        if (call.id.empty()) call.id = "call_" + std::to_string(turns_) + "_" + std::to_string(i);
      }
      messages_.push_back(assistant_message(*answer));
      if (!answer->content.empty()) summary_ = redact(answer->content, settings_.api_key);
      if (answer->tool_calls.empty()) {
        // A message that came while the model was answering is answered too.
        if (take_messages() > 0) continue;
        return Finish::stop;
      }
      if (prompt_tokens_ + completion_tokens_ >= settings_.max_tokens) return Finish::max_tokens;
      if (turns_ >= settings_.max_turns) return Finish::max_turns;
      for (const ToolCall& call : answer->tool_calls) {
        if (ctx_.cancelled()) return Finish::cancelled;
        run_tool(call);
      }
    }
  }

  // Adds the messages sent to the run since the last model call.
  std::size_t take_messages() {
    if (!ctx_.host_supports(RunContext::Feature::messages)) return 0;
    std::size_t taken = 0;
    while (std::optional<std::string> message = ctx_.next_message(0ms)) {
      messages_.push_back(json::object{{"role", "user"}, {"content", *message}});
      ++taken;
    }
    return taken;
  }

  void account_usage(const Answer& answer) {
    if (!answer.usage) {
      if (!warned_no_usage_) {
        warned_no_usage_ = true;
        ctx_.warn("the server reports no token usage: maxTokens cannot be enforced");
      }
      return;
    }
    prompt_tokens_ += answer.usage->prompt;
    completion_tokens_ += answer.usage->completion;
    ctx_.report_usage(answer.usage->prompt, answer.usage->completion);
    ctx_.debug("turn " + std::to_string(turns_) + ": " + std::to_string(answer.usage->prompt) +
               " prompt + " + std::to_string(answer.usage->completion) + " completion tokens");
  }

  void run_tool(const ToolCall& call) {
    ctx_.info(
        redact("tool " + call.name + " " + describe_arguments(call.arguments), settings_.api_key));
    const ToolOutcome outcome = tools_.call(call.name, call.arguments);
    const std::string account = call.name + " -> " + outcome.account;
    if (outcome.error) {
      ctx_.warn(account);
    } else {
      ctx_.info(account);
    }
    messages_.push_back(
        json::object{{"role", "tool"}, {"tool_call_id", call.id}, {"content", outcome.content}});
  }

  std::string request_body() const {
    json::object body{
        {"model", settings_.model}, {"messages", messages_}, {"stream", settings_.stream}};
    if (settings_.stream) body["stream_options"] = json::object{{"include_usage", true}};
    if (!tools_.enabled().empty()) {
      body["tools"] = tools_.definitions();
      body["tool_choice"] = "auto";
    }
    if (settings_.temperature) body["temperature"] = *settings_.temperature;
    return json::serialize(body);
  }

  // One model call, retried as the settings allow; nullopt after a stop.
  std::optional<Answer> ask() {
    const std::string body = request_body();
    std::vector<HttpHeader> headers;
    if (!settings_.api_key.empty()) {
      headers.push_back({"Authorization", "Bearer " + settings_.api_key});
    }
    headers.push_back(
        {"Accept", settings_.stream ? "text/event-stream, application/json" : "application/json"});
    const std::string target = client_.endpoint().base_path + "/chat/completions";
    const std::string& where = client_.endpoint().display;

    for (unsigned attempt = 1;; ++attempt) {
      if (ctx_.cancelled()) return std::nullopt;
      StreamAccumulator stream;
      SseParser sse;
      LineLog text_log(ctx_, settings_.api_key);
      bool event_stream = false;
      std::string whole;
      const auto on_event = [&](std::string_view data) {
        stream.apply(data, [&](std::string_view text) { text_log.feed(text); });
      };
      HttpResult result;
      try {
        result = client_.post(
            target, body, headers, settings_.request_timeout,
            [&](const HttpResult& header) {
              event_stream = header.content_type.starts_with("text/event-stream");
            },
            [&](std::string_view piece) {
              if (event_stream) {
                sse.feed(piece, on_event);
              } else if (whole.size() + piece.size() > max_answer_bytes) {
                throw BadAnswer("the server's answer is larger than " +
                                std::to_string(max_answer_bytes) + " bytes");
              } else {
                whole.append(piece);
              }
            });
        if (result.failure == HttpFailure::none && result.status / 100 == 2) {
          if (!event_stream) {
            Answer answer = parse_answer(whole);
            text_log.feed(answer.content);
            text_log.flush();
            return answer;
          }
          sse.finish(on_event);
          if (stream.done() || stream.finished()) {
            text_log.flush();
            return stream.take();
          }
          text_log.discard();
          result.failure = HttpFailure::dropped;
          result.failure_text = "the stream ended before the answer was complete";
        }
      } catch (const BadAnswer& e) {
        ctx_.fail(redact(e.what(), settings_.api_key) + " (from " + where + ")");
      } catch (const std::length_error& e) {
        ctx_.fail(std::string(e.what()) + " (from " + where + ")");
      }
      if (result.failure == HttpFailure::cancelled) return std::nullopt;

      std::string what;
      bool retryable = true;
      switch (result.failure) {
        case HttpFailure::none:
          what = "the model server at " + where + " answered HTTP " +
                 std::to_string(result.status) + ": " +
                 redact(describe_error_body(result.body), settings_.api_key);
          retryable = result.status == 429 || result.status == 408 || result.status >= 500;
          break;
        case HttpFailure::connect_failed:
          what = "cannot reach the model server at " + where + ": " + result.failure_text;
          break;
        case HttpFailure::tls_failed:
          what = "cannot talk to the model server at " + where + ": " + result.failure_text;
          retryable = false;
          break;
        case HttpFailure::timed_out:
          what = "the model server at " + where + " gave no complete answer within " +
                 seconds_text(settings_.request_timeout) +
                 " s (NIGHTSHIFT_LLM_REQUEST_TIMEOUT sets this)";
          break;
        case HttpFailure::dropped:
          what =
              "the connection to the model server at " + where + " failed: " + result.failure_text;
          break;
        case HttpFailure::cancelled:
          break;
      }
      if (!retryable) {
        if (result.status == 401 || result.status == 403) {
          what += " (is the key in $" + settings_.api_key_env + " right?)";
        } else if (result.status == 404) {
          what += " (is baseUrl right, e.g. ending in /v1, and does the server have the model " +
                  settings_.model + "?)";
        }
        ctx_.fail(what);
      }
      if (attempt >= settings_.attempts) {
        ctx_.fail(what + " (gave up after " + std::to_string(attempt) +
                  (attempt == 1 ? " attempt)" : " attempts)"));
      }
      std::chrono::milliseconds delay = settings_.first_retry_delay;
      for (unsigned i = 1; i < attempt && delay < max_backoff; ++i) delay *= 2;
      delay = std::min(delay, max_backoff);
      if (const auto asked = parse_retry_after(result.retry_after)) {
        delay = std::min(*asked, settings_.max_retry_delay);
      }
      ctx_.warn(what + "; trying again in " + seconds_text(delay) + " s (attempt " +
                std::to_string(attempt + 1) + " of " + std::to_string(settings_.attempts) + ")");
      if (!ctx_.sleep_for(delay)) return std::nullopt;
    }
  }

  void finish_with(Finish finish) {
    json::array changed;
    for (const std::string& path : tools_.files_changed()) changed.emplace_back(path);
    json::object result{{"summary", summary_},
                        {"finishReason", finish_name(finish)},
                        {"turns", turns_},
                        {"usage", json::object{{"promptTokens", prompt_tokens_},
                                               {"completionTokens", completion_tokens_}}},
                        {"filesChanged", std::move(changed)}};
    ctx_.set_result_json(json::serialize(result));
    const std::string totals = std::to_string(turns_) + (turns_ == 1 ? " turn, " : " turns, ") +
                               std::to_string(prompt_tokens_) + " prompt + " +
                               std::to_string(completion_tokens_) + " completion tokens";
    switch (finish) {
      case Finish::stop:
        ctx_.info("done: " + totals);
        return;
      case Finish::cancelled:
        ctx_.info("stopped: " + totals);
        return;
      case Finish::max_turns:
        ctx_.fail("reached its turn limit of " + std::to_string(settings_.max_turns) + " (" +
                  totals + ")");
      case Finish::max_tokens:
        ctx_.fail("exceeded its token budget of " + std::to_string(settings_.max_tokens) + " (" +
                  totals + ")");
    }
  }

  RunContext& ctx_;
  Settings settings_;
  HttpClient client_;
  Tools tools_;
  json::array messages_;
  std::uint64_t turns_ = 0;
  std::uint64_t prompt_tokens_ = 0;
  std::uint64_t completion_tokens_ = 0;
  std::string summary_;
  bool warned_no_usage_ = false;
};

class LlmAgent : public Agent {
 public:
  void run(RunContext& ctx) override {
    Settings settings;
    try {
      settings = parse_settings(ctx.params_json());
    } catch (const std::invalid_argument& e) {
      ctx.fail(e.what());
    }
    Conversation conversation(ctx, std::move(settings));
    conversation.run();
  }
};

}  // namespace
}  // namespace nightshift::llm

NIGHTSHIFT_AGENT(nightshift::llm::LlmAgent)
