// `nightshift agent new`: the project it writes builds against the SDK as
// installed from this build, with no edits, and the agent it makes runs as a
// local agent of a real host, started and followed with the CLI.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <sstream>

#include "child_process.hpp"
#include "host_process.hpp"
#include "test_support.hpp"

namespace nightshift::testing {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;

struct Outcome {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::ostream& operator<<(std::ostream& os, const Outcome& outcome) {
  return os << "exit " << outcome.exit_code << "\n--- stdout:\n"
            << outcome.out << "--- stderr:\n"
            << outcome.err;
}

class AgentNew : public ::testing::Test {
 protected:
  // Runs a program to its end (or the deadline) in `working_dir`.
  Outcome run(const std::vector<std::string>& argv, const fs::path& working_dir,
              std::chrono::milliseconds timeout = 60s,
              const std::map<std::string, std::string>& environment = {}) {
    const std::string number = std::to_string(++commands_);
    const fs::path out = dir_ / ("cmd-" + number + ".out");
    const fs::path err = dir_ / ("cmd-" + number + ".err");
    Outcome outcome;
    {
      ChildProcess child(argv, environment_with(environment), out, err, working_dir);
      const auto code = child.wait_for_exit(timeout);
      outcome.exit_code = code ? *code : -1;
    }
    outcome.out = read_file(out);
    outcome.err = read_file(err);
    return outcome;
  }

  Outcome nightshift(const std::vector<std::string>& args,
                     const std::map<std::string, std::string>& environment = {}) {
    std::vector<std::string> argv{NIGHTSHIFT_TEST_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, dir_.path(), 60s, environment);
  }

  // Configures and builds `project` against the installed SDK only, with
  // this build's compilers and flags (a sanitizer build's host must be able
  // to load the result).
  void build(const fs::path& project) {
    const Outcome configure = run(
        {NIGHTSHIFT_TEST_CMAKE, "-S", project.string(), "-B", (project / "build").string(), "-G",
         NIGHTSHIFT_TEST_GENERATOR, "-DCMAKE_MAKE_PROGRAM=" NIGHTSHIFT_TEST_MAKE_PROGRAM,
         "-DCMAKE_PREFIX_PATH=" NIGHTSHIFT_TEST_SDK_PREFIX,
         "-DCMAKE_C_COMPILER=" NIGHTSHIFT_TEST_C_COMPILER,
         "-DCMAKE_CXX_COMPILER=" NIGHTSHIFT_TEST_CXX_COMPILER,
         "-DCMAKE_C_FLAGS=" NIGHTSHIFT_TEST_C_FLAGS, "-DCMAKE_CXX_FLAGS=" NIGHTSHIFT_TEST_CXX_FLAGS,
         "-DCMAKE_MODULE_LINKER_FLAGS=" NIGHTSHIFT_TEST_MODULE_LINKER_FLAGS,
         "-DCMAKE_BUILD_TYPE=RelWithDebInfo"},
        project, 300s);
    ASSERT_EQ(configure.exit_code, 0) << configure;
    const Outcome compile =
        run({NIGHTSHIFT_TEST_CMAKE, "--build", (project / "build").string()}, project, 300s);
    ASSERT_EQ(compile.exit_code, 0) << compile;
  }

  TempDir dir_;
  int commands_ = 0;
};

TEST_F(AgentNew, RefusesAnInvalidNameAndWritesNothing) {
  const Outcome outcome = nightshift({"agent", "new", "Not-Valid", "--dir", "project"});
  EXPECT_EQ(outcome.exit_code, 2) << outcome;
  EXPECT_NE(outcome.err.find("invalid agent name 'Not-Valid'"), std::string::npos) << outcome;
  EXPECT_FALSE(fs::exists(dir_ / "project"));
}

TEST_F(AgentNew, RefusesADirectoryThatIsNotEmptyAndLeavesItAlone) {
  write_file(dir_ / "project" / "notes.txt", "mine\n");
  const Outcome outcome = nightshift({"agent", "new", "tidy", "--dir", "project"});
  EXPECT_EQ(outcome.exit_code, 10) << outcome;
  EXPECT_NE(outcome.err.find("exists and is not empty"), std::string::npos) << outcome;
  EXPECT_EQ(read_file(dir_ / "project" / "notes.txt"), "mine\n");
  EXPECT_FALSE(fs::exists(dir_ / "project" / "agent.json"));
}

TEST_F(AgentNew, WritesIntoAnEmptyDirectoryAndDefaultsToOneNamedAfterTheAgent) {
  fs::create_directories(dir_ / "empty");
  EXPECT_EQ(nightshift({"agent", "new", "tidy", "--dir", "empty"}).exit_code, 0);
  EXPECT_TRUE(fs::is_regular_file(dir_ / "empty" / "agent.cpp"));
  const Outcome outcome = nightshift({"agent", "new", "sweep.up", "--lang", "c"});
  ASSERT_EQ(outcome.exit_code, 0) << outcome;
  for (const char* file : {"CMakeLists.txt", "agent.json", "agent.c", "README.md"}) {
    EXPECT_TRUE(fs::is_regular_file(dir_ / "sweep.up" / file)) << file;
  }
  const auto manifest = json::parse(read_file(dir_ / "sweep.up" / "agent.json")).as_object();
  EXPECT_EQ(manifest.at("name"), "sweep.up");
  EXPECT_EQ(manifest.at("library"), "libsweep.up.so");
  EXPECT_EQ(read_file(dir_ / "sweep.up" / "README.md").find("@"), std::string::npos)
      << "every placeholder is filled in";
}

// The whole path an author takes: new, build, install as a local agent, run.
class AgentNewProject : public AgentNew, public ::testing::WithParamInterface<const char*> {};

TEST_P(AgentNewProject, BuildsAgainstTheInstalledSdkAndRunsAsALocalAgent) {
  const std::string language = GetParam();
  const std::string name = "made-in-" + language;
  const fs::path project = dir_ / "project";
  const Outcome made = nightshift({"agent", "new", name, "--lang", language, "--dir", "project"});
  ASSERT_EQ(made.exit_code, 0) << made;
  ASSERT_NO_FATAL_FAILURE(build(project));

  // Installed as its README says: the agent folder, copied into the workspace.
  const fs::path agent_folder = project / "build" / "agents" / name;
  ASSERT_TRUE(fs::is_regular_file(agent_folder / ("lib" + name + ".so"))) << agent_folder;
  ASSERT_TRUE(fs::is_regular_file(agent_folder / "agent.json")) << agent_folder;
  const fs::path workspace = dir_ / "workspace";
  fs::create_directories(workspace / ".nightshift" / "agents");
  fs::copy(agent_folder, workspace / ".nightshift" / "agents" / name, fs::copy_options::recursive);

  HostProcess host(NIGHTSHIFT_TEST_BINARY, NIGHTSHIFT_TEST_AGENTS_DIR, dir_ / "host", workspace);
  const std::map<std::string, std::string> client{
      {"NIGHTSHIFT_URL", host.url()}, {"NIGHTSHIFT_TOKEN", host.token()}, {"NO_COLOR", "1"}};
  const Outcome agents = nightshift({"agents", "--json"}, client);
  ASSERT_EQ(agents.exit_code, 0) << agents;
  bool listed = false;
  // Kept in a variable: a range-for over a member of a temporary would
  // iterate a destroyed value.
  const json::value catalog = json::parse(agents.out);
  for (const auto& agent : catalog.at("agents").as_array()) {
    if (agent.at("id") != ("local:" + name).c_str()) continue;
    listed = true;
    EXPECT_EQ(agent.at("available"), true) << json::serialize(agent);
  }
  ASSERT_TRUE(listed) << agents;

  const Outcome started =
      nightshift({"start", "local:" + name, "--task", "sweep the \"floor\""}, client);
  ASSERT_EQ(started.exit_code, 0) << started << host.log();
  const std::string id = started.out.substr(0, started.out.find('\n'));
  const Outcome waited = nightshift({"wait", id}, client);
  ASSERT_EQ(waited.exit_code, 0) << waited;

  const Outcome logs = nightshift({"logs", id, "--json"}, client);
  ASSERT_EQ(logs.exit_code, 0) << logs;
  std::vector<std::string> info;
  std::string debug;
  std::istringstream lines(logs.out);
  for (std::string line; std::getline(lines, line);) {
    const auto entry = json::parse(line).as_object();
    const std::string message(entry.at("message").as_string());
    if (entry.at("level") == "info") info.push_back(message);
    if (entry.at("level") == "debug") debug = message;
  }
  EXPECT_EQ(info, (std::vector<std::string>{"working on: sweep the \"floor\"", "step 1/3",
                                            "step 2/3", "step 3/3", "done"}));
  EXPECT_EQ(debug.rfind("host " NIGHTSHIFT_TEST_VERSION ", params {", 0), 0u)
      << "init saw the host's version: " << debug;

  const Outcome shown = nightshift({"show", id, "--json"}, client);
  ASSERT_EQ(shown.exit_code, 0) << shown;
  const auto run = json::parse(shown.out).as_object();
  EXPECT_EQ(run.at("status"), "completed");
  EXPECT_EQ(run.at("result"), json::parse(R"({"task": "sweep the \"floor\"", "steps": 3})"));
}

INSTANTIATE_TEST_SUITE_P(Languages, AgentNewProject, ::testing::Values("cpp", "c"));

}  // namespace
}  // namespace nightshift::testing
