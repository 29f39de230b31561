// ferry._native.Publisher: ferry::client::Publisher (callback forms) for the
// Python SDK's publish(), publish(callback=) and publish_many(). The SDK's
// sender thread only queues each result (a lock, no GIL); one delivery
// thread per publisher takes the GIL once per batch of queued results and
// completes their futures (ferry._native.Future) or calls their callbacks.
#include <array>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "native.h"

namespace ferry::python {
namespace {

constexpr std::chrono::milliseconds kWaitSlice(100);

// Futures waiting wake here after each delivered batch (one for the process:
// waiters are rare on the fast paths, and a batch wakes them all once).
std::mutex waker_mu;
std::condition_variable waker_cv;

PyObject* report_raised = nullptr;  // report(exception): logs what a callback raised

// Hands the exception a callback raised (current) to report_raised, which
// logs it as the pure path does; the delivery thread goes on.
void ReportRaised(PyObject* fn) {
  if (report_raised == nullptr) {
    PyErr_WriteUnraisable(fn);
    return;
  }
  PyObject *type, *exc, *tb;
  PyErr_Fetch(&type, &exc, &tb);
  PyErr_NormalizeException(&type, &exc, &tb);
  if (exc != nullptr && tb != nullptr) PyException_SetTraceback(exc, tb);
  PyObject* r = PyObject_CallOneArg(report_raised, exc != nullptr ? exc : Py_None);
  if (r == nullptr) PyErr_WriteUnraisable(report_raised);
  Py_XDECREF(r);
  Py_XDECREF(type);
  Py_XDECREF(exc);
  Py_XDECREF(tb);
}

// What a result becomes: a PublishResult, or a FerryError (failed).
struct Outcome {
  PyObject* value = nullptr;
  bool failed = false;
};

struct FutureObject {
  PyObject_HEAD std::atomic<bool> done;
  Outcome outcome;
  PyObject* callbacks;  // list of add_done_callback's, null when none
};

PyObject* timeout_error = nullptr;  // concurrent.futures.TimeoutError
PyObject* datetime_type = nullptr;  // datetime.datetime
PyObject* utc = nullptr;            // datetime.timezone.utc

// One result to deliver: to `target`, a Future or a callable (callback).
struct Completion {
  PyObject* target;
  bool callback;
  client::PublishResult result;
};
struct ManyCompletion {
  PyObject* target;  // a Future
  client::PublishManyResult result;
};

// Shared by the SDK's callbacks and the delivery thread; lives until both end.
struct Delivery {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Completion> queue;
  std::vector<ManyCompletion> many;
  uint64_t pushed = 0;     // results queued
  uint64_t delivered = 0;  // results whose delivery ran
  bool stop = false;
  PyObject* make_result = nullptr;  // (cluster, partition, offset, direct)
  PyObject* make_error = nullptr;   // (code, error, retryable)

  void Push(Completion c) {
    std::lock_guard lock(mu);
    queue.push_back(std::move(c));
    ++pushed;
    cv.notify_all();
  }
  void PushMany(ManyCompletion c) {
    std::lock_guard lock(mu);
    many.push_back(std::move(c));
    ++pushed;
    cv.notify_all();
  }
};

PyObject* Convert(Delivery* d, const client::PublishResult& r, bool* failed) {
  *failed = !r.ok();
  if (r.ok()) {
    return PyObject_CallFunction(d->make_result, "siLO", r.cluster.c_str(), r.partition,
                                 static_cast<long long>(r.offset),
                                 r.direct ? Py_True : Py_False);
  }
  return PyObject_CallFunction(d->make_error, "isO", r.code, r.error.c_str(),
                               r.retryable ? Py_True : Py_False);
}

// Completes `future` with `value` (stolen; null: the current exception).
void Complete(FutureObject* future, PyObject* value, bool failed) {
  if (value == nullptr) {
    PyObject *type, *exc, *tb;
    PyErr_Fetch(&type, &exc, &tb);
    PyErr_NormalizeException(&type, &exc, &tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    value = exc != nullptr ? exc : Py_NewRef(Py_None);
    failed = exc != nullptr;
  }
  future->outcome = {value, failed};
  future->done.store(true, std::memory_order_release);
  PyObject* callbacks = future->callbacks;
  future->callbacks = nullptr;
  if (callbacks == nullptr) return;
  for (Py_ssize_t i = 0; i < PyList_GET_SIZE(callbacks); ++i) {
    PyObject* fn = PyList_GET_ITEM(callbacks, i);
    PyObject* r = PyObject_CallOneArg(fn, reinterpret_cast<PyObject*>(future));
    if (r == nullptr) ReportRaised(fn);
    Py_XDECREF(r);
  }
  Py_DECREF(callbacks);
}

// The outcome of each message of a PublishMany call, as a list.
PyObject* ManyOutcomes(Delivery* d, const client::PublishManyResult& r) {
  PyObject* list = PyList_New(static_cast<Py_ssize_t>(r.size()));
  if (list == nullptr) return nullptr;
  for (std::size_t i = 0; i < r.size(); ++i) {
    const client::MessageOutcome& m = r.messages[i];
    PyObject* item =
        m.ok() ? PyObject_CallFunction(
                     d->make_result, "siLO", r.clusters[m.cluster].c_str(), m.partition,
                     static_cast<long long>(m.offset), m.direct ? Py_True : Py_False)
               : PyObject_CallFunction(d->make_error, "isO", m.code,
                                       r.errors[m.error].c_str(),
                                       m.retryable ? Py_True : Py_False);
    if (item == nullptr) {
      Py_DECREF(list);
      return nullptr;
    }
    PyList_SET_ITEM(list, static_cast<Py_ssize_t>(i), item);
  }
  return list;
}

// Delivers one batch under the GIL (held).
void DeliverBatch(Delivery* d, std::vector<Completion>& batch,
                  std::vector<ManyCompletion>& many) {
  for (Completion& c : batch) {
    bool failed;
    PyObject* outcome = Convert(d, c.result, &failed);
    if (c.callback) {
      PyObject* r = outcome == nullptr ? nullptr : PyObject_CallOneArg(c.target, outcome);
      if (r == nullptr) ReportRaised(c.target);
      Py_XDECREF(r);
      Py_XDECREF(outcome);
    } else {
      Complete(reinterpret_cast<FutureObject*>(c.target), outcome, failed);
    }
    Py_DECREF(c.target);
  }
  for (ManyCompletion& c : many) {
    Complete(reinterpret_cast<FutureObject*>(c.target), ManyOutcomes(d, c.result), false);
    Py_DECREF(c.target);
  }
}

void DeliveryLoop(std::shared_ptr<Delivery> d) {
  std::vector<Completion> batch;
  std::vector<ManyCompletion> many;
  for (;;) {
    uint64_t taken;
    {
      std::unique_lock lock(d->mu);
      d->cv.wait(lock, [&] { return d->stop || !d->queue.empty() || !d->many.empty(); });
      if (d->queue.empty() && d->many.empty()) return;  // stopped, drained
      batch.swap(d->queue);
      many.swap(d->many);
      taken = batch.size() + many.size();
    }
    WithGil([&] { DeliverBatch(d.get(), batch, many); });
    batch.clear();
    many.clear();
    {
      std::lock_guard lock(d->mu);
      d->delivered += taken;
      d->cv.notify_all();
    }
    std::lock_guard lock(waker_mu);
    waker_cv.notify_all();
  }
}

struct State {
  std::unique_ptr<client::Publisher> publisher;
  std::shared_ptr<Delivery> delivery;
  std::thread thread;  // runs DeliveryLoop
  bool closed = false;
  std::chrono::milliseconds close_timeout{0};  // how long a dropped one flushes
  client::PublisherStats final_stats{};        // stats() after close
};

struct PublisherObject {
  PyObject_HEAD State* state;
};

// -- Future -----------------------------------------------------------------

FutureObject* NewFuture() {
  auto* f = PyObject_GC_New(FutureObject, NativeTypes().future);
  if (f == nullptr) return nullptr;
  new (&f->done) std::atomic<bool>(false);
  f->outcome = {};
  f->callbacks = nullptr;
  PyObject_GC_Track(f);
  return f;
}

// Waits (GIL released in slices) until `f` is done; false on timeout or with
// an exception set (a signal).
std::optional<bool> Wait(FutureObject* f, PyObject* timeout_arg) {
  if (f->done.load(std::memory_order_acquire)) return true;
  using Clock = std::chrono::steady_clock;
  bool forever = timeout_arg == nullptr || timeout_arg == Py_None;
  Clock::time_point deadline = Clock::time_point::max();
  if (!forever) {
    std::optional<double> seconds = SecondsOf(timeout_arg, "timeout");
    if (!seconds) return std::nullopt;
    deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                  std::chrono::duration<double>(std::max(*seconds, 0.0)));
  }
  while (!f->done.load(std::memory_order_acquire)) {
    Clock::time_point now = Clock::now();
    if (now >= deadline) return false;
    auto slice = std::min<Clock::duration>(kWaitSlice, deadline - now);
    WithoutGil([&] {
      std::unique_lock lock(waker_mu);
      waker_cv.wait_for(lock, slice,
                        [f] { return f->done.load(std::memory_order_acquire); });
    });
    if (PyErr_CheckSignals() < 0) return std::nullopt;
  }
  return true;
}

// The future once done (waiting up to the `timeout` argument); null with
// TimeoutError (or what a signal raised) set otherwise.
FutureObject* Awaited(PyObject* self, PyObject* const* args, Py_ssize_t n,
                      PyObject* kwnames) {
  auto* f = reinterpret_cast<FutureObject*>(self);
  std::array<PyObject*, 1> given;
  if (!Arguments(args, n, kwnames, std::array{"timeout"}, given)) return nullptr;
  std::optional<bool> done = Wait(f, given[0]);
  if (!done) return nullptr;
  if (!*done) {
    PyErr_SetNone(timeout_error);
    return nullptr;
  }
  return f;
}

PyObject* FutureResult(PyObject* self, PyObject* const* args, Py_ssize_t n,
                       PyObject* kwnames) {
  FutureObject* f = Awaited(self, args, n, kwnames);
  if (f == nullptr) return nullptr;
  if (f->outcome.failed) {
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(f->outcome.value)),
                    f->outcome.value);
    return nullptr;
  }
  return Py_NewRef(f->outcome.value);
}

PyObject* FutureException(PyObject* self, PyObject* const* args, Py_ssize_t n,
                          PyObject* kwnames) {
  FutureObject* f = Awaited(self, args, n, kwnames);
  if (f == nullptr) return nullptr;
  return Py_NewRef(f->outcome.failed ? f->outcome.value : Py_None);
}

PyObject* FutureDone(PyObject* self, PyObject*) {
  return PyBool_FromLong(
      reinterpret_cast<FutureObject*>(self)->done.load(std::memory_order_acquire));
}
PyObject* FutureRunning(PyObject* self, PyObject*) {
  return PyBool_FromLong(
      !reinterpret_cast<FutureObject*>(self)->done.load(std::memory_order_acquire));
}
// A queued message cannot be taken back (as the pure path's running future).
PyObject* FutureCancel(PyObject*, PyObject*) { Py_RETURN_FALSE; }
PyObject* FutureCancelled(PyObject*, PyObject*) { Py_RETURN_FALSE; }

PyObject* FutureAddDoneCallback(PyObject* self, PyObject* fn) {
  auto* f = reinterpret_cast<FutureObject*>(self);
  if (!f->done.load(std::memory_order_acquire)) {
    if (f->callbacks == nullptr && (f->callbacks = PyList_New(0)) == nullptr)
      return nullptr;
    if (PyList_Append(f->callbacks, fn) < 0) return nullptr;
    Py_RETURN_NONE;
  }
  PyObject* r = PyObject_CallOneArg(fn, self);
  if (r == nullptr) ReportRaised(fn);
  Py_XDECREF(r);
  Py_RETURN_NONE;
}

int FutureTraverse(PyObject* self, visitproc visit, void* arg) {
  auto* f = reinterpret_cast<FutureObject*>(self);
  Py_VISIT(f->outcome.value);
  Py_VISIT(f->callbacks);
  Py_VISIT(Py_TYPE(self));
  return 0;
}

int FutureClear(PyObject* self) {
  auto* f = reinterpret_cast<FutureObject*>(self);
  Py_CLEAR(f->outcome.value);
  Py_CLEAR(f->callbacks);
  return 0;
}

void FutureDealloc(PyObject* self) {
  PyObject_GC_UnTrack(self);
  FutureClear(self);
  PyTypeObject* type = Py_TYPE(self);
  type->tp_free(self);
  Py_DECREF(type);
}

PyMethodDef future_methods[] = {
    {"result", AsMethod(Safe<FutureResult>), METH_FASTCALL | METH_KEYWORDS,
     "result(timeout=None): the PublishResult, or raises the FerryError"},
    {"exception", AsMethod(Safe<FutureException>), METH_FASTCALL | METH_KEYWORDS,
     "exception(timeout=None): the FerryError, or None"},
    {"done", AsMethod(Safe<FutureDone>), METH_NOARGS, "True once the outcome is known."},
    {"running", AsMethod(Safe<FutureRunning>), METH_NOARGS, "True until done."},
    {"cancel", AsMethod(Safe<FutureCancel>), METH_NOARGS,
     "False: a queued message is not taken back."},
    {"cancelled", AsMethod(Safe<FutureCancelled>), METH_NOARGS, "False."},
    {"add_done_callback", AsMethod(Safe<FutureAddDoneCallback>), METH_O,
     "fn(future) once done (at once when done); what it raises is logged."},
    {nullptr, nullptr, 0, nullptr}};

PyType_Slot future_slots[] = {
    {Py_tp_dealloc, reinterpret_cast<void*>(FutureDealloc)},
    {Py_tp_traverse, reinterpret_cast<void*>(FutureTraverse)},
    {Py_tp_clear, reinterpret_cast<void*>(FutureClear)},
    {Py_tp_methods, future_methods},
    {Py_tp_doc,
     const_cast<char*>("The outcome of a native publish (see ferry.Publisher).")},
    {0, nullptr}};
PyType_Spec future_spec = {
    "ferry._native.Future", sizeof(FutureObject), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    future_slots};

// -- Publisher --------------------------------------------------------------

PyObject* PublisherNew(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  static const char* keywords[] = {"endpoints",
                                   "max_batch_messages",
                                   "max_batch_bytes",
                                   "linger_ms",
                                   "max_outstanding_bytes",
                                   "block_when_full",
                                   "request_timeout_ms",
                                   "delivery_timeout_ms",
                                   "backoff_initial_ms",
                                   "backoff_max_ms",
                                   "close_timeout_ms",
                                   "pushed_settings",
                                   "client_id",
                                   "tls",
                                   "ca_file",
                                   "cert_file",
                                   "key_file",
                                   "token",
                                   "make_result",
                                   "make_error",
                                   nullptr};
  PyObject *endpoints, *make_result, *make_error;
  const char *client_id, *ca_file, *cert_file, *key_file, *token;
  int block, pushed, tls;
  long long max_messages, max_bytes, linger_ms, max_outstanding, request_ms, delivery_ms,
      backoff_initial, backoff_max, close_ms;
  if (!PyArg_ParseTupleAndKeywords(
          args, kwargs, "$OLLLLpLLLLLpspssssOO", const_cast<char**>(keywords), &endpoints,
          &max_messages, &max_bytes, &linger_ms, &max_outstanding, &block, &request_ms,
          &delivery_ms, &backoff_initial, &backoff_max, &close_ms, &pushed, &client_id,
          &tls, &ca_file, &cert_file, &key_file, &token, &make_result, &make_error)) {
    return nullptr;
  }
  if (InForkedChild()) {
    PyErr_SetString(PyExc_RuntimeError,
                    "ferry._native: not usable in a child forked after it was used");
    return nullptr;
  }
  std::optional<std::vector<std::string>> endpoint_list = Strings(endpoints, "endpoints");
  if (!endpoint_list) return nullptr;
  using std::chrono::milliseconds;
  client::Publisher::Builder builder;
  builder.Endpoints(std::move(*endpoint_list))
      .MaxOutstandingBytes(static_cast<std::size_t>(max_outstanding))
      .BlockWhenFull(block != 0)
      .RetryBackoff(milliseconds(backoff_initial), milliseconds(backoff_max))
      // close() flushed for its own timeout already: the SDK fails the rest.
      .CloseTimeout(milliseconds(0))
      .PushedSettings(pushed != 0)
      .ClientId(client_id)
      .Security({.tls = tls != 0,
                 .ca_file = ca_file,
                 .cert_file = cert_file,
                 .key_file = key_file,
                 .token = token});
  // Negative: not given (the SDK default, or the pushed setting).
  if (max_messages >= 0) builder.MaxBatchMessages(static_cast<int>(max_messages));
  if (max_bytes >= 0) builder.MaxBatchBytes(static_cast<std::size_t>(max_bytes));
  if (linger_ms >= 0) builder.Linger(milliseconds(linger_ms));
  if (request_ms >= 0) builder.RequestTimeout(milliseconds(request_ms));
  if (delivery_ms >= 0) builder.DeliveryTimeout(milliseconds(delivery_ms));
  auto state = std::make_unique<State>();
  state->delivery = std::make_shared<Delivery>();
  std::string error;
  state->publisher = WithoutGil([&] { return builder.Build(&error); });
  if (state->publisher == nullptr) {
    PyErr_SetString(PyExc_ValueError, error.c_str());
    return nullptr;
  }
  state->delivery->make_result = Py_NewRef(make_result);
  state->delivery->make_error = Py_NewRef(make_error);
  state->thread = std::thread(DeliveryLoop, state->delivery);
  NoteSubscriberBuilt();
  auto* self = reinterpret_cast<PublisherObject*>(type->tp_alloc(type, 0));
  if (self == nullptr) {
    WithoutGil([&] {
      state->publisher.reset();
      {
        std::lock_guard lock(state->delivery->mu);
        state->delivery->stop = true;
        state->delivery->cv.notify_all();
      }
      state->thread.join();
    });
    return nullptr;
  }
  state->close_timeout = milliseconds(close_ms);
  self->state = state.release();
  return reinterpret_cast<PyObject*>(self);
}

State* Open(PyObject* self) {
  State* s = reinterpret_cast<PublisherObject*>(self)->state;
  if (InForkedChild()) {
    PyErr_SetString(PyExc_RuntimeError,
                    "ferry: this publisher belongs to the parent process");
    return nullptr;
  }
  if (s->closed) {
    PyObject* e = PyObject_CallFunction(s->delivery->make_error, "isO", 14,
                                        "publisher closed", Py_False);
    if (e != nullptr) PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(e)), e);
    Py_XDECREF(e);
    return nullptr;
  }
  return s;
}

// bytes (or str, UTF-8) into `out`; None leaves it empty when `optional`.
bool BytesOf(PyObject* value, std::string_view* out, const char* what, bool optional) {
  if (value == nullptr || (optional && value == Py_None)) return true;
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
  PyErr_Format(PyExc_TypeError, "%s must be bytes or str, not %s", what,
               Py_TYPE(value)->tp_name);
  return false;
}

// A dict or iterable of (str, bytes|str) pairs.
bool HeadersOf(PyObject* headers, std::vector<client::Header>* out) {
  if (headers == nullptr || headers == Py_None) return true;
  PyObject* items =
      PyDict_Check(headers) ? PyDict_Items(headers) : PySequence_List(headers);
  if (items == nullptr) return false;
  bool ok = true;
  for (Py_ssize_t i = 0; ok && i < PyList_GET_SIZE(items); ++i) {
    PyObject* pair = PyList_GET_ITEM(items, i);
    if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2 ||
        !PyUnicode_Check(PyTuple_GET_ITEM(pair, 0))) {
      PyErr_SetString(PyExc_TypeError, "headers must be (str, bytes|str) pairs");
      ok = false;
      break;
    }
    std::string_view key, value;
    ok = BytesOf(PyTuple_GET_ITEM(pair, 0), &key, "header key", false) &&
         BytesOf(PyTuple_GET_ITEM(pair, 1), &value, "header value", false);
    if (ok) out->push_back({std::string(key), std::string(value)});
  }
  Py_DECREF(items);
  return ok;
}

// A datetime (naive: UTC, as the pure path's protobuf Timestamp) as the
// message's timestamp; false with TypeError set otherwise.
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

// Set while this thread is in Publish: a result handed over inline (the
// message failed at once) lands here and is raised, as the pure path does.
thread_local std::optional<client::PublishResult>* inline_result = nullptr;

// publish(topic, value, key=None, headers=None, ordering_key=None, id=None,
//         timestamp=None, callback=None) -> Future or None
PyObject* Publish(PyObject* self, PyObject* const* args, Py_ssize_t n,
                  PyObject* kwnames) {
  State* s = Open(self);
  std::array<PyObject*, 8> given;
  if (s == nullptr ||
      !Arguments(args, n, kwnames,
                 std::array{"topic", "value", "key", "headers", "ordering_key", "id",
                            "timestamp", "callback"},
                 given)) {
    return nullptr;
  }
  if (given[0] == nullptr || given[1] == nullptr) {
    PyErr_SetString(PyExc_TypeError, "publish needs a topic and a value");
    return nullptr;
  }
  if (!PyUnicode_Check(given[0])) {
    PyErr_Format(PyExc_TypeError, "topic must be str, not %s",
                 Py_TYPE(given[0])->tp_name);
    return nullptr;
  }
  if (given[5] != nullptr && given[5] != Py_None && !PyUnicode_Check(given[5])) {
    PyErr_SetString(PyExc_TypeError, "id must be str");
    return nullptr;
  }
  std::string_view topic, value, key, ordering_key, id;
  client::Message message;
  if (!BytesOf(given[0], &topic, "topic", false) ||
      !BytesOf(given[1], &value, "value", false) ||
      !BytesOf(given[2], &key, "key", true) || !HeadersOf(given[3], &message.headers) ||
      !BytesOf(given[4], &ordering_key, "ordering_key", true) ||
      !BytesOf(given[5], &id, "id", true)) {
    return nullptr;
  }
  if (given[6] != nullptr && given[6] != Py_None && !TimestampOf(given[6], &message))
    return nullptr;
  message.key = key;
  message.value = value;
  message.ordering_key = ordering_key;
  message.id = id;
  PyObject* callback = given[7] != nullptr && given[7] != Py_None ? given[7] : nullptr;
  // `target`'s reference goes with the result (the SDK's callback).
  PyObject* target = callback != nullptr ? Py_NewRef(callback)
                                         : reinterpret_cast<PyObject*>(NewFuture());
  if (target == nullptr) return nullptr;
  std::shared_ptr<Delivery> d = s->delivery;
  // The SDK's callback runs on its thread, or inline (failed at once):
  // either way it only queues, without the GIL.
  client::Publisher* publisher = s->publisher.get();
  auto done = [d, target, is_callback = callback != nullptr](client::PublishResult r) {
    if (inline_result != nullptr) {
      *inline_result = std::move(r);
      return;
    }
    d->Push({target, is_callback, std::move(r)});
  };
  std::string topic_copy(topic);
  std::optional<client::PublishResult> failed_at_once;
  WithoutGil([&] {
    inline_result = &failed_at_once;
    publisher->Publish(std::move(topic_copy), std::move(message), done);
    inline_result = nullptr;
  });
  if (failed_at_once) {
    Py_DECREF(target);
    bool failed;
    PyObject* error = Convert(d.get(), *failed_at_once, &failed);
    if (error != nullptr)
      PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(error)), error);
    Py_XDECREF(error);
    return nullptr;
  }
  if (callback != nullptr) Py_RETURN_NONE;
  return Py_NewRef(target);
}

// One item of publish_many: a value, or (value[, key[, headers[, ordering_key]]]).
bool ViewOf(PyObject* item, client::MessageView* view,
            std::vector<client::Header>* headers) {
  if (!PyTuple_Check(item)) return BytesOf(item, &view->value, "value", false);
  Py_ssize_t size = PyTuple_GET_SIZE(item);
  if (size < 1 || size > 4) {
    PyErr_SetString(PyExc_TypeError,
                    "a publish_many item is a value or (value[, key[, headers[, "
                    "ordering_key]]])");
    return false;
  }
  auto at = [&](Py_ssize_t i) { return i < size ? PyTuple_GET_ITEM(item, i) : nullptr; };
  return BytesOf(at(0), &view->value, "value", false) &&
         BytesOf(at(1), &view->key, "key", true) && HeadersOf(at(2), headers) &&
         BytesOf(at(3), &view->ordering_key, "ordering_key", true);
}

// publish_many(topic, messages) -> Future of a list of outcomes
PyObject* PublishMany(PyObject* self, PyObject* const* args, Py_ssize_t n,
                      PyObject* kwnames) {
  State* s = Open(self);
  std::array<PyObject*, 2> given;
  if (s == nullptr ||
      !Arguments(args, n, kwnames, std::array{"topic", "messages"}, given)) {
    return nullptr;
  }
  if (given[0] == nullptr || given[1] == nullptr) {
    PyErr_SetString(PyExc_TypeError, "publish_many needs a topic and messages");
    return nullptr;
  }
  std::string_view topic;
  if (!BytesOf(given[0], &topic, "topic", false)) return nullptr;
  PyObject* items = PySequence_Fast(given[1], "messages must be iterable");
  if (items == nullptr) return nullptr;
  const Py_ssize_t count = PySequence_Fast_GET_SIZE(items);
  std::vector<client::MessageView> views(static_cast<std::size_t>(count));
  std::vector<std::vector<client::Header>> headers(static_cast<std::size_t>(count));
  for (Py_ssize_t i = 0; i < count; ++i) {
    auto k = static_cast<std::size_t>(i);
    if (!ViewOf(PySequence_Fast_GET_ITEM(items, i), &views[k], &headers[k])) {
      Py_DECREF(items);
      return nullptr;
    }
    views[k].headers = headers[k];
  }
  FutureObject* future = NewFuture();
  if (future == nullptr) {
    Py_DECREF(items);
    return nullptr;
  }
  PyObject* target = Py_NewRef(reinterpret_cast<PyObject*>(future));
  std::shared_ptr<Delivery> d = s->delivery;
  client::Publisher* publisher = s->publisher.get();
  auto done = [d, target](client::PublishManyResult r) {
    d->PushMany({target, std::move(r)});
  };
  // `items` keeps the viewed bytes alive until PublishMany returned.
  WithoutGil([&] { publisher->PublishMany(topic, views, done); });
  Py_DECREF(items);
  return reinterpret_cast<PyObject*>(future);
}

PyObject* Flush(PyObject* self, PyObject* arg) {
  State* s = Open(self);
  if (s == nullptr) return nullptr;
  if (InCallback()) {
    PyErr_SetString(PyExc_RuntimeError, "ferry: flush from a publish callback");
    return nullptr;
  }
  double seconds = 1e9;
  if (arg != Py_None) {
    std::optional<double> given = SecondsOf(arg, "timeout");
    if (!given) return nullptr;
    seconds = std::min(*given, 1e9);
  }
  using Clock = std::chrono::steady_clock;
  Clock::time_point deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                  std::chrono::duration<double>(seconds));
  client::Publisher* publisher = s->publisher.get();
  Delivery* d = s->delivery.get();
  bool flushed = WithoutGil([&] {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (!publisher->Flush(std::max(left, std::chrono::milliseconds(0)))) return false;
    // Every result is queued; wait until the futures are completed too.
    std::unique_lock lock(d->mu);
    const uint64_t target = d->pushed;
    return d->cv.wait_until(lock, deadline, [&] { return d->delivered >= target; });
  });
  return PyBool_FromLong(flushed);
}

// Ends the SDK publisher (failing what is still outstanding: the caller
// flushed first), then the delivery thread once it delivered everything.
void Shut(State* s) {
  s->publisher.reset();
  {
    std::lock_guard lock(s->delivery->mu);
    s->delivery->stop = true;
    s->delivery->cv.notify_all();
  }
  if (s->thread.joinable()) s->thread.join();
}

PyObject* Close(PyObject* self, PyObject*) {
  State* s = reinterpret_cast<PublisherObject*>(self)->state;
  if (InForkedChild() || s->closed) Py_RETURN_NONE;
  if (InCallback()) {
    PyErr_SetString(PyExc_RuntimeError, "ferry: close from a publish callback");
    return nullptr;
  }
  s->closed = true;
  WithoutGil([s] {
    s->final_stats = s->publisher->Stats();
    Shut(s);
  });
  Py_RETURN_NONE;
}

PyObject* Stats(PyObject* self, PyObject*) {
  State* s = reinterpret_cast<PublisherObject*>(self)->state;
  if (InForkedChild()) {
    PyErr_SetString(PyExc_RuntimeError,
                    "ferry: this publisher belongs to the parent process");
    return nullptr;
  }
  client::PublisherStats st = s->closed ? s->final_stats : s->publisher->Stats();
  return Py_BuildValue(
      "(LLOOLdid)", static_cast<long long>(st.ferry_messages),
      static_cast<long long>(st.direct_messages), st.fallback_active ? Py_True : Py_False,
      st.config_fetched ? Py_True : Py_False, static_cast<long long>(st.node_batches),
      st.linger.count() / 1e3, st.max_batch_messages, st.delivery_timeout.count() / 1e3);
}

void PublisherDealloc(PyObject* self) {
  State* s = reinterpret_cast<PublisherObject*>(self)->state;
  if (s != nullptr && !InForkedChild()) {  // in a forked child: left alone
    if (!s->closed && !InCallback()) {
      WithoutGil([s] {
        s->publisher->Flush(s->close_timeout);
        Shut(s);
      });
    }
    if (!s->thread.joinable()) {
      Py_CLEAR(s->delivery->make_result);
      Py_CLEAR(s->delivery->make_error);
      delete s;
    }
    // else: let go from its own callback: left running (never joined from itself)
  }
  PyTypeObject* type = Py_TYPE(self);
  type->tp_free(self);
  Py_DECREF(type);
}

PyMethodDef publisher_methods[] = {
    {"publish", AsMethod(Safe<Publish>), METH_FASTCALL | METH_KEYWORDS,
     "publish(topic, value, key, headers, ordering_key, id, timestamp_ms, callback)"},
    {"publish_many", AsMethod(Safe<PublishMany>), METH_FASTCALL | METH_KEYWORDS,
     "publish_many(topic, messages) -> Future of a list of outcomes"},
    {"flush", AsMethod(Safe<Flush>), METH_O, "flush(timeout) -> bool"},
    {"close", AsMethod(Safe<Close>), METH_NOARGS,
     "Fails what is outstanding (flush first), then ends."},
    {"stats", AsMethod(Safe<Stats>), METH_NOARGS,
     "(ferry_messages, direct_messages, fallback_active, config_fetched, node_batches, "
     "linger, max_batch_messages, delivery_timeout)"},
    {nullptr, nullptr, 0, nullptr}};

PyType_Slot publisher_slots[] = {
    {Py_tp_new, reinterpret_cast<void*>(Safe<PublisherNew>)},
    {Py_tp_dealloc, reinterpret_cast<void*>(PublisherDealloc)},
    {Py_tp_methods, publisher_methods},
    {Py_tp_doc, const_cast<char*>("The C++ SDK's publisher (see ferry.Publisher).")},
    {0, nullptr}};
PyType_Spec publisher_spec = {"ferry._native.Publisher", sizeof(PublisherObject), 0,
                              Py_TPFLAGS_DEFAULT, publisher_slots};

bool AddType(PyObject* module, PyType_Spec* spec, const char* name, PyTypeObject** out) {
  *out = reinterpret_cast<PyTypeObject*>(PyType_FromSpec(spec));
  if (*out == nullptr) return false;
  Py_INCREF(*out);
  if (PyModule_AddObject(module, name, reinterpret_cast<PyObject*>(*out)) < 0) {
    Py_DECREF(*out);
    return false;
  }
  return true;
}

}  // namespace

PyObject* SetReportRaised(PyObject*, PyObject* report) {
  Py_XSETREF(report_raised, Py_NewRef(report));
  Py_RETURN_NONE;
}

bool AddPublisherTypes(PyObject* module) {
  PyObject* futures = PyImport_ImportModule("concurrent.futures");
  if (futures == nullptr) return false;
  timeout_error = PyObject_GetAttrString(futures, "TimeoutError");
  Py_DECREF(futures);
  if (timeout_error == nullptr) return false;
  PyObject* datetime = PyImport_ImportModule("datetime");
  if (datetime == nullptr) return false;
  datetime_type = PyObject_GetAttrString(datetime, "datetime");
  PyObject* timezone = PyObject_GetAttrString(datetime, "timezone");
  Py_DECREF(datetime);
  if (timezone != nullptr) utc = PyObject_GetAttrString(timezone, "utc");
  Py_XDECREF(timezone);
  if (datetime_type == nullptr || utc == nullptr) return false;
  Types& types = NativeTypes();
  return AddType(module, &future_spec, "Future", &types.future) &&
         AddType(module, &publisher_spec, "Publisher", &types.publisher);
}

}  // namespace ferry::python
