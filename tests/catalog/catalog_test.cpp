// The catalog on temporary workspaces: installed, local and remix agents,
// broken manifests and remixes, remix chains, params, rescans.
#include "catalog/catalog.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace nightshift {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using nightshift::testing::TempDir;
using nightshift::testing::write_file;

json::object object_of(std::string_view text) {
  return json::parse(text).as_object();
}

// The schema the test agent "loader-good" is given in its manifests here.
constexpr std::string_view good_params = R"({
  "seconds": {"type": "number", "default": 5, "description": "How long."},
  "count":   {"type": "integer", "default": 1},
  "mode":    {"type": "string", "enum": ["fast", "slow"], "default": "fast"},
  "options": {"type": "object", "default": {"color": "red", "size": 1}},
  "tags":    {"type": "array", "default": []},
  "failWith": {"type": "string"}
})";

std::string good_manifest(std::string_view params = good_params) {
  return std::string(R"({"name": "loader-good", "version": "1.0.0",
    "description": "A test agent.", "library": "libloader-good.so", "params": )") +
         std::string(params) + "}";
}

// Replaces `target` with a copy of `source` under a new inode, as a build does.
void install_file(const fs::path& source, const fs::path& target) {
  fs::create_directories(target.parent_path());
  const fs::path staged = target.string() + ".staged";
  fs::copy_file(source, staged, fs::copy_options::overwrite_existing);
  fs::rename(staged, target);
}

class CatalogTest : public ::testing::Test {
 protected:
  CatalogTest() {
    options_.installed_dirs = {temp_ / "installed-a", temp_ / "installed-b"};
    options_.workspace = temp_ / "workspace";
    options_.user_remix_dir = temp_ / "user-remix";
  }

  // An agent folder <parent>/<folder>/ holding `manifest` and `library`.
  static fs::path add_agent(const fs::path& parent, const std::string& folder,
                            const std::string& manifest, const fs::path& library = LOADER_GOOD,
                            const std::string& library_name = "libloader-good.so") {
    const fs::path dir = parent / folder;
    write_file(dir / "agent.json", manifest);
    if (!library.empty()) install_file(library, dir / library_name);
    return dir;
  }
  fs::path installed_dir() const { return options_.installed_dirs.front(); }
  fs::path local_dir() const { return options_.workspace / ".nightshift" / "agents"; }
  fs::path remix_dir() const { return options_.workspace / ".nightshift" / "remix"; }

  Catalog& catalog() {
    if (!catalog_) catalog_ = std::make_unique<Catalog>(options_, loader_);
    return *catalog_;
  }
  AgentInfo info(const std::string& id) {
    auto found = catalog().find(id);
    if (!found) throw std::runtime_error("no agent " + id);
    return *found;
  }
  // The error of an agent that must be unavailable.
  std::string error_of(const std::string& id) {
    const AgentInfo agent = info(id);
    EXPECT_FALSE(agent.available) << id;
    return agent.error.value_or("(no error)");
  }
  CatalogError resolve_error(const std::string& id, std::string_view params = "{}") {
    try {
      catalog().resolve(id, object_of(params));
    } catch (const CatalogError& e) {
      return e;
    }
    ADD_FAILURE() << id << " resolved, expected a CatalogError";
    return CatalogError(CatalogError::Code::agent_not_found, "");
  }

  TempDir temp_;
  CatalogOptions options_;
  PluginLoader loader_{temp_ / "scratch"};
  std::unique_ptr<Catalog> catalog_;
};

#define EXPECT_CONTAINS(text, part) \
  EXPECT_NE(std::string(text).find(part), std::string::npos) << (text)

TEST_F(CatalogTest, FindsInstalledLocalAndRemixAgentsSortedBySourceThenName) {
  add_agent(installed_dir(), "loader-good", good_manifest());
  add_agent(local_dir(), "loader-good", good_manifest());
  write_file(remix_dir() / "quick.md", "---\nbase: installed:loader-good\n---\nBe quick.\n");
  write_file(options_.user_remix_dir / "another.md", "---\nbase: local:loader-good\n---\n");

  std::vector<std::string> ids;
  for (const AgentInfo& agent : catalog().agents()) {
    ids.push_back(agent.id);
    EXPECT_TRUE(agent.available) << agent.id << ": " << agent.error.value_or("");
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"installed:loader-good", "local:loader-good",
                                           "remix:another", "remix:quick"}));
  EXPECT_EQ(info("local:loader-good").location, local_dir() / "loader-good");
  EXPECT_EQ(info("remix:another").location, options_.user_remix_dir / "another.md");
}

TEST_F(CatalogTest, AgentInfoHoldsWhatTheApiAgentObjectShows) {
  add_agent(installed_dir(), "loader-good", good_manifest());
  write_file(remix_dir() / "quick.md",
             "---\nbase: installed:loader-good\nversion: 0.1.0\ndescription: Quick.\n"
             "params:\n  seconds: 2\n---\n");

  const AgentInfo installed = info("installed:loader-good");
  EXPECT_EQ(installed.id, "installed:loader-good");
  EXPECT_EQ(installed.name, "loader-good");
  EXPECT_EQ(installed.source, AgentSource::installed);
  EXPECT_EQ(installed.version, "1.0.0");
  EXPECT_EQ(installed.description, "A test agent.");
  EXPECT_FALSE(installed.base_agent_id);
  EXPECT_EQ(installed.location, installed_dir() / "loader-good");
  EXPECT_TRUE(installed.available);
  EXPECT_FALSE(installed.error);
  EXPECT_EQ(installed.params, object_of(good_params));

  const AgentInfo remix = info("remix:quick");
  EXPECT_EQ(remix.base_agent_id, "installed:loader-good");
  EXPECT_EQ(remix.source, AgentSource::remix);
  EXPECT_EQ(remix.version, "0.1.0");
  EXPECT_EQ(remix.location, remix_dir() / "quick.md");
  // The base's schema, with the remix's values as the defaults a form starts from.
  EXPECT_EQ(remix.params.at("seconds").at("default"), 2);
  EXPECT_EQ(remix.params.at("count"), object_of(good_params).at("count"));
}

TEST_F(CatalogTest, FirstInstalledDirectoryThatHasANameWins) {
  add_agent(options_.installed_dirs[0], "loader-good", good_manifest());
  add_agent(options_.installed_dirs[1], "loader-good", "{broken");
  EXPECT_TRUE(info("installed:loader-good").available);
  EXPECT_EQ(info("installed:loader-good").location, options_.installed_dirs[0] / "loader-good");
}

TEST_F(CatalogTest, BrokenCompiledAgentsAreListedUnavailableWithTheReason) {
  add_agent(installed_dir(), "loader-good", "{\"name\": \"loader-good\",");
  add_agent(local_dir(), "loader-good", good_manifest(), "");  // no library
  add_agent(options_.installed_dirs[1], "renamed", good_manifest());
  add_agent(options_.installed_dirs[1], "Bad_Name", good_manifest());
  fs::create_directories(options_.installed_dirs[1] / "no-manifest");
  add_agent(options_.installed_dirs[1], "bad-schema",
            R"({"name": "bad-schema", "library": "libloader-good.so",
                "params": {"n": {"type": "float"}}})");
  const fs::path garbage = temp_ / "garbage.so";
  write_file(garbage, "not a library");
  add_agent(options_.installed_dirs[1], "garbage",
            R"({"name": "garbage", "library": "libgarbage.so"})", garbage, "libgarbage.so");
  add_agent(options_.installed_dirs[1], "escape",
            R"({"name": "escape", "library": "../loader-good/libloader-good.so"})");

  EXPECT_CONTAINS(error_of("installed:loader-good"), "agent.json is not valid JSON");
  EXPECT_CONTAINS(error_of("local:loader-good"), "its library libloader-good.so is missing");
  EXPECT_CONTAINS(error_of("installed:renamed"),
                  "agent.json names the agent 'loader-good', but its folder is 'renamed'");
  EXPECT_CONTAINS(error_of("installed:Bad_Name"), "not a valid agent name");
  EXPECT_CONTAINS(error_of("installed:no-manifest"), "no agent.json");
  EXPECT_CONTAINS(error_of("installed:bad-schema"), "param 'n': \"type\" must be one of");
  EXPECT_CONTAINS(error_of("installed:garbage"), "not a loadable shared library");
  EXPECT_CONTAINS(error_of("installed:escape"), "must be a file name in the agent's folder");

  const CatalogError error = resolve_error("installed:garbage");
  EXPECT_EQ(error.code(), CatalogError::Code::agent_unavailable);
  EXPECT_CONTAINS(error.what(), "not a loadable shared library");
}

TEST_F(CatalogTest, LibraryRefusedByTheLoaderMakesTheAgentUnavailable) {
  add_agent(installed_dir(), "loader-table",
            R"({"name": "loader-table", "library": "libloader-table.so"})", LOADER_TABLE_NULL,
            "libloader-table.so");
  EXPECT_CONTAINS(error_of("installed:loader-table"), "entry function returned NULL");
}

TEST_F(CatalogTest, BrokenRemixesAreListedUnavailableWithTheReason) {
  add_agent(installed_dir(), "loader-good", good_manifest());
  write_file(remix_dir() / "bad-yaml.md", "---\nbase: installed:loader-good\nparams: [1\n---\n");
  write_file(remix_dir() / "unknown-base.md", "---\nbase: installed:nowhere\n---\n");
  write_file(remix_dir() / "not-an-id.md", "---\nbase: loader-good\n---\n");
  write_file(remix_dir() / "loop-a.md", "---\nbase: remix:loop-b\n---\n");
  write_file(remix_dir() / "loop-b.md", "---\nbase: remix:loop-a\n---\n");
  write_file(remix_dir() / "self.md", "---\nbase: remix:self\n---\n");
  write_file(remix_dir() / "on-loop.md", "---\nbase: remix:loop-a\n---\n");
  write_file(remix_dir() / "unknown-param.md",
             "---\nbase: installed:loader-good\nparams:\n  speed: 3\n---\n");
  write_file(remix_dir() / "wrong-type.md",
             "---\nbase: installed:loader-good\nparams:\n  seconds: soon\n---\n");
  write_file(remix_dir() / "Upper.md", "---\nbase: installed:loader-good\n---\n");

  EXPECT_CONTAINS(error_of("remix:bad-yaml"), "not valid YAML");
  EXPECT_CONTAINS(error_of("remix:unknown-base"), "its base installed:nowhere is unknown");
  EXPECT_CONTAINS(error_of("remix:not-an-id"), "is not an agent id");
  EXPECT_EQ(error_of("remix:loop-a"), "remix cycle: remix:loop-a -> remix:loop-b -> remix:loop-a");
  EXPECT_EQ(error_of("remix:loop-b"), "remix cycle: remix:loop-b -> remix:loop-a -> remix:loop-b");
  EXPECT_EQ(error_of("remix:self"), "remix cycle: remix:self -> remix:self");
  EXPECT_CONTAINS(error_of("remix:on-loop"), "its base remix:loop-a is unavailable: remix cycle");
  EXPECT_CONTAINS(error_of("remix:unknown-param"),
                  "it sets param 'speed', which installed:loader-good does not have");
  EXPECT_CONTAINS(error_of("remix:wrong-type"), "param 'seconds' must be a number, not a string");
  EXPECT_CONTAINS(error_of("remix:Upper"), "not a valid agent name");
  EXPECT_EQ(resolve_error("remix:loop-a").code(), CatalogError::Code::agent_unavailable);
}

TEST_F(CatalogTest, RemixOfARemixMergesParamsLimitsAndInstructionsInOrder) {
  add_agent(installed_dir(), "loader-good", good_manifest());
  write_file(remix_dir() / "inner.md", R"(---
base: installed:loader-good
params:
  seconds: 2
  options: {color: blue}
  tags: [x]
limits:
  timeoutSeconds: 60
---
Inner instructions.
)");
  write_file(remix_dir() / "middle.md", R"(---
base: remix:inner
params:
  count: 4
  options: {size: 3}
---
)");
  write_file(remix_dir() / "outer.md", R"(---
name: outermost
base: remix:middle
limits: {timeoutSeconds: 5}
---
Outer instructions.
)");

  const ResolvedAgent middle = catalog().resolve("remix:middle", object_of(R"({"mode": "slow"})"));
  EXPECT_EQ(middle.params, object_of(R"({
    "seconds": 2, "count": 4, "mode": "slow", "options": {"color": "blue", "size": 3},
    "tags": ["x"], "instructions": "Inner instructions."})"));
  EXPECT_EQ(middle.limits.timeout_seconds, 60.0);
  EXPECT_EQ(middle.info.base_agent_id, "remix:inner");
  ASSERT_NE(middle.plugin, nullptr);
  EXPECT_EQ(middle.plugin, catalog().resolve("installed:loader-good", {}).plugin);

  // The front matter's name wins over the file's stem.
  EXPECT_FALSE(catalog().find("remix:outer"));
  const ResolvedAgent outer = catalog().resolve("remix:outermost", {});
  EXPECT_EQ(outer.params.at("instructions"), "Outer instructions.");
  EXPECT_EQ(outer.params.at("count"), 4);
  EXPECT_EQ(outer.limits.timeout_seconds, 5.0);

  // A start may still override the instructions and merge into objects.
  const ResolvedAgent custom = catalog().resolve(
      "remix:outermost", object_of(R"({"instructions": "Mine.", "options": {"color": "green"}})"));
  EXPECT_EQ(custom.params.at("instructions"), "Mine.");
  EXPECT_EQ(custom.params.at("options"), object_of(R"({"color": "green", "size": 3})"));
}

TEST_F(CatalogTest, CompiledAgentGetsDefaultsAndEmptyInstructions) {
  add_agent(installed_dir(), "loader-good", good_manifest());
  const ResolvedAgent resolved = catalog().resolve("installed:loader-good", {});
  EXPECT_EQ(resolved.params, object_of(R"({"seconds": 5, "count": 1, "mode": "fast",
    "options": {"color": "red", "size": 1}, "tags": [], "instructions": ""})"));
  EXPECT_FALSE(resolved.limits.timeout_seconds);
  EXPECT_EQ(resolved.info.id, "installed:loader-good");
  EXPECT_EQ(resolved.plugin->name(), "loader-good");
}

TEST_F(CatalogTest, WorkspaceRemixHidesUserRemixOfTheSameName) {
  add_agent(installed_dir(), "loader-good", good_manifest());
  write_file(remix_dir() / "nap.md", "---\nbase: installed:loader-good\n---\nWorkspace nap.\n");
  write_file(options_.user_remix_dir / "nap.md",
             "---\nbase: installed:loader-good\n---\nUser nap.\n");
  // Named by its front matter only, still hidden.
  write_file(options_.user_remix_dir / "other-file.md",
             "---\nname: nap\nbase: installed:loader-good\n---\nAlso user nap.\n");
  write_file(options_.user_remix_dir / "user-only.md", "---\nbase: installed:loader-good\n---\n");

  EXPECT_EQ(info("remix:nap").location, remix_dir() / "nap.md");
  EXPECT_EQ(catalog().resolve("remix:nap", {}).params.at("instructions"), "Workspace nap.");
  EXPECT_TRUE(info("remix:user-only").available);
  EXPECT_EQ(catalog().agents().size(), 3u);
}

TEST_F(CatalogTest, StartParamsAreValidatedWithClearMessages) {
  add_agent(installed_dir(), "loader-good",
            good_manifest(R"({"seconds": {"type": "number", "default": 5},
                              "mode": {"type": "string", "enum": ["fast", "slow"]},
                              "token": {"type": "string", "required": true}})"));
  auto message = [&](std::string_view params) {
    const CatalogError error = resolve_error("installed:loader-good", params);
    EXPECT_EQ(error.code(), CatalogError::Code::invalid_params) << params;
    return std::string(error.what());
  };
  EXPECT_EQ(message(R"({"token": "t", "speed": 1})"),
            "unknown param 'speed': installed:loader-good accepts seconds, mode, token, "
            "instructions");
  EXPECT_EQ(message(R"({"token": "t", "seconds": "1"})"),
            "param 'seconds' must be a number, not a string");
  EXPECT_EQ(message(R"({"token": "t", "mode": "medium"})"),
            R"(param 'mode' must be one of ["fast","slow"], not "medium")");
  EXPECT_EQ(message(R"({"seconds": 1})"), "param 'token' is required");

  const ResolvedAgent resolved =
      catalog().resolve("installed:loader-good", object_of(R"({"token": "t", "mode": "slow"})"));
  EXPECT_EQ(resolved.params,
            object_of(R"({"seconds": 5, "token": "t", "mode": "slow", "instructions": ""})"));
}

TEST_F(CatalogTest, UnknownIdsAndPathsNeverResolve) {
  add_agent(installed_dir(), "loader-good", good_manifest());
  add_agent(temp_ / "outside", "loader-good", good_manifest());
  for (const std::string id :
       {"installed:nothing", "installed:../outside/loader-good", "local:../../outside/loader-good",
        "loader-good", "remix:../../../etc/passwd", "", "installed:loader-good/"}) {
    EXPECT_EQ(resolve_error(id).code(), CatalogError::Code::agent_not_found) << id;
    EXPECT_FALSE(catalog().find(id)) << id;
  }
}

TEST_F(CatalogTest, RescanPicksUpAddedChangedAndRemovedAgents) {
  add_agent(installed_dir(), "loader-good", good_manifest());
  ASSERT_EQ(catalog().agents().size(), 1u);
  const ResolvedAgent before = catalog().resolve("installed:loader-good", {});
  ASSERT_EQ(before.plugin->version(), "1.0.0");

  // Added: a local agent and a remix.
  add_agent(local_dir(), "loader-good", good_manifest());
  write_file(remix_dir() / "quick.md", "---\nbase: installed:loader-good\n---\n");
  EXPECT_EQ(catalog().agents().size(), 1u) << "nothing changes before a rescan";
  EXPECT_EQ(catalog().rescan().size(), 3u);
  EXPECT_TRUE(info("remix:quick").available);

  // Changed: the library rebuilt, and a remix edited.
  install_file(LOADER_GOOD_V2, installed_dir() / "loader-good" / "libloader-good.so");
  write_file(remix_dir() / "quick.md", "---\nbase: local:loader-good\n---\n");
  catalog().rescan();
  const ResolvedAgent after = catalog().resolve("installed:loader-good", {});
  EXPECT_NE(after.plugin, before.plugin);
  EXPECT_EQ(after.plugin->version(), "2.0.0");
  EXPECT_EQ(before.plugin->version(), "1.0.0") << "a run's plugin stays as it was";
  EXPECT_EQ(info("remix:quick").base_agent_id, "local:loader-good");

  // Unchanged files give the same plugin again.
  catalog().rescan();
  EXPECT_EQ(catalog().resolve("installed:loader-good", {}).plugin, after.plugin);

  // Removed.
  fs::remove_all(local_dir() / "loader-good");
  catalog().rescan();
  EXPECT_FALSE(catalog().find("local:loader-good"));
  EXPECT_CONTAINS(error_of("remix:quick"), "its base local:loader-good is unknown");
  EXPECT_EQ(resolve_error("local:loader-good").code(), CatalogError::Code::agent_not_found);
}

TEST_F(CatalogTest, ManyThreadsResolveWhileRescansHappen) {
  add_agent(installed_dir(), "loader-good", good_manifest());
  write_file(remix_dir() / "quick.md",
             "---\nbase: installed:loader-good\nparams: {seconds: 1}\n---\nGo.\n");
  catalog();
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  std::atomic<int> resolved{0};
  {
    std::vector<std::jthread> readers;
    for (int t = 0; t < 4; ++t) {
      readers.emplace_back([&] {
        while (!done) {
          try {
            const ResolvedAgent agent = catalog_->resolve("remix:quick", {});
            if (agent.params.at("seconds") != 1 || agent.plugin == nullptr) ++failures;
            if (catalog_->agents().size() != 2) ++failures;
            ++resolved;
          } catch (const std::exception&) {
            ++failures;
          }
        }
      });
    }
    for (int i = 0; i < 20; ++i) catalog_->rescan();
    EXPECT_TRUE(nightshift::testing::wait_until([&] { return resolved.load() > 0; }));
    done = true;
  }
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(resolved.load(), 0);
}

}  // namespace
}  // namespace nightshift
