// ferry._native: module init, fork handling and the helpers its types share.
#include <pthread.h>

#include <atomic>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "native.h"

namespace ferry::python {
namespace {

std::atomic<bool> built{false};   // a native subscriber was built here
std::atomic<bool> forked{false};  // this is a child forked after that
thread_local int callback_depth = 0;

// Never destroyed: a detached thread may still use them while statics end.
std::mutex& detached_mu = *new std::mutex;
std::condition_variable& detached_done = *new std::condition_variable;
int detached_running = 0;  // see Detach

void AfterForkInChild() {
  if (built.load()) forked.store(true);
}

PyObject* InCallbackFunction(PyObject*, PyObject*) {
  return PyBool_FromLong(InCallback());
}
PyObject* UsableFunction(PyObject*, PyObject*) {
  return PyBool_FromLong(!InForkedChild());
}

PyObject* JoinDetachedFunction(PyObject*, PyObject*) {
  WithoutGil(JoinDetached);
  Py_RETURN_NONE;
}

PyMethodDef module_functions[] = {
    {"in_callback", InCallbackFunction, METH_NOARGS,
     "True on a thread running a native subscriber's callback."},
    {"usable", UsableFunction, METH_NOARGS,
     "False in a child forked after this process used the native module."},
    {"set_publish_hooks", AsMethod(Safe<SetPublishHooks>), METH_FASTCALL,
     "set_publish_hooks(make_result, make_error, report, refuse_publish_arguments): "
     "set once at import."},
    {"join_detached", AsMethod(Safe<JoinDetachedFunction>), METH_NOARGS,
     "Waits for the threads ending subscribers let go in callbacks (at exit)."},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef module_def = {PyModuleDef_HEAD_INIT,
                          "ferry._native",
                          "The Python SDK's native path over the C++ SDK (sdk/cpp).",
                          -1,
                          module_functions,
                          nullptr,
                          nullptr,
                          nullptr,
                          nullptr};

}  // namespace

Types& NativeTypes() {
  static Types types;
  return types;
}

bool AddType(PyObject* module, PyType_Spec* spec, PyTypeObject** slot, const char* name) {
  *slot = reinterpret_cast<PyTypeObject*>(PyType_FromSpec(spec));
  if (*slot == nullptr) return false;
  if (name == nullptr) return true;
  Py_INCREF(*slot);
  if (PyModule_AddObject(module, name, reinterpret_cast<PyObject*>(*slot)) < 0) {
    Py_DECREF(*slot);
    return false;
  }
  return true;
}

std::optional<double> SecondsOf(PyObject* value, const char* what) {
  if (PyFloat_Check(value) || (PyLong_Check(value) && !PyBool_Check(value))) {
    double seconds = PyFloat_AsDouble(value);
    if (seconds == -1.0 && PyErr_Occurred()) return std::nullopt;
    return seconds;
  }
  PyObject* total = PyObject_CallMethod(value, "total_seconds", nullptr);
  if (total != nullptr && PyFloat_Check(total)) {
    double seconds = PyFloat_AsDouble(total);
    Py_DECREF(total);
    return seconds;
  }
  Py_XDECREF(total);
  PyErr_Clear();
  PyErr_Format(PyExc_TypeError, "%s must be seconds (a number) or a timedelta, not %R",
               what, value);
  return std::nullopt;
}

std::optional<std::vector<std::string>> Strings(PyObject* list, const char* what) {
  PyObject* seq = PySequence_Fast(list, what);
  if (seq == nullptr) return std::nullopt;
  std::vector<std::string> out;
  for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); ++i) {
    Py_ssize_t size;
    const char* s = PyUnicode_AsUTF8AndSize(PySequence_Fast_GET_ITEM(seq, i), &size);
    if (s == nullptr) {
      Py_DECREF(seq);
      return std::nullopt;
    }
    out.emplace_back(s, size);
  }
  Py_DECREF(seq);
  return out;
}

std::chrono::milliseconds Millis(double seconds) {
  return std::chrono::milliseconds(
      static_cast<int64_t>(std::llround(std::max(seconds, 0.0) * 1e3)));
}

void DetachedStarted() {
  std::lock_guard lock(detached_mu);
  ++detached_running;
}

void DetachedEnded() {
  std::lock_guard lock(detached_mu);
  if (--detached_running == 0) detached_done.notify_all();
}

void JoinDetached() {
  if (InForkedChild()) return;  // those threads stayed in the parent
  std::unique_lock lock(detached_mu);
  detached_done.wait(lock, [] { return detached_running == 0; });
}

bool InForkedChild() { return forked.load(std::memory_order_relaxed); }
void NoteSubscriberBuilt() { built.store(true); }
bool InCallback() { return callback_depth > 0; }
void EnterCallback() { ++callback_depth; }
void LeaveCallback() { --callback_depth; }

}  // namespace ferry::python

PyMODINIT_FUNC PyInit__native() {
  static bool fork_handler =
      pthread_atfork(nullptr, nullptr, ferry::python::AfterForkInChild) == 0;
  if (!fork_handler) {
    PyErr_SetString(PyExc_ImportError, "ferry._native: pthread_atfork failed");
    return nullptr;
  }
  PyObject* module = PyModule_Create(&ferry::python::module_def);
  if (module == nullptr) return nullptr;
  if (!ferry::python::AddMessageTypes(module) ||
      !ferry::python::AddSubscriberType(module) ||
      !ferry::python::AddPublisherType(module)) {
    Py_DECREF(module);
    return nullptr;
  }
  return module;
}
