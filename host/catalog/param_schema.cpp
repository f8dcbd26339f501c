#include "catalog/param_schema.hpp"

#include <array>
#include <boost/json/serialize.hpp>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

namespace nightshift {

namespace json = boost::json;

namespace {

constexpr std::array<std::string_view, 6> known_types = {"string",  "number", "integer",
                                                         "boolean", "object", "array"};

// A double that an integer param can take without losing anything.
bool is_integral(double number) {
  constexpr double limit = 9007199254740992.0;  // 2^53: beyond it doubles skip integers
  return std::isfinite(number) && std::trunc(number) == number && std::fabs(number) <= limit;
}

std::string_view kind_of(const json::value& value) {
  switch (value.kind()) {
    case json::kind::null:
      return "null";
    case json::kind::bool_:
      return "a boolean";
    case json::kind::int64:
    case json::kind::uint64:
      return "an integer";
    case json::kind::double_:
      return "a number";
    case json::kind::string:
      return "a string";
    case json::kind::array:
      return "an array";
    case json::kind::object:
      return "an object";
  }
  return "unknown";
}

bool fits_type(std::string_view type, const json::value& value) {
  if (type == "string") return value.is_string();
  if (type == "number") return value.is_number();
  if (type == "integer") {
    return value.is_int64() || value.is_uint64() ||
           (value.is_double() && is_integral(value.get_double()));
  }
  if (type == "boolean") return value.is_bool();
  if (type == "object") return value.is_object();
  if (type == "array") return value.is_array();
  return false;
}

bool numerically_equal(const json::value& a, const json::value& b) {
  if (!a.is_number() || !b.is_number()) return false;
  return a.to_number<double>() == b.to_number<double>();
}

// True when `value` is one of `choices` (numbers compare by value, so 2 and
// 2.0 are the same choice).
bool is_one_of(const json::array& choices, const json::value& value) {
  for (const json::value& choice : choices) {
    if (choice == value || numerically_equal(choice, value)) return true;
  }
  return false;
}

std::string type_of(const json::object& spec) {
  const json::value* type = spec.if_contains("type");
  return type != nullptr && type->is_string() ? std::string(type->get_string()) : std::string();
}

// Why `value` does not fit `spec`, or nothing. `spec` is well formed.
std::optional<std::string> check_value(std::string_view name, const json::object& spec,
                                       json::value& value) {
  const std::string type = type_of(spec);
  if (type == "integer" && value.is_double() && std::isfinite(value.get_double()) &&
      std::trunc(value.get_double()) == value.get_double() && !is_integral(value.get_double())) {
    return "param '" + std::string(name) +
           "' is an integer too large to carry exactly (beyond 2^53 it was read as an inexact "
           "number, " +
           json::serialize(value) + ")";
  }
  if (!fits_type(type, value)) {
    const bool article_an = type == "integer" || type == "object" || type == "array";
    return "param '" + std::string(name) + "' must be " + (article_an ? "an " : "a ") + type +
           ", not " + std::string(kind_of(value));
  }
  if (type == "integer" && value.is_double()) value = static_cast<std::int64_t>(value.get_double());
  if (const json::value* choices = spec.if_contains("enum")) {
    if (!is_one_of(choices->get_array(), value)) {
      return "param '" + std::string(name) + "' must be one of " +
             json::serialize(choices->get_array()) + ", not " + json::serialize(value);
    }
  }
  return std::nullopt;
}

std::optional<std::string> check_spec(std::string_view name, const json::value& spec_value) {
  const std::string where = "param '" + std::string(name) + "'";
  if (!spec_value.is_object()) return where + ": its spec must be an object";
  const json::object& spec = spec_value.get_object();
  const std::string type = type_of(spec);
  bool known = false;
  for (std::string_view candidate : known_types) known = known || candidate == type;
  if (!known) {
    return where + ": \"type\" must be one of string, number, integer, boolean, object, array";
  }
  if (name == instructions_param && type != "string") {
    return where + ": \"instructions\" is always a string";
  }
  if (const json::value* text = spec.if_contains("description"); text && !text->is_string()) {
    return where + ": \"description\" must be a string";
  }
  if (const json::value* flag = spec.if_contains("required"); flag && !flag->is_bool()) {
    return where + ": \"required\" must be true or false";
  }
  if (const json::value* choices = spec.if_contains("enum")) {
    if (!choices->is_array() || choices->get_array().empty()) {
      return where + ": \"enum\" must be a non-empty array";
    }
    for (const json::value& choice : choices->get_array()) {
      if (!fits_type(type, choice)) return where + ": an \"enum\" value is not a " + type;
    }
  }
  if (const json::value* fallback = spec.if_contains("default")) {
    json::value copy = *fallback;
    if (auto why = check_value(name, spec, copy)) return "the default of " + *why;
  }
  return std::nullopt;
}

bool is_plain_name(std::string_view key) {
  if (key.empty()) return false;
  for (char c : key) {
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '-';
    if (!letter && !(c >= '0' && c <= '9')) return false;
  }
  return !(key.front() >= '0' && key.front() <= '9');
}

}  // namespace

std::string member_path(std::string_view path, std::string_view key) {
  if (is_plain_name(key)) return std::string(path) + "." + std::string(key);
  return std::string(path) + "[" + json::serialize(json::string(key)) + "]";
}

std::optional<std::string> find_non_finite_number(const json::value& value, std::string_view path) {
  std::vector<std::pair<const json::value*, std::string>> pending;
  pending.emplace_back(&value, std::string(path));
  while (!pending.empty()) {
    auto [current, where] = std::move(pending.back());
    pending.pop_back();
    if (current->is_double() && !std::isfinite(current->get_double())) {
      return where + " is not a finite number";
    }
    // Pushed in reverse, so the first member found is the first written.
    if (const json::object* object = current->if_object()) {
      for (auto it = object->end(); it != object->begin();) {
        --it;
        pending.emplace_back(&it->value(), member_path(where, it->key()));
      }
    } else if (const json::array* array = current->if_array()) {
      for (std::size_t i = array->size(); i-- > 0;) {
        pending.emplace_back(&(*array)[i], where + "[" + std::to_string(i) + "]");
      }
    }
  }
  return std::nullopt;
}

std::optional<std::string> check_schema(const json::object& schema) {
  for (const auto& [name, spec] : schema) {
    if (auto why = find_non_finite_number(spec, member_path("params", name))) return why;
    if (auto why = check_spec(name, spec)) return why;
  }
  return std::nullopt;
}

json::object schema_defaults(const json::object& schema) {
  json::object defaults;
  for (const auto& [name, spec] : schema) {
    if (!spec.is_object()) continue;
    if (const json::value* fallback = spec.get_object().if_contains("default")) {
      defaults[name] = *fallback;
    }
  }
  if (!defaults.contains(instructions_param)) defaults[instructions_param] = "";
  return defaults;
}

void merge_params(json::object& target, const json::object& overrides) {
  for (const auto& [name, value] : overrides) {
    json::value* existing = target.if_contains(name);
    if (existing != nullptr && existing->is_object() && value.is_object()) {
      merge_params(existing->get_object(), value.get_object());
    } else {
      target[name] = value;
    }
  }
}

std::optional<std::string> find_unknown_param(const json::object& schema,
                                              const json::object& params) {
  for (const auto& [name, value] : params) {
    if (name != instructions_param && !schema.contains(name)) return std::string(name);
  }
  return std::nullopt;
}

std::optional<std::string> check_param_values(const json::object& schema, json::object& params) {
  if (auto why = find_non_finite_number(params, "params")) return why;
  for (auto& [name, value] : params) {
    const json::value* spec = schema.if_contains(name);
    if (spec != nullptr && spec->is_object()) {
      if (auto why = check_value(name, spec->get_object(), value)) return why;
    } else if (name == instructions_param && !value.is_string()) {
      return "param 'instructions' must be a string, not " + std::string(kind_of(value));
    }
  }
  return std::nullopt;
}

std::optional<std::string> check_start_params(const json::object& schema, json::object& params) {
  if (auto why = check_param_values(schema, params)) return why;
  for (const auto& [name, spec] : schema) {
    const json::value* required =
        spec.is_object() ? spec.get_object().if_contains("required") : nullptr;
    if (required != nullptr && required->is_bool() && required->get_bool() &&
        !params.contains(name)) {
      return "param '" + std::string(name) + "' is required";
    }
  }
  return std::nullopt;
}

std::string accepted_params(const json::object& schema) {
  std::string list;
  for (const auto& [name, spec] : schema) {
    if (name == instructions_param) continue;
    list += std::string(name) + ", ";
  }
  return list + std::string(instructions_param);
}

}  // namespace nightshift
