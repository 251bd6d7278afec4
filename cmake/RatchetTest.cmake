# ratchet_add_test(NAME SOURCES... LIBS...): one GoogleTest executable, registered
# with CTest test by test so that failures name the behaviour that broke.
function(ratchet_add_test name)
  if(NOT RATCHET_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gtest GTest::gtest_main GTest::gmock)
  include(GoogleTest)
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60
    PROPERTIES ENVIRONMENT "RATCHET_BIN=$<TARGET_FILE:ratchet>")
endfunction()
