/* A test plugin written in plain C11 against nightshift/agent.h alone: it
 * shows the ABI needs neither the C++ layer nor a C++ runtime.
 *
 * Task "fail": fails with an error. Task "wait": sleeps until stopped.
 * Anything else: logs the task and params, reports progress and sets a
 * result that echoes what it was given. */
#include <nightshift/agent.h>
#include <stdio.h>
#include <string.h>

static bool task_is(const nightshift_run* run, const char* word) {
  const size_t length = strlen(word);
  return run->task_size == length && memcmp(run->task, word, length) == 0;
}

static void log_text(const nightshift_run* run, int32_t level, const char* text) {
  run->log(run, level, text, strlen(text));
}

static int32_t run_c_agent(const nightshift_run* run) {
  /* A host older than the fields this agent uses cannot run it. */
  if (!NIGHTSHIFT_HAS_FIELD(run, nightshift_run, set_error)) return NIGHTSHIFT_RUN_FAILED;

  if (task_is(run, "fail")) {
    static const char message[] = "c agent failed on purpose";
    run->set_error(run, message, sizeof message - 1);
    return NIGHTSHIFT_RUN_FAILED;
  }
  if (task_is(run, "wait")) {
    while (run->sleep_for(run, 60000)) {
    }
    log_text(run, NIGHTSHIFT_LOG_INFO, run->cancelled(run) ? "stopped" : "woke without a stop");
    return NIGHTSHIFT_RUN_OK;
  }

  run->log(run, NIGHTSHIFT_LOG_INFO, run->task, run->task_size);
  run->log(run, NIGHTSHIFT_LOG_DEBUG, run->params_json, run->params_json_size);
  run->progress(run, 0.5);

  char result[256];
  const int length = snprintf(result, sizeof result,
                              "{\"language\":\"c\",\"taskBytes\":%zu,\"workspaceBytes\":%zu}",
                              run->task_size, run->workspace_size);
  if (length < 0 || (size_t)length >= sizeof result) return NIGHTSHIFT_RUN_FAILED;
  if (!run->set_result_json(run, result, (size_t)length)) return NIGHTSHIFT_RUN_FAILED;
  run->progress(run, 1.0);
  return NIGHTSHIFT_RUN_OK;
}

static const nightshift_agent_descriptor c_agent_descriptor = {
    sizeof(nightshift_agent_descriptor), 0, "c-agent", 7, "1.0.0", 5,
    "A test agent written in C.",        26};

static const nightshift_agent_entry c_agent_entry = {.struct_size = sizeof(nightshift_agent_entry),
                                                     .abi_major = NIGHTSHIFT_ABI_MAJOR,
                                                     .abi_minor = NIGHTSHIFT_ABI_MINOR,
                                                     .reserved0 = 0,
                                                     .descriptor = &c_agent_descriptor,
                                                     .run = run_c_agent};

NIGHTSHIFT_EXPORT const nightshift_agent_entry* nightshift_agent_entry_v1(void) {
  return &c_agent_entry;
}
