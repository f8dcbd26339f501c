/* A v1 plugin that calls a function nobody defines. It links (shared
 * libraries may leave symbols undefined) but RTLD_NOW refuses to load it. */
#include <nightshift/agent.h>

int loader_test_function_nobody_defines(void);

static int32_t run_undefined(const nightshift_run* run) {
  (void)run;
  return loader_test_function_nobody_defines();
}

static const nightshift_agent_descriptor descriptor = {
    sizeof(nightshift_agent_descriptor), 0, "loader-undefined", 16, "1.0.0", 5, "", 0};

static const nightshift_agent_entry entry = {.struct_size = sizeof(nightshift_agent_entry),
                                             .abi_major = NIGHTSHIFT_ABI_MAJOR,
                                             .abi_minor = NIGHTSHIFT_ABI_MINOR,
                                             .reserved0 = 0,
                                             .descriptor = &descriptor,
                                             .run = &run_undefined};

const nightshift_agent_entry* nightshift_agent_entry_v1(void) {
  return &entry;
}
