// The arguments of ferry._native.Publisher's publish and publish_many, read
// as ferry._types.to_bytes and to_header_list read them on the pure path.
#include "publish_input.h"

#include <string>
#include <string_view>
#include <vector>

namespace ferry::python {
namespace {

PyObject* mapping_abc = nullptr;    // collections.abc.Mapping
PyObject* datetime_type = nullptr;  // datetime.datetime
PyObject* utc = nullptr;            // datetime.timezone.utc

}  // namespace

Owned::~Owned() {
  for (PyObject* ref : refs) Py_DECREF(ref);
}

bool BytesOf(PyObject* value, std::string_view* out, const char* what, Owned* owned) {
  if (value == nullptr || value == Py_None) return true;  // b"" (a value) or no key
  if (PyBytes_Check(value)) {
    *out = std::string_view(PyBytes_AS_STRING(value),
                            static_cast<std::size_t>(PyBytes_GET_SIZE(value)));
    return true;
  }
  if (PyUnicode_Check(value)) {
    Py_ssize_t size;
    const char* s = PyUnicode_AsUTF8AndSize(value, &size);
    if (s == nullptr) return false;
    *out = std::string_view(s, static_cast<std::size_t>(size));
    return true;
  }
  if (PyByteArray_Check(value) || PyMemoryView_Check(value)) {
    // A copy this call owns: the caller's buffer may change or go while
    // the GIL is released.
    PyObject* copy = PyBytes_FromObject(value);
    if (copy == nullptr) return false;
    owned->refs.push_back(copy);
    *out = std::string_view(PyBytes_AS_STRING(copy),
                            static_cast<std::size_t>(PyBytes_GET_SIZE(copy)));
    return true;
  }
  PyErr_Format(PyExc_TypeError, "%s must be bytes or str, not %s", what,
               Py_TYPE(value)->tp_name);
  return false;
}

bool HeadersOf(PyObject* headers, std::vector<client::Header>* out, Owned* owned) {
  if (headers == nullptr) return true;
  int given = PyObject_IsTrue(headers);
  if (given <= 0) return given == 0;
  int mapping = PyDict_Check(headers) ? 1 : PyObject_IsInstance(headers, mapping_abc);
  if (mapping < 0) return false;
  PyObject* items = mapping ? PyMapping_Items(headers) : PySequence_List(headers);
  if (items == nullptr) return false;
  bool ok = true;
  for (Py_ssize_t i = 0; ok && i < PyList_GET_SIZE(items); ++i) {
    PyObject* pair =
        PySequence_Fast(PyList_GET_ITEM(items, i), "a header is a (key, value) pair");
    if (pair == nullptr) {
      ok = false;
      break;
    }
    if (PySequence_Fast_GET_SIZE(pair) != 2) {
      PyErr_SetString(PyExc_ValueError, "a header is a (key, value) pair");
      ok = false;
    } else if (PyObject* key = PySequence_Fast_GET_ITEM(pair, 0); !PyUnicode_Check(key)) {
      PyErr_Format(PyExc_TypeError, "header keys must be str, not %s",
                   Py_TYPE(key)->tp_name);
      ok = false;
    } else {
      std::string_view name, value;
      ok = BytesOf(key, &name, "header key", owned) &&
           BytesOf(PySequence_Fast_GET_ITEM(pair, 1), &value, "header value", owned);
      if (ok) out->push_back({std::string(name), std::string(value)});
    }
    Py_DECREF(pair);
  }
  Py_DECREF(items);
  return ok;
}

bool TimestampOf(PyObject* value, client::Message* message) {
  if (!PyObject_IsInstance(value, datetime_type)) {
    PyErr_Format(PyExc_TypeError, "timestamp must be a datetime, not %s",
                 Py_TYPE(value)->tp_name);
    return false;
  }
  PyObject* zone = PyObject_GetAttrString(value, "tzinfo");
  if (zone == nullptr) return false;
  PyObject* aware = Py_NewRef(value);
  if (zone == Py_None) {
    Py_DECREF(aware);
    PyObject* replace = PyObject_GetAttrString(value, "replace");
    PyObject* kwargs = Py_BuildValue("{sO}", "tzinfo", utc);
    PyObject* none = PyTuple_New(0);
    aware = replace && kwargs && none ? PyObject_Call(replace, none, kwargs) : nullptr;
    Py_XDECREF(replace);
    Py_XDECREF(kwargs);
    Py_XDECREF(none);
  }
  Py_DECREF(zone);
  if (aware == nullptr) return false;
  PyObject* seconds = PyObject_CallMethod(aware, "timestamp", nullptr);
  Py_DECREF(aware);
  if (seconds == nullptr) return false;
  double s = PyFloat_AsDouble(seconds);
  Py_DECREF(seconds);
  if (s == -1.0 && PyErr_Occurred()) return false;
  message->timestamp = std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::duration<double>(s)));
  return true;
}

bool ViewOf(PyObject* item, client::MessageView* view,
            std::vector<client::Header>* headers, Owned* owned) {
  if (!PyTuple_Check(item)) return BytesOf(item, &view->value, "value", owned);
  Py_ssize_t size = PyTuple_GET_SIZE(item);
  if (size < 1 || size > 4) {
    PyErr_SetString(PyExc_TypeError,
                    "a publish_many item is a value or (value[, key[, headers[, "
                    "ordering_key]]])");
    return false;
  }
  auto at = [&](Py_ssize_t i) { return i < size ? PyTuple_GET_ITEM(item, i) : nullptr; };
  return BytesOf(at(0), &view->value, "value", owned) &&
         BytesOf(at(1), &view->key, "key", owned) && HeadersOf(at(2), headers, owned) &&
         BytesOf(at(3), &view->ordering_key, "ordering_key", owned);
}

bool LoadPublishInputTypes() {
  PyObject* abc = PyImport_ImportModule("collections.abc");
  if (abc == nullptr) return false;
  mapping_abc = PyObject_GetAttrString(abc, "Mapping");
  Py_DECREF(abc);
  PyObject* datetime = PyImport_ImportModule("datetime");
  if (datetime == nullptr) return false;
  datetime_type = PyObject_GetAttrString(datetime, "datetime");
  PyObject* timezone = PyObject_GetAttrString(datetime, "timezone");
  Py_DECREF(datetime);
  if (timezone != nullptr) utc = PyObject_GetAttrString(timezone, "utc");
  Py_XDECREF(timezone);
  return mapping_abc != nullptr && datetime_type != nullptr && utc != nullptr;
}

}  // namespace ferry::python
