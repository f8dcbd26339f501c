/* @NAME@: a Nightshift agent in plain C, written against nightshift/agent.h
 * alone (no C++ anywhere). It works through its task in a few steps,
 * logging and reporting progress as it goes, stops at once when asked, and
 * returns a JSON result.
 *
 * Make it yours: change run_agent() (and agent.json's description and
 * params). `run` is the run's whole world: run->task, run->params_json (the
 * merged params as JSON text), run->workspace, and the host's functions for
 * logging, progress, the stop flag, the result and the error. Strings cross
 * as pointer + length and belong to whoever made them: copy what you keep. */
#include <nightshift/agent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STEPS 3
#define PAUSE_MS 200

/* Set once by agent_init, before any run; only read afterwards. */
static char host_version[64] = "(unknown)";

static void log_text(const nightshift_run* run, int32_t level, const char* text) {
  run->log(run, level, text, strlen(text));
}

static int32_t fail(const nightshift_run* run, const char* message) {
  run->set_error(run, message, strlen(message));
  return NIGHTSHIFT_RUN_FAILED;
}

/* Writes `text` (size bytes) at out as a JSON string literal and returns
 * the number of bytes written; out must hold 6 * size + 2 bytes. */
static size_t write_json_string(char* out, const char* text, size_t size) {
  size_t length = 0;
  out[length++] = '"';
  for (size_t i = 0; i < size; ++i) {
    const unsigned char c = (unsigned char)text[i];
    if (c == '"' || c == '\\') {
      out[length++] = '\\';
      out[length++] = (char)c;
    } else if (c < 0x20) {
      char escaped[8];
      snprintf(escaped, sizeof escaped, "\\u%04x", c);
      memcpy(out + length, escaped, 6);
      length += 6;
    } else {
      out[length++] = (char)c;
    }
  }
  out[length++] = '"';
  return length;
}

/* Sets the run's result: {"task": "...", "steps": STEPS}. */
static int32_t set_result(const nightshift_run* run) {
  static const char head[] = "{\"task\": ";
  char tail[64];
  const int tail_size = snprintf(tail, sizeof tail, ", \"steps\": %d}", STEPS);
  /* The agent's own memory: allocated and freed on this side. */
  char* json = malloc(sizeof head + 6 * run->task_size + 2 + (size_t)tail_size);
  if (json == NULL) return fail(run, "out of memory for the result");
  size_t length = sizeof head - 1;
  memcpy(json, head, length);
  length += write_json_string(json + length, run->task, run->task_size);
  memcpy(json + length, tail, (size_t)tail_size);
  length += (size_t)tail_size;
  const bool accepted = run->set_result_json(run, json, length); /* the host copies it */
  free(json);
  return accepted ? NIGHTSHIFT_RUN_OK : fail(run, "the result is not valid JSON");
}

/* The agent: called once per run, on a thread of its own, possibly for
 * several runs at once (so no per-run state in globals). Returns
 * NIGHTSHIFT_RUN_OK, also when it ends early because a stop was asked (the
 * run then ends cancelled), or NIGHTSHIFT_RUN_FAILED after set_error. */
static int32_t run_agent(const nightshift_run* run) {
  char line[512];
  if (run->task_size == 0) {
    log_text(run, NIGHTSHIFT_LOG_INFO, "working on: (no task)");
  } else {
    /* A long task is logged in full: the message is pointer + length. */
    static const char prefix[] = "working on: ";
    char* text = malloc(sizeof prefix + run->task_size);
    if (text == NULL) return fail(run, "out of memory for the log");
    memcpy(text, prefix, sizeof prefix - 1);
    memcpy(text + sizeof prefix - 1, run->task, run->task_size);
    run->log(run, NIGHTSHIFT_LOG_INFO, text, sizeof prefix - 1 + run->task_size);
    free(text);
  }
  snprintf(line, sizeof line, "host %s, params %.*s", host_version, (int)run->params_json_size,
           run->params_json);
  log_text(run, NIGHTSHIFT_LOG_DEBUG, line);

  for (int step = 1; step <= STEPS; ++step) {
    /* sleep_for wakes at once when a stop is asked, and then returns false. */
    if (!run->sleep_for(run, PAUSE_MS) || run->cancelled(run)) return NIGHTSHIFT_RUN_OK;
    snprintf(line, sizeof line, "step %d/%d", step, STEPS);
    log_text(run, NIGHTSHIFT_LOG_INFO, line);
    run->progress(run, (double)step / STEPS);
  }
  log_text(run, NIGHTSHIFT_LOG_INFO, "done");
  return set_result(run);
}

/* Optional (SDK 1.1): called once when the host loads the plugin, before any
 * run. Returning false refuses to load, after saying why through
 * error->set(); the host then lists the agent as unavailable with that
 * message. */
static bool agent_init(const nightshift_host_info* host, const nightshift_init_error* error) {
  (void)error;
  if (NIGHTSHIFT_HAS_FIELD(host, nightshift_host_info, host_version_size)) {
    snprintf(host_version, sizeof host_version, "%.*s", (int)host->host_version_size,
             host->host_version);
  }
  return true;
}

/* What the agent says about itself. nightshift_add_agent() defines the three
 * NIGHTSHIFT_AGENT_* strings from agent.json, so the two always agree. */
static const nightshift_agent_descriptor descriptor = {
    .struct_size = sizeof(nightshift_agent_descriptor),
    .name = NIGHTSHIFT_AGENT_NAME,
    .name_size = sizeof(NIGHTSHIFT_AGENT_NAME) - 1,
    .version = NIGHTSHIFT_AGENT_VERSION,
    .version_size = sizeof(NIGHTSHIFT_AGENT_VERSION) - 1,
    .description = NIGHTSHIFT_AGENT_DESCRIPTION,
    .description_size = sizeof(NIGHTSHIFT_AGENT_DESCRIPTION) - 1};

/* The table the host reads. Members left out (deinit, get_extension) are
 * NULL: the plugin has none. */
static const nightshift_agent_entry entry = {.struct_size = sizeof(nightshift_agent_entry),
                                             .abi_major = NIGHTSHIFT_ABI_MAJOR,
                                             .abi_minor = NIGHTSHIFT_ABI_MINOR,
                                             .descriptor = &descriptor,
                                             .run = run_agent,
                                             .init = agent_init};

/* The one symbol the plugin exports. */
NIGHTSHIFT_EXPORT const nightshift_agent_entry* nightshift_agent_entry_v1(void) {
  return &entry;
}
