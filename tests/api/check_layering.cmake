# The rooms' include rules: dependencies point one way (api/ uses host/, and
# host/ knows nothing of the API or its wire format), and api/ reaches the
# store through the run manager, never through the store's headers. Run by
# ctest as
#   cmake -DSOURCE_DIR=<project> -P check_layering.cmake
# and fails listing every include that breaks a rule.

set(broken "")

# Each rule: a folder, and the include prefix its files may not use.
foreach(rule "api|store/" "host|api/")
  string(REPLACE "|" ";" rule "${rule}")
  list(GET rule 0 folder)
  list(GET rule 1 forbidden)
  file(GLOB_RECURSE sources "${SOURCE_DIR}/${folder}/*.cpp" "${SOURCE_DIR}/${folder}/*.hpp")
  foreach(source IN LISTS sources)
    file(STRINGS "${source}" lines REGEX "^[ \t]*#[ \t]*include[ \t]*\"${forbidden}")
    foreach(line IN LISTS lines)
      file(RELATIVE_PATH shown "${SOURCE_DIR}" "${source}")
      string(STRIP "${line}" line)
      string(APPEND broken "\n  ${shown}: ${line} (${folder}/ may not include ${forbidden}*)")
    endforeach()
  endforeach()
endforeach()

if(broken)
  message(FATAL_ERROR "includes across the rooms' boundaries:${broken}\n"
                      "Move what both sides need into a header they may share (host/model/), "
                      "or reach it through the run manager.")
endif()
message(STATUS "the rooms' include rules hold")
