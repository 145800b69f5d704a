// Built against the installed headers and library only.
#include <cstdio>

#include "nodenomad/file_system.hpp"
#include "nodenomad/status.hpp"

int main() {
  auto exists = nodenomad::PosixFileSystem::instance().exists("/");
  if (!exists.is_ok() || !*exists) {
    std::fprintf(stderr, "consumer: installed NodeNomad does not work\n");
    return 1;
  }
  std::printf("consumer: linked the installed NodeNomad\n");
  return 0;
}
