#pragma once

#include <string>
#include <vector>

namespace ferry::cli {

// Prints rows to stdout as columns padded to their widest cell, two spaces
// apart (the first row is usually the header).
void PrintTable(const std::vector<std::vector<std::string>>& rows);

}  // namespace ferry::cli
