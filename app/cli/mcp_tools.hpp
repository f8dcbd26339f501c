// The tools `nightshift mcp` offers (api.md, "MCP: nightshift mcp"): their
// definitions with JSON Schema input schemas, and running one against the
// host's API the way the CLI commands reach it.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <stop_token>
#include <string>
#include <string_view>

#include "cli/host_endpoint.hpp"

namespace nightshift::cli {

// What a tool call answers: one text content (the API's JSON answer, or the
// error's message) and whether it is an error.
struct ToolResult {
  std::string text;
  bool is_error = false;
};

// The `tools` array of a tools/list answer: every tool with its name,
// title, description and inputSchema.
boost::json::array mcp_tool_definitions();

// Runs the tool `name` with `arguments` against the host at `endpoint`, on
// a connection of its own (so calls may run on several threads at once).
// Never throws: a bad argument, an API error, an unreachable host and an
// unknown tool are all results with is_error set. `stop` cuts a wait_run
// short (it then answers the run as it is).
ToolResult call_mcp_tool(const HostEndpoint& endpoint, std::string_view name,
                         const boost::json::object& arguments, std::stop_token stop);

}  // namespace nightshift::cli
