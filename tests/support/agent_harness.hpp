// An in-test host for unit-testing one agent plugin without the engine: it
// loads a plugin library, runs the agent on its own thread with a
// nightshift_run whose callbacks record everything, and lets the test stop
// the run and wait for it with a deadline.
//
//   nightshift::testing::AgentLibrary library(path_to_libecho_so);
//   nightshift::testing::AgentRunOptions options;
//   options.task = "hello";
//   auto outcome = nightshift::testing::run_agent(library, options);
//   EXPECT_EQ(outcome.return_code, NIGHTSHIFT_RUN_OK);
//
// It is a test utility, not the host (that lives in host/): it follows the
// contract of agent.h closely enough to check a plugin against it, and records
// what the agent did as it did it (log levels and progress values are kept as
// the agent passed them; the real host clamps them).
//
// Needs: nightshift/agent.h on the include path (nightshift_sdk_c) and
// Boost::json linked, which it uses to check set_result_json's text.
#pragma once

#include <dlfcn.h>
#include <nightshift/agent.h>

#include <algorithm>
#include <atomic>
#include <boost/json/parse.hpp>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace nightshift::testing {

// A plugin library, loaded with RTLD_NOW | RTLD_LOCAL as the host does, with
// its entry table checked. Unloaded when destroyed: keep it alive longer than
// every AgentHarness that runs it.
class AgentLibrary {
 public:
  explicit AgentLibrary(const std::filesystem::path& library) : path_(library) {
    handle_ = ::dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle_ == nullptr) {
      const char* reason = ::dlerror();
      throw std::runtime_error(library.string() + ": " + (reason ? reason : "dlopen failed"));
    }
    try {
      entry_ = resolve_entry();
    } catch (...) {
      ::dlclose(handle_);
      throw;
    }
  }
  ~AgentLibrary() { ::dlclose(handle_); }
  AgentLibrary(const AgentLibrary&) = delete;
  AgentLibrary& operator=(const AgentLibrary&) = delete;

  const std::filesystem::path& path() const noexcept { return path_; }
  const nightshift_agent_entry& entry() const noexcept { return *entry_; }
  std::string_view name() const noexcept { return view(descriptor().name, descriptor().name_size); }
  std::string_view version() const noexcept {
    return view(descriptor().version, descriptor().version_size);
  }
  std::string_view description() const noexcept {
    return view(descriptor().description, descriptor().description_size);
  }

 private:
  const nightshift_agent_entry* resolve_entry() const {
    void* symbol = ::dlsym(handle_, NIGHTSHIFT_ENTRY_SYMBOL_V1);
    if (symbol == nullptr) fail("does not export " NIGHTSHIFT_ENTRY_SYMBOL_V1);
    const auto entry_fn = reinterpret_cast<nightshift_agent_entry_fn>(symbol);
    const nightshift_agent_entry* entry = entry_fn();
    if (entry == nullptr) fail("the entry function returned NULL");
    if (entry->abi_major != NIGHTSHIFT_ABI_MAJOR) {
      fail("built for agent ABI " + std::to_string(entry->abi_major) + "." +
           std::to_string(entry->abi_minor) + ", the harness supports ABI " +
           std::to_string(NIGHTSHIFT_ABI_MAJOR));
    }
    if (!NIGHTSHIFT_HAS_FIELD(entry, nightshift_agent_entry, run) || entry->run == nullptr ||
        entry->descriptor == nullptr) {
      fail("the entry table has no run function or no descriptor");
    }
    return entry;
  }
  [[noreturn]] void fail(const std::string& reason) const {
    throw std::runtime_error(path_.string() + ": " + reason);
  }
  const nightshift_agent_descriptor& descriptor() const noexcept { return *entry_->descriptor; }
  static std::string_view view(const char* data, std::size_t size) noexcept {
    return data == nullptr ? std::string_view() : std::string_view(data, size);
  }

  std::filesystem::path path_;
  void* handle_ = nullptr;
  const nightshift_agent_entry* entry_ = nullptr;
};

// What a run is started with.
struct AgentRunOptions {
  std::string task;                                    // empty: no task
  std::string params_json = R"({"instructions":""})";  // the host always sets "instructions"
  std::filesystem::path workspace = std::filesystem::current_path();
  std::string instance_id = "00000000-0000-4000-8000-000000000001";
  // Fill in the SDK 1.1 callbacks next_message and report_usage (a harness
  // acting as a 1.1 host); without it the agent sees a host without them.
  bool sdk_1_1 = false;
};

struct LogEntry {
  std::int32_t level = 0;
  std::string message;
  bool operator==(const LogEntry&) const = default;
};

// Everything a run did, as recorded by the harness.
struct AgentOutcome {
  bool finished = false;                   // run() returned before the deadline
  std::int32_t return_code = -1;           // NIGHTSHIFT_RUN_OK / _FAILED; -1 while not finished
  std::optional<std::string> error;        // the last set_error text
  std::optional<std::string> result_json;  // the last valid set_result_json text
  std::vector<LogEntry> logs;              // in the order they were logged
  std::vector<double> progress;            // in the order they were reported
  // Calls that broke agent.h's thread tags ([run-thread] from another thread),
  // e.g. "sleep_for called off the run thread". Empty for a correct plugin.
  std::vector<std::string> contract_violations;
  // SDK 1.1 (with AgentRunOptions::sdk_1_1): each report_usage call, and how
  // many of the sent messages the agent took.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> usage_reports;
  std::size_t messages_taken = 0;
};

// One run of one agent on its own thread. Destroying it stops the run and
// joins the thread (an agent that ignores the stop then blocks the test, which
// ctest's timeout reports).
class AgentHarness {
 public:
  AgentHarness(const AgentLibrary& library, AgentRunOptions options)
      : library_(library), state_(std::make_unique<State>(std::move(options))) {}
  ~AgentHarness() {
    stop();
    if (thread_.joinable()) thread_.join();
  }
  AgentHarness(const AgentHarness&) = delete;
  AgentHarness& operator=(const AgentHarness&) = delete;

  // Starts run() on a new thread. Call once.
  void start() {
    if (thread_.joinable()) throw std::logic_error("AgentHarness::start called twice");
    thread_ = std::thread([this] { run_on_this_thread(); });
  }

  // Asks the run to stop: cancelled() becomes true and sleep_for wakes at once.
  void stop() {
    {
      std::lock_guard lock(state_->mutex);
      state_->stop_requested = true;
    }
    state_->wake.notify_all();
  }

  // SDK 1.1: queues a message for the agent's next_message.
  void send_message(std::string text) {
    {
      std::lock_guard lock(state_->mutex);
      state_->messages.push_back(std::move(text));
    }
    state_->wake.notify_all();
  }

  // Waits up to `timeout` for run() to return; true when it did.
  bool wait(std::chrono::milliseconds timeout) {
    std::unique_lock lock(state_->mutex);
    return state_->wake.wait_for(lock, timeout, [this] { return state_->outcome.finished; });
  }

  // A snapshot of what the run has recorded so far (complete once finished).
  AgentOutcome outcome() const {
    std::lock_guard lock(state_->mutex);
    return state_->outcome;
  }
  std::vector<LogEntry> logs() const {
    std::lock_guard lock(state_->mutex);
    return state_->outcome.logs;
  }
  std::vector<double> progress() const {
    std::lock_guard lock(state_->mutex);
    return state_->outcome.progress;
  }

 private:
  // Shared between the test's thread and the run thread; every mutable
  // member is guarded by `mutex`. The run thread writes the outcome, the
  // test's thread reads snapshots and sets stop_requested.
  struct State {
    explicit State(AgentRunOptions opts) : options(std::move(opts)) {
      workspace_text = options.workspace.string();
    }
    AgentRunOptions options;
    std::string workspace_text;
    nightshift_run run{};
    std::thread::id run_thread;  // written before run() is called, then read-only
    mutable std::mutex mutex;
    std::condition_variable wake;  // stop requested, or run() returned
    bool stop_requested = false;
    AgentOutcome outcome;
    std::vector<std::string> messages;  // sent, not yet taken (SDK 1.1)
  };

  void run_on_this_thread() {
    State& state = *state_;
    state.run_thread = std::this_thread::get_id();
    state.run = make_run(state);
    const std::int32_t code = library_.entry().run(&state.run);
    {
      std::lock_guard lock(state.mutex);
      state.outcome.return_code = code;
      state.outcome.finished = true;
    }
    state.wake.notify_all();
  }

  static nightshift_run make_run(State& state) {
    nightshift_run run{};
    run.struct_size = sizeof(nightshift_run);
    run.host_data = &state;
    run.instance_id = state.options.instance_id.data();
    run.instance_id_size = state.options.instance_id.size();
    run.task = state.options.task.empty() ? nullptr : state.options.task.data();
    run.task_size = state.options.task.size();
    run.params_json = state.options.params_json.data();
    run.params_json_size = state.options.params_json.size();
    run.workspace = state.workspace_text.data();
    run.workspace_size = state.workspace_text.size();
    run.log = &on_log;
    run.progress = &on_progress;
    run.cancelled = &on_cancelled;
    run.sleep_for = &on_sleep_for;
    run.set_result_json = &on_set_result_json;
    run.set_error = &on_set_error;
    if (state.options.sdk_1_1) {
      run.next_message = &on_next_message;
      run.report_usage = &on_report_usage;
    }
    return run;
  }

  // ---- the host callbacks: noexcept, as agent.h requires ----
  static State& state_of(const nightshift_run* run) noexcept {
    return *static_cast<State*>(run->host_data);
  }
  static std::string text(const char* data, std::size_t size) {
    return data == nullptr ? std::string() : std::string(data, size);
  }
  // Records a [run-thread] call made from elsewhere. Caller holds the mutex.
  static void check_run_thread(State& state, const char* function) {
    if (std::this_thread::get_id() != state.run_thread) {
      state.outcome.contract_violations.push_back(std::string(function) +
                                                  " called off the run thread");
    }
  }

  static void on_log(const nightshift_run* run, std::int32_t level, const char* message,
                     std::size_t size) noexcept {
    State& state = state_of(run);
    std::lock_guard lock(state.mutex);
    state.outcome.logs.push_back(LogEntry{level, text(message, size)});
  }
  static void on_progress(const nightshift_run* run, double fraction) noexcept {
    State& state = state_of(run);
    std::lock_guard lock(state.mutex);
    state.outcome.progress.push_back(fraction);
  }
  static bool on_cancelled(const nightshift_run* run) noexcept {
    State& state = state_of(run);
    std::lock_guard lock(state.mutex);
    return state.stop_requested;
  }
  static bool on_sleep_for(const nightshift_run* run, std::uint64_t milliseconds) noexcept {
    State& state = state_of(run);
    // Capped so that the deadline arithmetic cannot overflow.
    constexpr std::uint64_t max_ms = 1000ull * 60 * 60 * 24 * 365;
    const auto duration = std::chrono::milliseconds(std::min(milliseconds, max_ms));
    std::unique_lock lock(state.mutex);
    check_run_thread(state, "sleep_for");
    return !state.wake.wait_for(lock, duration, [&] { return state.stop_requested; });
  }
  static bool on_set_result_json(const nightshift_run* run, const char* json,
                                 std::size_t size) noexcept {
    State& state = state_of(run);
    std::string candidate = text(json, size);
    boost::system::error_code parse_error;
    boost::json::parse(candidate, parse_error);
    std::lock_guard lock(state.mutex);
    check_run_thread(state, "set_result_json");
    if (parse_error) return false;
    state.outcome.result_json = std::move(candidate);
    return true;
  }
  static void on_set_error(const nightshift_run* run, const char* message,
                           std::size_t size) noexcept {
    State& state = state_of(run);
    std::lock_guard lock(state.mutex);
    check_run_thread(state, "set_error");
    state.outcome.error = text(message, size);
  }

  static bool on_next_message(const nightshift_run* run, std::uint64_t timeout_ms,
                              void (*receive)(void* context, const char* text, std::size_t size),
                              void* context) noexcept {
    State& state = state_of(run);
    constexpr std::uint64_t max_ms = 1000ull * 60 * 60 * 24 * 365;
    const auto timeout = std::chrono::milliseconds(std::min(timeout_ms, max_ms));
    std::unique_lock lock(state.mutex);
    check_run_thread(state, "next_message");
    state.wake.wait_for(lock, timeout,
                        [&] { return state.stop_requested || !state.messages.empty(); });
    if (state.stop_requested || state.messages.empty()) return false;
    std::string text = std::move(state.messages.front());
    state.messages.erase(state.messages.begin());
    ++state.outcome.messages_taken;
    lock.unlock();
    receive(context, text.data(), text.size());
    return true;
  }
  static void on_report_usage(const nightshift_run* run, std::uint64_t prompt_tokens,
                              std::uint64_t completion_tokens) noexcept {
    State& state = state_of(run);
    std::lock_guard lock(state.mutex);
    state.outcome.usage_reports.emplace_back(prompt_tokens, completion_tokens);
  }

  const AgentLibrary& library_;
  std::unique_ptr<State> state_;  // stable address: the run's host_data points at it
  std::thread thread_;            // the run thread; joined in the destructor
};

// A GoogleTest parameter name for a plugin path: "libsdk-probe.so" becomes
// "sdk_probe". Use as INSTANTIATE_TEST_SUITE_P(..., plugin_param_name).
struct PluginParamName {
  template <class ParamInfo>
  std::string operator()(const ParamInfo& info) const {
    std::string name = std::filesystem::path(info.param).stem().string();
    if (name.rfind("lib", 0) == 0) name.erase(0, 3);
    for (char& c : name) {
      if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    }
    return name;
  }
};

// Runs the agent to completion (or until `timeout`, after which it is stopped
// and the outcome says finished == false) and returns what it did.
inline AgentOutcome run_agent(const AgentLibrary& library, AgentRunOptions options,
                              std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  AgentHarness harness(library, std::move(options));
  harness.start();
  if (harness.wait(timeout)) return harness.outcome();
  AgentOutcome unfinished = harness.outcome();
  harness.stop();
  return unfinished;
}

}  // namespace nightshift::testing
