// The extension the C++ lifecycle test plugin offers (id
// sdk_lifecycle_extension_id): what its static init saw, and where its
// static deinit counts. Shared by lifecycle.cpp and lifecycle_test.cpp.
#pragma once

#include <cstdint>
#include <string_view>

inline constexpr std::string_view sdk_lifecycle_extension_id = "org.nightshift.test.sdk-lifecycle";

struct SdkLifecycleExtension {
  std::uint32_t struct_size;
  int (*init_calls)();
  // What init's HostInfo held, as NUL-terminated copies.
  const char* (*host_version)();
  const char* (*plugin_path)();
  std::uint32_t (*abi_minor)();
  // deinit increments *counter (the test's).
  void (*count_deinit_in)(int* counter);
};
