# What `--version` prints: the project version, the commit and the build
# type, fixed when cmake configures (a commit made later shows once cmake
# runs again). The commit comes from -DGANGWAY_GIT_COMMIT=..., else from
# git, else from cmake/commit.txt, which `git archive` fills in
# (.gitattributes: export-subst), else "unknown".
set(GANGWAY_GIT_COMMIT "" CACHE STRING "commit --version reports (default: from git or the tarball)")
set(gangway_commit "${GANGWAY_GIT_COMMIT}")
if(NOT gangway_commit AND EXISTS "${CMAKE_SOURCE_DIR}/.git")
  find_package(Git QUIET)
  if(GIT_FOUND)
    # --no-optional-locks: describe --dirty refreshes the index otherwise,
    # and must not take its lock from a concurrent commit.
    execute_process(
      COMMAND "${GIT_EXECUTABLE}" --no-optional-locks describe --always --dirty --abbrev=12
      WORKING_DIRECTORY "${CMAKE_SOURCE_DIR}"
      OUTPUT_VARIABLE gangway_commit OUTPUT_STRIP_TRAILING_WHITESPACE
      ERROR_QUIET RESULT_VARIABLE git_rc)
    if(NOT git_rc EQUAL 0)
      set(gangway_commit "")
    endif()
  endif()
endif()
if(NOT gangway_commit)
  file(STRINGS "${CMAKE_SOURCE_DIR}/cmake/commit.txt" gangway_commit LIMIT_COUNT 1)
  if(gangway_commit MATCHES "^\\$Format" OR NOT gangway_commit MATCHES "^[0-9a-f]+$")
    set(gangway_commit "unknown")
  else()
    string(SUBSTRING "${gangway_commit}" 0 12 gangway_commit)
  endif()
endif()
set(GANGWAY_BUILD_TYPE "${CMAKE_BUILD_TYPE}")
if(GANGWAY_SANITIZE)
  string(APPEND GANGWAY_BUILD_TYPE "+${GANGWAY_SANITIZE}")
endif()
configure_file("${CMAKE_SOURCE_DIR}/cmake/gangway_build_info.h.in"
               "${CMAKE_BINARY_DIR}/gangway_build_info.h" @ONLY)
