// The input of a wire decoder's libFuzzer target: the first byte picks a
// piece size, the rest is the message, which the target decodes once whole
// and once cut into pieces of that size (as gRPC's slices may cut it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace ferry::fuzz {

struct Pieces {
  std::string_view whole;
  std::vector<std::string_view> cut;
};

// `size` must be at least 1.
inline Pieces CutInput(const uint8_t* data, size_t size) {
  const size_t piece_size = data[0] % 8 + 1;
  Pieces pieces{.whole =
                    std::string_view(reinterpret_cast<const char*>(data + 1), size - 1)};
  for (size_t at = 0; at < pieces.whole.size(); at += piece_size) {
    pieces.cut.push_back(pieces.whole.substr(at, piece_size));
  }
  return pieces;
}

}  // namespace ferry::fuzz
