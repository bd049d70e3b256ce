# cmake/install.cmake: what `cmake --install build [--prefix P]` puts where, and the
# Debian package built from it (`cd build && cpack -G DEB`). Included at the end of
# CMakeLists.txt. The version is project(VERSION) there, nowhere else.
include(GNUInstallDirs)

# the binary needs nothing else: lualib/ is compiled into it
install(TARGETS pacer RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${CMAKE_SOURCE_DIR}/docs/pacer.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${CMAKE_SOURCE_DIR}/tools/completion/pacer.bash
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME pacer)
install(FILES ${CMAKE_SOURCE_DIR}/README.md ${CMAKE_SOURCE_DIR}/CHANGELOG.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
# the examples run from there: each starts its own mock API on 127.0.0.1
install(DIRECTORY ${CMAKE_SOURCE_DIR}/scripts/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples
        FILES_MATCHING PATTERN "*.lua" PATTERN "*.csv")

set(CPACK_PACKAGE_NAME pacer)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "pacer maintainers")
set(CPACK_PACKAGE_CONTACT "pacer maintainers <maintainers@users.noreply.r-seed-17d23282.example>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Lua-scriptable, rate-limited HTTP automation runtime")
set(CPACK_PACKAGE_DESCRIPTION "pacer runs Lua scripts that call rate-limited HTTP APIs: it sends requests
as fast as the API allows and no faster, retries throttling and faults with
backoff that honours Retry-After, and reports what happened. It includes
pacer mock, a local API that throttles like a real one, for dry runs.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT) # pacer_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Depends: computed by dpkg-shlibdeps from the libraries the binary links, not a list
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS OFF)
include(CPack)
