# nightshift_add_agent(<name> SOURCES <src>... [MANIFEST <agent.json>]
#                      [OUTPUT_DIRECTORY <dir>] [INSTALL_DESTINATION <dir>])
#
# Builds the agent plugin lib<name>.so as a MODULE against the Nightshift SDK
# (C++ sources with nightshift/agent.hpp, or plain C with nightshift/agent.h:
# a project that enables only C gets no C++ requirement)
# and lays it out as an agent folder, <OUTPUT_DIRECTORY>/<name>/ holding the
# library and its agent.json, which is what the host looks for.
#
#   MANIFEST             the agent's agent.json (default: agent.json beside
#                        the calling CMakeLists.txt)
#   OUTPUT_DIRECTORY     where the agent folder is made in the build tree
#                        (default: ${CMAKE_CURRENT_BINARY_DIR}/agents)
#   INSTALL_DESTINATION  when given, `cmake --install` copies the folder to
#                        <INSTALL_DESTINATION>/<name>/
#
# The module is compiled with hidden visibility and linked with a version
# script, so it exports the entry symbol nightshift_agent_entry_v1 and nothing
# else, and with --no-undefined, so a missing symbol fails the link instead of
# the load.
include_guard(GLOBAL)

# Sets <out> to the body of a C string literal holding <text>: backslashes,
# quotes and newlines escaped, and ';' written as \073 so that CMake's list
# handling of compile definitions cannot split it.
function(_nightshift_c_string_body out text)
  string(REPLACE "\\" "\\\\" text "${text}")
  string(REPLACE "\"" "\\\"" text "${text}")
  string(REPLACE "\n" "\\n" text "${text}")
  string(REPLACE ";" "\\073" text "${text}")
  set(${out} "${text}" PARENT_SCOPE)
endfunction()

function(nightshift_add_agent name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "MANIFEST;OUTPUT_DIRECTORY;INSTALL_DESTINATION"
                        "SOURCES")
  if(NOT arg_SOURCES)
    message(FATAL_ERROR "nightshift_add_agent(${name}): SOURCES is required")
  endif()
  if(NOT name MATCHES "^[a-z0-9][a-z0-9._-]*$")
    message(FATAL_ERROR "nightshift_add_agent(${name}): an agent name is lower-case letters, "
                        "digits, '.', '_' and '-', starting with a letter or digit")
  endif()
  if(NOT arg_MANIFEST)
    set(arg_MANIFEST "${CMAKE_CURRENT_SOURCE_DIR}/agent.json")
  endif()
  get_filename_component(arg_MANIFEST "${arg_MANIFEST}" ABSOLUTE)
  if(NOT EXISTS "${arg_MANIFEST}")
    message(FATAL_ERROR "nightshift_add_agent(${name}): no manifest at ${arg_MANIFEST}")
  endif()
  if(NOT arg_OUTPUT_DIRECTORY)
    set(arg_OUTPUT_DIRECTORY "${CMAKE_CURRENT_BINARY_DIR}/agents")
  endif()
  set(agent_dir "${arg_OUTPUT_DIRECTORY}/${name}")

  # The descriptor compiled into the plugin comes from the manifest, so the
  # two cannot disagree.
  file(READ "${arg_MANIFEST}" manifest)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${arg_MANIFEST}")
  foreach(key name version library)
    string(JSON manifest_${key} ERROR_VARIABLE json_error GET "${manifest}" ${key})
    if(json_error)
      message(FATAL_ERROR "nightshift_add_agent(${name}): ${arg_MANIFEST}: ${json_error}")
    endif()
  endforeach()
  string(JSON manifest_description ERROR_VARIABLE json_error GET "${manifest}" description)
  if(json_error)
    set(manifest_description "")
  endif()
  if(NOT manifest_name STREQUAL name)
    message(FATAL_ERROR "nightshift_add_agent(${name}): ${arg_MANIFEST} names the agent "
                        "'${manifest_name}'; the manifest's name and the target's must match")
  endif()
  if(NOT manifest_library STREQUAL "lib${name}.so")
    message(FATAL_ERROR "nightshift_add_agent(${name}): ${arg_MANIFEST} says library "
                        "'${manifest_library}', but the agent is built as lib${name}.so")
  endif()

  add_library(${name} MODULE ${arg_SOURCES})
  # A project in plain C (project(... LANGUAGES C)) gets the C header alone;
  # the C++ layer needs C++20.
  get_property(enabled_languages GLOBAL PROPERTY ENABLED_LANGUAGES)
  if("CXX" IN_LIST enabled_languages)
    target_link_libraries(${name} PRIVATE NightshiftSDK::sdk)
    target_compile_features(${name} PRIVATE cxx_std_20)
  else()
    target_link_libraries(${name} PRIVATE NightshiftSDK::sdk_c)
  endif()
  foreach(key version description)
    _nightshift_c_string_body(manifest_${key} "${manifest_${key}}")
  endforeach()
  target_compile_definitions(${name} PRIVATE NIGHTSHIFT_BUILDING_AGENT
    "NIGHTSHIFT_AGENT_NAME=\"${manifest_name}\""
    "NIGHTSHIFT_AGENT_VERSION=\"${manifest_version}\""
    "NIGHTSHIFT_AGENT_DESCRIPTION=\"${manifest_description}\"")
  set_target_properties(${name} PROPERTIES
    PREFIX "lib"
    OUTPUT_NAME "${name}"
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    LIBRARY_OUTPUT_DIRECTORY "${agent_dir}")
  # Export only the entry symbol.
  # Found beside this file through the function's own location: a variable
  # set when the file was included would not be visible from other
  # directories' scopes.
  set(version_script "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/nightshift_agent.map")
  target_link_options(${name} PRIVATE "LINKER:--version-script=${version_script}")
  set_property(TARGET ${name} APPEND PROPERTY LINK_DEPENDS "${version_script}")
  # Sanitizer runtimes resolve their symbols from the executable, so
  # --no-undefined cannot hold in a sanitized build.
  if(NOT CMAKE_CXX_FLAGS MATCHES "-fsanitize" AND NOT CMAKE_C_FLAGS MATCHES "-fsanitize")
    target_link_options(${name} PRIVATE "LINKER:--no-undefined")
  endif()

  # The manifest beside the library; re-copied whenever it changes.
  configure_file("${arg_MANIFEST}" "${agent_dir}/agent.json" COPYONLY)

  if(arg_INSTALL_DESTINATION)
    install(TARGETS ${name} LIBRARY DESTINATION "${arg_INSTALL_DESTINATION}/${name}")
    install(FILES "${arg_MANIFEST}" DESTINATION "${arg_INSTALL_DESTINATION}/${name}")
  endif()
endfunction()
