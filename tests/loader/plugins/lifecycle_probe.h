/* The extension the lifecycle test plugin offers (id LIFECYCLE_PROBE_ID), so
 * that the loader test can see what its init was given and count its deinit
 * calls. Shared by lifecycle.c and plugin_loader_test.cpp. */
#ifndef LOADER_TEST_LIFECYCLE_PROBE_H
#define LOADER_TEST_LIFECYCLE_PROBE_H

#include <stddef.h>
#include <stdint.h>

#define LIFECYCLE_PROBE_ID "org.nightshift.test.lifecycle-probe"

typedef struct lifecycle_probe {
  uint32_t struct_size;
  /* How many times init ran in this mapping of the library. */
  uint32_t (*init_calls)(void);
  /* What the last init was given, copied (NUL-terminated). */
  const char* (*host_version)(void);
  const char* (*plugin_path)(void);
  uint32_t (*host_abi_major)(void);
  uint32_t (*host_abi_minor)(void);
  /* deinit increments *counter (the test's, outliving the library). */
  void (*count_deinit_in)(int* counter);
} lifecycle_probe;

#endif
