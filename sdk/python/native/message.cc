// ferry._native's delivered messages: Message, MessageBatch (a view of
// messages [start, stop) of one Received) and its iterator. Fields are read
// from the C++ SDK's ReceivedView when asked: a copy into a Python object per
// read, none per message handed out. Settlement maps onto MessageBatch's
// Ack(i)/Nack(i)/ExtendDeadline(i); `settled` flags keep "only the first of
// ack and nack counts" (and Message.settled) on this side, under the GIL.
#include <algorithm>
#include <cstddef>
#include <memory>
#include <string_view>

// clang-format off
#include "native.h"  // Python.h, which datetime.h needs first
#include <datetime.h>
// clang-format on

namespace ferry::python {
namespace {

struct MessageObject {
  PyObject_HEAD ReceivedObject* owner;
  Py_ssize_t index;
  PyObject* headers;  // dict, built on first read
};

struct BatchObject {
  PyObject_HEAD ReceivedObject* owner;
  Py_ssize_t start;
  Py_ssize_t stop;
};

struct IteratorObject {
  PyObject_HEAD ReceivedObject* owner;
  Py_ssize_t at;
  Py_ssize_t stop;
};

// Made by this module only: type(m)() would have no owner to read.
constexpr unsigned int kInternalType =
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION;

PyObject* utc_epoch = nullptr;  // datetime(1970, 1, 1, tzinfo=utc)

const client::ReceivedView& ViewOf(const MessageObject* m) {
  return m->owner->received->batch[static_cast<std::size_t>(m->index)];
}

PyObject* Bytes(std::string_view s) {
  return PyBytes_FromStringAndSize(s.data(), s.size());
}
PyObject* Str(std::string_view s) {
  return PyUnicode_DecodeUTF8(s.data(), s.size(), "replace");
}

// Settling from a child forked after the subscriber was built would write on
// the parent's gRPC connection (its socket is shared; its threads are not
// here): refused, as receive() is there.
bool RefuseInForkedChild() {
  if (!InForkedChild()) return false;
  PyErr_SetString(PyExc_RuntimeError,
                  "ferry: this message belongs to the parent process's subscriber");
  return true;
}

void Ack(ReceivedObject* owner, Py_ssize_t i) {
  Received* r = owner->received;
  if (r->settled[i]) return;
  r->settled[i] = 1;
  r->batch.Ack(static_cast<std::size_t>(i));
}

void Nack(ReceivedObject* owner, Py_ssize_t i, std::chrono::milliseconds delay) {
  Received* r = owner->received;
  if (r->settled[i]) return;
  r->settled[i] = 1;
  r->batch.Nack(static_cast<std::size_t>(i), delay);
}

// The one optional argument `name` of nack() or extend(): None (nullopt in
// *out) or seconds/timedelta; false with an exception set.
bool DurationArg(PyObject* const* args, Py_ssize_t n, PyObject* kwnames, const char* name,
                 std::optional<std::chrono::milliseconds>* out) {
  std::array<PyObject*, 1> given;
  if (!Arguments(args, n, kwnames, std::array{name}, given)) return false;
  out->reset();
  if (given[0] == nullptr || given[0] == Py_None) return true;
  std::optional<double> seconds = SecondsOf(given[0], name);
  if (!seconds) return false;
  *out = Millis(*seconds);
  return true;
}

// -- Received ---------------------------------------------------------------

// Messages dropped unsettled are nacked by ~MessageBatch: redelivered at
// once, each nack a delivery attempt (with max_delivery_attempts, soon in
// the dead-letter topic). The pure path extends them until max_extension
// instead; say so where the program can see it. From tp_finalize, not
// tp_dealloc: a warning runs Python (filters, showwarning).
void ReceivedFinalize(PyObject* self) {
  auto* r = reinterpret_cast<ReceivedObject*>(self);
  if (InForkedChild() || r->received == nullptr || Finalizing()) return;
  auto unsettled =
      std::count(r->received->settled.begin(), r->received->settled.end(), 0);
  if (unsettled == 0) return;
  PyObject *type, *value, *traceback;
  PyErr_Fetch(&type, &value, &traceback);
  if (PyErr_WarnFormat(PyExc_ResourceWarning, 1,
                       "ferry: %zd message(s) dropped unsettled were nacked (redelivered "
                       "at once; each nack counts a delivery attempt), or left to their "
                       "ack deadline once the subscriber was closed or failed",
                       static_cast<Py_ssize_t>(unsettled)) < 0) {
    PyErr_WriteUnraisable(self);
  }
  PyErr_Restore(type, value, traceback);
}

void ReceivedDealloc(PyObject* self) {
  if (PyObject_CallFinalizerFromDealloc(self) < 0) return;  // resurrected
  auto* r = reinterpret_cast<ReceivedObject*>(self);
  // In a forked child the batch's stream is gone with its threads: leak it.
  if (!InForkedChild() && r->received != nullptr) delete r->received;
  PyTypeObject* type = Py_TYPE(self);
  type->tp_free(self);
  Py_DECREF(type);
}

PyType_Slot received_slots[] = {
    {Py_tp_dealloc, reinterpret_cast<void*>(ReceivedDealloc)},
    {Py_tp_finalize, reinterpret_cast<void*>(ReceivedFinalize)},
    {Py_tp_doc, const_cast<char*>("One response's messages (internal).")},
    {0, nullptr}};
PyType_Spec received_spec = {"ferry._native._Received", sizeof(ReceivedObject), 0,
                             kInternalType, received_slots};

// -- Message ----------------------------------------------------------------

void MessageDealloc(PyObject* self) {
  auto* m = reinterpret_cast<MessageObject*>(self);
  Py_XDECREF(m->headers);
  Py_XDECREF(m->owner);
  PyTypeObject* type = Py_TYPE(self);
  type->tp_free(self);
  Py_DECREF(type);
}

PyObject* GetTopic(PyObject* self, void*) {
  return Str(ViewOf(reinterpret_cast<MessageObject*>(self)).topic);
}
PyObject* GetPartition(PyObject* self, void*) {
  return PyLong_FromLong(ViewOf(reinterpret_cast<MessageObject*>(self)).partition);
}
PyObject* GetOffset(PyObject* self, void*) {
  return PyLong_FromLongLong(ViewOf(reinterpret_cast<MessageObject*>(self)).offset);
}
PyObject* GetKey(PyObject* self, void*) {
  std::string_view key = ViewOf(reinterpret_cast<MessageObject*>(self)).key;
  if (key.empty()) Py_RETURN_NONE;
  return Bytes(key);
}
PyObject* GetValue(PyObject* self, void*) {
  return Bytes(ViewOf(reinterpret_cast<MessageObject*>(self)).value);
}
PyObject* GetDeliveryAttempt(PyObject* self, void*) {
  return PyLong_FromLong(ViewOf(reinterpret_cast<MessageObject*>(self)).delivery_attempt);
}
PyObject* GetCluster(PyObject* self, void*) {
  return Str(ViewOf(reinterpret_cast<MessageObject*>(self)).cluster);
}
PyObject* GetId(PyObject* self, void*) {
  return Str(ViewOf(reinterpret_cast<MessageObject*>(self)).id);
}

PyObject* GetHeaderList(PyObject* self, void*) {
  const client::ReceivedView& view = ViewOf(reinterpret_cast<MessageObject*>(self));
  PyObject* list = PyList_New(static_cast<Py_ssize_t>(view.headers.size()));
  if (list == nullptr) return nullptr;
  for (std::size_t i = 0; i < view.headers.size(); ++i) {
    PyObject* pair =
        Py_BuildValue("(Ny#)", Str(view.headers[i].key), view.headers[i].value.data(),
                      static_cast<Py_ssize_t>(view.headers[i].value.size()));
    if (pair == nullptr) {
      Py_DECREF(list);
      return nullptr;
    }
    PyList_SET_ITEM(list, static_cast<Py_ssize_t>(i), pair);
  }
  return list;
}

PyObject* GetHeaders(PyObject* self, void*) {
  auto* m = reinterpret_cast<MessageObject*>(self);
  if (m->headers == nullptr) {
    PyObject* list = GetHeaderList(self, nullptr);
    if (list == nullptr) return nullptr;
    m->headers = PyDict_New();
    if (m->headers != nullptr && PyDict_MergeFromSeq2(m->headers, list, 1) < 0) {
      Py_CLEAR(m->headers);
    }
    Py_DECREF(list);
    if (m->headers == nullptr) return nullptr;
  }
  Py_INCREF(m->headers);
  return m->headers;
}

PyObject* GetPublishTime(PyObject* self, void*) {
  const client::ReceivedView& view = ViewOf(reinterpret_cast<MessageObject*>(self));
  if (!view.publish_time) Py_RETURN_NONE;
  // As protobuf's Timestamp.ToDatetime: microseconds, truncated.
  int64_t micros = std::chrono::duration_cast<std::chrono::microseconds>(
                       view.publish_time->time_since_epoch())
                       .count();
  constexpr int64_t kMicrosPerDay = 86400LL * 1000000;
  int64_t rest = micros % kMicrosPerDay;
  PyObject* delta =
      PyDelta_FromDSU(static_cast<int>(micros / kMicrosPerDay),
                      static_cast<int>(rest / 1000000), static_cast<int>(rest % 1000000));
  if (delta == nullptr) return nullptr;
  PyObject* when = PyNumber_Add(utc_epoch, delta);
  Py_DECREF(delta);
  return when;
}

PyObject* GetSettled(PyObject* self, void*) {
  auto* m = reinterpret_cast<MessageObject*>(self);
  return PyBool_FromLong(m->owner->received->settled[m->index]);
}

PyObject* MessageAck(PyObject* self, PyObject*) {
  auto* m = reinterpret_cast<MessageObject*>(self);
  if (RefuseInForkedChild()) return nullptr;
  Ack(m->owner, m->index);
  Py_RETURN_NONE;
}

PyObject* MessageNack(PyObject* self, PyObject* const* args, Py_ssize_t n,
                      PyObject* kwnames) {
  auto* m = reinterpret_cast<MessageObject*>(self);
  std::optional<std::chrono::milliseconds> delay;
  if (RefuseInForkedChild() || !DurationArg(args, n, kwnames, "delay", &delay)) {
    return nullptr;
  }
  Nack(m->owner, m->index, delay.value_or(std::chrono::milliseconds(0)));
  Py_RETURN_NONE;
}

PyObject* MessageExtend(PyObject* self, PyObject* const* args, Py_ssize_t n,
                        PyObject* kwnames) {
  auto* m = reinterpret_cast<MessageObject*>(self);
  Received* r = m->owner->received;
  std::optional<std::chrono::milliseconds> deadline;
  if (RefuseInForkedChild() || !DurationArg(args, n, kwnames, "deadline", &deadline)) {
    return nullptr;
  }
  if (!r->settled[m->index]) {
    r->batch.ExtendDeadline(static_cast<std::size_t>(m->index),
                            deadline.value_or(r->ack_deadline));
  }
  Py_RETURN_NONE;
}

PyObject* MessageRepr(PyObject* self) {
  const client::ReceivedView& view = ViewOf(reinterpret_cast<MessageObject*>(self));
  PyObject* topic = Str(view.topic);
  PyObject* key = GetKey(self, nullptr);
  PyObject* value = Bytes(view.value.substr(0, 40));
  PyObject* repr = nullptr;
  if (topic != nullptr && key != nullptr && value != nullptr) {
    repr = PyUnicode_FromFormat(
        "Message(topic=%R, partition=%d, offset=%lld, key=%R, value=%R)", topic,
        static_cast<int>(view.partition), static_cast<long long>(view.offset), key,
        value);
  }
  Py_XDECREF(topic);
  Py_XDECREF(key);
  Py_XDECREF(value);
  return repr;
}

PyGetSetDef message_getset[] = {
    {"topic", GetTopic, nullptr, nullptr, nullptr},
    {"partition", GetPartition, nullptr, nullptr, nullptr},
    {"offset", GetOffset, nullptr, nullptr, nullptr},
    {"key", GetKey, nullptr, nullptr, nullptr},
    {"value", GetValue, nullptr, nullptr, nullptr},
    {"delivery_attempt", GetDeliveryAttempt, nullptr, nullptr, nullptr},
    {"cluster", GetCluster, nullptr, nullptr, nullptr},
    {"id", GetId, nullptr, nullptr, nullptr},
    {"header_list", GetHeaderList, nullptr, nullptr, nullptr},
    {"headers", GetHeaders, nullptr, nullptr, nullptr},
    {"publish_time", GetPublishTime, nullptr, nullptr, nullptr},
    {"settled", GetSettled, nullptr, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyMethodDef message_methods[] = {
    {"ack", AsMethod(Safe<MessageAck>), METH_NOARGS,
     "The message was processed: the node may commit past it."},
    {"nack", AsMethod(Safe<MessageNack>), METH_FASTCALL | METH_KEYWORDS,
     "Redeliver the message, no sooner than delay seconds (None: at once)."},
    {"extend", AsMethod(Safe<MessageExtend>), METH_FASTCALL | METH_KEYWORDS,
     "The node's deadline for this message becomes now + deadline seconds."},
    {nullptr, nullptr, 0, nullptr}};

PyType_Slot message_slots[] = {
    {Py_tp_dealloc, reinterpret_cast<void*>(MessageDealloc)},
    {Py_tp_getset, message_getset},
    {Py_tp_methods, message_methods},
    {Py_tp_repr, reinterpret_cast<void*>(MessageRepr)},
    {Py_tp_doc, const_cast<char*>("A delivered message (see ferry.Message).")},
    {0, nullptr}};
PyType_Spec message_spec = {"ferry._native.Message", sizeof(MessageObject), 0,
                            kInternalType, message_slots};

// -- MessageBatch -----------------------------------------------------------

void BatchDealloc(PyObject* self) {
  Py_XDECREF(reinterpret_cast<BatchObject*>(self)->owner);
  PyTypeObject* type = Py_TYPE(self);
  type->tp_free(self);
  Py_DECREF(type);
}

Py_ssize_t BatchLength(PyObject* self) {
  auto* b = reinterpret_cast<BatchObject*>(self);
  return b->stop - b->start;
}

PyObject* BatchItem(PyObject* self, Py_ssize_t i) {
  auto* b = reinterpret_cast<BatchObject*>(self);
  if (i < 0 || i >= b->stop - b->start) {
    PyErr_SetString(PyExc_IndexError, "MessageBatch index out of range");
    return nullptr;
  }
  return NewMessage(b->owner, b->start + i);
}

PyObject* BatchSubscript(PyObject* self, PyObject* key) {
  Py_ssize_t length = BatchLength(self);
  if (PySlice_Check(key)) {
    Py_ssize_t start, stop, step;
    if (PySlice_Unpack(key, &start, &stop, &step) < 0) return nullptr;
    Py_ssize_t count = PySlice_AdjustIndices(length, &start, &stop, step);
    PyObject* list = PyList_New(count);
    if (list == nullptr) return nullptr;
    for (Py_ssize_t k = 0, i = start; k < count; ++k, i += step) {
      PyObject* message = BatchItem(self, i);
      if (message == nullptr) {
        Py_DECREF(list);
        return nullptr;
      }
      PyList_SET_ITEM(list, k, message);
    }
    return list;
  }
  Py_ssize_t i = PyNumber_AsSsize_t(key, PyExc_IndexError);
  if (i == -1 && PyErr_Occurred()) return nullptr;
  return BatchItem(self, i < 0 ? i + length : i);
}

PyObject* BatchIter(PyObject* self) {
  auto* b = reinterpret_cast<BatchObject*>(self);
  auto* it = PyObject_New(IteratorObject, NativeTypes().batch_iterator);
  if (it == nullptr) return nullptr;
  Py_INCREF(b->owner);
  it->owner = b->owner;
  it->at = b->start;
  it->stop = b->stop;
  return reinterpret_cast<PyObject*>(it);
}

PyObject* BatchValues(PyObject* self, void*) {
  auto* b = reinterpret_cast<BatchObject*>(self);
  const client::MessageBatch& batch = b->owner->received->batch;
  PyObject* list = PyList_New(b->stop - b->start);
  if (list == nullptr) return nullptr;
  for (Py_ssize_t i = b->start; i < b->stop; ++i) {
    PyObject* value = Bytes(batch[static_cast<std::size_t>(i)].value);
    if (value == nullptr) {
      Py_DECREF(list);
      return nullptr;
    }
    PyList_SET_ITEM(list, i - b->start, value);
  }
  return list;
}

PyObject* BatchAck(PyObject* self, PyObject*) {
  auto* b = reinterpret_cast<BatchObject*>(self);
  if (RefuseInForkedChild()) return nullptr;
  Received* r = b->owner->received;
  if (b->start == 0 && b->stop == static_cast<Py_ssize_t>(r->settled.size())) {
    // The whole response: one lock of its stream for all of it.
    std::fill(r->settled.begin(), r->settled.end(), 1);
    r->batch.AckAll();
  } else {
    for (Py_ssize_t i = b->start; i < b->stop; ++i) Ack(b->owner, i);
  }
  Py_RETURN_NONE;
}

PyObject* BatchNack(PyObject* self, PyObject* const* args, Py_ssize_t n,
                    PyObject* kwnames) {
  auto* b = reinterpret_cast<BatchObject*>(self);
  std::optional<std::chrono::milliseconds> delay;
  if (RefuseInForkedChild() || !DurationArg(args, n, kwnames, "delay", &delay)) {
    return nullptr;
  }
  for (Py_ssize_t i = b->start; i < b->stop; ++i) {
    Nack(b->owner, i, delay.value_or(std::chrono::milliseconds(0)));
  }
  Py_RETURN_NONE;
}

PyObject* BatchRepr(PyObject* self) {
  return PyUnicode_FromFormat("MessageBatch(%zd messages)", BatchLength(self));
}

PyGetSetDef batch_getset[] = {{"values", Safe<BatchValues>, nullptr, nullptr, nullptr},
                              {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyMethodDef batch_methods[] = {
    {"ack", AsMethod(Safe<BatchAck>), METH_NOARGS,
     "Acks every message of the batch not settled yet."},
    {"nack", AsMethod(Safe<BatchNack>), METH_FASTCALL | METH_KEYWORDS,
     "Nacks every message of the batch not settled yet."},
    {nullptr, nullptr, 0, nullptr}};

PyType_Slot batch_slots[] = {
    {Py_tp_dealloc, reinterpret_cast<void*>(BatchDealloc)},
    {Py_sq_length, reinterpret_cast<void*>(BatchLength)},
    {Py_sq_item, reinterpret_cast<void*>(BatchItem)},
    {Py_mp_length, reinterpret_cast<void*>(BatchLength)},
    {Py_mp_subscript, reinterpret_cast<void*>(BatchSubscript)},
    {Py_tp_iter, reinterpret_cast<void*>(BatchIter)},
    {Py_tp_getset, batch_getset},
    {Py_tp_methods, batch_methods},
    {Py_tp_repr, reinterpret_cast<void*>(BatchRepr)},
    {Py_tp_doc, const_cast<char*>("Messages of one response (see ferry.MessageBatch).")},
    {0, nullptr}};
PyType_Spec batch_spec = {"ferry._native.MessageBatch", sizeof(BatchObject), 0,
                          kInternalType | Py_TPFLAGS_SEQUENCE, batch_slots};

// -- MessageBatch's iterator -----------------------------------------------

void IteratorDealloc(PyObject* self) {
  Py_XDECREF(reinterpret_cast<IteratorObject*>(self)->owner);
  PyTypeObject* type = Py_TYPE(self);
  type->tp_free(self);
  Py_DECREF(type);
}

PyObject* IteratorNext(PyObject* self) {
  auto* it = reinterpret_cast<IteratorObject*>(self);
  if (it->at >= it->stop) return nullptr;
  return NewMessage(it->owner, it->at++);
}

PyType_Slot iterator_slots[] = {{Py_tp_dealloc, reinterpret_cast<void*>(IteratorDealloc)},
                                {Py_tp_iter, reinterpret_cast<void*>(PyObject_SelfIter)},
                                {Py_tp_iternext, reinterpret_cast<void*>(IteratorNext)},
                                {0, nullptr}};
PyType_Spec iterator_spec = {"ferry._native._BatchIterator", sizeof(IteratorObject), 0,
                             kInternalType, iterator_slots};

}  // namespace

ReceivedObject* NewReceived(client::MessageBatch batch,
                            std::chrono::milliseconds ack_deadline) {
  // Made first: if it throws, no half-made object is left behind.
  std::size_t size = batch.size();
  auto received = std::make_unique<Received>(
      Received{std::move(batch), std::vector<uint8_t>(size), ack_deadline});
  auto* object = PyObject_New(ReceivedObject, NativeTypes().received);
  if (object == nullptr) return nullptr;
  object->received = received.release();
  return object;
}

PyObject* NewMessage(ReceivedObject* owner, Py_ssize_t index) {
  auto* m = PyObject_New(MessageObject, NativeTypes().message);
  if (m == nullptr) return nullptr;
  Py_INCREF(owner);
  m->owner = owner;
  m->index = index;
  m->headers = nullptr;
  return reinterpret_cast<PyObject*>(m);
}

PyObject* NewBatch(ReceivedObject* owner, Py_ssize_t start, Py_ssize_t stop) {
  auto* b = PyObject_New(BatchObject, NativeTypes().batch);
  if (b == nullptr) return nullptr;
  Py_INCREF(owner);
  b->owner = owner;
  b->start = start;
  b->stop = stop;
  return reinterpret_cast<PyObject*>(b);
}

void NackRange(ReceivedObject* owner, Py_ssize_t start, Py_ssize_t stop) {
  if (InForkedChild()) return;  // the parent's stream (see RefuseInForkedChild)
  for (Py_ssize_t i = start; i < stop; ++i) Nack(owner, i, std::chrono::milliseconds(0));
}

bool AddMessageTypes(PyObject* module) {
  PyDateTime_IMPORT;
  if (PyDateTimeAPI == nullptr) return false;
  utc_epoch = PyDateTimeAPI->DateTime_FromDateAndTime(
      1970, 1, 1, 0, 0, 0, 0, PyDateTime_TimeZone_UTC, PyDateTimeAPI->DateTimeType);
  if (utc_epoch == nullptr) return false;
  Types& types = NativeTypes();
  return AddType(module, &received_spec, &types.received, nullptr) &&
         AddType(module, &message_spec, &types.message, "Message") &&
         AddType(module, &batch_spec, &types.batch, "MessageBatch") &&
         AddType(module, &iterator_spec, &types.batch_iterator, nullptr);
}

}  // namespace ferry::python
