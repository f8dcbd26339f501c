// agent.h compiled as C11 and as C++ describes the same binary layout. Its
// static assertions already hold in both (this file and abi_layout_c.c
// compile); here the two compilers' views are compared field by field.
#include "abi_layout.h"

#include <gtest/gtest.h>
#include <nightshift/agent.h>

#include <map>
#include <string>
#include <utility>

namespace {

#define FIELD(type, field)                                      \
  {                                                             \
#type "." #field, {                                         \
      offsetof(type, field), sizeof(std::declval<type>().field) \
    }                                                           \
  }

using Layout = std::map<std::string, std::pair<std::size_t, std::size_t>>;

Layout layout_as_cpp() {
  return Layout{
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
}

Layout layout_as_c() {
  const sdk_abi_field* fields = nullptr;
  const std::size_t count = sdk_abi_fields_as_c(&fields);
  Layout layout;
  for (std::size_t i = 0; i < count; ++i) {
    layout[fields[i].name] = {fields[i].offset, fields[i].size};
  }
  return layout;
}

}  // namespace

TEST(AbiLayout, CAndCppAgreeOnEveryFieldOffsetAndSize) {
  const Layout as_c = layout_as_c();
  const Layout as_cpp = layout_as_cpp();
  EXPECT_EQ(as_c.size(), as_cpp.size());
  for (const auto& [field, offset_and_size] : as_cpp) {
    const auto it = as_c.find(field);
    ASSERT_NE(it, as_c.end()) << field;
    EXPECT_EQ(it->second, offset_and_size) << field;
  }
}

TEST(AbiLayout, CAndCppAgreeOnStructSizes) {
  const sdk_abi_sizes as_c = sdk_abi_sizes_as_c();
  EXPECT_EQ(as_c.run, sizeof(nightshift_run));
  EXPECT_EQ(as_c.descriptor, sizeof(nightshift_agent_descriptor));
  EXPECT_EQ(as_c.entry, sizeof(nightshift_agent_entry));
  EXPECT_EQ(as_c.host_info, sizeof(nightshift_host_info));
  EXPECT_EQ(as_c.init_error, sizeof(nightshift_init_error));
}

// ABI 1.1 only appended: every 1.0 field is where the frozen 1.0 header
// (tests/sdk/v1_0) put it, and the new members start where 1.0 ended.
TEST(AbiLayout, Abi1_1AppendsAfterTheAbi1_0Layout) {
  EXPECT_EQ(offsetof(nightshift_run, next_message), 128u);  // sizeof v1.0 nightshift_run
  EXPECT_EQ(offsetof(nightshift_agent_entry, init), 32u);   // sizeof v1.0 entry table
  EXPECT_EQ(sizeof(nightshift_agent_descriptor), 56u);      // unchanged
  nightshift_agent_entry entry{};
  entry.struct_size = 32;  // a v1.0 plugin's table
  EXPECT_TRUE(NIGHTSHIFT_HAS_FIELD(&entry, nightshift_agent_entry, run));
  EXPECT_FALSE(NIGHTSHIFT_HAS_FIELD(&entry, nightshift_agent_entry, init));
  EXPECT_FALSE(NIGHTSHIFT_HAS_FIELD(&entry, nightshift_agent_entry, get_extension));
  entry.struct_size = sizeof(nightshift_agent_entry);
  EXPECT_TRUE(NIGHTSHIFT_HAS_FIELD(&entry, nightshift_agent_entry, get_extension));
}

TEST(AbiLayout, HasFieldTellsAnOlderProducerFromACurrentOne) {
  const std::uint32_t current = sizeof(nightshift_run);
  const std::uint32_t without_set_error = offsetof(nightshift_run, set_error);
  EXPECT_TRUE(sdk_abi_has_field_as_c(current));
  EXPECT_FALSE(sdk_abi_has_field_as_c(without_set_error));

  nightshift_run run{};
  run.struct_size = current;
  EXPECT_TRUE(NIGHTSHIFT_HAS_FIELD(&run, nightshift_run, set_error));
  run.struct_size = without_set_error;
  EXPECT_FALSE(NIGHTSHIFT_HAS_FIELD(&run, nightshift_run, set_error));
}
