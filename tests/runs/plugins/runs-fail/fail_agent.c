/* Test agent written against the C ABI alone: returns NIGHTSHIFT_RUN_FAILED
 * after set_error ("error"), without it ("silent"), or after the host refused
 * a result that is not JSON ("bad-result"). */
#include <nightshift/agent.h>
#include <string.h>

static void set_error_text(const nightshift_run* run, const char* text) {
  run->set_error(run, text, strlen(text));
}

static int has_mode(const nightshift_run* run, const char* mode) {
  /* The params are {"instructions": ..., "mode": "<mode>"}; a substring test
   * is enough for the three fixed values. */
  char needle[64] = "\"mode\":\"";
  strncat(needle, mode, sizeof needle - strlen(needle) - 2);
  strcat(needle, "\"");
  const size_t n = strlen(needle);
  for (size_t i = 0; i + n <= run->params_json_size; ++i) {
    if (memcmp(run->params_json + i, needle, n) == 0) return 1;
  }
  return 0;
}

static int32_t run_fail(const nightshift_run* run) {
  const char* line = "failing on purpose";
  run->log(run, NIGHTSHIFT_LOG_WARN, line, strlen(line));
  if (has_mode(run, "silent")) return NIGHTSHIFT_RUN_FAILED;
  if (has_mode(run, "bad-result")) {
    const char* bad = "{not json";
    if (run->set_result_json(run, bad, strlen(bad))) {
      set_error_text(run, "runs-fail: the host accepted a result that is not JSON");
    } else {
      set_error_text(run, "runs-fail: the host refused the result");
    }
    return NIGHTSHIFT_RUN_FAILED;
  }
  set_error_text(run, "runs-fail: reported through set_error");
  return NIGHTSHIFT_RUN_FAILED;
}

NIGHTSHIFT_EXPORT const nightshift_agent_entry* nightshift_agent_entry_v1(void) {
  static const nightshift_agent_descriptor descriptor = {sizeof(nightshift_agent_descriptor),
                                                         0,
                                                         "runs-fail",
                                                         9,
                                                         "1.0.0",
                                                         5,
                                                         "Test agent in plain C",
                                                         21};
  static const nightshift_agent_entry entry = {.struct_size = sizeof(nightshift_agent_entry),
                                               .abi_major = NIGHTSHIFT_ABI_MAJOR,
                                               .abi_minor = NIGHTSHIFT_ABI_MINOR,
                                               .reserved0 = 0,
                                               .descriptor = &descriptor,
                                               .run = &run_fail};
  return &entry;
}
