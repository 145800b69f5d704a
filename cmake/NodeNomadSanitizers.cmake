# NODENOMAD_SANITIZE=address,undefined builds everything with those sanitizers.
if(NODENOMAD_SANITIZE)
  add_compile_options(-fsanitize=${NODENOMAD_SANITIZE} -fno-omit-frame-pointer
                      -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${NODENOMAD_SANITIZE})
endif()
