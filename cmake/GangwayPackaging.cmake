# `cmake --install` and `cpack -G DEB` (from the build directory): three
# Debian packages, so a GPU node installs only the agent.
#   gangway              the CLI
#   gangway-coordinator  the coordinator, its unit, /etc/gangway/coordinator.env,
#                        the gangway system user (postinst)
#   gangway-agent        the agent, its unit, /etc/gangway/agent.env
# Depends come from dpkg-shlibdeps. The packages install under /usr; the
# units in deploy/systemd name /usr/bin.

# `install` (and so cpack) builds only what it installs, not every test.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

install(TARGETS gangway RUNTIME DESTINATION bin COMPONENT cli)
install(TARGETS gangway-coordinator RUNTIME DESTINATION bin COMPONENT coordinator)
install(TARGETS gangway-agent RUNTIME DESTINATION bin COMPONENT agent)
install(FILES deploy/systemd/gangway-coordinator.service DESTINATION lib/systemd/system
        COMPONENT coordinator)
install(FILES deploy/systemd/gangway-agent.service DESTINATION lib/systemd/system
        COMPONENT agent)
install(FILES deploy/etc/coordinator.env DESTINATION /etc/gangway COMPONENT coordinator)
install(FILES deploy/etc/agent.env DESTINATION /etc/gangway COMPONENT agent)
install(FILES README.md DESTINATION share/doc/gangway COMPONENT cli)
if(EXISTS "${CMAKE_SOURCE_DIR}/docs/deploy.md")
  install(FILES docs/deploy.md DESTINATION share/doc/gangway COMPONENT cli)
endif()

set(CPACK_PACKAGE_NAME gangway)
set(CPACK_PACKAGE_VENDOR "gangway")
set(CPACK_PACKAGE_CONTACT "gangway maintainers <gangway@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "gang-scheduled distributed training jobs and sweeps")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)  # RelWithDebInfo binaries are mostly debug info
set(CPACK_GENERATOR DEB)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL cli coordinator agent)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_CLI_PACKAGE_NAME gangway)
set(CPACK_DEBIAN_COORDINATOR_PACKAGE_NAME gangway-coordinator)
set(CPACK_DEBIAN_AGENT_PACKAGE_NAME gangway-agent)
set(CPACK_COMPONENT_CLI_DESCRIPTION "gangway command line: submit jobs and sweeps, watch them")
set(CPACK_COMPONENT_COORDINATOR_DESCRIPTION "gangway coordinator: schedules gangs onto agents")
set(CPACK_COMPONENT_AGENT_DESCRIPTION "gangway agent: runs the ranks placed on this node")
# adduser's system user, /usr/sbin/nologin from passwd.
set(CPACK_DEBIAN_COORDINATOR_PACKAGE_DEPENDS "passwd")
set(CPACK_DEBIAN_COORDINATOR_PACKAGE_SUGGESTS "gangway")
set(CPACK_DEBIAN_AGENT_PACKAGE_SUGGESTS "gangway")
set(deb_dir "${CMAKE_SOURCE_DIR}/deploy/debian")
set(CPACK_DEBIAN_COORDINATOR_PACKAGE_CONTROL_EXTRA
    "${deb_dir}/coordinator/conffiles;${deb_dir}/coordinator/postinst;${deb_dir}/coordinator/prerm;${deb_dir}/coordinator/postrm")
set(CPACK_DEBIAN_AGENT_PACKAGE_CONTROL_EXTRA
    "${deb_dir}/agent/conffiles;${deb_dir}/agent/postinst;${deb_dir}/agent/prerm;${deb_dir}/agent/postrm")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
