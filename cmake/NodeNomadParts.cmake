# nodenomad_add_part(<part> SOURCES <files...> [DEPENDS <parts...>])
# Adds the static library nodenomad_<part> and makes `nodenomad` link it.
function(nodenomad_add_part part)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPENDS" ${ARGN})
  set(target nodenomad_${part})
  add_library(${target} STATIC ${ARG_SOURCES})
  target_compile_features(${target} PUBLIC cxx_std_20)
  target_include_directories(${target}
    PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include> $<INSTALL_INTERFACE:include>
    PRIVATE ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(${target} PRIVATE fmt::fmt nodenomad_xxhash Threads::Threads)
  foreach(dep IN LISTS ARG_DEPENDS)
    target_link_libraries(${target} PUBLIC nodenomad_${dep})
  endforeach()
  nodenomad_set_warnings(${target})
  target_link_libraries(nodenomad INTERFACE ${target})
  set_property(GLOBAL APPEND PROPERTY NODENOMAD_PARTS ${target})
endfunction()
