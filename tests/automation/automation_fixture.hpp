// A Host for the automation tests over one data directory (reopened to test
// restarts), with the built-in agents, the runs suite's test agents, and
// remixes written into its workspace.
#pragma once

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <memory>
#include <string>

#include "api/wire.hpp"
#include "every_run.hpp"
#include "host.hpp"
#include "test_support.hpp"

namespace nightshift::testing {

class AutomationHost {
 public:
  AutomationHost() { std::filesystem::create_directories(dir_ / "workspace"); }
  ~AutomationHost() { close(); }

  // Builds the Host (again, after close(): a restart over the same data).
  void open(AutomationOptions automation = {}, RunManagerOptions runs = {}) {
    HostOptions options;
    options.data_dir = dir_ / "data";
    options.workspace = dir_ / "workspace";
    options.installed_agent_dirs = {NIGHTSHIFT_BUILD_AGENTS_DIR, NIGHTSHIFT_RUNS_TEST_AGENTS_DIR};
    options.user_remix_dir = dir_ / "user-remix";
    runs.stop_grace = std::chrono::milliseconds(2000);
    options.runs = std::move(runs);
    options.automation = automation;
    host_ = std::make_unique<Host>(std::move(options));
    // As the API server does: webhook payloads carry the API's Run object.
    host_->automation().webhooks().set_run_json(
        [](const Run& run) { return api::wire::run(run, now_ms()); });
  }
  void close() {
    if (host_) host_->shutdown(std::chrono::milliseconds(2000));
    host_.reset();
  }

  void write_remix(const std::string& name, const std::string& front_matter) {
    write_file(dir_ / "workspace" / ".nightshift" / "remix" / (name + ".md"),
               "---\n" + front_matter + "\n---\n");
  }

  Host& host() { return *host_; }
  RunManager& runs() { return host_->runs(); }
  Automation& automation() { return host_->automation(); }
  std::filesystem::path database() const { return dir_ / "data" / "nightshift.db"; }

  // Every run in the store (active, then history newest first), each once.
  std::vector<Run> all_runs() { return every_run(runs()); }

  std::optional<Run> find_run(const std::function<bool(const Run&)>& predicate) {
    for (Run& run : all_runs()) {
      if (predicate(run)) return run;
    }
    return std::nullopt;
  }

  // Waits for a run matching `predicate` and returns it (or nullopt).
  std::optional<Run> wait_for_run(const std::function<bool(const Run&)>& predicate,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    std::optional<Run> found;
    wait_until([&] { return (found = find_run(predicate)).has_value(); }, timeout,
               std::chrono::milliseconds(10));
    return found;
  }

  Run start(const std::string& agent, boost::json::object params = {},
            std::optional<std::string> task = std::nullopt) {
    StartRequest request;
    request.agent_id = agent;
    request.params = std::move(params);
    request.task = std::move(task);
    return runs().start(request);
  }

  Run finish(const Run& run) {
    auto done = runs().wait(run.instance_id, std::chrono::seconds(30));
    EXPECT_TRUE(done && is_terminal(done->status)) << run.instance_id;
    return done.value_or(run);
  }

 private:
  TempDir dir_;
  std::unique_ptr<Host> host_;
};

}  // namespace nightshift::testing
