// api/openapi.yaml and the router describe the same API: every path and
// method in the file is routed, and every route is in the file.
#include <yaml-cpp/yaml.h>

#include <set>

#include "api_test_host.hpp"

namespace nightshift::api_test {
namespace {

using Operation = std::pair<std::string, std::string>;  // method (lowercase), path

std::set<Operation> documented_operations(const YAML::Node& document) {
  std::set<Operation> operations;
  for (const auto& path : document["paths"]) {
    for (const auto& item : path.second) {
      const auto method = item.first.as<std::string>();
      if (method == "get" || method == "post" || method == "put" || method == "delete" ||
          method == "patch" || method == "head" || method == "options") {
        operations.emplace(method, path.first.as<std::string>());
      }
    }
  }
  return operations;
}

TEST(OpenApi, DocumentsExactlyTheRoutedOperations) {
  const YAML::Node document = YAML::LoadFile(NIGHTSHIFT_OPENAPI_FILE);
  ASSERT_EQ(document["openapi"].as<std::string>().substr(0, 3), "3.1");
  TestHost host;
  std::set<Operation> routed;
  for (const api::RouteSpec& route : host.server().routes()) {
    std::string method(http::to_string(route.method));
    std::transform(method.begin(), method.end(), method.begin(), ::tolower);
    routed.emplace(method, route.pattern);
  }
  const std::set<Operation> documented = documented_operations(document);
  for (const auto& operation : routed) {
    EXPECT_TRUE(documented.count(operation))
        << "not in openapi.yaml: " << operation.first << ' ' << operation.second;
  }
  for (const auto& operation : documented) {
    EXPECT_TRUE(routed.count(operation))
        << "not routed: " << operation.first << ' ' << operation.second;
  }
}

TEST(OpenApi, EveryOperationDocumentsItsResponsesAndEveryReferenceResolves) {
  const YAML::Node document = YAML::LoadFile(NIGHTSHIFT_OPENAPI_FILE);
  std::function<void(const YAML::Node&)> check_refs = [&](const YAML::Node& node) {
    if (node.IsMap()) {
      for (const auto& item : node) {
        if (item.first.as<std::string>() == "$ref") {
          const auto ref = item.second.as<std::string>();
          ASSERT_EQ(ref.rfind("#/components/", 0), 0u) << ref;
          YAML::Node target = YAML::Clone(document);
          std::size_t start = 2;
          while (start < ref.size()) {
            const auto slash = ref.find('/', start);
            const std::string key = ref.substr(start, slash - start);
            target = target[key];
            ASSERT_TRUE(target.IsDefined()) << ref;
            if (slash == std::string::npos) break;
            start = slash + 1;
          }
        } else {
          check_refs(item.second);
        }
      }
    } else if (node.IsSequence()) {
      for (const auto& item : node) check_refs(item);
    }
  };
  check_refs(document);
  for (const auto& path : document["paths"]) {
    for (const auto& operation : path.second) {
      if (operation.first.as<std::string>() == "parameters") continue;
      EXPECT_TRUE(operation.second["responses"].IsMap()) << path.first.as<std::string>();
      EXPECT_TRUE(operation.second["operationId"].IsDefined()) << path.first.as<std::string>();
    }
  }
}

}  // namespace
}  // namespace nightshift::api_test
