// The panel's files are compiled into the host; these tests check the lookup
// the HTTP server uses to serve them.

#include "panel/panel_assets.hpp"

#include <gtest/gtest.h>

#include <string>

#include "test_support.hpp"

namespace {

using nightshift::panel::find_asset;

std::string source_file(const std::string& relative) {
  return nightshift::testing::read_file(std::string(NIGHTSHIFT_PANEL_SOURCE_DIR) + "/" + relative);
}

TEST(PanelAssets, RootAndIndexServeIndexHtmlAsUtf8Html) {
  auto root = find_asset("/");
  auto index = find_asset("/index.html");
  ASSERT_TRUE(root);
  ASSERT_TRUE(index);
  EXPECT_EQ(root->content, index->content);
  EXPECT_EQ(root->content_type, "text/html; charset=utf-8");
  EXPECT_EQ(std::string(root->content), source_file("index.html"));
}

TEST(PanelAssets, AssetsAreServedByteForByteWithTheirContentType) {
  auto script = find_asset("/assets/app.js");
  ASSERT_TRUE(script);
  EXPECT_EQ(script->content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(std::string(script->content), source_file("assets/app.js"));

  auto style = find_asset("/assets/panel.css");
  ASSERT_TRUE(style);
  EXPECT_EQ(style->content_type, "text/css; charset=utf-8");
  EXPECT_EQ(std::string(style->content), source_file("assets/panel.css"));
}

TEST(PanelAssets, UnknownAndTraversingPathsAreNotFound) {
  for (const char* path :
       {"", "/missing.js", "/assets/", "/assets/missing.js", "/assets/../index.html",
        "/assets/../../etc/passwd", "/../index.html", "assets/app.js", "/ASSETS/app.js",
        "/assets/app.js?x=1", "/index.html/", "/background-agents"}) {
    EXPECT_FALSE(find_asset(path)) << path;
  }
}

}  // namespace
