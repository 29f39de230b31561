// The arguments of ferry._native.Publisher's publish and publish_many.
#ifndef FERRY_SDK_PYTHON_NATIVE_PUBLISH_INPUT_H_
#define FERRY_SDK_PYTHON_NATIVE_PUBLISH_INPUT_H_

#include <string_view>
#include <vector>

#include "native.h"

namespace ferry::python {

// Bytes a call converted (from a bytearray or memoryview) and views until it
// returns; released with the GIL held.
struct Owned {
  std::vector<PyObject*> refs;
  Owned() = default;
  Owned(const Owned&) = delete;
  Owned& operator=(const Owned&) = delete;
  ~Owned();
};

// bytes, str (UTF-8), bytearray or memoryview into `out`; None (or not
// given) leaves it empty (b"" for a value, no key); TypeError otherwise.
bool BytesOf(PyObject* value, std::string_view* out, const char* what, Owned* owned);
// A mapping or an iterable of (str, bytes-like or None) pairs; falsy: none.
bool HeadersOf(PyObject* headers, std::vector<client::Header>* out, Owned* owned);
// A datetime (naive: UTC, as the pure path's protobuf Timestamp).
bool TimestampOf(PyObject* value, client::Message* message);
// One item of publish_many: a value, or (value[, key[, headers[, ordering_key]]]).
bool ViewOf(PyObject* item, client::MessageView* view,
            std::vector<client::Header>* headers, Owned* owned);

// Imports what the above check against; false with an exception set.
bool LoadPublishInputTypes();

}  // namespace ferry::python

#endif  // FERRY_SDK_PYTHON_NATIVE_PUBLISH_INPUT_H_
