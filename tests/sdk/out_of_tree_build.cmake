# Installs the Nightshift build tree into PREFIX, then configures and builds
# the example agent in EXAMPLE_SOURCE_DIR against the installed SDK only
# (CMAKE_PREFIX_PATH=PREFIX), as an agent author outside this tree would.
#
#   cmake -DBUILD_DIR=... -DPREFIX=... -DEXAMPLE_SOURCE_DIR=... -DEXAMPLE_BINARY_DIR=...
#         -DGENERATOR=... -DCXX_COMPILER=... [-DCXX_FLAGS=...] [-DMODULE_LINKER_FLAGS=...]
#         -P out_of_tree_build.cmake
foreach(var BUILD_DIR PREFIX EXAMPLE_SOURCE_DIR EXAMPLE_BINARY_DIR GENERATOR CXX_COMPILER)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "out_of_tree_build.cmake: ${var} is not set")
  endif()
endforeach()

function(run_step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "${what} failed (${status}):\n${out}\n${err}")
  endif()
  message(STATUS "${what}: done")
endfunction()

# Start clean, so nothing from an earlier run can stand in for this one.
file(REMOVE_RECURSE "${PREFIX}" "${EXAMPLE_BINARY_DIR}")

run_step("install ${BUILD_DIR} into ${PREFIX}"
  "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${PREFIX}")

# The compiler and its flags are the build's, so that a sanitizer build's
# test binary can load the example.
run_step("configure the example"
  "${CMAKE_COMMAND}" -S "${EXAMPLE_SOURCE_DIR}" -B "${EXAMPLE_BINARY_DIR}" -G "${GENERATOR}"
    "-DCMAKE_PREFIX_PATH=${PREFIX}"
    "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}"
    "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}"
    "-DCMAKE_MODULE_LINKER_FLAGS=${MODULE_LINKER_FLAGS}"
    -DCMAKE_BUILD_TYPE=RelWithDebInfo)

run_step("build the example" "${CMAKE_COMMAND}" --build "${EXAMPLE_BINARY_DIR}")
