#include "runs/process_agent.hpp"

#include "isolation/process_run.hpp"
#include "runs/run_manager.hpp"

namespace nightshift {

namespace {

class LiveRunSink final : public isolation::ProcessRunSink {
 public:
  explicit LiveRunSink(LiveRun& run) : run_(run), c_(run.abi_view()) {}

  void log(std::int32_t level, std::string_view text) override {
    c_.log(&c_, level, text.data(), text.size());
  }
  void output_line(std::string_view text) override { run_.log_from_host(LogLevel::warn, text); }
  void progress(double fraction) override { c_.progress(&c_, fraction); }
  bool set_result_json(std::string_view json) override {
    return c_.set_result_json(&c_, json.data(), json.size());
  }
  void set_error(std::string_view text) override { c_.set_error(&c_, text.data(), text.size()); }
  void report_usage(std::uint64_t prompt_tokens, std::uint64_t completion_tokens) override {
    c_.report_usage(&c_, prompt_tokens, completion_tokens);
  }
  std::optional<std::string> take_message() override {
    std::lock_guard lock(run_.wait_mutex);
    return run_.take_message_locked();
  }
  void message_read() override { run_.message_read(); }
  void set_waker(std::function<void()> waker) override { run_.set_message_waker(std::move(waker)); }

 private:
  LiveRun& run_;
  const nightshift_run c_;  // the run's C view, for the callbacks the agent's frames call
};

}  // namespace

AgentExit run_agent_in_process(LiveRun& run, const RunManagerOptions& options,
                               std::shared_ptr<isolation::Spawner> spawner) {
  isolation::ProcessRunSpec spec;
  spec.worker = options.worker_path;
  spec.spawner = std::move(spawner);
  spec.sandbox_tool = options.sandbox_tool;
  spec.plugin_path = run.plugin->path().string();
  spec.plugin_name = run.plugin->name();
  spec.instance_id = run.instance_id();
  spec.workspace = run.workspace ? *run.workspace : std::string();
  spec.params_json = run.params_json;
  spec.task = std::optional<std::string>(run.task());
  spec.limits = run.process_limits;
  spec.stop_grace = options.stop_grace;
  spec.kill_grace = options.kill_grace;
  LiveRunSink sink(run);
  const isolation::ProcessOutcome outcome =
      isolation::run_in_process(spec, sink, run.stop.get_token());
  if (outcome.log_note) {
    run.log_from_host(outcome.killed ? LogLevel::warn : LogLevel::error, *outcome.log_note);
  }
  return AgentExit{outcome.rc, outcome.failure, outcome.killed};
}

}  // namespace nightshift
