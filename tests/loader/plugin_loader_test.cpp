// The plugin loader against real plugins built by this project's CMake: a
// good one, a rebuilt one, and one for each refusal.
#include "loader/plugin_loader.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "plugins/lifecycle_probe.h"
#include "test_support.hpp"

namespace nightshift {
namespace {

namespace fs = std::filesystem;
using nightshift::testing::TempDir;

// What one synchronous call of a plugin's run() did.
struct RunRecord {
  std::vector<std::string> logs;
  std::string result;
  std::string error;
  std::int32_t code = -1;
};

RunRecord run_once(const LoadedPlugin& plugin, const std::string& task) {
  RunRecord record;
  static const std::string params = R"({"instructions":""})";
  static const std::string id = "00000000-0000-4000-8000-000000000001";
  nightshift_run run{};
  run.struct_size = sizeof(nightshift_run);
  run.host_data = &record;
  run.instance_id = id.data();
  run.instance_id_size = id.size();
  run.task = task.data();
  run.task_size = task.size();
  run.params_json = params.data();
  run.params_json_size = params.size();
  run.workspace = "/";
  run.workspace_size = 1;
  run.log = [](const nightshift_run* r, std::int32_t, const char* text, std::size_t size) {
    static_cast<RunRecord*>(r->host_data)->logs.emplace_back(text, size);
  };
  run.progress = [](const nightshift_run*, double) {};
  run.cancelled = [](const nightshift_run*) { return false; };
  run.sleep_for = [](const nightshift_run*, std::uint64_t) { return true; };
  run.set_result_json = [](const nightshift_run* r, const char* json, std::size_t size) {
    static_cast<RunRecord*>(r->host_data)->result.assign(json, size);
    return true;
  };
  run.set_error = [](const nightshift_run* r, const char* text, std::size_t size) {
    static_cast<RunRecord*>(r->host_data)->error.assign(text, size);
  };
  record.code = plugin.entry().run(&run);
  return record;
}

// Replaces `target` with a copy of `source` under a new inode, as a rebuild
// (or an install) does.
void replace_file(const fs::path& source, const fs::path& target) {
  fs::create_directories(target.parent_path());
  const fs::path staged = target.string() + ".staged";
  fs::copy_file(source, staged, fs::copy_options::overwrite_existing);
  fs::rename(staged, target);
}

// The library copies in a scratch directory (not the loader's lock file).
std::size_t files_in(const fs::path& dir) {
  if (!fs::exists(dir)) return 0;
  return static_cast<std::size_t>(std::count_if(
      fs::directory_iterator(dir), fs::directory_iterator(),
      [](const fs::directory_entry& entry) { return entry.path().extension() == ".so"; }));
}

// Everything in a directory, by name.
std::set<std::string> names_in(const fs::path& dir) {
  std::set<std::string> names;
  if (!fs::exists(dir)) return names;
  for (const auto& entry : fs::directory_iterator(dir)) names.insert(entry.path().filename());
  return names;
}

class PluginLoaderTest : public ::testing::Test {
 protected:
  // Expects load() to refuse `library` with a PluginLoadError naming the
  // file and containing `reason`.
  void expect_refused(const fs::path& library, const std::string& expected_name,
                      const std::string& reason) {
    try {
      loader_.load(library, expected_name);
      ADD_FAILURE() << library << " was loaded, expected a refusal containing: " << reason;
    } catch (const PluginLoadError& e) {
      EXPECT_EQ(e.file(), fs::absolute(library).lexically_normal());
      EXPECT_NE(std::string(e.what()).find(library.string()), std::string::npos) << e.what();
      EXPECT_NE(e.reason().find(reason), std::string::npos) << e.what();
    }
  }

  TempDir temp_;
  fs::path scratch_ = temp_ / "scratch";
  PluginLoader loader_{scratch_};
};

TEST_F(PluginLoaderTest, GoodPluginLoadsAndItsEntryRuns) {
  auto plugin = loader_.load(LOADER_GOOD, "loader-good");
  ASSERT_NE(plugin, nullptr);
  EXPECT_EQ(plugin->path(), fs::path(LOADER_GOOD));
  EXPECT_EQ(plugin->name(), "loader-good");
  EXPECT_EQ(plugin->version(), "1.0.0");
  EXPECT_EQ(plugin->description(), "A well-formed agent for the loader and catalog tests.");
  EXPECT_EQ(plugin->abi_minor(), static_cast<std::uint32_t>(NIGHTSHIFT_ABI_MINOR));
  EXPECT_EQ(plugin->entry().abi_major, static_cast<std::uint32_t>(NIGHTSHIFT_ABI_MAJOR));

  const RunRecord record = run_once(*plugin, "dust");
  EXPECT_EQ(record.code, NIGHTSHIFT_RUN_OK);
  EXPECT_EQ(record.result, R"({"build": 1})");
  EXPECT_EQ(record.logs, std::vector<std::string>{"build 1 ran task 'dust'"});
}

TEST_F(PluginLoaderTest, UnchangedFileReturnsTheLivePlugin) {
  auto first = loader_.load(LOADER_GOOD, "loader-good");
  auto second = loader_.load(LOADER_GOOD, "loader-good");
  EXPECT_EQ(first, second);
  EXPECT_EQ(files_in(scratch_), 0u) << "an unchanged file needs no copy";
}

TEST_F(PluginLoaderTest, UnchangedFileAskedForAnotherNameIsRefused) {
  auto plugin = loader_.load(LOADER_GOOD, "loader-good");
  expect_refused(LOADER_GOOD, "not-good", "names the agent 'loader-good'");
}

TEST_F(PluginLoaderTest, RebuiltLibraryAtTheSamePathLoadsAnewWhileTheOldOneKeepsWorking) {
  const fs::path library = temp_ / "agent" / "libloader-good.so";
  replace_file(LOADER_GOOD, library);
  auto old_build = loader_.load(library, "loader-good");
  ASSERT_EQ(old_build->version(), "1.0.0");

  replace_file(LOADER_GOOD_V2, library);
  auto new_build = loader_.load(library, "loader-good");
  EXPECT_NE(new_build, old_build);
  EXPECT_EQ(new_build->version(), "2.0.0");
  EXPECT_EQ(new_build->path(), library);
  EXPECT_EQ(files_in(scratch_), 1u) << "the rebuilt library is loaded from a copy";

  EXPECT_EQ(run_once(*old_build, "").result, R"({"build": 1})");
  EXPECT_EQ(run_once(*new_build, "").result, R"({"build": 2})");
  EXPECT_EQ(loader_.load(library, "loader-good"), new_build);

  new_build.reset();
  EXPECT_EQ(files_in(scratch_), 0u) << "the copy goes with the last user of its plugin";
  EXPECT_EQ(run_once(*old_build, "").result, R"({"build": 1})");
}

TEST_F(PluginLoaderTest, ReleasedPluginLoadsAgainFromTheSamePath) {
  const fs::path library = temp_ / "agent" / "libloader-good.so";
  replace_file(LOADER_GOOD, library);
  auto first = loader_.load(library, "loader-good");
  first.reset();
  auto again = loader_.load(library, "loader-good");
  EXPECT_EQ(run_once(*again, "").result, R"({"build": 1})");
}

TEST_F(PluginLoaderTest, DestroyedLoaderRemovesItsCopiesAndItsPluginsStillRun) {
  const fs::path library = temp_ / "agent" / "libloader-good.so";
  const fs::path own_scratch = temp_ / "own-scratch";
  std::shared_ptr<const LoadedPlugin> old_build;
  std::shared_ptr<const LoadedPlugin> new_build;
  {
    PluginLoader loader(own_scratch);
    replace_file(LOADER_GOOD, library);
    old_build = loader.load(library, "loader-good");
    replace_file(LOADER_GOOD_V2, library);
    new_build = loader.load(library, "loader-good");
    ASSERT_EQ(files_in(own_scratch), 1u);
    ASSERT_EQ(names_in(own_scratch).size(), 2u) << "a copy and the loader's lock file";
  }
  EXPECT_EQ(names_in(own_scratch), std::set<std::string>{});
  EXPECT_EQ(run_once(*new_build, "").result, R"({"build": 2})");
  EXPECT_EQ(run_once(*old_build, "").result, R"({"build": 1})");
}

TEST_F(PluginLoaderTest, CopiesLeftByAKilledHostAreRemovedAtTheNextStart) {
  const fs::path library = temp_ / "agent" / "libloader-good.so";
  const fs::path crashed_scratch = temp_ / "crashed-scratch";
  replace_file(LOADER_GOOD, library);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // A host that loads a library, then its rebuild (from a copy), and is
    // killed while both are loaded: no destructor runs.
    PluginLoader loader(crashed_scratch);
    auto old_build = loader.load(library, "loader-good");
    replace_file(LOADER_GOOD_V2, library);
    auto new_build = loader.load(library, "loader-good");
    if (files_in(crashed_scratch) != 1) ::_exit(3);
    ::raise(SIGKILL);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "child status " << status;
  ASSERT_EQ(files_in(crashed_scratch), 1u);
  ASSERT_EQ(names_in(crashed_scratch).size(), 2u) << "the copy and its lock file are left";

  PluginLoader next_start(crashed_scratch);
  EXPECT_EQ(names_in(crashed_scratch), std::set<std::string>{});
}

TEST_F(PluginLoaderTest, CopiesOfALiveLoaderAreKept) {
  const fs::path library = temp_ / "agent" / "libloader-good.so";
  replace_file(LOADER_GOOD, library);
  auto old_build = loader_.load(library, "loader-good");
  replace_file(LOADER_GOOD_V2, library);
  auto new_build = loader_.load(library, "loader-good");
  const std::set<std::string> before = names_in(scratch_);
  ASSERT_EQ(before.size(), 2u);

  PluginLoader another_host(scratch_);
  EXPECT_EQ(names_in(scratch_), before);
  EXPECT_EQ(run_once(*new_build, "").result, R"({"build": 2})");
}

TEST_F(PluginLoaderTest, CleanupRemovesOnlyRegularFilesNamedAsADeadLoadersCopies) {
  const fs::path outside = temp_ / "outside.so";
  nightshift::testing::write_file(outside, "not ours to remove");
  fs::create_directories(scratch_);
  // A dead loader's lock file (nobody holds its flock) and its copy...
  nightshift::testing::write_file(scratch_ / "999999-abc.lock", "");
  nightshift::testing::write_file(scratch_ / "libx.999999-abc.1.so", "copy");
  // ...beside things with a similar name that are not its copies.
  fs::create_symlink(outside, scratch_ / "liby.999999-abc.2.so");
  fs::create_directory(scratch_ / "libz.999999-abc.3.so");
  nightshift::testing::write_file(scratch_ / "libx.999999-abc.1.so.bak", "");
  nightshift::testing::write_file(scratch_ / "notes.txt", "");
  // A copy with no lock file, and a lock file that is a symlink.
  nightshift::testing::write_file(scratch_ / "libw.4242-ff.1.so", "");
  fs::create_symlink(outside, scratch_ / "777-aa.lock");
  nightshift::testing::write_file(scratch_ / "libv.777-aa.1.so", "");

  PluginLoader next_start(scratch_);
  EXPECT_EQ(names_in(scratch_),
            (std::set<std::string>{"liby.999999-abc.2.so", "libz.999999-abc.3.so",
                                   "libx.999999-abc.1.so.bak", "notes.txt", "libw.4242-ff.1.so",
                                   "777-aa.lock", "libv.777-aa.1.so"}));
  EXPECT_TRUE(fs::exists(outside));
}

TEST_F(PluginLoaderTest, RefusesAMissingFile) {
  expect_refused(temp_ / "libnothing.so", "nothing", "No such file");
}

TEST_F(PluginLoaderTest, RefusesAFileThatIsNotASharedLibrary) {
  const fs::path library = temp_ / "libtext.so";
  nightshift::testing::write_file(library, "this is not an ELF file\n");
  expect_refused(library, "text", "not a loadable shared library");
}

TEST_F(PluginLoaderTest, RefusesALibraryTruncatedBeforeItsSegments) {
  const std::string whole = nightshift::testing::read_file(LOADER_GOOD);
  ASSERT_GT(whole.size(), 4096u);
  const fs::path library = temp_ / "libtruncated.so";
  nightshift::testing::write_file(library, whole.substr(0, 1024));
  expect_refused(library, "loader-good", "truncated");
}

TEST_F(PluginLoaderTest, RefusesALibraryTruncatedAfterItsSegments) {
  // The loadable segments come first, so dlopen alone would accept this.
  const std::string whole = nightshift::testing::read_file(LOADER_GOOD);
  const fs::path library = temp_ / "libtruncated.so";
  nightshift::testing::write_file(library, whole.substr(0, whole.size() - 16));
  expect_refused(library, "loader-good", "truncated");
}

TEST_F(PluginLoaderTest, RefusesALibraryWithoutTheEntrySymbol) {
  expect_refused(LOADER_NO_ENTRY, "loader-no-entry", "exports no nightshift_agent_entry_v1");
}

TEST_F(PluginLoaderTest, RefusesAPluginBuiltForAFutureAbi) {
  expect_refused(LOADER_ABI_V2_SYMBOL, "loader-other-major",
                 "built for agent ABI 2, this host supports ABI 1");
}

TEST_F(PluginLoaderTest, RefusesAPluginBuiltForAPastAbi) {
  expect_refused(LOADER_ABI_V0_SYMBOL, "loader-other-major",
                 "built for agent ABI 0, this host supports ABI 1");
}

TEST_F(PluginLoaderTest, RefusesAnEntryTableThatClaimsAnotherAbiMajor) {
  expect_refused(LOADER_TABLE_MAJOR_2, "loader-table",
                 "built for agent ABI 2, this host supports ABI 1");
}

TEST_F(PluginLoaderTest, RefusesALibraryWithUndefinedSymbols) {
  expect_refused(LOADER_UNDEFINED, "loader-undefined",
                 "undefined symbol: loader_test_function_nobody_defines");
}

TEST_F(PluginLoaderTest, RefusesADescriptorNameThatDiffersFromTheManifest) {
  expect_refused(LOADER_TABLE_MISNAMED, "loader-table",
                 "its descriptor names the agent 'someone-else', but its manifest says "
                 "'loader-table'");
}

TEST_F(PluginLoaderTest, RefusesAnEntryFunctionThatReturnsNull) {
  expect_refused(LOADER_TABLE_NULL, "loader-table", "entry function returned NULL");
}

TEST_F(PluginLoaderTest, RefusesAnEntryTableTooSmallForAbi1_0) {
  expect_refused(LOADER_TABLE_SMALL, "loader-table", "struct_size 16, smaller than the 32 bytes");
}

TEST_F(PluginLoaderTest, RefusedRebuildLeavesNoCopyAndTheOldPluginWorks) {
  const fs::path library = temp_ / "agent" / "libloader-good.so";
  replace_file(LOADER_GOOD, library);
  auto good = loader_.load(library, "loader-good");
  replace_file(LOADER_TABLE_NULL, library);
  expect_refused(library, "loader-good", "entry function returned NULL");
  EXPECT_EQ(files_in(scratch_), 0u);
  EXPECT_EQ(run_once(*good, "").result, R"({"build": 1})");
}

TEST_F(PluginLoaderTest, ConcurrentLoadsShareOnePluginPerFile) {
  constexpr int threads = 6;
  constexpr int loads_per_thread = 25;
  std::vector<std::vector<const LoadedPlugin*>> seen(threads);
  std::vector<std::shared_ptr<const LoadedPlugin>> keep(threads);
  std::atomic<int> refusals{0};
  {
    std::vector<std::jthread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        for (int i = 0; i < loads_per_thread; ++i) {
          keep[t] = loader_.load(LOADER_GOOD, "loader-good");
          seen[t].push_back(keep[t].get());
          try {
            loader_.load(LOADER_TABLE_NULL, "loader-table");
          } catch (const PluginLoadError&) {
            ++refusals;
          }
        }
      });
    }
  }
  std::set<const LoadedPlugin*> distinct;
  for (const auto& list : seen) distinct.insert(list.begin(), list.end());
  EXPECT_EQ(distinct.size(), 1u);
  EXPECT_EQ(refusals.load(), threads * loads_per_thread);
  EXPECT_EQ(run_once(*keep[0], "").result, R"({"build": 1})");
}

// ---- ABI 1.1: init, deinit, get_extension, reserved fields ----

const lifecycle_probe& probe_of(const LoadedPlugin& plugin) {
  const void* extension = plugin.extension(LIFECYCLE_PROBE_ID);
  if (extension == nullptr) throw std::runtime_error("the plugin offers no lifecycle probe");
  return *static_cast<const lifecycle_probe*>(extension);
}

TEST_F(PluginLoaderTest, InitIsCalledOnceWithTheHostVersionAbiAndTheLibrarysPath) {
  auto plugin = loader_.load(LOADER_LIFECYCLE, "loader-lifecycle");
  const lifecycle_probe& probe = probe_of(*plugin);
  EXPECT_EQ(probe.init_calls(), 1u);
  EXPECT_STREQ(probe.host_version(), NIGHTSHIFT_TEST_HOST_VERSION);
  EXPECT_EQ(fs::path(probe.plugin_path()), fs::absolute(LOADER_LIFECYCLE).lexically_normal());
  EXPECT_EQ(probe.host_abi_major(), static_cast<std::uint32_t>(NIGHTSHIFT_ABI_MAJOR));
  EXPECT_EQ(probe.host_abi_minor(), static_cast<std::uint32_t>(NIGHTSHIFT_ABI_MINOR));

  // Loading the unchanged file again hands out the same plugin: no second init.
  auto again = loader_.load(LOADER_LIFECYCLE, "loader-lifecycle");
  EXPECT_EQ(again, plugin);
  EXPECT_EQ(probe.init_calls(), 1u);
  EXPECT_EQ(run_once(*plugin, "").logs, std::vector<std::string>{"lifecycle ran"});
}

TEST_F(PluginLoaderTest, GetExtensionReturnsWhatThePluginOffersAndNullOtherwise) {
  auto plugin = loader_.load(LOADER_LIFECYCLE, "loader-lifecycle");
  const void* offered = plugin->extension(LIFECYCLE_PROBE_ID);
  ASSERT_NE(offered, nullptr);
  EXPECT_EQ(static_cast<const lifecycle_probe*>(offered)->struct_size, sizeof(lifecycle_probe));
  EXPECT_EQ(plugin->extension("org.nightshift.test.no-such-extension"), nullptr);
  EXPECT_EQ(plugin->extension(""), nullptr);
}

TEST_F(PluginLoaderTest, DeinitRunsOnceWhenTheLastReferenceGoes) {
  int deinit_calls = 0;
  auto plugin = loader_.load(LOADER_LIFECYCLE, "loader-lifecycle");
  probe_of(*plugin).count_deinit_in(&deinit_calls);
  auto second_reference = plugin;
  plugin.reset();
  EXPECT_EQ(deinit_calls, 0) << "a run still holds the plugin";
  second_reference.reset();
  EXPECT_EQ(deinit_calls, 1);
}

TEST_F(PluginLoaderTest, APluginWhoseInitRefusesIsRefusedWithItsMessageAndNotDeinitialised) {
  expect_refused(LOADER_LIFECYCLE_REFUSES, "loader-lifecycle",
                 "its init refused to load: the licence file lifecycle.key is missing");
  // Refused, the library was unloaded: loading a good build at the same
  // path works (and its init runs afresh).
  const fs::path library = temp_ / "agent" / "libloader-lifecycle.so";
  replace_file(LOADER_LIFECYCLE_REFUSES, library);
  expect_refused(library, "loader-lifecycle", "the licence file lifecycle.key is missing");
  replace_file(LOADER_LIFECYCLE, library);
  auto plugin = loader_.load(library, "loader-lifecycle");
  EXPECT_EQ(probe_of(*plugin).init_calls(), 1u);
}

TEST_F(PluginLoaderTest, AnInitThatRefusesWithoutAMessageIsRefusedAndSaysSo) {
  expect_refused(LOADER_LIFECYCLE_SILENT, "loader-lifecycle",
                 "its init refused to load without saying why");
}

TEST_F(PluginLoaderTest, RefusesAnEntryTableWhoseReservedFieldIsSet) {
  expect_refused(LOADER_ENTRY_RESERVED, "loader-lifecycle",
                 "its entry table's reserved0 is 7; it must be 0");
}

TEST_F(PluginLoaderTest, RefusesADescriptorWhoseReservedFieldIsSet) {
  expect_refused(LOADER_DESCRIPTOR_RESERVED, "loader-lifecycle",
                 "its descriptor's reserved0 is 3; it must be 0");
}

TEST_F(PluginLoaderTest, AnAgentWithoutLifecycleMembersHasNoneAndOffersNoExtension) {
  // loader-good is built with the C++ layer and declares no lifecycle members.
  auto plugin = loader_.load(LOADER_GOOD, "loader-good");
  EXPECT_EQ(plugin->entry().init, nullptr);
  EXPECT_EQ(plugin->entry().deinit, nullptr);
  EXPECT_EQ(plugin->extension(LIFECYCLE_PROBE_ID), nullptr);
}

}  // namespace
}  // namespace nightshift
