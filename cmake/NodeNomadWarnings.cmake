# Warnings are errors on the project's own code (never on dependencies, whose
# headers come in as SYSTEM includes).
function(nodenomad_set_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Werror
    -Wshadow -Wnon-virtual-dtor -Woverloaded-virtual -Wimplicit-fallthrough
    -Wcast-align -Wnull-dereference -Wformat=2)
endfunction()
