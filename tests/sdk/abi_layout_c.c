/* agent.h compiled as strict C11: its own static assertions must hold here,
 * and the layout C sees is reported to the C++ test, which compares it with
 * what C++ sees. */
#include <nightshift/agent.h>

#include "abi_layout.h"

#define FIELD(type, field) \
  { #type "." #field, offsetof(type, field), sizeof(((type*)0)->field) }

static const sdk_abi_field fields[] = {
    FIELD(nightshift_run, struct_size),
    FIELD(nightshift_run, reserved0),
    FIELD(nightshift_run, host_data),
    FIELD(nightshift_run, instance_id),
    FIELD(nightshift_run, instance_id_size),
    FIELD(nightshift_run, task),
    FIELD(nightshift_run, task_size),
    FIELD(nightshift_run, params_json),
    FIELD(nightshift_run, params_json_size),
    FIELD(nightshift_run, workspace),
    FIELD(nightshift_run, workspace_size),
    FIELD(nightshift_run, log),
    FIELD(nightshift_run, progress),
    FIELD(nightshift_run, cancelled),
    FIELD(nightshift_run, sleep_for),
    FIELD(nightshift_run, set_result_json),
    FIELD(nightshift_run, set_error),
    FIELD(nightshift_run, next_message),
    FIELD(nightshift_run, report_usage),
    FIELD(nightshift_agent_descriptor, struct_size),
    FIELD(nightshift_agent_descriptor, reserved0),
    FIELD(nightshift_agent_descriptor, name),
    FIELD(nightshift_agent_descriptor, name_size),
    FIELD(nightshift_agent_descriptor, version),
    FIELD(nightshift_agent_descriptor, version_size),
    FIELD(nightshift_agent_descriptor, description),
    FIELD(nightshift_agent_descriptor, description_size),
    FIELD(nightshift_agent_entry, struct_size),
    FIELD(nightshift_agent_entry, abi_major),
    FIELD(nightshift_agent_entry, abi_minor),
    FIELD(nightshift_agent_entry, descriptor),
    FIELD(nightshift_agent_entry, reserved0),
    FIELD(nightshift_agent_entry, run),
    FIELD(nightshift_agent_entry, init),
    FIELD(nightshift_agent_entry, deinit),
    FIELD(nightshift_agent_entry, get_extension),
    FIELD(nightshift_host_info, struct_size),
    FIELD(nightshift_host_info, abi_major),
    FIELD(nightshift_host_info, abi_minor),
    FIELD(nightshift_host_info, reserved0),
    FIELD(nightshift_host_info, host_version),
    FIELD(nightshift_host_info, host_version_size),
    FIELD(nightshift_host_info, plugin_path),
    FIELD(nightshift_host_info, plugin_path_size),
    FIELD(nightshift_init_error, struct_size),
    FIELD(nightshift_init_error, reserved0),
    FIELD(nightshift_init_error, host_data),
    FIELD(nightshift_init_error, set),
};

size_t sdk_abi_fields_as_c(const sdk_abi_field** out) {
  *out = fields;
  return sizeof fields / sizeof fields[0];
}

sdk_abi_sizes sdk_abi_sizes_as_c(void) {
  sdk_abi_sizes sizes = {sizeof(nightshift_run), sizeof(nightshift_agent_descriptor),
                         sizeof(nightshift_agent_entry), sizeof(nightshift_host_info),
                         sizeof(nightshift_init_error)};
  return sizes;
}

int sdk_abi_has_field_as_c(uint32_t run_struct_size) {
  nightshift_run run = {0};
  run.struct_size = run_struct_size;
  return NIGHTSHIFT_HAS_FIELD(&run, nightshift_run, set_error);
}
