// Where the host finds its own helper files (nightshift-worker, the
// PostgreSQL store's module): in <prefix>/lib/nightshift/ beside the running
// executable (<prefix>/bin/) as installed, else where this tree built them.
#pragma once

#include <filesystem>
#include <string_view>

namespace nightshift {

// <exe>/../lib/nightshift/`name` when it is there with `mode` access (as
// access(2) takes it: X_OK, R_OK), else `built`.
std::filesystem::path installed_or_built(std::string_view name, int mode,
                                         std::filesystem::path built);

}  // namespace nightshift
