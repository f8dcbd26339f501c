// The agent catalog: finds installed, local and remix agents (agents.md),
// reads their manifests, resolves remix chains, and validates start params.
//
// Thread safety: every public member is safe to call from any thread at
// once. A rescan builds a new immutable snapshot and swaps it in; readers
// keep using the snapshot they hold until they are done.
#pragma once

#include <boost/json/object.hpp>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "catalog/limits.hpp"
#include "catalog/automation_limits.hpp"
#include "loader/plugin_loader.hpp"
#include "model/run.hpp"

namespace nightshift {

struct CatalogOptions {
  // Directories of installed agents, each holding <name>/agent.json, in the
  // order they are searched (the first one that has a name wins).
  std::vector<std::filesystem::path> installed_dirs;
  // The workspace: local agents in <workspace>/.nightshift/agents/<name>/,
  // remixes in <workspace>/.nightshift/remix/<name>.md.
  std::filesystem::path workspace;
  // User remixes: $XDG_CONFIG_HOME/nightshift/remix/<name>.md. A workspace
  // remix hides a user remix of the same name.
  std::filesystem::path user_remix_dir;
};

// One agent as the API's Agent object shows it.
struct AgentInfo {
  std::string id;  // "<source>:<name>"
  std::string name;
  AgentSource source = AgentSource::installed;
  std::string version;
  std::string description;
  std::optional<std::string> base_agent_id;  // remixes only
  std::filesystem::path location;            // the agent's folder or remix file
  bool available = false;
  std::optional<std::string> error;  // why it is unavailable
  // The params schema. For a remix: the base's, with each `default` set to
  // the value the remix chain gives it, so a form filled from the defaults
  // keeps the remix's values.
  boost::json::object params;
  bool accepts_messages = false;  // the manifest (or a remix's base) says "messages": true
  Isolation isolation = Isolation::process;  // the manifest's (a remix: its base's)
};

// Everything a run needs from the catalog, fixed at start time.
struct ResolvedAgent {
  AgentInfo info;
  std::shared_ptr<const LoadedPlugin> plugin;  // the base plugin (for a remix too)
  boost::json::object params;                  // merged and validated, with "instructions"
  AgentLimits limits;
};

// Why a start cannot be resolved. `code` is the API error code.
class CatalogError : public std::runtime_error {
 public:
  enum class Code { agent_not_found, agent_unavailable, invalid_params };
  CatalogError(Code code, const std::string& message) : std::runtime_error(message), code_(code) {}
  Code code() const noexcept { return code_; }

 private:
  Code code_;
};

class Catalog {
 public:
  Catalog(CatalogOptions options, PluginLoader& loader);
  ~Catalog();

  // Finds every agent afresh; picks up added, changed and removed agents.
  // Loads each compiled agent's library to check it. Returns the new list.
  std::vector<AgentInfo> rescan();

  // The list from the last rescan, sorted by source then name.
  std::vector<AgentInfo> agents() const;
  std::optional<AgentInfo> find(const std::string& agent_id) const;

  // Resolves an agent for a start: the base plugin, the params merged in
  // order (base manifest defaults, each remix from the base outwards, then
  // `request_params`), validated against the base's schema, and the limits.
  // Throws CatalogError.
  ResolvedAgent resolve(const std::string& agent_id,
                        const boost::json::object& request_params) const;

 private:
  struct Snapshot;
  CatalogOptions options_;
  PluginLoader& loader_;
  std::mutex rescan_mutex_;   // one rescan at a time; readers never wait for it
  mutable std::mutex mutex_;  // guards snapshot_ (the pointer, not what it points to)
  std::shared_ptr<const Snapshot> snapshot_;
  std::shared_ptr<const Snapshot> current() const;
};

}  // namespace nightshift
