// Maps a method and a path to a handler. Patterns are paths whose segments are
// either literal or a `{name}` placeholder that matches any one non-empty
// segment, e.g. "/background-agents/{instanceId}/logs". A literal segment wins
// over a placeholder, so "/background-agents/start" is not an instance id.
//
// Built once before the server starts, then only read: safe to share between
// the I/O threads.
#pragma once

#include <algorithm>
#include <boost/beast/http/verb.hpp>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace nightshift::api {

// Who may call a route: anyone, or only a client that shows the token (in the
// Authorization header, or for the WebSocket also as `?token=`).
enum class Access { open, token, token_or_query };

struct RouteSpec {
  boost::beast::http::verb method;
  std::string pattern;
  Access access = Access::token;
};

template <class Handler>
class Router {
 public:
  struct Route {
    RouteSpec spec;
    std::vector<std::string> segments;  // the pattern split on '/'
    Handler handler;
  };

  enum class Outcome { matched, not_found, method_not_allowed };

  struct Match {
    Outcome outcome = Outcome::not_found;
    const Route* route = nullptr;       // when matched
    std::vector<std::string> captures;  // the placeholder segments, in order
    Access access = Access::token;      // of the path, also when the method is wrong
    std::string allow;                  // when method_not_allowed: the Allow header value
  };

  void add(RouteSpec spec, Handler handler) {
    routes_.push_back(Route{spec, split(spec.pattern), std::move(handler)});
  }

  // `segments`: the request path's decoded segments ("/" has none).
  Match match(boost::beast::http::verb method, const std::vector<std::string>& segments) const {
    Match result;
    int best_score = -1;
    std::vector<std::string> allowed;
    for (const Route& route : routes_) {
      std::vector<std::string> captures;
      const int score = literal_score(route.segments, segments, captures);
      if (score < 0) continue;
      result.access = route.spec.access;
      if (route.spec.method != method) {
        const std::string name(boost::beast::http::to_string(route.spec.method));
        if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
          allowed.push_back(name);
        }
        continue;
      }
      if (score > best_score) {
        best_score = score;
        result.outcome = Outcome::matched;
        result.route = &route;
        result.captures = std::move(captures);
      }
    }
    if (result.outcome == Outcome::matched) {
      result.access = result.route->spec.access;
    } else if (!allowed.empty()) {
      result.outcome = Outcome::method_not_allowed;
      for (const std::string& name : allowed) {
        result.allow += (result.allow.empty() ? "" : ", ") + name;
      }
    }
    return result;
  }

  // Every route, for the test that holds api/openapi.yaml to the router.
  std::vector<RouteSpec> routes() const {
    std::vector<RouteSpec> specs;
    for (const Route& route : routes_) specs.push_back(route.spec);
    return specs;
  }

  static std::vector<std::string> split(std::string_view path) {
    std::vector<std::string> segments;
    std::size_t pos = 0;
    if (!path.empty() && path.front() == '/') pos = 1;
    if (pos >= path.size()) return segments;
    while (true) {
      const std::size_t slash = path.find('/', pos);
      segments.emplace_back(
          path.substr(pos, slash == std::string_view::npos ? slash : slash - pos));
      if (slash == std::string_view::npos) break;
      pos = slash + 1;
    }
    return segments;
  }

 private:
  static bool is_placeholder(const std::string& segment) {
    return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
  }

  // -1 when the path does not fit the pattern, else how many literal segments
  // it matched (the more, the more specific the route).
  static int literal_score(const std::vector<std::string>& pattern,
                           const std::vector<std::string>& segments,
                           std::vector<std::string>& captures) {
    if (pattern.size() != segments.size()) return -1;
    int score = 0;
    for (std::size_t i = 0; i < pattern.size(); ++i) {
      if (is_placeholder(pattern[i])) {
        if (segments[i].empty()) return -1;
        captures.push_back(segments[i]);
      } else if (pattern[i] == segments[i]) {
        ++score;
      } else {
        return -1;
      }
    }
    return score;
  }

  std::vector<Route> routes_;
};

}  // namespace nightshift::api
