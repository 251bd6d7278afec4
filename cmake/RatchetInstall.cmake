# `cmake --install`: the C++ SDK (its headers, its static libraries, the CMake
# package `find_package(ratchet)` and the pkg-config file ratchet.pc), the
# `ratchet` and `ratchet-server` commands, their man pages and completions.
# docs/sdk.md says how a project uses the SDK; scripts/check-install.sh builds
# examples/installed/ against the result.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

foreach(command ratchet ratchet-server)
  if(TARGET ${command})
    install(TARGETS ${command} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  endif()
endforeach()

# The man pages and completions that ratchet-docgen writes (src/cli).
if(TARGET ratchet_docs)
  install(DIRECTORY ${RATCHET_GENERATED_DOCS}/man1 DESTINATION ${CMAKE_INSTALL_MANDIR})
  install(FILES ${RATCHET_GENERATED_DOCS}/completion/ratchet.bash
          DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME ratchet)
  install(FILES ${RATCHET_GENERATED_DOCS}/completion/_ratchet
          DESTINATION ${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions)
endif()

if(NOT TARGET ratchet_sdk)  # the sdk module is not built
  return()
endif()

# ratchet_sdk is a static library, so the libraries it links privately go on
# the link line of every program that uses it: they are installed and exported
# with it, as ratchet::protocol and so on. Only the SDK's headers are installed.
set(RATCHET_SDK_LIBRARIES ratchet_sdk ratchet_protocol ratchet_http ratchet_wire ratchet_common)
foreach(library ${RATCHET_SDK_LIBRARIES})
  string(REGEX REPLACE "^ratchet_" "" name ${library})
  set_target_properties(${library} PROPERTIES EXPORT_NAME ${name})
endforeach()
install(TARGETS ratchet_sdk EXPORT ratchetTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS ratchet_protocol ratchet_http ratchet_wire ratchet_common EXPORT ratchetTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/ratchet DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

set(RATCHET_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/ratchet)
install(EXPORT ratchetTargets NAMESPACE ratchet:: DESTINATION ${RATCHET_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/ratchetConfig.cmake.in
  ${PROJECT_BINARY_DIR}/ratchetConfig.cmake
  INSTALL_DESTINATION ${RATCHET_CMAKE_DIR})
# Before 1.0 a minor version may change the API.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/ratchetConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/ratchetConfig.cmake
              ${PROJECT_BINARY_DIR}/ratchetConfigVersion.cmake
        DESTINATION ${RATCHET_CMAKE_DIR})

# ratchet.pc finds the prefix from its own place (${pcfiledir}), as the CMake
# package does, so that `cmake --install --prefix DIR` and a moved tree work.
file(RELATIVE_PATH RATCHET_PC_PREFIX /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
string(REGEX REPLACE "/$" "" RATCHET_PC_PREFIX "${RATCHET_PC_PREFIX}")
set(RATCHET_PC_PREFIX "\${pcfiledir}/${RATCHET_PC_PREFIX}")
foreach(dir LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${dir}}")
    set(RATCHET_PC_${dir} "${CMAKE_INSTALL_${dir}}")
  else()
    set(RATCHET_PC_${dir} "\${prefix}/${CMAKE_INSTALL_${dir}}")
  endif()
endforeach()
configure_file(${PROJECT_SOURCE_DIR}/cmake/ratchet.pc.in ${PROJECT_BINARY_DIR}/ratchet.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/ratchet.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
