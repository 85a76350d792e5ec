# Small helpers so that each folder's CMakeLists.txt states only what is particular to it.

set(VERIFACE_WARNINGS -Wall -Wextra -Wno-unused-parameter)

# veriface_library(NAME SOURCES ... DEPS ...): a static library of one folder.
function(veriface_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
  target_compile_options(${name} PRIVATE ${VERIFACE_WARNINGS})
endfunction()

# veriface_executable(NAME SOURCES ... DEPS ...)
function(veriface_executable name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
  target_compile_options(${name} PRIVATE ${VERIFACE_WARNINGS})
endfunction()

# veriface_test(NAME SOURCES ... DEPS ... [LABELS ...]): one GoogleTest binary, one ctest entry per test.
# Tests find shared data through VERIFACE_SHARED_DIR and the converted model through VERIFACE_MODEL_DIR.
function(veriface_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} veriface_testing GTest::gtest GTest::gmock GTest::gtest_main)
  target_compile_options(${name} PRIVATE ${VERIFACE_WARNINGS})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 600)
  endif()
  gtest_discover_tests(${name}
    DISCOVERY_TIMEOUT 60
    PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT}
               ENVIRONMENT "VERIFACE_SOURCE_DIR=${PROJECT_SOURCE_DIR};VERIFACE_BINARY_DIR=${PROJECT_BINARY_DIR}")
endfunction()
