/* A v1.1 plugin in C with init, deinit and get_extension, named
 * "loader-lifecycle". Its definitions choose a variant:
 *   INIT_REFUSES=s         init refuses with the message s
 *   INIT_REFUSES_SILENTLY  init returns false without a message
 *   ENTRY_RESERVED0=n      the entry table's reserved0 is n
 *   DESCRIPTOR_RESERVED0=n the descriptor's reserved0 is n
 * Otherwise init accepts and records what the host told it, which the
 * extension LIFECYCLE_PROBE_ID hands to the test. */
#include <nightshift/agent.h>
#include <string.h>

#include "lifecycle_probe.h"

#ifndef ENTRY_RESERVED0
#define ENTRY_RESERVED0 0
#endif
#ifndef DESCRIPTOR_RESERVED0
#define DESCRIPTOR_RESERVED0 0
#endif

static uint32_t init_count;
static char seen_host_version[64];
static char seen_plugin_path[4096];
static uint32_t seen_abi_major;
static uint32_t seen_abi_minor;
static int* deinit_counter;

static void copy_text(char* out, size_t capacity, const char* text, size_t size) {
  if (size >= capacity) size = capacity - 1;
  if (size > 0) memcpy(out, text, size);
  out[size] = '\0';
}

static uint32_t probe_init_calls(void) {
  return init_count;
}
static const char* probe_host_version(void) {
  return seen_host_version;
}
static const char* probe_plugin_path(void) {
  return seen_plugin_path;
}
static uint32_t probe_host_abi_major(void) {
  return seen_abi_major;
}
static uint32_t probe_host_abi_minor(void) {
  return seen_abi_minor;
}
static void probe_count_deinit_in(int* counter) {
  deinit_counter = counter;
}

static const lifecycle_probe probe = {
    sizeof(lifecycle_probe), probe_init_calls,     probe_host_version,   probe_plugin_path,
    probe_host_abi_major,    probe_host_abi_minor, probe_count_deinit_in};

static bool lifecycle_init(const nightshift_host_info* host, const nightshift_init_error* error) {
  ++init_count;
  if (NIGHTSHIFT_HAS_FIELD(host, nightshift_host_info, plugin_path_size)) {
    seen_abi_major = host->abi_major;
    seen_abi_minor = host->abi_minor;
    copy_text(seen_host_version, sizeof seen_host_version, host->host_version,
              host->host_version_size);
    copy_text(seen_plugin_path, sizeof seen_plugin_path, host->plugin_path, host->plugin_path_size);
  }
#if defined(INIT_REFUSES)
  error->set(error, INIT_REFUSES, sizeof(INIT_REFUSES) - 1);
  return false;
#elif defined(INIT_REFUSES_SILENTLY)
  (void)error;
  return false;
#else
  (void)error;
  return true;
#endif
}

static void lifecycle_deinit(void) {
  if (deinit_counter != NULL) ++*deinit_counter;
}

static const void* lifecycle_get_extension(const char* id, size_t id_size) {
  const size_t probe_id_size = sizeof(LIFECYCLE_PROBE_ID) - 1;
  if (id_size == probe_id_size && memcmp(id, LIFECYCLE_PROBE_ID, id_size) == 0) return &probe;
  return NULL;
}

static int32_t lifecycle_run(const nightshift_run* run) {
  static const char message[] = "lifecycle ran";
  run->log(run, NIGHTSHIFT_LOG_INFO, message, sizeof message - 1);
  return NIGHTSHIFT_RUN_OK;
}

static const nightshift_agent_descriptor descriptor = {
    .struct_size = sizeof(nightshift_agent_descriptor),
    .reserved0 = DESCRIPTOR_RESERVED0,
    .name = "loader-lifecycle",
    .name_size = sizeof("loader-lifecycle") - 1,
    .version = "1.1.0",
    .version_size = 5,
    .description = "",
    .description_size = 0};

static const nightshift_agent_entry entry = {.struct_size = sizeof(nightshift_agent_entry),
                                             .abi_major = NIGHTSHIFT_ABI_MAJOR,
                                             .abi_minor = NIGHTSHIFT_ABI_MINOR,
                                             .reserved0 = ENTRY_RESERVED0,
                                             .descriptor = &descriptor,
                                             .run = lifecycle_run,
                                             .init = lifecycle_init,
                                             .deinit = lifecycle_deinit,
                                             .get_extension = lifecycle_get_extension};

NIGHTSHIFT_EXPORT const nightshift_agent_entry* nightshift_agent_entry_v1(void) {
  return &entry;
}
