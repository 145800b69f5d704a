# Finds every dependency, and when one is missing stops at once with the name
# of the Debian 12 package that provides it (scripts/setup.sh installs them all).

function(nodenomad_missing what debian_package)
  message(FATAL_ERROR
    "NodeNomad needs ${what}, which was not found.\n"
    "Install the Debian package `${debian_package}`:\n"
    "    apt-get install ${debian_package}\n"
    "or run scripts/setup.sh, which installs every dependency.")
endfunction()

set(THREADS_PREFER_PTHREAD_FLAG ON)
find_package(Threads REQUIRED)

find_package(fmt 9 CONFIG QUIET)
if(NOT fmt_FOUND)
  nodenomad_missing("fmt (>= 9)" libfmt-dev)
endif()

# xxHash is used header-only (XXH_INLINE_ALL) so the hash inlines into the ring
# and the record framing; only the header is needed.
find_path(NODENOMAD_XXHASH_INCLUDE_DIR xxhash.h)
if(NOT NODENOMAD_XXHASH_INCLUDE_DIR)
  nodenomad_missing("xxHash (xxhash.h)" libxxhash-dev)
endif()
add_library(nodenomad_xxhash INTERFACE)
target_include_directories(nodenomad_xxhash SYSTEM INTERFACE "${NODENOMAD_XXHASH_INCLUDE_DIR}")
target_compile_definitions(nodenomad_xxhash INTERFACE XXH_INLINE_ALL)

# zstd compresses snapshot chunks on the wire (src/transport). Found through
# pkg-config, which the installed package config repeats for its users.
find_package(PkgConfig QUIET)
if(NOT PkgConfig_FOUND)
  nodenomad_missing("pkg-config (to find zstd)" pkg-config)
endif()
pkg_check_modules(NODENOMAD_ZSTD QUIET IMPORTED_TARGET libzstd>=1.4.0)
if(NOT NODENOMAD_ZSTD_FOUND)
  nodenomad_missing("zstd (libzstd >= 1.4)" libzstd-dev)
endif()

find_package(OpenSSL QUIET)
if(NOT OpenSSL_FOUND)
  nodenomad_missing("OpenSSL" libssl-dev)
endif()

find_package(Boost 1.81 CONFIG QUIET COMPONENTS headers serialization program_options)
if(NOT Boost_FOUND)
  nodenomad_missing("Boost 1.81 (headers, Serialization, Program_options)" libboost1.81-all-dev)
endif()
find_package(boost_json 1.81 CONFIG QUIET)
if(NOT boost_json_FOUND)
  nodenomad_missing("Boost.JSON 1.81" libboost-json1.81-dev)
endif()

if(NODENOMAD_BUILD_TESTS)
  find_package(Catch2 2.13 CONFIG QUIET)
  if(NOT Catch2_FOUND)
    nodenomad_missing("Catch2 2.13" catch2)
  endif()
endif()
