// The C++ layer's SDK 1.1 lifecycle: an agent class's static init, deinit and
// get_extension become the entry table's, which the host's loader calls; an
// init that throws refuses the plugin with the exception's message; agents
// without them (or with ordinary methods of those names) get NULL members.
#include <gtest/gtest.h>

#include <filesystem>
#include <nightshift/agent.hpp>
#include <test_support.hpp>

#include "loader/plugin_loader.hpp"
#include "plugins/lifecycle/lifecycle_extension.hpp"

namespace nt = nightshift::testing;
namespace fs = std::filesystem;

namespace {

// ---- what NIGHTSHIFT_AGENT puts in the table, checked at compile time ----

struct Plain : nightshift::Agent {
  void run(nightshift::RunContext&) override {}
};
struct WithOrdinaryMethods : nightshift::Agent {
  void init() {}  // an agent's own helpers, as before 1.1: not lifecycle members
  void deinit() {}
  void run(nightshift::RunContext&) override {}
};
struct WithLifecycle : nightshift::Agent {
  static void init(const nightshift::HostInfo&) {}
  static void deinit() noexcept {}
  static const void* get_extension(std::string_view) noexcept { return nullptr; }
  void run(nightshift::RunContext&) override {}
};
namespace detail = nightshift::detail;
static_assert(detail::init_function<Plain>() == nullptr);
static_assert(detail::deinit_function<Plain>() == nullptr);
static_assert(detail::extension_function<Plain>() == nullptr);
static_assert(detail::init_function<WithOrdinaryMethods>() == nullptr);
static_assert(detail::deinit_function<WithOrdinaryMethods>() == nullptr);
static_assert(detail::init_function<WithLifecycle>() == &detail::init_agent<WithLifecycle>);
static_assert(detail::deinit_function<WithLifecycle>() == &detail::deinit_agent<WithLifecycle>);
static_assert(detail::extension_function<WithLifecycle>() ==
              &detail::agent_extension<WithLifecycle>);

const SdkLifecycleExtension& extension_of(const nightshift::LoadedPlugin& plugin) {
  const void* extension = plugin.extension(sdk_lifecycle_extension_id);
  if (extension == nullptr) throw std::runtime_error("no lifecycle extension");
  return *static_cast<const SdkLifecycleExtension*>(extension);
}

class SdkLifecycle : public ::testing::Test {
 protected:
  nt::TempDir temp_;
  nightshift::PluginLoader loader_{temp_ / "scratch"};
};

}  // namespace

TEST_F(SdkLifecycle, StaticInitSeesTheHostInfoOnceAndTheAgentRuns) {
  auto plugin = loader_.load(NIGHTSHIFT_TEST_LIFECYCLE, "sdk-lifecycle");
  const auto& extension = extension_of(*plugin);
  EXPECT_EQ(extension.struct_size, sizeof(SdkLifecycleExtension));
  EXPECT_EQ(extension.init_calls(), 1);
  EXPECT_STREQ(extension.host_version(), NIGHTSHIFT_TEST_HOST_VERSION);
  EXPECT_EQ(fs::path(extension.plugin_path()),
            fs::absolute(NIGHTSHIFT_TEST_LIFECYCLE).lexically_normal());
  EXPECT_EQ(extension.abi_minor(), static_cast<std::uint32_t>(NIGHTSHIFT_ABI_MINOR));
  EXPECT_EQ(plugin->extension("org.nightshift.test.unknown"), nullptr);
  EXPECT_EQ(plugin->abi_minor(), static_cast<std::uint32_t>(NIGHTSHIFT_ABI_MINOR));
}

TEST_F(SdkLifecycle, StaticDeinitRunsWhenTheHostReleasesThePlugin) {
  int deinit_calls = 0;
  auto plugin = loader_.load(NIGHTSHIFT_TEST_LIFECYCLE, "sdk-lifecycle");
  extension_of(*plugin).count_deinit_in(&deinit_calls);
  EXPECT_EQ(deinit_calls, 0);
  plugin.reset();
  EXPECT_EQ(deinit_calls, 1);
}

TEST_F(SdkLifecycle, AnInitThatThrowsRefusesThePluginWithTheExceptionsMessage) {
  const fs::path library = fs::absolute(NIGHTSHIFT_TEST_LIFECYCLE_REFUSES).lexically_normal();
  try {
    loader_.load(library, "sdk-lifecycle-refuses");
    ADD_FAILURE() << "a plugin whose init throws was loaded";
  } catch (const nightshift::PluginLoadError& e) {
    EXPECT_EQ(e.reason(), "its init refused to load: no licence for " + library.string());
  }
}
