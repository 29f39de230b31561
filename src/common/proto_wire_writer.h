// Writes protobuf varints by hand into room the caller sized first: shared by
// ferryd's publish answers and subscribe receipts and the C++ SDK's publish
// requests. Header-only, without gRPC or the protobuf runtime (as
// proto_wire_reader.h).
#pragma once

#include <cstddef>
#include <cstdint>

namespace ferry::proto_wire {

// Bytes WriteVarint takes for `value`: 1 to 10.
constexpr size_t VarintSize(uint64_t value) {
  size_t size = 1;
  while (value >= 0x80) {
    value >>= 7;
    ++size;
  }
  return size;
}

// Writes `value` at `out`; returns the end of what it wrote.
inline char* WriteVarint(uint64_t value, char* out) {
  while (value >= 0x80) {
    *out++ = static_cast<char>(value | 0x80);
    value >>= 7;
  }
  *out++ = static_cast<char>(value);
  return out;
}

}  // namespace ferry::proto_wire
