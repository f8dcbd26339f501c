/* A plugin as it was built before ABI 1.1: compiled against the frozen copy
 * of the ABI 1.0 header in tests/sdk/v1_0/ (not the SDK's current one), so
 * its entry table is 32 bytes and says minor 0, and it knows nothing of the
 * run's 1.1 members. The v1.1 host must load and run it unchanged.
 *
 * It logs the task, the size of the run struct the host handed it, reports
 * progress, and sets a result. Task "wait": sleeps until stopped. */
#include <nightshift/agent.h>
#include <stdio.h>
#include <string.h>

#if NIGHTSHIFT_ABI_MINOR != 0
#error "this plugin must be built against the frozen ABI 1.0 header"
#endif

static int32_t run_v1_0_agent(const nightshift_run* run) {
  if (!NIGHTSHIFT_HAS_FIELD(run, nightshift_run, set_error)) return NIGHTSHIFT_RUN_FAILED;
  if (run->task_size == 4 && memcmp(run->task, "wait", 4) == 0) {
    while (run->sleep_for(run, 60000)) {
    }
    static const char stopped[] = "stopped";
    run->log(run, NIGHTSHIFT_LOG_INFO, stopped, sizeof stopped - 1);
    return NIGHTSHIFT_RUN_OK;
  }
  run->log(run, NIGHTSHIFT_LOG_INFO, run->task, run->task_size);
  run->progress(run, 1.0);
  char result[128];
  const int length =
      snprintf(result, sizeof result, "{\"abiMinor\":0,\"runStructSize\":%u}", run->struct_size);
  if (length < 0 || (size_t)length >= sizeof result) return NIGHTSHIFT_RUN_FAILED;
  if (!run->set_result_json(run, result, (size_t)length)) return NIGHTSHIFT_RUN_FAILED;
  return NIGHTSHIFT_RUN_OK;
}

static const nightshift_agent_descriptor descriptor = {sizeof(nightshift_agent_descriptor),
                                                       0,
                                                       "sdk-v1-0",
                                                       8,
                                                       "1.0.0",
                                                       5,
                                                       "Built against ABI 1.0.",
                                                       22};

static const nightshift_agent_entry entry = {sizeof(nightshift_agent_entry),
                                             NIGHTSHIFT_ABI_MAJOR,
                                             NIGHTSHIFT_ABI_MINOR,
                                             0,
                                             &descriptor,
                                             run_v1_0_agent};

NIGHTSHIFT_EXPORT const nightshift_agent_entry* nightshift_agent_entry_v1(void) {
  return &entry;
}
