# ferry_allocator: link it into an executable (never a library) to replace
# glibc malloc with jemalloc. glibc took ~40 % of ferryd's CPU per message in
# malloc/free (bench/RESULTS.md: gRPC threads allocate what delivery-report
# threads free); jemalloc's per-thread caches and size classes halve that.
# Sanitizer builds keep the sanitizers' own allocator (they intercept malloc);
# fuzz builds (scripts/fuzz) do not go through CMake at all.
add_library(ferry_allocator INTERFACE)
if(FERRY_JEMALLOC AND NOT FERRY_SANITIZE)
  pkg_check_modules(JEMALLOC REQUIRED IMPORTED_TARGET jemalloc)
  target_sources(ferry_allocator INTERFACE ${PROJECT_SOURCE_DIR}/cmake/jemalloc_conf.c)
  target_link_libraries(ferry_allocator INTERFACE PkgConfig::JEMALLOC)
  message(STATUS "allocator: jemalloc ${JEMALLOC_VERSION}")
else()
  message(STATUS "allocator: the C library's malloc")
endif()
