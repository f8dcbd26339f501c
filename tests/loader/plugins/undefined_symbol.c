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

static const nightshift_agent_entry entry = {sizeof(nightshift_agent_entry),
                                             NIGHTSHIFT_ABI_MAJOR,
                                             NIGHTSHIFT_ABI_MINOR,
                                             0,
                                             &descriptor,
                                             &run_undefined};

const nightshift_agent_entry* nightshift_agent_entry_v1(void) {
  return &entry;
}
