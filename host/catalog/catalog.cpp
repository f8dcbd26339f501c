#include "catalog/catalog.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <system_error>
#include <tuple>
#include <utility>

#include "catalog/manifest.hpp"
#include "catalog/param_schema.hpp"
#include "catalog/remix_file.hpp"

namespace nightshift {

namespace fs = std::filesystem;
namespace json = boost::json;

namespace catalog_detail {

// One agent of a snapshot with what a start needs. Immutable once built.
struct Entry {
  AgentInfo info;
  std::shared_ptr<const LoadedPlugin> plugin;  // the base plugin; null when unavailable
  std::string plugin_agent_id;                 // the compiled agent at the root of the chain
  json::object schema;                         // that agent's params schema
  json::object params;                         // its defaults, then each remix of the chain
  AgentLimits limits;
};

}  // namespace catalog_detail

using catalog_detail::Entry;

// Everything one rescan found. Immutable once built; shared by readers.
struct Catalog::Snapshot {
  std::vector<AgentInfo> agents;  // sorted by source, then name
  std::map<std::string, Entry, std::less<>> by_id;
};

namespace {

std::string make_id(AgentSource source, const std::string& name) {
  return std::string(to_string(source)) + ":" + name;
}

std::string invalid_name_reason(const std::string& name) {
  return "the name '" + name +
         "' is not a valid agent name (lower-case letters, digits, '.', '_' and '-', starting "
         "with a letter or digit, at most 64 characters)";
}

// The entries of `dir`, sorted by name; none when it does not exist or
// cannot be read (an agents directory is optional).
std::vector<fs::directory_entry> sorted_entries(const fs::path& dir) {
  std::vector<fs::directory_entry> entries;
  if (dir.empty()) return entries;
  std::error_code error;
  for (fs::directory_iterator it(dir, error), end; !error && it != end; it.increment(error)) {
    if (!it->path().filename().string().starts_with(".")) entries.push_back(*it);
  }
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return a.path() < b.path(); });
  return entries;
}

bool is_directory(const fs::directory_entry& entry) {
  std::error_code error;
  return entry.is_directory(error);
}

bool is_remix_file(const fs::directory_entry& entry) {
  std::error_code error;
  return entry.is_regular_file(error) && entry.path().extension() == ".md";
}

// The base's schema with each default replaced by the value the remix chain
// gives that param, so that a form drawn from it starts from the remix's
// values rather than the base's.
json::object remix_display_schema(const json::object& schema, const json::object& params) {
  json::object display = schema;
  for (auto& [name, spec] : display) {
    const json::value* value = params.if_contains(name);
    if (value != nullptr && spec.is_object()) spec.get_object()["default"] = *value;
  }
  return display;
}

// Builds one snapshot from the disk. Used by one rescan on one thread.
class SnapshotBuilder {
 public:
  SnapshotBuilder(const CatalogOptions& options, PluginLoader& loader)
      : options_(options), loader_(loader) {}

  std::map<std::string, Entry, std::less<>> build() {
    for (const fs::path& dir : options_.installed_dirs)
      scan_compiled_dir(dir, AgentSource::installed);
    if (!options_.workspace.empty()) {
      scan_compiled_dir(options_.workspace / ".nightshift" / "agents", AgentSource::local);
      scan_remix_dir(options_.workspace / ".nightshift" / "remix");
    }
    scan_remix_dir(options_.user_remix_dir);
    find_cycles();
    for (const auto& [id, remix] : remixes_) resolve_remix(id);
    return std::move(entries_);
  }

 private:
  void scan_compiled_dir(const fs::path& dir, AgentSource source) {
    for (const fs::directory_entry& entry : sorted_entries(dir)) {
      if (!is_directory(entry)) continue;
      const std::string id = make_id(source, entry.path().filename().string());
      // Among installed dirs the first that has a name wins.
      if (!entries_.contains(id)) entries_.emplace(id, scan_compiled(entry.path(), source));
    }
  }

  Entry scan_compiled(const fs::path& folder, AgentSource source) {
    Entry entry;
    entry.info.name = folder.filename().string();
    entry.info.source = source;
    entry.info.id = make_id(source, entry.info.name);
    entry.info.location = folder;
    entry.plugin_agent_id = entry.info.id;
    try {
      load_compiled(folder, entry);
      entry.info.available = true;
    } catch (const std::exception& e) {
      entry.plugin.reset();
      entry.info.error = e.what();
    }
    return entry;
  }

  void load_compiled(const fs::path& folder, Entry& entry) {
    if (!is_valid_agent_name(entry.info.name)) {
      throw std::runtime_error(invalid_name_reason(entry.info.name));
    }
    const fs::path manifest_file = folder / "agent.json";
    std::error_code error;
    if (!fs::exists(manifest_file, error)) throw std::runtime_error("no agent.json in its folder");
    const Manifest manifest = read_manifest(manifest_file);
    entry.info.version = manifest.version;
    entry.info.description = manifest.description;
    entry.info.params = manifest.params;
    entry.info.accepts_messages = manifest.messages;
    entry.info.isolation = manifest.isolation;
    entry.limits = manifest.limits;
    if (manifest.name != entry.info.name) {
      throw std::runtime_error("agent.json names the agent '" + manifest.name +
                               "', but its folder is '" + entry.info.name + "'");
    }
    const fs::path library = folder / manifest.library;
    if (!fs::exists(library, error)) {
      throw std::runtime_error("its library " + manifest.library + " is missing");
    }
    entry.plugin = loader_.load(library, manifest.name);
    entry.schema = manifest.params;
    entry.params = schema_defaults(manifest.params);
  }

  // Reads every remix of `dir`. A name already taken (by a workspace remix,
  // read first) is hidden; within one directory the file named after the
  // remix wins over one that only says the name in its front matter.
  void scan_remix_dir(const fs::path& dir) {
    std::vector<RemixFile> found;
    for (const fs::directory_entry& entry : sorted_entries(dir)) {
      if (is_remix_file(entry)) found.push_back(read_remix_file(entry.path()));
    }
    std::stable_sort(found.begin(), found.end(), [](const RemixFile& a, const RemixFile& b) {
      return (a.location.stem() == a.name) > (b.location.stem() == b.name);
    });
    for (RemixFile& remix : found) {
      const std::string id = make_id(AgentSource::remix, remix.name);
      if (!remixes_.contains(id)) remixes_.emplace(id, std::move(remix));
    }
  }

  // Marks every remix that is part of a cycle of bases. Each remix has one
  // base, so following bases from any remix either leaves the remixes or
  // comes back to one already on the path.
  void find_cycles() {
    std::set<std::string> settled;
    for (const auto& [start, remix] : remixes_) {
      std::vector<std::string> path;
      std::string current = start;
      while (remixes_.contains(current) && !settled.contains(current)) {
        const auto seen = std::find(path.begin(), path.end(), current);
        if (seen != path.end()) {
          mark_cycle(std::vector<std::string>(seen, path.end()));
          break;
        }
        path.push_back(current);
        current = remixes_.at(current).base;
      }
      settled.insert(path.begin(), path.end());
    }
  }

  void mark_cycle(const std::vector<std::string>& cycle) {
    for (std::size_t i = 0; i < cycle.size(); ++i) {
      std::string text = "remix cycle: ";
      for (std::size_t k = 0; k <= cycle.size(); ++k) {
        text += cycle[(i + k) % cycle.size()] + (k < cycle.size() ? " -> " : "");
      }
      cycle_errors_[cycle[i]] = text;
    }
  }

  // Resolves a remix (and, first, its base chain) into entries_. Terminates
  // because cycles were marked beforehand.
  const Entry& resolve_remix(const std::string& id) {
    if (auto done = entries_.find(id); done != entries_.end()) return done->second;
    const RemixFile& remix = remixes_.at(id);
    Entry entry;
    entry.info.id = id;
    entry.info.name = remix.name;
    entry.info.source = AgentSource::remix;
    entry.info.version = remix.version;
    entry.info.description = remix.description;
    entry.info.location = remix.location;
    if (!remix.base.empty()) entry.info.base_agent_id = remix.base;
    try {
      combine_with_base(remix, entry);
      entry.info.available = true;
    } catch (const std::exception& e) {
      entry.plugin.reset();
      entry.info.error = e.what();
    }
    return entries_.emplace(id, std::move(entry)).first->second;
  }

  const Entry& base_of(const RemixFile& remix) {
    const auto colon = remix.base.find(':');
    const auto source = parse_agent_source(remix.base.substr(0, colon));
    if (colon == std::string::npos || !source) {
      throw std::runtime_error("its base '" + remix.base +
                               "' is not an agent id like installed:sleep");
    }
    const Entry* base = nullptr;
    if (*source == AgentSource::remix) {
      if (remixes_.contains(remix.base)) base = &resolve_remix(remix.base);
    } else if (auto found = entries_.find(remix.base); found != entries_.end()) {
      base = &found->second;
    }
    if (base == nullptr) throw std::runtime_error("its base " + remix.base + " is unknown");
    if (!base->info.available) {
      throw std::runtime_error("its base " + remix.base +
                               " is unavailable: " + base->info.error.value_or(""));
    }
    return *base;
  }

  void combine_with_base(const RemixFile& remix, Entry& entry) {
    if (remix.error) throw std::runtime_error(*remix.error);
    if (!is_valid_agent_name(remix.name)) throw std::runtime_error(invalid_name_reason(remix.name));
    if (auto cycle = cycle_errors_.find(entry.info.id); cycle != cycle_errors_.end()) {
      throw std::runtime_error(cycle->second);
    }
    const Entry& base = base_of(remix);
    entry.plugin_agent_id = base.plugin_agent_id;
    entry.schema = base.schema;
    entry.params = base.params;
    entry.limits = base.limits;
    entry.info.params = base.schema;
    entry.info.accepts_messages = base.info.accepts_messages;
    entry.info.isolation = base.info.isolation;
    if (auto unknown = find_unknown_param(base.schema, remix.params)) {
      throw std::runtime_error("it sets param '" + *unknown + "', which " + base.plugin_agent_id +
                               " does not have (it accepts " + accepted_params(base.schema) + ")");
    }
    merge_params(entry.params, remix.params);
    if (!remix.instructions.empty()) entry.params[instructions_param] = remix.instructions;
    if (auto why = check_param_values(base.schema, entry.params)) {
      throw std::runtime_error("its params do not fit " + base.plugin_agent_id + ": " + *why);
    }
    entry.limits = merge_limits(entry.limits, remix.limits);
    entry.info.params = remix_display_schema(base.schema, entry.params);
    entry.plugin = base.plugin;
  }

  const CatalogOptions& options_;
  PluginLoader& loader_;
  std::map<std::string, Entry, std::less<>> entries_;  // compiled, then resolved remixes
  std::map<std::string, RemixFile> remixes_;           // by id, as read
  std::map<std::string, std::string> cycle_errors_;    // remix id -> the cycle it is in
};

std::vector<AgentInfo> sorted_infos(const std::map<std::string, Entry, std::less<>>& by_id) {
  std::vector<AgentInfo> agents;
  agents.reserve(by_id.size());
  for (const auto& [id, entry] : by_id) agents.push_back(entry.info);
  std::sort(agents.begin(), agents.end(), [](const AgentInfo& a, const AgentInfo& b) {
    return std::tie(a.source, a.name) < std::tie(b.source, b.name);
  });
  return agents;
}

}  // namespace

Catalog::Catalog(CatalogOptions options, PluginLoader& loader)
    : options_(std::move(options)), loader_(loader) {
  rescan();
}

Catalog::~Catalog() = default;

std::shared_ptr<const Catalog::Snapshot> Catalog::current() const {
  std::lock_guard lock(mutex_);
  return snapshot_;
}

std::vector<AgentInfo> Catalog::rescan() {
  std::lock_guard rescanning(rescan_mutex_);
  auto snapshot = std::make_shared<Snapshot>();
  snapshot->by_id = SnapshotBuilder(options_, loader_).build();
  snapshot->agents = sorted_infos(snapshot->by_id);
  std::shared_ptr<const Snapshot> fresh = std::move(snapshot);
  {
    std::lock_guard lock(mutex_);
    snapshot_ = fresh;
  }
  return fresh->agents;
}

std::vector<AgentInfo> Catalog::agents() const {
  const auto snapshot = current();
  return snapshot ? snapshot->agents : std::vector<AgentInfo>{};
}

std::optional<AgentInfo> Catalog::find(const std::string& agent_id) const {
  const auto snapshot = current();
  if (!snapshot) return std::nullopt;
  const auto found = snapshot->by_id.find(agent_id);
  if (found == snapshot->by_id.end()) return std::nullopt;
  return found->second.info;
}

ResolvedAgent Catalog::resolve(const std::string& agent_id,
                               const json::object& request_params) const {
  // Only ids of the snapshot resolve: a client's id never becomes a path.
  const auto snapshot = current();
  const Entry* found = nullptr;
  if (snapshot) {
    if (auto it = snapshot->by_id.find(agent_id); it != snapshot->by_id.end()) found = &it->second;
  }
  if (found == nullptr) {
    throw CatalogError(CatalogError::Code::agent_not_found, "no agent '" + agent_id + "'");
  }
  const Entry& entry = *found;
  if (!entry.info.available || !entry.plugin) {
    throw CatalogError(CatalogError::Code::agent_unavailable,
                       "agent " + agent_id + " is unavailable: " + entry.info.error.value_or(""));
  }
  // Before anything else, so that no value JSON cannot carry is merged,
  // stored or echoed, and the message names the request's own field.
  if (auto why = find_non_finite_number(request_params, "params")) {
    throw CatalogError(CatalogError::Code::invalid_params, *why);
  }
  if (auto unknown = find_unknown_param(entry.schema, request_params)) {
    throw CatalogError(CatalogError::Code::invalid_params, "unknown param '" + *unknown +
                                                               "': " + agent_id + " accepts " +
                                                               accepted_params(entry.schema));
  }
  json::object params = entry.params;
  merge_params(params, request_params);
  if (auto why = check_start_params(entry.schema, params)) {
    throw CatalogError(CatalogError::Code::invalid_params, *why);
  }
  return ResolvedAgent{entry.info, entry.plugin, std::move(params), entry.limits};
}

}  // namespace nightshift
