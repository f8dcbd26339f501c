// `nightshift mcp`: a Model Context Protocol server on standard input and
// output (api.md, "MCP: nightshift mcp"). JSON-RPC 2.0, one message per line;
// it answers initialize, ping, tools/list and tools/call, and reaches the
// host through the same endpoint (URL, token) as the other commands.
#pragma once

#include <iosfwd>

#include "cli/host_endpoint.hpp"

namespace nightshift::cli {

// The MCP protocol revision this server speaks (and offers to a client that
// asks for one it does not know).
inline constexpr const char* kMcpProtocolVersion = "2025-06-18";

// Serves MCP: reads requests from `in` until it ends, writes one answer per
// request to `out` (nothing else goes there), and returns the exit code (0).
// Each tools/call runs on its own thread, so a long wait_run does not hold
// up the others; when `in` ends, waits in progress are cut short and every
// call still running is answered before it returns.
int serve_mcp(std::istream& in, std::ostream& out, const HostEndpoint& endpoint);

}  // namespace nightshift::cli
