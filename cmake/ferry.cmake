# ferry_test(NAME SOURCES... [LIBS ...] [LABEL unit|integration])
#
# unit: every TEST() is its own ctest entry (gtest_discover_tests), so
# failures are reported one by one and run in parallel.
# integration: the whole binary is one ctest entry, so its tests share the
# expensive fixtures (a Kafka broker per binary) instead of starting one per
# test case.
function(ferry_test name)
  cmake_parse_arguments(ARG "" "LABEL" "SOURCES;LIBS" ${ARGN})
  if(NOT FERRY_BUILD_TESTS)
    return()
  endif()
  if(NOT ARG_LABEL)
    set(ARG_LABEL unit)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gtest GTest::gmock GTest::gtest_main)
  if(ARG_LABEL STREQUAL "integration")
    add_test(NAME ${name} COMMAND ${name} --gtest_color=no)
    set_tests_properties(${name} PROPERTIES LABELS ${ARG_LABEL} TIMEOUT 900)
  else()
    set_property(GLOBAL APPEND PROPERTY FERRY_UNIT_TESTS ${name})
    gtest_discover_tests(${name} PROPERTIES LABELS ${ARG_LABEL} TIMEOUT 120
      DISCOVERY_TIMEOUT 30)
  endif()
endfunction()
