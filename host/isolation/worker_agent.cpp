// The agent process of `nightshift-worker` (see worker.hpp): the plugin runs
// here with the same SDK callbacks as in the host, each one forwarded to the
// host as a frame; stop and messages come back the same way.

#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <deque>
#include <mutex>
#include <new>
#include <thread>

#include "isolation/worker.hpp"
#include "loader/plugin_loader.hpp"

namespace nightshift::isolation {

namespace {

// The run as this process sees it. One per process; the callbacks reach it
// through the C view's host_data.
struct WorkerRun {
  StartFrame start;
  nightshift_run c_run{};

  std::mutex write_mutex;  // one frame at a time on the socket

  std::mutex wait_mutex;
  std::condition_variable wait_cv;
  bool stop = false;                   // guarded by wait_mutex
  std::deque<std::string> messages;    // guarded by wait_mutex
  std::atomic<bool> stop_flag{false};  // the same as `stop`, for cancelled()

  // Sends one encoded frame. Frames are built before the lock is taken, so
  // nothing allocates while it is held.
  void send(const std::string& frame) {
    std::lock_guard lock(write_mutex);
    write_all(kWorkerSocketFd, frame);
  }

  void request_stop() {
    {
      std::lock_guard lock(wait_mutex);
      stop = true;
    }
    stop_flag.store(true);
    wait_cv.notify_all();
  }
};

SharedFlags* g_flags = nullptr;  // for the new-handler; set once before the plugin runs

WorkerRun& of(const nightshift_run* c_run) {
  return *static_cast<WorkerRun*>(c_run->host_data);
}

std::string_view text_of(const char* data, std::size_t size) {
  return data == nullptr ? std::string_view() : std::string_view(data, size);
}

// ---- the SDK callbacks, forwarded; none of them throws ----

void on_log(const nightshift_run* c_run, std::int32_t level, const char* message,
            std::size_t size) {
  try {
    std::string_view text = text_of(message, size);
    if (text.size() > kMaxPayload - 4) text = text.substr(0, kMaxPayload - 4);
    of(c_run).send(encode(LogFrame{level, std::string(text)}));
  } catch (...) {
    // Out of memory: the entry is lost, as in the host.
  }
}

void on_progress(const nightshift_run* c_run, double fraction) {
  try {
    of(c_run).send(encode_progress(fraction));
  } catch (...) {
  }
}

bool on_cancelled(const nightshift_run* c_run) {
  return of(c_run).stop_flag.load();
}

std::chrono::milliseconds bounded_wait(std::uint64_t milliseconds) {
  constexpr std::uint64_t kLongest = 365ull * 24 * 3600 * 1000;
  return std::chrono::milliseconds(std::min(milliseconds, kLongest));
}

bool on_sleep_for(const nightshift_run* c_run, std::uint64_t milliseconds) {
  WorkerRun& run = of(c_run);
  std::unique_lock lock(run.wait_mutex);
  if (milliseconds == 0) return !run.stop;
  return !run.wait_cv.wait_for(lock, bounded_wait(milliseconds), [&] { return run.stop; });
}

bool on_next_message(const nightshift_run* c_run, std::uint64_t timeout_ms,
                     void (*receive)(void* context, const char* text, std::size_t size),
                     void* context) {
  WorkerRun& run = of(c_run);
  std::string message;
  try {
    std::unique_lock lock(run.wait_mutex);
    if (run.stop) return false;
    const bool ready = run.wait_cv.wait_for(lock, bounded_wait(timeout_ms),
                                            [&] { return run.stop || !run.messages.empty(); });
    if (!ready || run.stop || run.messages.empty()) return false;
    message = std::move(run.messages.front());
    run.messages.pop_front();
  } catch (...) {
    return false;
  }
  // The host counts the messages the agent has not read (it refuses more
  // than its bound); this one is read.
  run.send(encode_empty(FrameType::message_read));
  if (receive != nullptr) receive(context, message.data(), message.size());
  return true;
}

void on_report_usage(const nightshift_run* c_run, std::uint64_t prompt_tokens,
                     std::uint64_t completion_tokens) {
  try {
    of(c_run).send(encode(UsageFrame{prompt_tokens, completion_tokens}));
  } catch (...) {
  }
}

bool on_set_result_json(const nightshift_run* c_run, const char* json, std::size_t size) {
  try {
    const std::string_view text = text_of(json, size);
    boost::system::error_code ec;
    boost::json::parse(text, ec);
    if (ec || text.size() > kMaxPayload) return false;
    of(c_run).send(encode_text(FrameType::result, text));
    return true;
  } catch (...) {
    return false;
  }
}

void on_set_error(const nightshift_run* c_run, const char* message, std::size_t size) {
  try {
    std::string_view text = text_of(message, size);
    if (text.size() > kMaxPayload) text = text.substr(0, kMaxPayload);
    of(c_run).send(encode_text(FrameType::error, text));
  } catch (...) {
  }
}

void bind_abi(WorkerRun& run) {
  nightshift_run& c = run.c_run;
  const StartFrame& s = run.start;
  c.struct_size = sizeof(nightshift_run);
  c.host_data = &run;
  c.instance_id = s.instance_id.c_str();
  c.instance_id_size = s.instance_id.size();
  c.task = s.task ? s.task->data() : nullptr;
  c.task_size = s.task ? s.task->size() : 0;
  c.params_json = s.params_json.data();
  c.params_json_size = s.params_json.size();
  c.workspace = s.workspace.data();
  c.workspace_size = s.workspace.size();
  c.log = &on_log;
  c.progress = &on_progress;
  c.cancelled = &on_cancelled;
  c.sleep_for = &on_sleep_for;
  c.set_result_json = &on_set_result_json;
  c.set_error = &on_set_error;
  c.next_message = &on_next_message;
  c.report_usage = &on_report_usage;
}

// Reads what the host sends while the agent runs: stop and messages. The
// host going away (end of stream, a broken frame) counts as a stop.
void read_host_frames(WorkerRun& run) {
  FrameDecoder decoder;
  char buf[16384];
  for (;;) {
    const ssize_t n = ::read(kWorkerSocketFd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    try {
      decoder.feed(std::string_view(buf, static_cast<std::size_t>(n)));
      while (auto frame = decoder.next()) {
        if (frame->type == FrameType::stop) {
          run.request_stop();
        } else if (frame->type == FrameType::message) {
          {
            std::lock_guard lock(run.wait_mutex);
            run.messages.push_back(std::move(frame->payload));
          }
          run.wait_cv.notify_all();
        }
      }
    } catch (...) {
      break;
    }
  }
  run.request_stop();
}

// Under a memory limit an allocation that fails is the limit's doing: the
// keeper tells the host, which names the limit rather than std::bad_alloc.
void out_of_memory() {
  if (g_flags != nullptr) g_flags->memory_exhausted.store(1);
  throw std::bad_alloc();
}

void apply_limits(const StartFrame& start) {
  if (start.memory_mib > 0) {
    const rlim_t bytes = static_cast<rlim_t>(start.memory_mib) << 20;
    const rlimit limit{bytes, bytes};
    ::setrlimit(RLIMIT_AS, &limit);
    std::set_new_handler(&out_of_memory);
  }
  if (start.cpu_seconds > 0) {
    // Soft below hard: SIGXCPU first, then SIGKILL a second later.
    const rlimit limit{static_cast<rlim_t>(start.cpu_seconds),
                       static_cast<rlim_t>(start.cpu_seconds + 1)};
    ::setrlimit(RLIMIT_CPU, &limit);
  }
}

}  // namespace

[[noreturn]] void run_agent_process(const StartFrame& start, SharedFlags* flags) {
  g_flags = flags;
  auto* run = new WorkerRun;  // lives until _exit; reader thread and callbacks use it
  run->start = start;
  bind_abi(*run);
  std::thread(read_host_frames, std::ref(*run)).detach();

  std::shared_ptr<const LoadedPlugin> plugin;
  try {
    PluginLoader loader{std::filesystem::path()};
    plugin = loader.load(start.plugin_path, start.plugin_name);
  } catch (const std::exception& e) {
    run->send(encode_text(FrameType::load_failed, e.what()));
    std::fflush(nullptr);
    ::_exit(0);
  }
  // The limits come after the load: the host's own checks must not fail
  // for lack of memory the agent would never have used.
  apply_limits(start);
  std::int32_t rc = NIGHTSHIFT_RUN_FAILED;
  try {
    rc = plugin->entry().run(&run->c_run);
  } catch (const std::exception& e) {
    run->send(encode_text(FrameType::error, e.what()));
  } catch (...) {
    run->send(
        encode_text(FrameType::error, "the agent threw an exception that is not a std::exception"));
  }
  try {
    plugin.reset();  // the plugin's deinit
  } catch (...) {
  }
  std::fflush(nullptr);
  run->send(encode_done(rc));
  ::_exit(0);
}

bool write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace nightshift::isolation
