// See future.h.
#include "future.h"

#include <structmember.h>

namespace ferry::python {
namespace {

// concurrent.futures' RUNNING and FINISHED (compared by identity: another
// equal str only means the stdlib's way is taken).
PyObject* running = nullptr;
PyObject* finished = nullptr;

bool LoadStates() {
  if (finished != nullptr) return true;
  PyObject* base = PyImport_ImportModule("concurrent.futures._base");
  if (base == nullptr) return false;
  running = PyObject_GetAttrString(base, "RUNNING");
  finished = running == nullptr ? nullptr : PyObject_GetAttrString(base, "FINISHED");
  Py_DECREF(base);
  if (finished == nullptr) Py_CLEAR(running);
  return finished != nullptr;
}

bool SlotOffset(PyObject* type, const char* name, Py_ssize_t* offset) {
  PyObject* member = PyObject_GetAttrString(type, name);
  if (member == nullptr) return false;
  bool slot = Py_IS_TYPE(member, &PyMemberDescr_Type);
  if (slot) {
    const PyMemberDef* def = reinterpret_cast<PyMemberDescrObject*>(member)->d_member;
    slot = def->type == T_OBJECT_EX && (def->flags & READONLY) == 0;
    *offset = def->offset;
  }
  Py_DECREF(member);
  if (!slot) PyErr_Format(PyExc_TypeError, "future_type: %s is not a slot", name);
  return slot;
}

PyObject*& At(PyObject* future, Py_ssize_t offset) {
  return *reinterpret_cast<PyObject**>(reinterpret_cast<char*>(future) + offset);
}

// 1 when `type` is a ferry._futures.PublishFuture subclass, 0 when not, -1
// with an exception set.
int IsPublishFutureType(PyObject* type) {
  if (!PyType_Check(type)) return 0;
  PyObject* module = PyImport_ImportModule("ferry._futures");
  if (module == nullptr) return -1;
  PyObject* base = PyObject_GetAttrString(module, "PublishFuture");
  Py_DECREF(module);
  if (base == nullptr) return -1;
  int subclass = PyObject_IsSubclass(type, base);
  Py_DECREF(base);
  return subclass;
}

}  // namespace

bool FutureSlotsOf(PyObject* type, FutureSlots* out) {
  int subclass = IsPublishFutureType(type);
  if (subclass < 0) return false;
  if (subclass == 0) {
    PyErr_SetString(PyExc_TypeError, "future_type must be a PublishFuture subclass");
    return false;
  }
  out->type = reinterpret_cast<PyTypeObject*>(type);
  return LoadStates() && SlotOffset(type, "_sync", &out->sync) &&
         SlotOffset(type, "_state", &out->state) &&
         SlotOffset(type, "_result", &out->result) &&
         SlotOffset(type, "_exception", &out->exception);
}

bool CompleteAlone(const FutureSlots& slots, PyObject* future, PyObject* value,
                   bool failed) {
  if (!Py_IS_TYPE(future, slots.type)) return false;
  PyObject* sync = At(future, slots.sync);
  PyObject*& state = At(future, slots.state);
  if ((sync != nullptr && sync != Py_None) || state != running) return false;
  PyObject*& outcome = At(future, failed ? slots.exception : slots.result);
  PyObject* old_outcome = outcome;  // released after the stores
  PyObject* old_state = state;
  outcome = value;
  state = Py_NewRef(finished);
  Py_XDECREF(old_outcome);
  Py_DECREF(old_state);
  return true;
}

}  // namespace ferry::python
