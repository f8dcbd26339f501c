#include "chat.hpp"

#include <boost/json.hpp>

namespace nightshift::llm {
namespace {

namespace json = boost::json;

constexpr std::size_t shown_bytes = 300;

std::string shorten(std::string_view text, std::size_t max = shown_bytes) {
  if (text.size() <= max) return std::string(text);
  return std::string(text.substr(0, max)) + "...";
}

json::object parse_object(std::string_view text, std::string_view what) {
  json::error_code ec;
  json::value value = json::parse(text, ec);
  if (ec || !value.is_object()) {
    throw BadAnswer("the server's " + std::string(what) +
                    " is not a JSON object: " + shorten(text) +
                    " (is baseUrl the server's OpenAI-compatible API, e.g. ending in /v1?)");
  }
  return std::move(value.get_object());
}

void throw_if_error(const json::object& object) {
  const json::value* error = object.if_contains("error");
  if (error == nullptr || error->is_null()) return;
  std::string message;
  if (error->is_object()) {
    if (const json::value* text = error->get_object().if_contains("message");
        text && text->is_string()) {
      message = std::string(text->get_string());
    }
  } else if (error->is_string()) {
    message = std::string(error->get_string());
  }
  if (message.empty()) message = json::serialize(*error);
  throw BadAnswer("the server answered with an error: " + shorten(message));
}

std::string_view string_or_empty(const json::object& object, std::string_view key) {
  const json::value* value = object.if_contains(key);
  return value != nullptr && value->is_string() ? std::string_view(value->get_string())
                                                : std::string_view();
}

std::optional<Usage> read_usage(const json::object& object) {
  const json::value* usage = object.if_contains("usage");
  if (usage == nullptr || !usage->is_object()) return std::nullopt;
  Usage out;
  const auto count = [&](std::string_view key) -> std::uint64_t {
    const json::value* value = usage->get_object().if_contains(key);
    if (value == nullptr || !value->is_number()) return 0;
    // A count past any real answer's (or past what a double holds exactly)
    // is capped: converting a larger double to an integer is undefined.
    constexpr double kMostTokens = 1e15;
    const double number = value->to_number<double>();
    if (!(number > 0)) return 0;
    return static_cast<std::uint64_t>(number < kMostTokens ? number : kMostTokens);
  };
  out.prompt = count("prompt_tokens");
  out.completion = count("completion_tokens");
  return out;
}

const json::object* first_choice(const json::object& object) {
  const json::value* choices = object.if_contains("choices");
  if (choices == nullptr || !choices->is_array() || choices->get_array().empty()) return nullptr;
  const json::value& choice = choices->get_array().front();
  return choice.is_object() ? &choice.get_object() : nullptr;
}

}  // namespace

void StreamAccumulator::apply(std::string_view data, const OnText& on_text) {
  if (data == "[DONE]") {
    done_ = true;
    return;
  }
  const json::object chunk = parse_object(data, "stream chunk");
  throw_if_error(chunk);
  if (auto usage = read_usage(chunk)) answer_.usage = usage;
  const json::object* choice = first_choice(chunk);
  if (choice == nullptr) return;  // e.g. the last chunk, with usage only
  if (const json::value* delta = choice->if_contains("delta"); delta && delta->is_object()) {
    const json::object& fields = delta->get_object();
    if (const std::string_view text = string_or_empty(fields, "content"); !text.empty()) {
      answer_.content.append(text);
      if (on_text) on_text(text);
    }
    if (const json::value* calls = fields.if_contains("tool_calls"); calls && calls->is_array()) {
      for (const json::value& call : calls->get_array()) {
        if (call.is_object()) apply_tool_call(call.get_object());
      }
    }
  }
  if (const std::string_view reason = string_or_empty(*choice, "finish_reason"); !reason.empty()) {
    answer_.finish_reason = std::string(reason);
  }
}

void StreamAccumulator::apply_tool_call(const json::object& delta) {
  std::optional<std::int64_t> index;
  if (const json::value* value = delta.if_contains("index"); value && value->is_int64()) {
    index = value->get_int64();
  } else if (value && value->is_uint64()) {
    index = static_cast<std::int64_t>(value->get_uint64());
  }
  const std::string_view id = string_or_empty(delta, "id");
  auto& calls = answer_.tool_calls;

  std::size_t target = calls.size();  // calls.size(): a new call
  if (!id.empty()) {
    for (std::size_t i = 0; i < calls.size(); ++i) {
      if (calls[i].id == id) target = i;
    }
  } else {
    for (std::size_t i = calls.size(); i-- > 0;) {
      if (indexes_[i] == index || !index) {
        target = i;
        break;
      }
    }
  }
  if (target == calls.size()) {
    calls.emplace_back();
    indexes_.push_back(index);
    calls.back().id = std::string(id);
  }
  ToolCall& call = calls[target];
  if (const json::value* function = delta.if_contains("function");
      function && function->is_object()) {
    const json::object& fields = function->get_object();
    if (const std::string_view name = string_or_empty(fields, "name");
        !name.empty() && call.name.empty()) {
      call.name = std::string(name);
    }
    if (const json::value* arguments = fields.if_contains("arguments")) {
      if (arguments->is_string()) {
        call.arguments.append(arguments->get_string());
      } else if (arguments->is_object()) {
        call.arguments.append(json::serialize(*arguments));  // some servers send an object
      }
    }
  }
}

Answer parse_answer(std::string_view body) {
  const json::object object = parse_object(body, "answer");
  throw_if_error(object);
  const json::object* choice = first_choice(object);
  if (choice == nullptr) {
    throw BadAnswer("the server's answer has no choices: " + shorten(body));
  }
  Answer out;
  out.usage = read_usage(object);
  out.finish_reason = std::string(string_or_empty(*choice, "finish_reason"));
  const json::value* message = choice->if_contains("message");
  if (message == nullptr || !message->is_object()) {
    throw BadAnswer("the server's answer has no message: " + shorten(body));
  }
  const json::object& fields = message->get_object();
  out.content = std::string(string_or_empty(fields, "content"));
  if (const json::value* calls = fields.if_contains("tool_calls"); calls && calls->is_array()) {
    for (const json::value& call : calls->get_array()) {
      if (!call.is_object()) continue;
      ToolCall tool;
      tool.id = std::string(string_or_empty(call.get_object(), "id"));
      if (const json::value* function = call.get_object().if_contains("function");
          function && function->is_object()) {
        tool.name = std::string(string_or_empty(function->get_object(), "name"));
        if (const json::value* arguments = function->get_object().if_contains("arguments")) {
          tool.arguments = arguments->is_string() ? std::string(arguments->get_string())
                                                  : json::serialize(*arguments);
        }
      }
      out.tool_calls.push_back(std::move(tool));
    }
  }
  return out;
}

std::string describe_error_body(std::string_view body) {
  json::error_code ec;
  const json::value value = json::parse(body, ec);
  if (!ec && value.is_object()) {
    try {
      throw_if_error(value.get_object());
    } catch (const BadAnswer& e) {
      constexpr std::string_view prefix = "the server answered with an error: ";
      std::string text = e.what();
      if (text.starts_with(prefix)) text.erase(0, prefix.size());
      return text;
    }
  }
  std::string text = shorten(body);
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return text;
}

json::object assistant_message(const Answer& answer) {
  json::object message;
  message["role"] = "assistant";
  if (answer.content.empty() && !answer.tool_calls.empty()) {
    message["content"] = nullptr;
  } else {
    message["content"] = answer.content;
  }
  if (!answer.tool_calls.empty()) {
    json::array calls;
    for (const ToolCall& call : answer.tool_calls) {
      calls.push_back(json::object{
          {"id", call.id},
          {"type", "function"},
          {"function", json::object{{"name", call.name}, {"arguments", call.arguments}}}});
    }
    message["tool_calls"] = std::move(calls);
  }
  return message;
}

}  // namespace nightshift::llm
