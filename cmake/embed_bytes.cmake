# bytes_of(FILE OUT_VAR): the file's bytes as a comma-separated list of char
# literals ('\x41',), 16 to a line, for a generated C++ array initializer; "0"
# for an empty file, since an empty array is not valid C++. Included by the
# scripts that embed the panel's files and the `agent new` templates.
function(bytes_of file out_var)
  file(READ "${file}" hex HEX)
  string(LENGTH "${hex}" hex_length)
  if(hex_length EQUAL 0)
    set(${out_var} "0" PARENT_SCOPE)
    return()
  endif()
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "'\\\\x\\1'," bytes "${hex}")
  # CMake's regular expressions have no {n} quantifier: the pattern is spelt out.
  string(REPEAT "'\\\\x[0-9a-f][0-9a-f]'," 16 sixteen_bytes)
  string(REGEX REPLACE "(${sixteen_bytes})" "\\1\n    " bytes "${bytes}")
  set(${out_var} "${bytes}" PARENT_SCOPE)
endfunction()
