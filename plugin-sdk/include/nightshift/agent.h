/*
 * Nightshift agent ABI, major version 1.
 *
 * This is the whole binary contract between the Nightshift host and an agent
 * plugin. It is plain C so that a plugin built by another compiler, another
 * standard library, or against an older v1 header still loads.
 *
 * Rules that every declaration below follows:
 *
 *  - Versioning. A plugin exports exactly one entry function per ABI major,
 *    named nightshift_agent_entry_v<MAJOR>. The host refuses a plugin of a
 *    different major and loads any minor of its own major.
 *  - Growth. Every struct starts with `uint32_t struct_size`, set by the side
 *    that fills the struct. Fields are only ever appended. A reader checks
 *    that a field lies inside struct_size (NIGHTSHIFT_HAS_FIELD) before it
 *    touches it; a field outside it is treated as absent.
 *  - Strings cross as pointer + length (in bytes, UTF-8, not necessarily
 *    NUL-terminated). The side that made a string owns it; it is valid for the
 *    duration of the call (or for the lifetime stated on the member). The
 *    receiver copies what it wants to keep.
 *  - Memory allocated on one side is never freed on the other.
 *  - No exception and no longjmp crosses this boundary in either direction.
 *    Host callbacks never throw; the C++ layer (agent.hpp) catches everything
 *    thrown by agent code and reports it through nightshift_run.set_error.
 *  - Reserved fields. A `reserved0` in a struct the plugin makes is zero; the
 *    host refuses a plugin that sets one, so that a later minor can give it a
 *    meaning without older plugins' garbage being taken for it.
 *  - Each block of appended fields opens with a comment naming the minor that
 *    added it ("Added in ABI 1.1"), as SQLite's sqlite3ext.h does.
 *  - Thread tags on every function pointer:
 *      [run-thread]   only on the thread the host called run() on, during run()
 *      [thread-safe]  from any thread, during run()
 *      [any-thread]   from any thread, at any time while the library is loaded
 *      [lifecycle]    from any thread, but never at the same time as any other
 *                     call into the plugin (see init and deinit below)
 *
 * Lifecycle of a loaded library, in the manner of CLAP's entry:
 *   1. the host loads the library and calls nightshift_agent_entry_v1(), then
 *      reads the entry table and the descriptor (and checks them);
 *   2. init(), when the plugin has one; a plugin that refuses is not used;
 *   3. get_extension() and run(), any number of times, runs possibly at once;
 *   4. deinit(), when the plugin has one and init succeeded, after every run
 *      has returned, just before the library is unloaded.
 * This happens once per process that loads the library (a run in process
 * isolation loads it in its own worker process). After deinit the library may
 * stay mapped and be initialised again.
 *
 * The layout of every struct is pinned by static assertions at the end of this
 * header, checked both when compiled as C11 and as C++.
 */
#ifndef NIGHTSHIFT_AGENT_H
#define NIGHTSHIFT_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI this header describes. A host accepts any minor of its major. */
#define NIGHTSHIFT_ABI_MAJOR 1
#define NIGHTSHIFT_ABI_MINOR 1

/* The symbol a v1 plugin exports (see nightshift_agent_entry_v1 below). */
#define NIGHTSHIFT_ENTRY_SYMBOL_V1 "nightshift_agent_entry_v1"
/* Prefix shared by the entry symbols of every ABI major. */
#define NIGHTSHIFT_ENTRY_SYMBOL_PREFIX "nightshift_agent_entry_v"

/* True when `field` of the struct pointed to by `ptr` lies inside the
 * struct_size its producer wrote, i.e. the producer knew about the field. */
#define NIGHTSHIFT_HAS_FIELD(ptr, type, field) \
  ((ptr)->struct_size >= offsetof(type, field) + sizeof(((type*)0)->field))

/* Symbol visibility for the one exported entry function. */
#if defined(_WIN32)
#define NIGHTSHIFT_EXPORT __declspec(dllexport)
#else
#define NIGHTSHIFT_EXPORT __attribute__((visibility("default")))
#endif

/* Log levels, in increasing severity. Values are fixed by the ABI. */
enum {
  NIGHTSHIFT_LOG_TRACE = 0,
  NIGHTSHIFT_LOG_DEBUG = 1,
  NIGHTSHIFT_LOG_INFO = 2,
  NIGHTSHIFT_LOG_WARN = 3,
  NIGHTSHIFT_LOG_ERROR = 4
};

/* What an agent's run() returns. Values are fixed by the ABI. */
enum {
  /* The agent finished its work (or stopped early because it was asked to:
   * the host tells the two apart by whether a stop was requested). */
  NIGHTSHIFT_RUN_OK = 0,
  /* The agent failed. It should have called set_error first; if it did not,
   * the host records a generic message. */
  NIGHTSHIFT_RUN_FAILED = 1
};

/*
 * One run of an agent, as the host presents it to the plugin.
 *
 * Made and owned by the host. It is valid from the moment run() is called
 * until run() returns; the plugin must not keep the pointer, nor any pointer
 * read from it, beyond that. Every function takes the run as its first
 * argument.
 */
typedef struct nightshift_run {
  uint32_t struct_size;
  uint32_t reserved0; /* zero; keeps the pointers below 8-byte aligned */

  /* Opaque to the plugin: the host's own state for this run. */
  void* host_data;

  /* The run's id (a UUID in text form). Host-owned, valid during run(). */
  const char* instance_id;
  size_t instance_id_size;

  /* The task text the run was started with; size 0 when there is none.
   * Host-owned, valid during run(). */
  const char* task;
  size_t task_size;

  /* The merged parameters as one JSON object (manifest defaults, then each
   * remix in its chain, then the start request). Always contains the string
   * member "instructions". Host-owned, valid during run(). */
  const char* params_json;
  size_t params_json_size;

  /* The host's workspace directory, an absolute path. Agents that touch
   * files use it as their working directory. Host-owned, valid during run(). */
  const char* workspace;
  size_t workspace_size;

  /* [thread-safe] Appends one entry to the run's log. `level` is one of
   * NIGHTSHIFT_LOG_*; any other value is recorded as INFO. The host copies
   * the message before returning and never blocks on disk or clients: when
   * the run's log cap is reached, further entries are counted and dropped. */
  void (*log)(const struct nightshift_run* run, int32_t level, const char* message,
              size_t message_size);

  /* [thread-safe] Reports progress as a fraction in [0, 1]; values outside
   * are clamped, NaN is ignored. Cheap to call often: the host coalesces. */
  void (*progress)(const struct nightshift_run* run, double fraction);

  /* [thread-safe] True once the run has been asked to stop (by a client, by
   * the run's time limit, or by host shutdown). It never becomes false again.
   * The agent should return from run() soon after. */
  bool (*cancelled)(const struct nightshift_run* run);

  /* [run-thread] Sleeps up to `milliseconds`, waking at once when a stop is
   * asked. Returns true when the full time elapsed, false when it woke
   * because of a stop (or a stop had already been asked). */
  bool (*sleep_for)(const struct nightshift_run* run, uint64_t milliseconds);

  /* [run-thread] Sets the run's result to the given JSON text, replacing any
   * earlier one. The host copies it. Returns false (and keeps the earlier
   * result) when the text is not valid JSON. */
  bool (*set_result_json)(const struct nightshift_run* run, const char* json, size_t json_size);

  /* [run-thread] Sets the message the run fails with when run() returns
   * NIGHTSHIFT_RUN_FAILED, replacing any earlier one. The host copies it. */
  void (*set_error)(const struct nightshift_run* run, const char* message, size_t message_size);

  /* ---- Added in ABI 1.1. A v1.0 host does not fill these: check
   * NIGHTSHIFT_HAS_FIELD(run, nightshift_run, <field>) before calling. ---- */

  /* [run-thread] Waits up to `timeout_ms` for the next message sent to the
   * run (POST /background-agents/{id}/messages) and hands it to `receive`
   * (called once, on this thread, before next_message returns; the text is
   * host-owned and valid only during that call: copy it). Messages arrive in
   * the order they were sent, each once. Returns true when a message was
   * handed over; false when none came within the timeout, or at once when a
   * stop has been asked. Only agents whose manifest says "messages": true
   * are sent messages. */
  bool (*next_message)(const struct nightshift_run* run, uint64_t timeout_ms,
                       void (*receive)(void* context, const char* text, size_t text_size),
                       void* context);

  /* [thread-safe] Adds one model answer's token counts to the run's totals,
   * which the host shows as the run's `usage`. Call it once per answer with
   * that answer's counts (never with running totals). */
  void (*report_usage)(const struct nightshift_run* run, uint64_t prompt_tokens,
                       uint64_t completion_tokens);
} nightshift_run;

/*
 * What a plugin says about itself. Made and owned by the plugin; it and the
 * strings it points to live as long as the library is loaded (static storage).
 * The host checks `name` against the agent's manifest.
 */
typedef struct nightshift_agent_descriptor {
  uint32_t struct_size;
  uint32_t reserved0; /* zero: the host refuses a plugin that sets it */

  /* The agent's name, as in agent.json (e.g. "sleep"). */
  const char* name;
  size_t name_size;

  /* The agent's version, e.g. "1.0.0". */
  const char* version;
  size_t version_size;

  /* One sentence saying what the agent does. */
  const char* description;
  size_t description_size;
} nightshift_agent_descriptor;

/* ---- Added in ABI 1.1: what init() is given. ---------------------------- */

/*
 * What the host tells a plugin about itself when it initialises it. Made and
 * owned by the host; valid only during the init() call (copy what you keep).
 */
typedef struct nightshift_host_info {
  uint32_t struct_size;

  /* The ABI the host implements (its NIGHTSHIFT_ABI_MAJOR / _MINOR). A plugin
   * built against a newer minor can tell here which fields the host fills. */
  uint32_t abi_major;
  uint32_t abi_minor;
  uint32_t reserved0; /* zero */

  /* The host's version, e.g. "0.1.0". */
  const char* host_version;
  size_t host_version_size;

  /* The plugin library's own file, an absolute path as found in the agent's
   * folder (so files shipped beside it are found from it). */
  const char* plugin_path;
  size_t plugin_path_size;
} nightshift_host_info;

/*
 * Where init() reports why it refuses to load. Made and owned by the host;
 * valid only during the init() call.
 */
typedef struct nightshift_init_error {
  uint32_t struct_size;
  uint32_t reserved0; /* zero */

  /* Opaque to the plugin: the host's own state for this call. */
  void* host_data;

  /* [lifecycle] Sets the message the plugin is refused with (UTF-8, pointer +
   * length), replacing an earlier one. The host copies it before returning.
   * Only meaningful when init() then returns false. */
  void (*set)(const struct nightshift_init_error* error, const char* message,
              size_t message_size);
} nightshift_init_error;

/*
 * The table a plugin hands to the host. Made and owned by the plugin, in
 * static storage: it lives as long as the library is loaded.
 */
typedef struct nightshift_agent_entry {
  uint32_t struct_size;

  /* The ABI the plugin was built against: abi_major must equal the major in
   * the entry function's name; abi_minor is the header's NIGHTSHIFT_ABI_MINOR. */
  uint32_t abi_major;
  uint32_t abi_minor;
  uint32_t reserved0; /* zero: the host refuses a plugin that sets it */

  /* The plugin's descriptor; never NULL. */
  const nightshift_agent_descriptor* descriptor;

  /* [run-thread] Runs the agent once, to completion, on the calling thread.
   * The host calls it on a dedicated thread per run, possibly for many runs
   * of the same plugin at once, so it must be reentrant. A thread whose run
   * has returned may later run another run of the same library (never of
   * another one): keep no per-run state in thread_local variables, and take
   * back what the run changes of its thread (a signal mask, a scheduling
   * policy); the host sets the global locale again itself. Returns
   * NIGHTSHIFT_RUN_OK or NIGHTSHIFT_RUN_FAILED. Must not throw. */
  int32_t (*run)(const nightshift_run* run);

  /* ---- Added in ABI 1.1. All optional: NULL when the plugin has none. A
   * v1.0 plugin's struct_size ends before them, and the host treats them as
   * NULL then. ---- */

  /* [lifecycle] Called once after loading, before any run and any
   * get_extension() call, with what the host says about itself (host-owned,
   * valid during the call). Returns true to be used; false to refuse, after
   * writing why through error->set (the host lists the agent as unavailable
   * with that message). Should be quick: the host waits for it. Must not
   * throw. */
  bool (*init)(const nightshift_host_info* host, const nightshift_init_error* error);

  /* [lifecycle] Called once before the library is unloaded, only when init()
   * returned true (or the plugin has no init), after every run has returned.
   * Releases what init() acquired. Must not throw. */
  void (*deinit)(void);

  /* [any-thread] Returns the plugin's extension with the given id (UTF-8,
   * pointer + length, host-owned, valid during the call), or NULL when the
   * plugin does not offer it. Ids are reverse-DNS-like strings, e.g.
   * "com.example.cache"; the struct an id names, and its version, are fixed
   * by whoever defines the id. The pointer is plugin-owned and valid until
   * deinit() (or until the library is unloaded). Called only after init()
   * succeeded. */
  const void* (*get_extension)(const char* id, size_t id_size);
} nightshift_agent_entry;

/*
 * [any-thread] The one symbol a v1 plugin exports. Returns the plugin's entry
 * table (static storage; never freed), or NULL when the plugin cannot work
 * in this process, in which case the host refuses it. The host calls it once
 * per load, right after loading the library.
 */
typedef const nightshift_agent_entry* (*nightshift_agent_entry_fn)(void);

#if defined(NIGHTSHIFT_BUILDING_AGENT)
NIGHTSHIFT_EXPORT const nightshift_agent_entry* nightshift_agent_entry_v1(void);
#endif

/* ---- Layout pins (x86-64 / aarch64 LP64). Changing any of these is an ABI
 * break: append fields instead. -------------------------------------------- */
#if defined(__LP64__) || defined(_LP64)
#ifdef __cplusplus
#define NIGHTSHIFT_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define NIGHTSHIFT_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif
NIGHTSHIFT_STATIC_ASSERT(offsetof(nightshift_run, host_data) == 8, "nightshift_run layout");
NIGHTSHIFT_STATIC_ASSERT(offsetof(nightshift_run, instance_id) == 16, "nightshift_run layout");
NIGHTSHIFT_STATIC_ASSERT(offsetof(nightshift_run, task) == 32, "nightshift_run layout");
NIGHTSHIFT_STATIC_ASSERT(offsetof(nightshift_run, params_json) == 48, "nightshift_run layout");
NIGHTSHIFT_STATIC_ASSERT(offsetof(nightshift_run, workspace) == 64, "nightshift_run layout");
NIGHTSHIFT_STATIC_ASSERT(offsetof(nightshift_run, log) == 80, "nightshift_run layout");
NIGHTSHIFT_STATIC_ASSERT(offsetof(nightshift_run, progress) == 88, "nightshift_run layout");
NIGHTSHIFT_STATIC_ASSERT(offsetof(nightshift_run, cancelled) == 96, "nightshift_run layout");
NIGHTSHIFT_STATIC_ASSERT(offsetof(nightshift_run, sleep_for) == 104, "nightshift_run layout");
NIGHTSHIFT_STATIC_ASSERT(offsetof(nightshift_run, set_result_json) == 112, "nightshift_run layout");
NIGHTSHIFT_STATIC_ASSERT(offsetof(nightshift_run, set_error) == 120, "nightshift_run layout");
NIGHTSHIFT_STATIC_ASSERT(offsetof(nightshift_run, next_message) == 128, "nightshift_run layout");
NIGHTSHIFT_STATIC_ASSERT(offsetof(nightshift_run, report_usage) == 136, "nightshift_run layout");
NIGHTSHIFT_STATIC_ASSERT(sizeof(nightshift_run) == 144, "nightshift_run v1.1 size");
NIGHTSHIFT_STATIC_ASSERT(offsetof(nightshift_agent_descriptor, name) == 8,
                         "nightshift_agent_descriptor layout");
NIGHTSHIFT_STATIC_ASSERT(offsetof(nightshift_agent_descriptor, version) == 24,
                         "nightshift_agent_descriptor layout");
NIGHTSHIFT_STATIC_ASSERT(offsetof(nightshift_agent_descriptor, description) == 40,
                         "nightshift_agent_descriptor layout");
NIGHTSHIFT_STATIC_ASSERT(sizeof(nightshift_agent_descriptor) == 56,
                         "nightshift_agent_descriptor v1.0 size");
NIGHTSHIFT_STATIC_ASSERT(offsetof(nightshift_agent_entry, abi_major) == 4,
                         "nightshift_agent_entry layout");
NIGHTSHIFT_STATIC_ASSERT(offsetof(nightshift_agent_entry, abi_minor) == 8,
                         "nightshift_agent_entry layout");
NIGHTSHIFT_STATIC_ASSERT(offsetof(nightshift_agent_entry, descriptor) == 16,
                         "nightshift_agent_entry layout");
NIGHTSHIFT_STATIC_ASSERT(offsetof(nightshift_agent_entry, run) == 24,
                         "nightshift_agent_entry layout");
NIGHTSHIFT_STATIC_ASSERT(offsetof(nightshift_agent_entry, init) == 32,
                         "nightshift_agent_entry layout");
NIGHTSHIFT_STATIC_ASSERT(offsetof(nightshift_agent_entry, deinit) == 40,
                         "nightshift_agent_entry layout");
NIGHTSHIFT_STATIC_ASSERT(offsetof(nightshift_agent_entry, get_extension) == 48,
                         "nightshift_agent_entry layout");
NIGHTSHIFT_STATIC_ASSERT(sizeof(nightshift_agent_entry) == 56, "nightshift_agent_entry v1.1 size");
NIGHTSHIFT_STATIC_ASSERT(offsetof(nightshift_host_info, abi_major) == 4,
                         "nightshift_host_info layout");
NIGHTSHIFT_STATIC_ASSERT(offsetof(nightshift_host_info, abi_minor) == 8,
                         "nightshift_host_info layout");
NIGHTSHIFT_STATIC_ASSERT(offsetof(nightshift_host_info, host_version) == 16,
                         "nightshift_host_info layout");
NIGHTSHIFT_STATIC_ASSERT(offsetof(nightshift_host_info, plugin_path) == 32,
                         "nightshift_host_info layout");
NIGHTSHIFT_STATIC_ASSERT(sizeof(nightshift_host_info) == 48, "nightshift_host_info v1.1 size");
NIGHTSHIFT_STATIC_ASSERT(offsetof(nightshift_init_error, host_data) == 8,
                         "nightshift_init_error layout");
NIGHTSHIFT_STATIC_ASSERT(offsetof(nightshift_init_error, set) == 16,
                         "nightshift_init_error layout");
NIGHTSHIFT_STATIC_ASSERT(sizeof(nightshift_init_error) == 24, "nightshift_init_error v1.1 size");
#undef NIGHTSHIFT_STATIC_ASSERT
#endif

#ifdef __cplusplus
}
#endif

#endif /* NIGHTSHIFT_AGENT_H */
