#pragma once

#include <cstddef>

// jemalloc's control interface, declared weak: null where the binary runs on
// another allocator (tests that do not link ferry_allocator, sanitizer
// builds). Check `mallctl != nullptr` before calling it.
extern "C" int mallctl(const char* name, void* old_value, size_t* old_size,
                       void* new_value, size_t new_size) __attribute__((weak));
