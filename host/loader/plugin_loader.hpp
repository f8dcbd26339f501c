// Loading agent plugins (shared libraries built against nightshift/agent.h).
//
// Thread safety: PluginLoader::load may be called from any thread at once;
// a LoadedPlugin is immutable after load and safe to share between threads.
#pragma once

#include <nightshift/agent.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace nightshift {

// A plugin that could not be loaded. what() names the file and the reason,
// e.g. "/x/libfoo.so: built for agent ABI 2.0, this host supports ABI 1".
class PluginLoadError : public std::runtime_error {
 public:
  PluginLoadError(const std::filesystem::path& file, const std::string& reason);
  const std::filesystem::path& file() const noexcept { return file_; }
  const std::string& reason() const noexcept { return reason_; }

 private:
  std::filesystem::path file_;
  std::string reason_;
};

// A loaded plugin library. The library stays mapped for as long as any
// shared_ptr to this object lives: a run holds one for its whole duration,
// so a rescan that replaces the plugin never unmaps code still running.
class LoadedPlugin {
 public:
  virtual ~LoadedPlugin() = default;

  // The library file as found in the agent's folder.
  virtual const std::filesystem::path& path() const noexcept = 0;
  virtual const std::string& name() const noexcept = 0;         // descriptor name
  virtual const std::string& version() const noexcept = 0;      // descriptor version
  virtual const std::string& description() const noexcept = 0;  // descriptor description
  virtual std::uint32_t abi_minor() const noexcept = 0;
  // The plugin's entry table; valid as long as this object lives.
  virtual const nightshift_agent_entry& entry() const noexcept = 0;
  // The plugin's extension with this id (agent.h, get_extension), or nullptr
  // when it offers none (always for a v1.0 plugin). Plugin-owned; valid as
  // long as this object lives. [thread-safe]
  virtual const void* extension(std::string_view id) const noexcept = 0;
};

// Identity of a file on disk, used to tell a rebuilt library from the one
// already loaded at the same path.
struct FileIdentity {
  std::uintmax_t device = 0;
  std::uintmax_t inode = 0;
  std::uintmax_t size = 0;
  std::int64_t mtime_ns = 0;
  bool operator==(const FileIdentity&) const = default;
};

class PluginLoader {
 public:
  // `scratch_dir`: where copies of rebuilt libraries are placed so that glibc
  // maps them afresh (dlopen returns the old handle for a path it knows).
  // Created on demand; the loader removes the copies it made. Copies left
  // behind by a loader that died without cleaning up (a crashed or killed
  // host) are removed here, at construction: a loader holds an flock on a
  // lock file named after its copies while it lives, so a lock file nobody
  // holds marks its copies as leftovers. Only regular files named as a
  // loader names them, owned by this user, directly in `scratch_dir` are
  // removed; symlinks and anything else are left alone.
  explicit PluginLoader(std::filesystem::path scratch_dir);
  ~PluginLoader();
  PluginLoader(const PluginLoader&) = delete;
  PluginLoader& operator=(const PluginLoader&) = delete;

  // Loads `library` with RTLD_NOW | RTLD_LOCAL, checks its ABI (and that its
  // reserved fields are zero), checks that its descriptor's name equals
  // `expected_name` (the manifest's), then calls the plugin's init (ABI 1.1)
  // with the host's version and the library's path; a plugin whose init
  // refuses is refused with its message. The plugin's deinit runs when the
  // last shared_ptr to the result goes, just before the library is unloaded.
  // Returns the same object again while the file is unchanged and still
  // loaded; a changed file (rebuilt) is loaded anew from a fresh copy.
  // Throws PluginLoadError on any refusal; never terminates the process.
  // [thread-safe]
  std::shared_ptr<const LoadedPlugin> load(const std::filesystem::path& library,
                                           const std::string& expected_name);

 private:
  struct CacheEntry {
    FileIdentity identity;
    std::weak_ptr<const LoadedPlugin> plugin;
  };

  std::filesystem::path make_scratch_copy(const std::filesystem::path& library);
  // Creates and locks this loader's lock file, once, before its first copy.
  void claim_copy_prefix(const std::filesystem::path& library);

  std::filesystem::path scratch_dir_;
  // Distinguishes this loader's copies from those of other loaders (or other
  // processes) sharing the scratch dir: "<pid>-<random hex>". Set before the
  // first copy, together with lock_fd_.
  std::string copy_prefix_;
  // The open, flock'ed "<copy_prefix_>.lock" in scratch_dir_, or -1 before
  // the first copy. Closed (and the file removed) in the destructor.
  int lock_fd_ = -1;
  // Held for the whole of a load, so that two threads loading the same file
  // get one plugin. Guards cache_, copy_prefix_, lock_fd_, copy_counter_
  // and copies_.
  std::mutex mutex_;
  std::unordered_map<std::string, CacheEntry> cache_;  // by absolute library path
  std::uint64_t copy_counter_ = 0;
  std::vector<std::filesystem::path> copies_;  // every copy made; removed in the destructor
};

}  // namespace nightshift
