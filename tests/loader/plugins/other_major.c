/* A plugin built for another ABI major: it exports only
 * nightshift_agent_entry_v<OTHER_MAJOR>, as a plugin of that major would. */
#include <nightshift/agent.h>

#define ENTRY_NAME_(major) nightshift_agent_entry_v##major
#define ENTRY_NAME(major) ENTRY_NAME_(major)

static int32_t run_nothing(const nightshift_run* run) {
  (void)run;
  return NIGHTSHIFT_RUN_OK;
}

static const nightshift_agent_descriptor descriptor = {
    sizeof(nightshift_agent_descriptor), 0, "loader-other-major", 18, "1.0.0", 5, "", 0};

static const nightshift_agent_entry entry = {.struct_size = sizeof(nightshift_agent_entry),
                                             .abi_major = OTHER_MAJOR,
                                             .abi_minor = 0,
                                             .reserved0 = 0,
                                             .descriptor = &descriptor,
                                             .run = &run_nothing};

NIGHTSHIFT_EXPORT const nightshift_agent_entry* ENTRY_NAME(OTHER_MAJOR)(void);
NIGHTSHIFT_EXPORT const nightshift_agent_entry* ENTRY_NAME(OTHER_MAJOR)(void) {
  return &entry;
}
