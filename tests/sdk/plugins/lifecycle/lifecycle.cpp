// A C++ agent with the SDK 1.1 lifecycle members (static init, deinit and
// get_extension), wired by NIGHTSHIFT_AGENT. Built twice: as is, and with
// LIFECYCLE_REFUSE defined, when init throws to refuse to load.
#include <nightshift/agent.hpp>
#include <stdexcept>
#include <string>

#include "lifecycle_extension.hpp"

namespace {

// Written by init and deinit, which the host never calls concurrently with
// anything else; read by the extension's functions afterwards.
int init_count = 0;
std::string seen_host_version;
std::string seen_plugin_path;
std::uint32_t seen_abi_minor = 0;
int* deinit_counter = nullptr;

const SdkLifecycleExtension extension{
    sizeof(SdkLifecycleExtension),
    [] { return init_count; },
    [] { return seen_host_version.c_str(); },
    [] { return seen_plugin_path.c_str(); },
    [] { return seen_abi_minor; },
    [](int* counter) { deinit_counter = counter; },
};

}  // namespace

class Lifecycle : public nightshift::Agent {
 public:
  static void init(const nightshift::HostInfo& host) {
    ++init_count;
    seen_host_version = host.host_version;
    seen_plugin_path = host.plugin_path;
    seen_abi_minor = host.abi_minor;
#ifdef LIFECYCLE_REFUSE
    throw std::runtime_error("no licence for " + host.plugin_path);
#endif
  }

  static void deinit() noexcept {
    if (deinit_counter != nullptr) ++*deinit_counter;
  }

  static const void* get_extension(std::string_view id) noexcept {
    return id == sdk_lifecycle_extension_id ? &extension : nullptr;
  }

  void run(nightshift::RunContext& ctx) override {
    ctx.info("lifecycle agent ran after init " + std::to_string(init_count));
    ctx.set_result_json(R"({"ok": true})");
  }
};

NIGHTSHIFT_AGENT(Lifecycle)
