# `cpack` in a build directory makes ratchet_<version>_<arch>.deb: what
# `cmake --install` installs (RatchetInstall.cmake) under /usr. The binaries'
# shared libraries become Depends (dpkg-shlibdeps); what a program built with
# the SDK also needs (its -dev packages) is suggested, so that installing the
# tools does not pull in a compiler's worth of headers.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME ratchet)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "Ratchet")
set(CPACK_PACKAGE_CONTACT "Ratchet maintainers <ratchet@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "durable execution for C++: jobs, a scheduler server, an SDK")
set(CPACK_PACKAGE_DESCRIPTION
  "ratchet runs shell commands as durable, idempotent jobs (once per run key), \
with status, logs, retries and history as JSON; ratchet server stores and \
schedules durable function calls and speaks the Dispatch protocol; the C++ \
SDK (headers, static libraries, CMake and pkg-config files) writes durable \
functions as C++20 coroutines.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION utils)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SUGGESTS
  "nlohmann-json3-dev, libprotobuf-dev, libssl-dev, libsodium-dev, cmake | pkg-config, g++ (>= 4:12)")
set(CPACK_STRIP_FILES ON)
# gzip, not xz: the package is made in CI's test run, and xz takes several
# times longer for a few MB saved.
set(CPACK_DEBIAN_COMPRESSION_TYPE gzip)
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_BINARY_DIR}/package)
include(CPack)
