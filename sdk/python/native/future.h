// Completing ferry._futures.PublishFuture from C without its condition while
// nobody made it (the module doc of sdk/python/src/ferry/_futures.py says
// why that is the stdlib's behaviour).
#ifndef FERRY_SDK_PYTHON_NATIVE_FUTURE_H_
#define FERRY_SDK_PYTHON_NATIVE_FUTURE_H_

#include "native.h"

namespace ferry::python {

// Where a future type keeps what completing it touches: offsets of its
// __slots__ members.
struct FutureSlots {
  PyTypeObject* type = nullptr;  // borrowed; only compared with a future's type
  Py_ssize_t sync = 0;           // (Condition, waiters, callbacks) or None
  Py_ssize_t state = 0;
  Py_ssize_t result = 0;
  Py_ssize_t exception = 0;
};

// The slots of `type`, a ferry._futures.PublishFuture subclass; false with
// an exception set: TypeError when it is not one or its members are not
// writable slots.
bool FutureSlotsOf(PyObject* type, FutureSlots* out);

// Completes `future` (of slots.type) with `value` (a result or, `failed`,
// an exception; stolen) when it is running and nobody made its condition:
// it checks and stores with no Python code in between, so no waiter can
// come between. False (nothing stolen) when the stdlib's set_result /
// set_exception must do it.
bool CompleteAlone(const FutureSlots& slots, PyObject* future, PyObject* value,
                   bool failed);

}  // namespace ferry::python

#endif  // FERRY_SDK_PYTHON_NATIVE_FUTURE_H_
