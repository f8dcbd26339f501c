#include "loader/plugin_loader.hpp"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/dll/library_info.hpp>
#include <boost/dll/shared_library.hpp>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <optional>
#include <random>
#include <system_error>
#include <utility>

namespace nightshift {

namespace fs = std::filesystem;

PluginLoadError::PluginLoadError(const fs::path& file, const std::string& reason)
    : std::runtime_error(file.string() + ": " + reason), file_(file), reason_(reason) {}

namespace {

constexpr std::string_view entry_prefix = NIGHTSHIFT_ENTRY_SYMBOL_PREFIX;

std::string text_of(const char* data, std::size_t size) {
  return data == nullptr ? std::string() : std::string(data, size);
}

#ifndef NIGHTSHIFT_VERSION
#error "NIGHTSHIFT_VERSION must be defined by the build"
#endif
constexpr std::string_view host_version = NIGHTSHIFT_VERSION;

// The sizes of the structs as ABI 1.0 defined them: the least a plugin of
// this major may hand out. Fields past these are read only within struct_size.
constexpr std::size_t entry_size_v1_0 =
    offsetof(nightshift_agent_entry, run) + sizeof(nightshift_agent_entry::run);
constexpr std::size_t descriptor_size_v1_0 = offsetof(nightshift_agent_descriptor, description) +
                                             sizeof(nightshift_agent_descriptor::description) +
                                             sizeof(nightshift_agent_descriptor::description_size);
static_assert(entry_size_v1_0 == 32 && descriptor_size_v1_0 == 56);

std::string abi_mismatch(std::uint64_t major) {
  return "built for agent ABI " + std::to_string(major) + ", this host supports ABI " +
         std::to_string(NIGHTSHIFT_ABI_MAJOR);
}

// The 1.1 members of an entry table, or NULL when the plugin's table ends
// before them (a v1.0 plugin) or leaves them empty.
template <class Member>
Member optional_member(const nightshift_agent_entry& entry, Member nightshift_agent_entry::*member,
                       std::size_t offset) {
  if (entry.struct_size < offset + sizeof(Member)) return nullptr;
  return entry.*member;
}
#define NIGHTSHIFT_ENTRY_MEMBER(entry, field) \
  optional_member(entry, &nightshift_agent_entry::field, offsetof(nightshift_agent_entry, field))

// The message an init refusal carries, collected through
// nightshift_init_error.set (which must not throw: the copy is guarded).
struct InitRefusal {
  std::string message;
  bool out_of_memory = false;
};

void set_init_error(const nightshift_init_error* error, const char* message,
                    std::size_t size) noexcept {
  auto& refusal = *static_cast<InitRefusal*>(error->host_data);
  try {
    refusal.message = text_of(message, size);
  } catch (...) {
    refusal.out_of_memory = true;
  }
}

class SharedLibraryPlugin final : public LoadedPlugin {
 public:
  SharedLibraryPlugin(fs::path path, std::optional<fs::path> scratch_copy,
                      boost::dll::shared_library library, const nightshift_agent_entry& entry)
      : path_(std::move(path)),
        scratch_copy_(std::move(scratch_copy)),
        library_(std::move(library)),
        entry_(entry),
        name_(text_of(entry.descriptor->name, entry.descriptor->name_size)),
        version_(text_of(entry.descriptor->version, entry.descriptor->version_size)),
        description_(text_of(entry.descriptor->description, entry.descriptor->description_size)) {}

  ~SharedLibraryPlugin() override {
    // The plugin's own farewell comes first, while its code is mapped; no
    // run can be using it, as every run holds a reference to this object.
    if (initialized_) {
      if (auto deinit = NIGHTSHIFT_ENTRY_MEMBER(entry_, deinit)) deinit();
    }
    // Unmap first: the copy must outlive the mapping so that tools reading
    // /proc/self/maps (debuggers, sanitizer symbolizers) still find it.
    library_.unload();
    if (scratch_copy_) {
      std::error_code ignored;  // already gone when the loader was destroyed first
      fs::remove(*scratch_copy_, ignored);
    }
  }

  const fs::path& path() const noexcept override { return path_; }
  const std::string& name() const noexcept override { return name_; }
  const std::string& version() const noexcept override { return version_; }
  const std::string& description() const noexcept override { return description_; }
  std::uint32_t abi_minor() const noexcept override { return entry_.abi_minor; }
  const nightshift_agent_entry& entry() const noexcept override { return entry_; }

  const void* extension(std::string_view id) const noexcept override {
    auto get_extension = NIGHTSHIFT_ENTRY_MEMBER(entry_, get_extension);
    return get_extension != nullptr ? get_extension(id.data(), id.size()) : nullptr;
  }

  // Calls the plugin's init (when it has one) with what the host says about
  // itself; throws PluginLoadError with the plugin's message when it refuses.
  // Called once, before the plugin is handed to anyone.
  void initialize() {
    auto init = NIGHTSHIFT_ENTRY_MEMBER(entry_, init);
    if (init == nullptr) {
      initialized_ = true;
      return;
    }
    const std::string plugin_path = path_.string();
    nightshift_host_info host{};
    host.struct_size = sizeof(nightshift_host_info);
    host.abi_major = NIGHTSHIFT_ABI_MAJOR;
    host.abi_minor = NIGHTSHIFT_ABI_MINOR;
    host.host_version = host_version.data();
    host.host_version_size = host_version.size();
    host.plugin_path = plugin_path.data();
    host.plugin_path_size = plugin_path.size();
    InitRefusal refusal;
    nightshift_init_error error{};
    error.struct_size = sizeof(nightshift_init_error);
    error.host_data = &refusal;
    error.set = &set_init_error;
    bool accepted = false;
    try {
      accepted = init(&host, &error);
    } catch (...) {
      // Against the ABI's rules, but a C++ plugin may still let one escape.
      throw PluginLoadError(path_, "its init threw an exception, which must not cross the ABI");
    }
    if (accepted) {
      initialized_ = true;
      return;
    }
    if (refusal.out_of_memory) {
      throw PluginLoadError(path_, "its init refused to load (its message did not fit in memory)");
    }
    if (refusal.message.empty()) {
      throw PluginLoadError(path_, "its init refused to load without saying why");
    }
    throw PluginLoadError(path_, "its init refused to load: " + refusal.message);
  }

 private:
  fs::path path_;
  std::optional<fs::path> scratch_copy_;  // the file actually mapped, when not path_
  boost::dll::shared_library library_;
  const nightshift_agent_entry& entry_;  // static storage inside library_
  bool initialized_ = false;             // init succeeded (or there is none): deinit is owed
  std::string name_;
  std::string version_;
  std::string description_;
};

FileIdentity identity_of(const fs::path& library) {
  struct ::stat info {};
  if (::stat(library.c_str(), &info) != 0) {
    throw PluginLoadError(library, std::error_code(errno, std::system_category()).message());
  }
  if (!S_ISREG(info.st_mode)) throw PluginLoadError(library, "not a regular file");
  return FileIdentity{
      static_cast<std::uintmax_t>(info.st_dev), static_cast<std::uintmax_t>(info.st_ino),
      static_cast<std::uintmax_t>(info.st_size),
      static_cast<std::int64_t>(info.st_mtim.tv_sec) * 1'000'000'000 + info.st_mtim.tv_nsec};
}

// True when some library is already mapped under this name or this file in
// the process (by us or by anyone else); dlopen would then hand out that
// one instead of reading the file again.
bool already_loaded_in_process(const fs::path& library) {
  void* handle = ::dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
  if (handle == nullptr) {
    ::dlerror();  // clear the error NOLOAD leaves behind
    return false;
  }
  ::dlclose(handle);
  return true;
}

// dlerror's text without the leading "<file>: ", which may name our copy.
std::string dlopen_failure_text(const fs::path& mapped) {
  const char* raw = ::dlerror();
  std::string text = raw == nullptr ? "dlopen failed" : raw;
  const std::string prefix = mapped.string() + ": ";
  if (text.starts_with(prefix)) text.erase(0, prefix.size());
  return text;
}

// dlopen only needs the loadable segments at the front of the file, so a
// library cut short (a copy or a build still being written) may load and
// miss its tail. The section header table normally comes last: when the
// ELF header places it beyond the end of the file, the file is truncated.
void check_not_truncated(const fs::path& library, std::uintmax_t file_size) {
  Elf64_Ehdr header{};
  std::ifstream in(library, std::ios::binary);
  if (!in.read(reinterpret_cast<char*>(&header), sizeof(header))) return;  // dlopen will say
  if (std::string_view(reinterpret_cast<const char*>(header.e_ident), SELFMAG) != ELFMAG ||
      header.e_ident[EI_CLASS] != ELFCLASS64) {
    return;
  }
  const std::uintmax_t table_end =
      std::uintmax_t{header.e_shoff} + std::uintmax_t{header.e_shnum} * header.e_shentsize;
  if (table_end > file_size) {
    throw PluginLoadError(library, "the file is truncated (" + std::to_string(file_size) +
                                       " bytes, its ELF header says at least " +
                                       std::to_string(table_end) + ")");
  }
}

boost::dll::shared_library open_library(const fs::path& library, const fs::path& mapped) {
  boost::dll::fs::error_code error;
  boost::dll::shared_library opened(
      mapped, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local, error);
  if (!error) return opened;
  const std::string text = dlopen_failure_text(mapped);
  if (text.find("undefined symbol") != std::string::npos) {
    throw PluginLoadError(library, "cannot be loaded, it has an " + text);
  }
  throw PluginLoadError(library, "not a loadable shared library (" + text + ")");
}

// The majors of the entry symbols the file exports, from its symbol table.
std::vector<std::uint64_t> exported_entry_majors(const fs::path& mapped) {
  std::vector<std::uint64_t> majors;
  try {
    boost::dll::library_info info(mapped);
    for (const std::string& symbol : info.symbols()) {
      if (!symbol.starts_with(entry_prefix)) continue;
      const char* first = symbol.data() + entry_prefix.size();
      const char* last = symbol.data() + symbol.size();
      std::uint64_t major = 0;
      const auto [end, error] = std::from_chars(first, last, major);
      if (error == std::errc() && end == last && first != last) majors.push_back(major);
    }
  } catch (const std::exception&) {
    // An unreadable symbol table only costs the better message.
  }
  return majors;
}

nightshift_agent_entry_fn find_entry_function(const boost::dll::shared_library& library,
                                              const fs::path& path, const fs::path& mapped) {
  if (library.has(NIGHTSHIFT_ENTRY_SYMBOL_V1)) {
    return library.get<const nightshift_agent_entry*()>(NIGHTSHIFT_ENTRY_SYMBOL_V1);
  }
  const std::vector<std::uint64_t> majors = exported_entry_majors(mapped);
  if (!majors.empty()) throw PluginLoadError(path, abi_mismatch(majors.front()));
  throw PluginLoadError(path, "exports no " NIGHTSHIFT_ENTRY_SYMBOL_V1
                              " (is it a Nightshift agent built with the SDK?)");
}

// Checks the entry table and descriptor the plugin handed out, field by
// field, before anything reads past what the plugin said it filled in.
void check_entry(const nightshift_agent_entry* entry, const fs::path& path,
                 const std::string& expected_name) {
  if (entry == nullptr) throw PluginLoadError(path, "its entry function returned NULL");
  if (!NIGHTSHIFT_HAS_FIELD(entry, nightshift_agent_entry, abi_major)) {
    throw PluginLoadError(path, "its entry table is too small (struct_size " +
                                    std::to_string(entry->struct_size) + ")");
  }
  if (entry->abi_major != NIGHTSHIFT_ABI_MAJOR) {
    throw PluginLoadError(path, abi_mismatch(entry->abi_major));
  }
  if (entry->struct_size < entry_size_v1_0) {
    throw PluginLoadError(path, "its entry table has struct_size " +
                                    std::to_string(entry->struct_size) + ", smaller than the " +
                                    std::to_string(entry_size_v1_0) + " bytes of an ABI 1.0 table");
  }
  if (entry->reserved0 != 0) {
    throw PluginLoadError(path, "its entry table's reserved0 is " +
                                    std::to_string(entry->reserved0) +
                                    "; it must be 0 (the field is reserved for later ABI "
                                    "versions: build the plugin against the SDK's agent.h)");
  }
  if (entry->run == nullptr) throw PluginLoadError(path, "its entry table has no run function");
  const nightshift_agent_descriptor* descriptor = entry->descriptor;
  if (descriptor == nullptr) throw PluginLoadError(path, "its entry table has no descriptor");
  if (descriptor->struct_size < descriptor_size_v1_0) {
    throw PluginLoadError(path, "its descriptor has struct_size " +
                                    std::to_string(descriptor->struct_size) +
                                    ", smaller than the " + std::to_string(descriptor_size_v1_0) +
                                    " bytes of an ABI 1.0 descriptor");
  }
  if (descriptor->reserved0 != 0) {
    throw PluginLoadError(path, "its descriptor's reserved0 is " +
                                    std::to_string(descriptor->reserved0) +
                                    "; it must be 0 (the field is reserved for later ABI "
                                    "versions: build the plugin against the SDK's agent.h)");
  }
  const std::string name = text_of(descriptor->name, descriptor->name_size);
  if (name != expected_name) {
    throw PluginLoadError(path, "its descriptor names the agent '" + name +
                                    "', but its manifest says '" + expected_name + "'");
  }
}

std::string random_token() {
  std::random_device device;
  std::uniform_int_distribution<std::uint32_t> digits(0, 0xffffffffu);
  char text[9];
  const auto end = std::to_chars(text, text + 8, digits(device), 16).ptr;
  return std::string(text, end);
}

constexpr std::string_view lock_suffix = ".lock";

bool all_of(std::string_view text, bool (*accept)(char)) {
  return !text.empty() && std::all_of(text.begin(), text.end(), accept);
}
bool is_decimal(char c) {
  return c >= '0' && c <= '9';
}
bool is_lower_hex(char c) {
  return is_decimal(c) || (c >= 'a' && c <= 'f');
}

// "<pid>-<random hex>": how a loader names its copies and its lock file.
bool is_copy_prefix(std::string_view text) {
  const std::size_t dash = text.find('-');
  return dash != std::string_view::npos && dash <= 10 && text.size() - dash - 1 <= 8 &&
         all_of(text.substr(0, dash), is_decimal) && all_of(text.substr(dash + 1), is_lower_hex);
}

// The prefix in a copy's name "<stem>.<prefix>.<counter>.so", else empty.
std::string_view prefix_of_copy(std::string_view name) {
  if (!name.ends_with(".so")) return {};
  name.remove_suffix(3);
  const std::size_t counter = name.rfind('.');
  if (counter == std::string_view::npos || !all_of(name.substr(counter + 1), is_decimal)) return {};
  name = name.substr(0, counter);
  const std::size_t prefix = name.rfind('.');
  if (prefix == std::string_view::npos || !is_copy_prefix(name.substr(prefix + 1))) return {};
  return name.substr(prefix + 1);
}

// A regular file (not a symlink) owned by this user.
bool is_own_regular_file(const struct ::stat& info) {
  return S_ISREG(info.st_mode) && info.st_uid == ::geteuid();
}

// Opens the lock file `lock` without following a symlink and takes its
// flock when no live loader holds it. Returns the locked descriptor, or -1.
int lock_if_abandoned(const fs::path& lock) {
  const int fd = ::open(lock.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return -1;
  struct ::stat info {};
  if (::fstat(fd, &info) != 0 || !is_own_regular_file(info) ||
      ::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Removes the copies (and lock files) of loaders that are gone. See the
// constructor's comment in the header. Best effort: what cannot be removed
// stays for the next start.
void remove_leftover_copies(const fs::path& scratch_dir) {
  std::error_code error;
  if (!fs::is_directory(fs::symlink_status(scratch_dir, error))) return;
  std::vector<std::string> names;
  for (fs::directory_iterator it(scratch_dir, error), end; !error && it != end;
       it.increment(error)) {
    names.push_back(it->path().filename().string());
  }
  for (const std::string& lock_name : names) {
    if (!lock_name.ends_with(lock_suffix)) continue;
    const std::string_view prefix =
        std::string_view(lock_name).substr(0, lock_name.size() - lock_suffix.size());
    if (!is_copy_prefix(prefix)) continue;
    const int lock_fd = lock_if_abandoned(scratch_dir / lock_name);
    if (lock_fd < 0) continue;
    // The owner made its lock file before any copy, so every copy of this
    // prefix is in `names`; none can appear while the flock is held.
    for (const std::string& name : names) {
      struct ::stat info {};
      const fs::path file = scratch_dir / name;
      if (prefix_of_copy(name) == prefix && ::lstat(file.c_str(), &info) == 0 &&
          is_own_regular_file(info)) {
        fs::remove(file, error);
      }
    }
    fs::remove(scratch_dir / lock_name, error);  // still locked: a racing owner sees it gone
    ::close(lock_fd);
  }
}

}  // namespace

PluginLoader::PluginLoader(fs::path scratch_dir) : scratch_dir_(std::move(scratch_dir)) {
  remove_leftover_copies(scratch_dir_);
}

PluginLoader::~PluginLoader() {
  // Plugins may outlive the loader; their mappings survive the unlink.
  for (const fs::path& copy : copies_) {
    std::error_code ignored;
    fs::remove(copy, ignored);
  }
  if (lock_fd_ >= 0) {
    std::error_code ignored;
    fs::remove(scratch_dir_ / (copy_prefix_ + std::string(lock_suffix)), ignored);
    ::close(lock_fd_);
  }
}

void PluginLoader::claim_copy_prefix(const fs::path& library) {
  if (lock_fd_ >= 0) return;
  for (int attempt = 0; attempt < 8; ++attempt) {
    const std::string prefix = std::to_string(::getpid()) + "-" + random_token();
    const fs::path lock = scratch_dir_ / (prefix + std::string(lock_suffix));
    const int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST) continue;
    if (fd < 0) {
      throw PluginLoadError(
          library, "cannot create the lock file " + lock.string() + ": " + std::strerror(errno));
    }
    // Another host starting at this moment may have taken the new file for
    // a leftover (it was not locked yet) and removed it: then try a new name.
    struct ::stat opened {};
    struct ::stat named {};
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0 && ::fstat(fd, &opened) == 0 &&
        ::lstat(lock.c_str(), &named) == 0 && opened.st_dev == named.st_dev &&
        opened.st_ino == named.st_ino) {
      copy_prefix_ = prefix;
      lock_fd_ = fd;
      return;
    }
    ::close(fd);
  }
  throw PluginLoadError(library, "cannot make a lock file in " + scratch_dir_.string());
}

fs::path PluginLoader::make_scratch_copy(const fs::path& library) {
  std::error_code error;
  fs::create_directories(scratch_dir_, error);
  if (error) {
    throw PluginLoadError(library, "cannot create the scratch directory " + scratch_dir_.string() +
                                       ": " + error.message());
  }
  claim_copy_prefix(library);
  const fs::path copy = scratch_dir_ / (library.stem().string() + "." + copy_prefix_ + "." +
                                        std::to_string(++copy_counter_) + ".so");
  fs::copy_file(library, copy, fs::copy_options::overwrite_existing, error);
  if (error) {
    throw PluginLoadError(library, "cannot copy it to " + copy.string() + ": " + error.message());
  }
  // Forget copies whose plugins are gone (each removes its own file).
  std::erase_if(copies_, [](const fs::path& old) {
    std::error_code missing;
    return !fs::exists(old, missing);
  });
  copies_.push_back(copy);
  return copy;
}

std::shared_ptr<const LoadedPlugin> PluginLoader::load(const fs::path& library,
                                                       const std::string& expected_name) {
  std::error_code ignored;
  const fs::path path = fs::absolute(library, ignored).lexically_normal();
  std::lock_guard lock(mutex_);
  const FileIdentity identity = identity_of(path);
  CacheEntry& cached = cache_[path.string()];
  if (auto live = cached.plugin.lock(); live && cached.identity == identity) {
    if (live->name() != expected_name) check_entry(&live->entry(), path, expected_name);
    return live;
  }

  std::optional<fs::path> copy;
  if (already_loaded_in_process(path)) copy = make_scratch_copy(path);
  const fs::path mapped = copy.value_or(path);
  try {
    check_not_truncated(mapped, identity.size);
    boost::dll::shared_library opened = open_library(path, mapped);
    const nightshift_agent_entry* entry = find_entry_function(opened, path, mapped)();
    check_entry(entry, path, expected_name);
    // Owns the library from here: a refusal below unloads it (without
    // deinit, since init did not succeed).
    auto plugin = std::make_shared<SharedLibraryPlugin>(path, copy, std::move(opened), *entry);
    plugin->initialize();
    cached = CacheEntry{identity, plugin};
    return plugin;
  } catch (...) {
    if (copy) {
      fs::remove(*copy, ignored);
      copies_.erase(std::remove(copies_.begin(), copies_.end(), *copy), copies_.end());
    }
    throw;
  }
}

}  // namespace nightshift
