#pragma once

#include <string>
#include <string_view>

#include "ferry/client/subscriber.h"

namespace ferry::cli {

// Well-formed UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
bool IsValidUtf8(std::string_view bytes);

// One JSON object on one line (no newline), fields in this order:
//   {"topic":"t","partition":0,"offset":42,"key":"k","value":"v",
//    "headers":[{"key":"h","value":"x"}],"timestamp":"2024-05-01T12:00:00.000Z",
//    "attempt":1}
// Keys, values and header values that are not valid UTF-8 are written
// base64-encoded under "key_base64" / "value_base64" instead, so every byte
// survives and a text field is never silently mangled. timestamp is RFC 3339
// in UTC with milliseconds, or null when the node sent none.
std::string FormatJson(const client::ReceivedMessage& message);

}  // namespace ferry::cli
