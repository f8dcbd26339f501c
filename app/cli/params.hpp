// --param KEY=VALUE arguments to a params object.
#pragma once

#include <boost/json/object.hpp>
#include <string>
#include <vector>

namespace nightshift::cli {

// Each argument is KEY=VALUE. VALUE is taken as JSON when it parses as JSON
// (5, true, {"a": 1}, "quoted"), else as a plain string. A dotted KEY
// (a.b=1) sets a member of a nested object. Throws CliError(usage).
boost::json::object parse_params(const std::vector<std::string>& arguments);

}  // namespace nightshift::cli
