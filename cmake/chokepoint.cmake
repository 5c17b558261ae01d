# Helpers shared by every folder.

# Adds every immediate subfolder of the current source dir that has a CMakeLists.txt, so a new
# library or test folder needs no edit of its parent.
function(chokepoint_add_subdirs)
  file(GLOB children LIST_DIRECTORIES true RELATIVE ${CMAKE_CURRENT_SOURCE_DIR}
       ${CMAKE_CURRENT_SOURCE_DIR}/*)
  list(SORT children)
  foreach(child IN LISTS children)
    if(IS_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/${child}
       AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${child}/CMakeLists.txt)
      add_subdirectory(${child})
    endif()
  endforeach()
endfunction()

# Every CMakeLists lists its sources by name. chokepoint_check_sources(target) makes that safe:
# a .cpp in the target's folder (and its subfolders without a CMakeLists.txt of their own, such
# as analysis/rules/) that the target does not list is a configure error, so a file added without
# listing it, or brought in by a merge, cannot silently drop out of the build.
function(chokepoint_check_sources target)
  get_target_property(listed ${target} SOURCES)
  file(GLOB_RECURSE present CONFIGURE_DEPENDS RELATIVE ${CMAKE_CURRENT_SOURCE_DIR}
       ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp)
  foreach(file IN LISTS present)
    get_filename_component(dir ${file} DIRECTORY)
    if(dir AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${dir}/CMakeLists.txt)
      continue()  # a library of its own
    endif()
    if(NOT file IN_LIST listed)
      message(FATAL_ERROR "${CMAKE_CURRENT_SOURCE_DIR}/${file} is not listed in the sources of "
                          "${target}: add it to ${CMAKE_CURRENT_SOURCE_DIR}/CMakeLists.txt")
    endif()
  endforeach()
endfunction()

# chokepoint_sanitize_alignment(target): under CHOKEPOINT_SANITIZE, the target keeps UBSan's
# alignment check, which the build drops elsewhere (the root CMakeLists.txt says why). For the
# libraries that read kernel and file formats through typed pointers into byte buffers (netlink
# messages, perf records, ELF headers), where a misaligned read is a real bug to catch.
function(chokepoint_sanitize_alignment target)
  if(CHOKEPOINT_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=alignment)
  endif()
endfunction()

# chokepoint_unity_groups(target GROUPS n [ALONE file.cpp...])
# With CHOKEPOINT_UNITY (CI's builds, .ci/run): the target's .cpp files are compiled as n unity
# translation units, the k-th listed file in group k mod n, so a file added to the target's list
# lands in a group with no other step. The headers every file of the folder includes (CLI11,
# nlohmann-json, fmt, the standard library) are then parsed, and the inline code they instantiate
# compiled, once per group rather than once per file: 8 files of src/app/ took 21 s of compile CPU
# as one unity unit against 88 s one by one (docs/benchmarks.md, "CI time").
# Off by default, since an edit would recompile its whole group and ccache would cache whole groups.
# A collision: two files of one group must not define the same name at file scope (anonymous-
# namespace helpers included, and `using` declarations that clash with another file's names); the
# unity build fails with "redefinition of ..." (or "conflicting declaration", "ambiguous") naming
# both files. Fix it by renaming one of the two names, which is best (the same helper written
# twice is often a duplicate to merge); or by listing one file under ALONE, which compiles it on
# its own; or by changing n. -DCHOKEPOINT_UNITY=ON reproduces CI's build.
function(chokepoint_unity_groups target)
  cmake_parse_arguments(U "" "GROUPS" "ALONE" ${ARGN})
  if(NOT CHOKEPOINT_UNITY)
    return()
  endif()
  get_target_property(sources ${target} SOURCES)
  set(i 0)
  foreach(source IN LISTS sources)
    if(source IN_LIST U_ALONE)
      set_source_files_properties(${source} PROPERTIES SKIP_UNITY_BUILD_INCLUSION ON)
    elseif(source MATCHES "\\.cpp$")
      math(EXPR group "${i} % ${U_GROUPS}")
      set_source_files_properties(${source} PROPERTIES UNITY_GROUP "${target}_${group}")
      math(EXPR i "${i} + 1")
    endif()
  endforeach()
  set_target_properties(${target} PROPERTIES UNITY_BUILD ON UNITY_BUILD_MODE GROUP)
endfunction()

# Test and fuzz-replay code is compiled for build speed, not run speed: -O0 with line tables only
# (-g1) outside Debug builds. At -O2 -g it was three quarters of the build's compile time; what the
# tests exercise (src/, lab/) keeps the build type's own flags, and the timing-sensitive work runs
# there. Test targets also share one precompiled header (chokepoint_test_pch) of gtest, gmock,
# nlohmann-json and fmt; -Winvalid-pch turns a flag mismatch that would silently skip it into a
# warning (an error in CI).
# Under the sanitizers test code keeps ASan and drops UBSan's checks (-fno-sanitize=undefined):
# they were about 40% of a test file's compile there (12.6 and 11.2 s of CPU against 7.2 and 7.9 s
# for one integration test file, docs/benchmarks.md "CI time, fifth round"), and what they would
# check is the tests' own arithmetic and the inline code of ours a test file instantiates; the
# libraries, the lab and the chokepoint binary that every integration test runs keep both.
set(chokepoint_test_compile_options "$<$<NOT:$<CONFIG:Debug>>:-O0;-g1>" -Winvalid-pch
    "$<$<BOOL:${CHOKEPOINT_SANITIZE}>:-fno-sanitize=undefined>")
set(chokepoint_test_common_libs GTest::gtest GTest::gmock fmt::fmt nlohmann_json::nlohmann_json
    Threads::Threads)

# The object library whose precompiled header every chokepoint_add_test target reuses. Called once,
# from tests/CMakeLists.txt, before the test folders.
function(chokepoint_add_test_pch)
  add_library(chokepoint_test_pch OBJECT ${PROJECT_SOURCE_DIR}/tests/support/pch_anchor.cpp)
  target_link_libraries(chokepoint_test_pch PRIVATE ${chokepoint_test_common_libs})
  target_compile_options(chokepoint_test_pch PRIVATE ${chokepoint_test_compile_options})
  target_precompile_headers(chokepoint_test_pch PRIVATE
    <gtest/gtest.h> <gmock/gmock.h> <nlohmann/json.hpp> <fmt/format.h>
    <chrono> <filesystem> <functional> <map> <optional> <string> <string_view> <thread> <vector>)
endfunction()

# chokepoint_timing_tests: what the release build's timing tests need (every test target with a
# release-only label, the programs they run, the browser tests' programs), so that CI's release
# build compiles only that (`make test TEST_SCOPE=timing`). Called once, from tests/CMakeLists.txt,
# before the test folders; a folder whose add_test needs a program adds it with add_dependencies.
function(chokepoint_add_timing_target)
  add_custom_target(chokepoint_timing_tests)
  add_dependencies(chokepoint_timing_tests chokepoint chokepoint-lab)
endfunction()

# chokepoint_add_test(NAME SOURCES a.cpp b.cpp LIBS lib1 lib2 [LABELS l] [SERIAL | LOCK name]
#                     [PER_FILE] [RELEASE_ONLY Suite.Test...])
# A GoogleTest executable whose tests ctest discovers one by one. How its tests share the machine
# under `ctest -j2` (no keyword: beside any other test):
#   SERIAL  nothing runs beside them (RUN_SERIAL), for two reasons only: they measure the time or
#           cost of real programs (a verdict is a time split; a rate, a knee, a deadline, a sampling
#           share), or they need machine-wide state alone (kernel.task_delayacct, which every
#           diagnose run switches; the pid allocator through ns_last_pid; thousands of threads and
#           CPU hogs). Say which in a comment. Measured: two verdict tests side by side, or one
#           beside a CPU-heavy test (perf, a lab under load), give wrong verdicts (docs/benchmarks.md,
#           "CI time, second round").
#   LOCK    a named resource the tests need alone (a fixed cgroup name, a fixed file or port): a
#           RESOURCE_LOCK, so only holders of the same name wait for each other. One name at most:
#           gtest_discover_tests passes each property value as one word.
# Tests that run real programs and check what they print need neither.
# RELEASE_ONLY names tests of the target that cannot run under ASan (say why beside the call): they
# carry the label release-only instead of the target's, so `make asan-test` leaves them out and
# CI's release run takes them in; the target is then built by chokepoint_timing_tests too.
# The labels whose tests run in the release build only: `make asan-test` excludes them, and CI runs
# them alone in the release build (`make test TEST_SCOPE=timing`, .ci/run), every other test once,
# under ASan. verdict and *-measure measure the lab's timing, stack layout and memory, which ASan
# changes; browser tests drive Chromium through the page (JavaScript, which ASan does not see);
# release-only names single tests that cannot run under ASan (chokepoint_add_test's RELEASE_ONLY).
# Keep in step with the Makefile's timing_labels.
set(chokepoint_release_only_labels "verdict|measure|browser|release-only")
# With CHOKEPOINT_TEST_UNITY (on with CHOKEPOINT_UNITY, so in CI's two builds: tests/CMakeLists.txt)
# a test target's .cpp files compile as unity groups of about this many files. Test code is -O0,
# where the inline code of gtest, nlohmann-json and fmt that every file instantiates again is much
# of a file's compile (docs/benchmarks.md, "CI time, fourth round"). Test files often define the
# same file-scope helper (`kUnits`, `has`, `pid_target`); a target whose files collide in a group
# says PER_FILE and compiles one file at a time (or one of the two names is renamed, or the
# helper moves to tests/support, which is better: chokepoint_unity_groups above says how to
# read the error).
set(chokepoint_test_unity_files 4)

function(chokepoint_add_test name)
  cmake_parse_arguments(T "SERIAL;PER_FILE" "LOCK" "SOURCES;LIBS;LABELS;RELEASE_ONLY" ${ARGN})
  # Each property value reaches ctest as one word through gtest_discover_tests: a second label
  # would become a property name of its own (and the test would carry the first label only).
  list(LENGTH T_LABELS label_count)
  if(label_count GREATER 1)
    message(FATAL_ERROR "chokepoint_add_test(${name}): one label at most (${T_LABELS})")
  endif()
  if(T_SERIAL AND T_LOCK)
    message(FATAL_ERROR "chokepoint_add_test(${name}): SERIAL already keeps every other test "
                        "away; drop LOCK ${T_LOCK}")
  endif()
  # Under the sanitizers a release-only test target is defined (so the folder's add_dependencies
  # and definitions still apply) but neither built by default nor registered with ctest: its tests
  # would never run there, and compiling them instrumented cost the ASan build minutes of CPU.
  # `cmake --build build-asan --target NAME` still builds it for a manual run.
  if(CHOKEPOINT_SANITIZE AND T_LABELS MATCHES "${chokepoint_release_only_labels}")
    set(release_only TRUE)
  else()
    set(release_only FALSE)
  endif()
  add_executable(${name} ${T_SOURCES})
  if(release_only)
    set_target_properties(${name} PROPERTIES EXCLUDE_FROM_ALL TRUE)
  endif()
  if(T_LABELS MATCHES "${chokepoint_release_only_labels}" OR T_RELEASE_ONLY)
    add_dependencies(chokepoint_timing_tests ${name})
  endif()
  target_link_libraries(${name} PRIVATE ${T_LIBS} ${chokepoint_test_common_libs} GTest::gtest_main)
  target_compile_options(${name} PRIVATE ${chokepoint_test_compile_options})
  target_precompile_headers(${name} REUSE_FROM chokepoint_test_pch)
  list(LENGTH T_SOURCES source_count)
  if(CHOKEPOINT_TEST_UNITY AND source_count GREATER 1 AND NOT T_PER_FILE)
    math(EXPR groups
         "(${source_count} + ${chokepoint_test_unity_files} - 1) / ${chokepoint_test_unity_files}")
    set(CHOKEPOINT_UNITY ON)  # for chokepoint_unity_groups, in this function's scope only
    chokepoint_unity_groups(${name} GROUPS ${groups})
  endif()
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/tests)
  target_compile_definitions(${name} PRIVATE
    CHOKEPOINT_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    CHOKEPOINT_FIXTURES_DIR="${PROJECT_SOURCE_DIR}/tests/fixtures"
    CHOKEPOINT_BIN_DIR="${CMAKE_RUNTIME_OUTPUT_DIRECTORY}")
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  if(release_only)
    return()
  endif()
  set(props "")
  if(T_SERIAL)
    list(APPEND props RUN_SERIAL TRUE)
  endif()
  if(T_LOCK)
    list(APPEND props RESOURCE_LOCK ${T_LOCK})
  endif()
  if(T_LABELS)
    list(APPEND props LABELS "${T_LABELS}")
  endif()
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES ${props})
  if(T_RELEASE_ONLY)
    # ctest reads the directory's TEST_INCLUDE_FILES in order, so this runs after the discovered
    # tests exist; a name that no longer exists fails ctest's listing of them.
    set(relabel "")
    foreach(test IN LISTS T_RELEASE_ONLY)
      string(APPEND relabel "set_tests_properties([==[${test}]==] PROPERTIES LABELS release-only)\n")
    endforeach()
    set(relabel_file ${CMAKE_CURRENT_BINARY_DIR}/${name}_release_only.cmake)
    file(WRITE ${relabel_file} "${relabel}")
    set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES ${relabel_file})
  endif()
endfunction()

# chokepoint_add_test_program(NAME SOURCES file.c... [OPTIONS flag...] [LINK_OPTIONS flag...]
#                             [LIBS lib...] [FOR test_target... DEFINE MACRO])
# A program the tests run as their target (known threads, names, allocations, limits): plain code
# in every build, sanitizers off (the point is its own machine code, stacks or malloc, not
# libasan's), OPTIONS after the build's own flags (so -O2 or -fomit-frame-pointer win), written to
# build/tests. Each FOR test target is built after it and finds it as the string MACRO
# (MACRO="$<TARGET_FILE:NAME>").
function(chokepoint_add_test_program name)
  cmake_parse_arguments(P "" "DEFINE" "SOURCES;OPTIONS;LINK_OPTIONS;LIBS;FOR" ${ARGN})
  if(P_FOR AND NOT P_DEFINE)
    message(FATAL_ERROR "chokepoint_add_test_program(${name}): FOR needs DEFINE, the macro the "
                        "tests find the program by")
  endif()
  add_executable(${name} ${P_SOURCES})
  target_compile_options(${name} PRIVATE ${P_OPTIONS} -fno-sanitize=all)
  target_link_options(${name} PRIVATE ${P_LINK_OPTIONS} -fno-sanitize=all)
  if(P_LIBS)
    target_link_libraries(${name} PRIVATE ${P_LIBS})
  endif()
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  foreach(test IN LISTS P_FOR)
    add_dependencies(${test} ${name})
    target_compile_definitions(${test} PRIVATE ${P_DEFINE}="$<TARGET_FILE:${name}>")
  endforeach()
endfunction()

# chokepoint_add_fuzzer(NAME SOURCE file.cpp LIBS libs...)
# With CHOKEPOINT_FUZZ (clang): a libFuzzer binary. Otherwise: a ctest that replays every input in
# tests/fuzz/corpus/NAME/ through the same entry point, so the corpus is a regression suite.
function(chokepoint_add_fuzzer name)
  cmake_parse_arguments(F "" "SOURCE" "LIBS" ${ARGN})
  set(corpus ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/${name})
  if(CHOKEPOINT_FUZZ)
    add_executable(${name} ${F_SOURCE})
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
  else()
    add_executable(${name} ${F_SOURCE} ${PROJECT_SOURCE_DIR}/tests/fuzz/replay_main.cpp)
    add_test(NAME ${name}_replay COMMAND ${name} ${corpus})
  endif()
  target_link_libraries(${name} PRIVATE ${F_LIBS})
  if(NOT CHOKEPOINT_FUZZ)
    target_compile_options(${name} PRIVATE ${chokepoint_test_compile_options})
  endif()
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/tests)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz)
endfunction()

# chokepoint_soname(VAR name): the runtime name (DT_SONAME, "libpq.so.5") of the library that
# -l<name> links, for opening it when first needed (util/shared_library.h) rather than at exec.
# Read from the library itself, since the versions differ between distributions.
function(chokepoint_soname var name)
  find_library(CHOKEPOINT_LIB_${name} NAMES ${name} REQUIRED)
  execute_process(COMMAND ${CMAKE_OBJDUMP} -p ${CHOKEPOINT_LIB_${name}} OUTPUT_VARIABLE dump
                  RESULT_VARIABLE rc)
  string(REGEX MATCH "SONAME +([^ \n]+)" found "${dump}")
  if(NOT rc EQUAL 0 OR NOT CMAKE_MATCH_1)
    message(FATAL_ERROR "cannot read the SONAME of ${CHOKEPOINT_LIB_${name}} with "
                        "'${CMAKE_OBJDUMP} -p' (binutils): run scripts/setup")
  endif()
  set(${var} ${CMAKE_MATCH_1} PARENT_SCOPE)
endfunction()
