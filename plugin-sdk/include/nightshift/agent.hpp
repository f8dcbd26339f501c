// Nightshift agent SDK: the header-only C++ layer over nightshift/agent.h.
//
//   #include <nightshift/agent.hpp>
//
//   class Hello : public nightshift::Agent {
//    public:
//     void run(nightshift::RunContext& ctx) override {
//       ctx.log(nightshift::Level::info, "hello " + ctx.task());
//       if (!ctx.sleep_for(std::chrono::milliseconds(200))) return;  // stop asked
//       ctx.set_result_json(R"({"ok": true})");
//     }
//   };
//   NIGHTSHIFT_AGENT(Hello)
//
// NIGHTSHIFT_AGENT(Class) takes the agent's name, version and description from
// NIGHTSHIFT_AGENT_NAME / _VERSION / _DESCRIPTION, which nightshift_add_agent()
// defines from agent.json, so the descriptor and the manifest cannot disagree.
// A plugin built some other way names them itself:
//   NIGHTSHIFT_AGENT(Hello, "hello", "1.0.0", "Says hello.")
//
// SDK 1.1: an agent class may also declare any of these static members, which
// NIGHTSHIFT_AGENT finds at compile time and wires into the entry table (an
// agent without them is built exactly as before):
//
//   class Hello : public nightshift::Agent {
//    public:
//     // Once after loading, before any run. Throw to refuse to load: the
//     // exception's message is what the host lists the agent as unavailable
//     // with.
//     static void init(const nightshift::HostInfo& host);
//     // Once before unloading, when init succeeded. Must be noexcept.
//     static void deinit() noexcept;
//     // The extension named `id`, or nullptr (see agent.h's get_extension).
//     static const void* get_extension(std::string_view id) noexcept;
//     void run(nightshift::RunContext& ctx) override;
//   };
//
// Everything here compiles into the plugin; nothing of it crosses the ABI but
// the C structs of agent.h. Every exception thrown by agent code (std or not)
// is caught in the plugin and turned into the run's error.
#ifndef NIGHTSHIFT_AGENT_HPP
#define NIGHTSHIFT_AGENT_HPP

#include <nightshift/agent.h>

#include <chrono>
#include <cstdint>
#include <exception>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace nightshift {

enum class Level : std::int32_t {
  trace = NIGHTSHIFT_LOG_TRACE,
  debug = NIGHTSHIFT_LOG_DEBUG,
  info = NIGHTSHIFT_LOG_INFO,
  warn = NIGHTSHIFT_LOG_WARN,
  error = NIGHTSHIFT_LOG_ERROR,
};

// Thrown by RunContext::fail(); fails the run with its message. Any other
// exception does the same with its what().
class AgentFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The run an agent is executing: what it was asked to do and the host's
// services. One per run; valid only inside Agent::run(). Methods marked
// [thread-safe] may be called from threads the agent starts, as long as those
// threads are finished before run() returns.
class RunContext {
 public:
  explicit RunContext(const nightshift_run& run) noexcept : run_(run) {}
  RunContext(const RunContext&) = delete;
  RunContext& operator=(const RunContext&) = delete;

  std::string_view instance_id() const noexcept {
    return view(run_.instance_id, run_.instance_id_size);
  }
  // The task text; empty when the run was started without one.
  std::string task() const { return std::string(task_view()); }
  std::string_view task_view() const noexcept { return view(run_.task, run_.task_size); }
  // The merged params as a JSON object, text form.
  std::string params_json() const {
    return std::string(view(run_.params_json, run_.params_json_size));
  }
  // The host's workspace directory (absolute).
  std::string workspace() const { return std::string(view(run_.workspace, run_.workspace_size)); }

  // [thread-safe] One log entry. Never blocks on disk or clients.
  void log(Level level, std::string_view message) const noexcept {
    run_.log(&run_, static_cast<std::int32_t>(level), message.data(), message.size());
  }
  void trace(std::string_view message) const noexcept { log(Level::trace, message); }
  void debug(std::string_view message) const noexcept { log(Level::debug, message); }
  void info(std::string_view message) const noexcept { log(Level::info, message); }
  void warn(std::string_view message) const noexcept { log(Level::warn, message); }
  void error(std::string_view message) const noexcept { log(Level::error, message); }

  // [thread-safe] Progress in [0, 1].
  void progress(double fraction) const noexcept { run_.progress(&run_, fraction); }

  // [thread-safe] True once a stop was asked (client, time limit, shutdown).
  bool cancelled() const noexcept { return run_.cancelled(&run_); }

  // Sleeps (rounded up to whole milliseconds), waking at once on a stop.
  // Returns false when woken by a stop, or when a stop was already asked.
  template <class Rep, class Period>
  bool sleep_for(std::chrono::duration<Rep, Period> duration) const noexcept {
    return run_.sleep_for(&run_, whole_milliseconds(duration));
  }

  // Sets the run's result (JSON text), replacing an earlier one. Throws
  // std::invalid_argument when the host finds it is not valid JSON, so the
  // mistake fails the run with a clear error instead of passing unnoticed.
  void set_result_json(std::string_view json) const {
    if (!run_.set_result_json(&run_, json.data(), json.size())) {
      constexpr std::size_t shown = 80;
      std::string message = "set_result_json: the result is not valid JSON: ";
      message += json.substr(0, shown);
      if (json.size() > shown) message += "...";
      throw std::invalid_argument(message);
    }
  }

  // ---- SDK 1.1 ----

  // What the host running this agent offers beyond ABI 1.0. A host older
  // than the SDK an agent was built with simply lacks the newer features.
  enum class Feature { messages, usage };
  bool host_supports(Feature feature) const noexcept {
    switch (feature) {
      case Feature::messages:
        return NIGHTSHIFT_HAS_FIELD(&run_, nightshift_run, next_message) &&
               run_.next_message != nullptr;
      case Feature::usage:
        return NIGHTSHIFT_HAS_FIELD(&run_, nightshift_run, report_usage) &&
               run_.report_usage != nullptr;
    }
    return false;
  }

  // Waits up to `timeout` for the next message sent to the run; nullopt when
  // none came in time, when a stop was asked, or when the host does not send
  // messages (see host_supports). Only for agents whose manifest says
  // "messages": true.
  template <class Rep, class Period>
  std::optional<std::string> next_message(std::chrono::duration<Rep, Period> timeout) const {
    if (!host_supports(Feature::messages)) return std::nullopt;
    std::optional<std::string> message;
    const auto receive = [](void* context, const char* text, std::size_t size) noexcept {
      try {
        static_cast<std::optional<std::string>*>(context)->emplace(view(text, size));
      } catch (...) {
        // Out of memory: the message is lost to this agent; it carries on.
      }
    };
    run_.next_message(&run_, whole_milliseconds(timeout), receive, &message);
    return message;
  }

  // [thread-safe] Adds one model answer's token counts to the run's usage.
  // Does nothing on a host without usage (see host_supports).
  void report_usage(std::uint64_t prompt_tokens, std::uint64_t completion_tokens) const noexcept {
    if (host_supports(Feature::usage)) {
      run_.report_usage(&run_, prompt_tokens, completion_tokens);
    }
  }

  // Fails the run with `message` (throws AgentFailure).
  [[noreturn]] void fail(const std::string& message) const { throw AgentFailure(message); }

  // The C view, for code that speaks the C ABI directly.
  const nightshift_run& c_run() const noexcept { return run_; }

 private:
  static std::string_view view(const char* data, std::size_t size) noexcept {
    return data == nullptr ? std::string_view() : std::string_view(data, size);
  }
  // Rounds up, so that a short positive sleep never becomes a 0 ms one;
  // negative is 0, and anything beyond what fits waits "forever" (until a stop).
  template <class Rep, class Period>
  static std::uint64_t whole_milliseconds(std::chrono::duration<Rep, Period> duration) noexcept {
    using double_ms = std::chrono::duration<double, std::milli>;
    if (!(double_ms(duration).count() > 0)) return 0;  // also NaN
    if (double_ms(duration).count() >= 9.0e18) return std::numeric_limits<std::uint64_t>::max();
    return static_cast<std::uint64_t>(
        std::chrono::ceil<std::chrono::milliseconds>(duration).count());
  }
  const nightshift_run& run_;
};

// What the host says about itself when it loads the plugin (SDK 1.1): handed
// to an agent class's static init(). Copies, so it may be kept.
struct HostInfo {
  std::string host_version;  // e.g. "1.1.0"
  std::string plugin_path;   // the plugin library's own file (absolute)
  std::uint32_t abi_major = 0;
  std::uint32_t abi_minor = 0;  // the host's ABI minor: what it offers

  // Reads the C struct, taking only the fields inside its struct_size.
  static HostInfo from_c(const nightshift_host_info& info) {
    HostInfo host;
    if (NIGHTSHIFT_HAS_FIELD(&info, nightshift_host_info, abi_minor)) {
      host.abi_major = info.abi_major;
      host.abi_minor = info.abi_minor;
    }
    if (NIGHTSHIFT_HAS_FIELD(&info, nightshift_host_info, host_version_size) &&
        info.host_version != nullptr) {
      host.host_version.assign(info.host_version, info.host_version_size);
    }
    if (NIGHTSHIFT_HAS_FIELD(&info, nightshift_host_info, plugin_path_size) &&
        info.plugin_path != nullptr) {
      host.plugin_path.assign(info.plugin_path, info.plugin_path_size);
    }
    return host;
  }
};

// Base class of a C++ agent. A new object is made for every run, on the
// run's thread, and destroyed there when run() returns.
class Agent {
 public:
  virtual ~Agent() = default;
  // Does the work. Return normally to complete (or to end after a stop);
  // throw to fail.
  virtual void run(RunContext& ctx) = 0;
};

namespace detail {

inline void report_error(const nightshift_run* run, std::string_view message) noexcept {
  run->set_error(run, message.data(), message.size());
}

// The body of the C entry's run(): builds the agent, runs it, and turns every
// exception into the run's error. Nothing escapes.
template <class AgentType>
std::int32_t run_agent(const nightshift_run* run) noexcept {
  try {
    RunContext ctx(*run);
    auto agent = std::make_unique<AgentType>();
    agent->run(ctx);
    return NIGHTSHIFT_RUN_OK;
  } catch (const std::exception& e) {
    report_error(run, e.what());
  } catch (const char* message) {  // throw "text";
    report_error(run, message != nullptr ? message : "the agent threw a null C string");
  } catch (const std::string& message) {
    report_error(run, message);
  } catch (...) {
    report_error(run, "the agent threw an exception that is not a std::exception");
  }
  return NIGHTSHIFT_RUN_FAILED;
}

// ---- SDK 1.1 lifecycle: the agent class's optional static members ----
// Only static members count: an agent's ordinary (non-static) method that
// happens to be called init is its own business, as it was before 1.1.

template <class AgentType>
concept declares_static_init = requires {
  &AgentType::init;
}
&&!std::is_member_pointer_v<decltype(&AgentType::init)>;
template <class AgentType>
concept has_static_init = requires {
  static_cast<void (*)(const HostInfo&)>(&AgentType::init);
};
template <class AgentType>
concept declares_static_deinit = requires {
  &AgentType::deinit;
}
&&!std::is_member_pointer_v<decltype(&AgentType::deinit)>;
template <class AgentType>
concept has_static_deinit = requires {
  static_cast<void (*)() noexcept>(&AgentType::deinit);
};
template <class AgentType>
concept declares_static_get_extension = requires {
  &AgentType::get_extension;
}
&&!std::is_member_pointer_v<decltype(&AgentType::get_extension)>;
template <class AgentType>
concept has_static_get_extension = requires {
  static_cast<const void* (*)(std::string_view) noexcept>(&AgentType::get_extension);
};

inline void report_init_error(const nightshift_init_error* error,
                              std::string_view message) noexcept {
  if (error != nullptr && NIGHTSHIFT_HAS_FIELD(error, nightshift_init_error, set) &&
      error->set != nullptr) {
    error->set(error, message.data(), message.size());
  }
}

// The C entry's init(): calls AgentType::init and turns every exception into
// the refusal's message. Nothing escapes.
template <class AgentType>
bool init_agent(const nightshift_host_info* host, const nightshift_init_error* error) noexcept {
  try {
    AgentType::init(host != nullptr ? HostInfo::from_c(*host) : HostInfo{});
    return true;
  } catch (const std::exception& e) {
    report_init_error(error, e.what());
  } catch (const char* message) {
    report_init_error(error, message != nullptr ? message : "init threw a null C string");
  } catch (const std::string& message) {
    report_init_error(error, message);
  } catch (...) {
    report_init_error(error, "init threw an exception that is not a std::exception");
  }
  return false;
}

template <class AgentType>
void deinit_agent() noexcept {
  AgentType::deinit();
}

template <class AgentType>
const void* agent_extension(const char* id, std::size_t id_size) noexcept {
  return AgentType::get_extension(id == nullptr ? std::string_view()
                                                : std::string_view(id, id_size));
}

// The entry table's init / deinit / get_extension for AgentType: its static
// members when it declares them, NULL otherwise. A static member of one of
// these names with another signature is a compile error rather than silently
// ignored.
template <class AgentType>
constexpr auto init_function() noexcept {
  static_assert(!declares_static_init<AgentType> || has_static_init<AgentType>,
                "NIGHTSHIFT_AGENT: the agent's init must be declared "
                "`static void init(const nightshift::HostInfo&)` (throw to refuse to load)");
  using Function = bool (*)(const nightshift_host_info*, const nightshift_init_error*);
  if constexpr (has_static_init<AgentType>) {
    return static_cast<Function>(&init_agent<AgentType>);
  } else {
    return static_cast<Function>(nullptr);
  }
}

template <class AgentType>
constexpr auto deinit_function() noexcept {
  static_assert(!declares_static_deinit<AgentType> || has_static_deinit<AgentType>,
                "NIGHTSHIFT_AGENT: the agent's deinit must be declared "
                "`static void deinit() noexcept` (nothing could report its failure)");
  using Function = void (*)();
  if constexpr (has_static_deinit<AgentType>) {
    return static_cast<Function>(&deinit_agent<AgentType>);
  } else {
    return static_cast<Function>(nullptr);
  }
}

template <class AgentType>
constexpr auto extension_function() noexcept {
  static_assert(!declares_static_get_extension<AgentType> || has_static_get_extension<AgentType>,
                "NIGHTSHIFT_AGENT: the agent's get_extension must be declared "
                "`static const void* get_extension(std::string_view id) noexcept`");
  using Function = const void* (*)(const char*, std::size_t);
  if constexpr (has_static_get_extension<AgentType>) {
    return static_cast<Function>(&agent_extension<AgentType>);
  } else {
    return static_cast<Function>(nullptr);
  }
}

constexpr std::size_t length(const char* s) noexcept {
  std::size_t n = 0;
  while (s[n] != '\0') ++n;
  return n;
}

}  // namespace detail
}  // namespace nightshift

#ifndef NIGHTSHIFT_AGENT_NAME
#define NIGHTSHIFT_AGENT_NAME ""
#endif
#ifndef NIGHTSHIFT_AGENT_VERSION
#define NIGHTSHIFT_AGENT_VERSION ""
#endif
#ifndef NIGHTSHIFT_AGENT_DESCRIPTION
#define NIGHTSHIFT_AGENT_DESCRIPTION ""
#endif

#define NIGHTSHIFT_AGENT_SELECT_(_1, _2, _3, _4, NAME, ...) NAME
// NIGHTSHIFT_AGENT(Class) or NIGHTSHIFT_AGENT(Class, "name", "version", "description").
// Defines the plugin's one exported entry function. Use once per plugin, at
// global scope.
#define NIGHTSHIFT_AGENT(...)                                                     \
  NIGHTSHIFT_AGENT_SELECT_(__VA_ARGS__, NIGHTSHIFT_AGENT_4_, NIGHTSHIFT_AGENT_3_, \
                           NIGHTSHIFT_AGENT_2_, NIGHTSHIFT_AGENT_1_, )            \
  (__VA_ARGS__)
#define NIGHTSHIFT_AGENT_1_(AgentClass)                                            \
  NIGHTSHIFT_AGENT_4_(AgentClass, NIGHTSHIFT_AGENT_NAME, NIGHTSHIFT_AGENT_VERSION, \
                      NIGHTSHIFT_AGENT_DESCRIPTION)
#define NIGHTSHIFT_AGENT_2_(AgentClass, name) \
  NIGHTSHIFT_AGENT_4_(AgentClass, name, NIGHTSHIFT_AGENT_VERSION, NIGHTSHIFT_AGENT_DESCRIPTION)
#define NIGHTSHIFT_AGENT_3_(AgentClass, name, version) \
  NIGHTSHIFT_AGENT_4_(AgentClass, name, version, NIGHTSHIFT_AGENT_DESCRIPTION)
#define NIGHTSHIFT_AGENT_4_(AgentClass, name, version, description)                              \
  static_assert(::nightshift::detail::length(name) > 0,                                          \
                "NIGHTSHIFT_AGENT: the agent has no name. Build it with nightshift_add_agent() " \
                "(which reads agent.json) or write NIGHTSHIFT_AGENT(Class, \"name\", "           \
                "\"version\", \"description\")");                                                \
  static_assert(::nightshift::detail::length(version) > 0,                                       \
                "NIGHTSHIFT_AGENT: the agent has no version");                                   \
  extern "C" NIGHTSHIFT_EXPORT const nightshift_agent_entry* nightshift_agent_entry_v1(void) {   \
    static const nightshift_agent_descriptor descriptor = {                                      \
        sizeof(nightshift_agent_descriptor),                                                     \
        0,                                                                                       \
        name,                                                                                    \
        ::nightshift::detail::length(name),                                                      \
        version,                                                                                 \
        ::nightshift::detail::length(version),                                                   \
        description,                                                                             \
        ::nightshift::detail::length(description)};                                              \
    static const nightshift_agent_entry entry = {                                                \
        sizeof(nightshift_agent_entry),                                                          \
        NIGHTSHIFT_ABI_MAJOR,                                                                    \
        NIGHTSHIFT_ABI_MINOR,                                                                    \
        0,                                                                                       \
        &descriptor,                                                                             \
        &::nightshift::detail::run_agent<AgentClass>,                                            \
        ::nightshift::detail::init_function<AgentClass>(),                                       \
        ::nightshift::detail::deinit_function<AgentClass>(),                                     \
        ::nightshift::detail::extension_function<AgentClass>()};                                 \
    return &entry;                                                                               \
  }

#endif  // NIGHTSHIFT_AGENT_HPP
