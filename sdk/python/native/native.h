// Declarations shared by the files of ferry._native (the CPython extension
// over the C++ SDK). Every function here runs with the GIL held unless its
// comment says otherwise.
#ifndef FERRY_SDK_PYTHON_NATIVE_NATIVE_H_
#define FERRY_SDK_PYTHON_NATIVE_NATIVE_H_

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <cxxabi.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <exception>
#include <new>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "ferry/client/publisher.h"
#include "ferry/client/subscriber.h"

namespace ferry::python {

// METH_* functions take several signatures; CPython's table wants one.
template <typename F>
PyCFunction AsMethod(F function) {
  return reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(function));
}

// The arguments of a METH_FASTCALL | METH_KEYWORDS method, by position or by
// one of `names`, into `out` (null: not given); false with TypeError set.
template <std::size_t N>
bool Arguments(PyObject* const* args, Py_ssize_t n, PyObject* kwnames,
               const std::array<const char*, N>& names, std::array<PyObject*, N>& out) {
  out.fill(nullptr);
  if (n > static_cast<Py_ssize_t>(N)) {
    PyErr_Format(PyExc_TypeError, "takes at most %zd arguments",
                 static_cast<Py_ssize_t>(N));
    return false;
  }
  for (Py_ssize_t i = 0; i < n; ++i) out[i] = args[i];
  Py_ssize_t keywords = kwnames == nullptr ? 0 : PyTuple_GET_SIZE(kwnames);
  for (Py_ssize_t k = 0; k < keywords; ++k) {
    // Compared without encoding (a name may hold a lone surrogate): the
    // mismatch is a TypeError, as for any other unknown name.
    PyObject* name = PyTuple_GET_ITEM(kwnames, k);
    std::size_t j = 0;
    while (j < N && PyUnicode_CompareWithASCIIString(name, names[j]) != 0) ++j;
    if (j == N || out[j] != nullptr) {
      PyErr_Format(PyExc_TypeError, "unexpected or repeated argument %R", name);
      return false;
    }
    out[j] = args[n + k];
  }
  return true;
}

// Seconds given as a number or a datetime.timedelta (as ferry._types.seconds_of);
// nullopt with a TypeError set otherwise.
std::optional<double> SecondsOf(PyObject* value, const char* what);
std::chrono::milliseconds Millis(double seconds);

// The str items of a sequence; nullopt with an exception set otherwise.
std::optional<std::vector<std::string>> Strings(PyObject* list, const char* what);

// One response of one stream as the C++ SDK handed it out (a MessageBatch)
// and which of its messages this process settled. Messages and batch views
// hold a reference to it, so it outlives the subscriber when they do; its
// destruction nacks what was left unsettled (MessageBatch's contract).
struct Received {
  client::MessageBatch batch;
  std::vector<uint8_t> settled;
  std::chrono::milliseconds ack_deadline;
};

struct ReceivedObject {
  PyObject_HEAD Received* received;
};

// Types made at module init (heap types); null before.
struct Types {
  PyTypeObject* received = nullptr;
  PyTypeObject* message = nullptr;
  PyTypeObject* batch = nullptr;
  PyTypeObject* batch_iterator = nullptr;
  PyTypeObject* subscriber = nullptr;
  PyTypeObject* publisher = nullptr;
};
Types& NativeTypes();

// Makes a type from `spec` into `slot` and, given a `name`, adds it to the
// module under it; false with an exception set on failure.
bool AddType(PyObject* module, PyType_Spec* spec, PyTypeObject** slot, const char* name);
// Adds the message types to the module; false with an exception set on failure.
bool AddMessageTypes(PyObject* module);
bool AddSubscriberType(PyObject* module);
bool AddPublisherType(PyObject* module);
// set_publish_hooks(make_result, make_error, report): what publish results
// and errors become, and what logs what a callback raised (set at import).
PyObject* SetPublishHooks(PyObject* module, PyObject* const* args, Py_ssize_t n);

// A new ReceivedObject owning `batch`; null with an exception set on failure.
ReceivedObject* NewReceived(client::MessageBatch batch,
                            std::chrono::milliseconds ack_deadline);
// The Message at `index` of `owner`, and the MessageBatch view [start, stop).
PyObject* NewMessage(ReceivedObject* owner, Py_ssize_t index);
PyObject* NewBatch(ReceivedObject* owner, Py_ssize_t start, Py_ssize_t stop);
// Nacks messages [start, stop) of `owner` not settled yet.
void NackRange(ReceivedObject* owner, Py_ssize_t start, Py_ssize_t stop);

// True in a child forked after this process built a native subscriber: the
// C++ SDK's threads and gRPC's did not come along, so its objects there are
// left alone (never closed or destroyed) and no new one is built.
bool InForkedChild();
void NoteSubscriberBuilt();

// True on a thread running one of the subscriber's callbacks (on_error,
// on_receipt_failure): close() there must not wait for that thread.
bool InCallback();

// Runs `call` with the GIL released (the caller holds it) and returns what
// it returns; the GIL is taken back also when it throws. Not from a
// destructor: retaking the GIL once finalization began ends the thread with
// a forced unwind (pthread_exit), which through a noexcept frame aborts.
template <typename F>
auto WithoutGil(F call) {
  PyThreadState* saved = PyEval_SaveThread();
  if constexpr (std::is_void_v<decltype(call())>) {
    try {
      call();
    } catch (...) {
      PyEval_RestoreThread(saved);
      throw;
    }
    PyEval_RestoreThread(saved);
  } else {
    try {
      auto result = call();
      PyEval_RestoreThread(saved);
      return result;
    } catch (...) {
      PyEval_RestoreThread(saved);
      throw;
    }
  }
}

// Py_IsFinalizing, public from 3.13 (where _Py_IsFinalizing is gone).
inline bool Finalizing() {
#if PY_VERSION_HEX >= 0x030D0000
  return Py_IsFinalizing();
#else
  return _Py_IsFinalizing();
#endif
}

// A CPython entry point `F` (returning a new reference or null) with C++
// exceptions turned into Python ones: one escaping into the interpreter
// aborts it. Safe<F> has F's signature.
template <auto F>
struct SafeCall;
template <typename... A, PyObject* (*F)(A...)>
struct SafeCall<F> {
  // Not noexcept: a thread ended while retaking the GIL at shutdown unwinds
  // through here (abi::__forced_unwind), which must go on.
  static PyObject* Call(A... args) {
    try {
      return F(args...);
    } catch (const abi::__forced_unwind&) {
      throw;
    } catch (const std::bad_alloc&) {
      PyErr_NoMemory();
    } catch (const std::exception& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what());
    } catch (...) {
      PyErr_SetString(PyExc_RuntimeError, "ferry._native: unknown C++ exception");
    }
    return nullptr;
  }
};
template <auto F>
constexpr auto Safe = &SafeCall<F>::Call;

// Runs `work` (which needs no GIL) on a detached thread: ends a subscriber
// away from the thread that let it go (a callback's). JoinDetached (at exit)
// waits until every such thread ended, so none outlives the interpreter and
// the C++ SDK's statics; a forked child inherits no thread object. Throws
// std::system_error when no thread can be had.
void DetachedStarted();
void DetachedEnded();
void JoinDetached();
template <typename F>
void Detach(F work) {
  DetachedStarted();
  try {
    std::thread([work = std::move(work)]() mutable {
      work();
      DetachedEnded();
    }).detach();
  } catch (...) {
    DetachedEnded();
    throw;
  }
}

// Runs `call` (which holds no GIL) on a C++ SDK thread with the GIL taken and
// the thread marked as in a callback; does nothing while Python finalizes.
template <typename F>
void WithGil(F call);
void EnterCallback();
void LeaveCallback();

template <typename F>
void WithGil(F call) {
  if (Finalizing()) return;
  PyGILState_STATE state = PyGILState_Ensure();
  EnterCallback();
  call();
  LeaveCallback();
  PyGILState_Release(state);
}

}  // namespace ferry::python

#endif  // FERRY_SDK_PYTHON_NATIVE_NATIVE_H_
