/* What abi_layout_c.c (agent.h compiled as C11) reports to the C++ test. */
#ifndef SDK_TEST_ABI_LAYOUT_H
#define SDK_TEST_ABI_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sdk_abi_field {
  const char* name; /* "struct.field" */
  size_t offset;
  size_t size;
} sdk_abi_field;

typedef struct sdk_abi_sizes {
  size_t run;
  size_t descriptor;
  size_t entry;
  size_t host_info;  /* ABI 1.1 */
  size_t init_error; /* ABI 1.1 */
} sdk_abi_sizes;

/* Every field of the v1.x structs, as C lays them out. */
size_t sdk_abi_fields_as_c(const sdk_abi_field** out);
sdk_abi_sizes sdk_abi_sizes_as_c(void);
/* NIGHTSHIFT_HAS_FIELD(run, nightshift_run, set_error), evaluated in C. */
int sdk_abi_has_field_as_c(uint32_t run_struct_size);

#ifdef __cplusplus
}
#endif

#endif
