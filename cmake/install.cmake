# What `cmake --install` puts where, and the Debian package CPack builds from
# the same rules (docs/install.md).
#
# The three static libraries the build links its programs with are merged
# into one library for users, as libsluice.a and libsluice.so: an embedding
# program links one library and asks pkg-config for the rest.
include(GNUInstallDirs)

set(SLUICE_PARTS sluice_core sluice_io)
if(SLUICE_ROUTER)
  list(APPEND SLUICE_PARTS sluice_router)
endif()
set(SLUICE_PART_OBJECTS)
foreach(part IN LISTS SLUICE_PARTS)
  list(APPEND SLUICE_PART_OBJECTS $<TARGET_OBJECTS:${part}>)
endforeach()

add_library(sluice_shared SHARED ${SLUICE_PART_OBJECTS})
add_library(sluice_static STATIC ${SLUICE_PART_OBJECTS})
foreach(lib sluice_shared sluice_static)
  target_link_libraries(${lib} PRIVATE ${SLUICE_PARTS})
  set_target_properties(${lib} PROPERTIES OUTPUT_NAME sluice)
endforeach()
set_target_properties(sluice_shared PROPERTIES
  VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR})

install(TARGETS sluice_shared sluice_static
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev)

# Public headers keep their directories, so `#include "router/sluice.h"`
# works with -I${includedir}/sluice; internal headers stay behind.
foreach(dir core io router)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${dir}/
    DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/sluice/${dir}
    COMPONENT dev
    FILES_MATCHING PATTERN "*.h" PATTERN "*_internal.h" EXCLUDE)
endforeach()

configure_file(${PROJECT_SOURCE_DIR}/packaging/sluice.pc.in
  ${PROJECT_BINARY_DIR}/sluice.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/sluice.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)

# Programs that exist in this build.
foreach(prog sluiced sluice-load sluice-top)
  if(TARGET ${prog})
    install(TARGETS ${prog} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
      COMPONENT runtime)
  endif()
endforeach()

# Manual pages: section 8 for the daemon, 1 for the tools.
foreach(page sluiced.8 sluice-load.1 sluice-top.1)
  string(REGEX REPLACE ".*\\.([0-9])$" "\\1" section ${page})
  if(EXISTS ${PROJECT_SOURCE_DIR}/docs/man/${page})
    install(FILES ${PROJECT_SOURCE_DIR}/docs/man/${page}
      DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section} COMPONENT runtime)
  endif()
endforeach()

# The service: the unit goes where systemd looks for packaged units, the
# configuration where an operator edits it.  With a /usr prefix the
# configuration is /etc, as the FHS wants, not /usr/etc.
set(SLUICE_UNITDIR "lib/systemd/system" CACHE STRING
  "where the systemd unit is installed, relative to the prefix")
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(SLUICE_CONFDIR /etc/sluice)
else()
  set(SLUICE_CONFDIR ${CMAKE_INSTALL_FULL_SYSCONFDIR}/sluice)
endif()
configure_file(${PROJECT_SOURCE_DIR}/packaging/sluiced.service.in
  ${PROJECT_BINARY_DIR}/sluiced.service @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/sluiced.service
  DESTINATION ${SLUICE_UNITDIR} COMPONENT runtime)
install(FILES ${PROJECT_SOURCE_DIR}/packaging/sluiced.yaml
  DESTINATION ${SLUICE_CONFDIR} COMPONENT runtime)

# The Debian package: `cpack -G DEB` in a build directory configured with
# -DCMAKE_INSTALL_PREFIX=/usr.
set(CPACK_PACKAGE_NAME sluice)
set(CPACK_PACKAGE_VENDOR "Sluice")
set(CPACK_PACKAGE_CONTACT "Sluice maintainers <sluice@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "event router that folds each key's updates and reconciles the latest")
set(CPACK_PACKAGE_DESCRIPTION
  "Sluice ingests events over TCP, UDP and Unix sockets, routes them by kind
and key, folds each route's pending events per key and reconciles every key's
latest state into a sink.  This package holds the daemon, its tools, the
library with its headers and a hardened systemd service.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
# The package holds what this build's install rules produce, at this
# build's prefix, so the unit's paths and the files agree.
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${PROJECT_SOURCE_DIR}/packaging/debian/postinst
  ${PROJECT_SOURCE_DIR}/packaging/debian/prerm
  ${PROJECT_SOURCE_DIR}/packaging/debian/postrm
  ${PROJECT_SOURCE_DIR}/packaging/debian/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_STRIP_FILES ON)
include(CPack)
