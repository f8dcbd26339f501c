/* A v1 plugin whose entry table is wrong in the one way its definitions
 * choose, each a refusal the loader must make:
 *   RETURN_NULL         the entry function returns NULL
 *   TABLE_ABI_MAJOR=n   the table says ABI n although the symbol is _v1
 *   TABLE_STRUCT_SIZE=n the table's struct_size is n (too small for v1.0)
 *   DESCRIPTOR_NAME=s   the descriptor names the agent s
 * With none of them it is a correct plugin named "loader-table". */
#include <nightshift/agent.h>

#ifndef TABLE_ABI_MAJOR
#define TABLE_ABI_MAJOR NIGHTSHIFT_ABI_MAJOR
#endif
#ifndef TABLE_STRUCT_SIZE
#define TABLE_STRUCT_SIZE sizeof(nightshift_agent_entry)
#endif
#ifndef DESCRIPTOR_NAME
#define DESCRIPTOR_NAME "loader-table"
#endif

static int32_t run_nothing(const nightshift_run* run) {
  (void)run;
  return NIGHTSHIFT_RUN_OK;
}

static const nightshift_agent_descriptor descriptor = {sizeof(nightshift_agent_descriptor),
                                                       0,
                                                       DESCRIPTOR_NAME,
                                                       sizeof(DESCRIPTOR_NAME) - 1,
                                                       "1.0.0",
                                                       5,
                                                       "",
                                                       0};

static const nightshift_agent_entry entry = {.struct_size = TABLE_STRUCT_SIZE,
                                             .abi_major = TABLE_ABI_MAJOR,
                                             .abi_minor = NIGHTSHIFT_ABI_MINOR,
                                             .reserved0 = 0,
                                             .descriptor = &descriptor,
                                             .run = &run_nothing};

const nightshift_agent_entry* nightshift_agent_entry_v1(void) {
  const nightshift_agent_entry* result = &entry;
#ifdef RETURN_NULL
  result = NULL;
#endif
  return result;
}
