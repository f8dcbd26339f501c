#pragma once

// The web panel's static files, compiled into the host binary so it serves
// them without reading the filesystem at run time.

#include <optional>
#include <string_view>

namespace nightshift::panel {

struct Asset {
  std::string_view content;       // the file's bytes; lives as long as the program
  std::string_view content_type;  // the Content-Type header value to send
};

// Looks up a panel file by URL path: "/" and "/index.html" give index.html,
// "/assets/<file>" gives that file; any other path gives nullopt. Only the
// fixed set of files compiled in can be returned, so there is no path traversal.
std::optional<Asset> find_asset(std::string_view path);

}  // namespace nightshift::panel
