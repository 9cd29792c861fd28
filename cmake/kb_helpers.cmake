# One Catch2 main, compiled once and shared by every unit-test binary.
add_library(kb_catch_main STATIC ${CMAKE_SOURCE_DIR}/tests/catch_main.cpp)
target_link_libraries(kb_catch_main PUBLIC Catch2::Catch2)

# kb_folder_library(NAME [PUBLIC deps...] [PRIVATE deps...]): the library of one folder, from
# every *.cpp in it except tests and mains. Which folders each may link is checked by
# tests/layering.py (docs/ARCHITECTURE.md, "Layering").
function(kb_folder_library name)
  file(GLOB sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp)
  list(FILTER sources EXCLUDE REGEX "(_test|/main)\\.cpp$")
  add_library(${name} STATIC ${sources})
  target_include_directories(${name} PUBLIC ${CMAKE_SOURCE_DIR})
  target_link_libraries(${name} ${ARGN})
  target_link_libraries(${name} PRIVATE kb_warnings)
endfunction()

# kb_unit_tests(NAME LIB) builds every *_test.cpp beside the library's sources
# into one binary and registers each file as its own ctest test, labelled "unit".
function(kb_unit_tests name lib)
  file(GLOB test_sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*_test.cpp)
  if(NOT test_sources)
    return()
  endif()
  add_executable(${name} ${test_sources})
  target_link_libraries(${name} PRIVATE ${lib} kb_catch_main kb_warnings)
  target_compile_definitions(${name} PRIVATE KB_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
                                             KB_BINARY_DIR="${CMAKE_BINARY_DIR}")
  foreach(src ${test_sources})
    get_filename_component(unit ${src} NAME_WE)
    # Catch2 v2 filters by source file with -# and the "#file" tag.
    add_test(NAME ${name}.${unit} COMMAND ${name} "-#" "[#${unit}]~[.]")
    set_tests_properties(${name}.${unit} PROPERTIES LABELS unit SKIP_RETURN_CODE 77)
  endforeach()
endfunction()
