# Use ccache when it is installed: CI rebuilds the same sources on every run.
find_program(NODENOMAD_CCACHE ccache)
if(NODENOMAD_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_CXX_COMPILER_LAUNCHER "${NODENOMAD_CCACHE}")
endif()
