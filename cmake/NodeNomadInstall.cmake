# `cmake --install` puts the headers, the library and a package config so that
# another CMake project can `find_package(NodeNomad)` and link
# NodeNomad::nodenomad (tests/install_consumer proves it in CI).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(DIRECTORY include/nodenomad DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
get_property(nodenomad_parts GLOBAL PROPERTY NODENOMAD_PARTS)
install(TARGETS nodenomad ${nodenomad_parts} EXPORT NodeNomadTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
# The xxHash interface target is private and header-only, but a static
# library's link interface still names it, so it is exported too.
install(TARGETS nodenomad_xxhash EXPORT NodeNomadTargets)
install(EXPORT NodeNomadTargets NAMESPACE NodeNomad::
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/NodeNomad)
configure_package_config_file(cmake/NodeNomadConfig.cmake.in
  "${PROJECT_BINARY_DIR}/NodeNomadConfig.cmake"
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/NodeNomad)
write_basic_package_version_file("${PROJECT_BINARY_DIR}/NodeNomadConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion)
install(FILES "${PROJECT_BINARY_DIR}/NodeNomadConfig.cmake"
              "${PROJECT_BINARY_DIR}/NodeNomadConfigVersion.cmake"
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/NodeNomad)
