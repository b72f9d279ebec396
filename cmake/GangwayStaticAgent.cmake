# -DGANGWAY_STATIC_AGENT=ON: gangway-agent-static, one file to copy onto a
# node or into a training image. Every library is linked in from Debian's
# static archives except glibc (libc, libm, ld-linux), which stays shared:
# a statically linked glibc cannot dlopen the driver's libcuda, NVML and
# NCCL (gpu/shared_library.h), nor resolve users through NSS. What Debian
# ships only as shared libraries is replaced:
#   libudev      (hwloc's Libs.private): agent/static/udev_stub.cc, "no udev"
#   libspdlog, libfmt: agent/static/spdlog_fmt.cc, out of line from headers
#   libsystemd   daemon/systemd_notify.cc sends the datagram itself
#   libprometheus-cpp, libcivetweb: not linked; no --metrics-listen
# Off by default: it compiles four files and links for about a minute.
add_executable(gangway-agent-static
  agent/main.cc daemon/systemd_notify.cc agent/static/spdlog_fmt.cc agent/static/udev_stub.cc)
# The libraries' objects were compiled against spdlog's compiled-library
# headers (spdlog::spdlog's definitions); so is main.cc here.
target_compile_definitions(gangway-agent-static PRIVATE GANGWAY_STATIC_AGENT
  SPDLOG_COMPILED_LIB SPDLOG_FMT_EXTERNAL BOOST_ALL_NO_LIB)
set(gangway_static_libs gangway_agent gangway_supervisor gangway_gpu gangway_common
  gangway_security gangway_proto)
add_dependencies(gangway-agent-static ${gangway_static_libs})
execute_process(
  COMMAND ${PKG_CONFIG_EXECUTABLE} --static --libs grpc++ protobuf hwloc yaml-cpp re2 openssl
  OUTPUT_VARIABLE static_libs OUTPUT_STRIP_TRAILING_WHITESPACE COMMAND_ERROR_IS_FATAL ANY)
separate_arguments(static_libs UNIX_COMMAND "${static_libs}")
# glibc's own and udev's: linked shared or stubbed, above.
list(FILTER static_libs EXCLUDE REGEX "^-l(udev|m|dl|pthread|rt)$|^-pthread$|^-L")
set(gangway_static_archives)
foreach(lib ${gangway_static_libs})
  list(APPEND gangway_static_archives $<TARGET_FILE:${lib}>)
endforeach()
# One group: our archives and the third-party ones refer to each other.
target_link_libraries(gangway-agent-static PRIVATE
  "-Wl,--start-group" ${gangway_static_archives} "-Wl,-Bstatic" ${static_libs}
  "-Wl,-Bdynamic" "-Wl,--end-group" -static-libstdc++ -static-libgcc -ldl -lm -lpthread -lrt)
