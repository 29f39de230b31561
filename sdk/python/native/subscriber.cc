// ferry._native.Subscriber: ferry::client::Subscriber in pull mode for the
// Python SDK's receive(), receive_batch() and iterator. Waiting for a
// response releases the GIL (in slices, so Ctrl-C and close() get through);
// handing out a message or a batch is a few C calls under the GIL. Responses
// taken with NextBatch and not handed out in full wait in `pending`, oldest
// first, so receive() and receive_batch() mix as on the pure path.
#include <array>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "native.h"

namespace ferry::python {
namespace {

constexpr std::chrono::milliseconds kWaitSlice(100);

// A Python object kept by a C++ callback; let go under the GIL, from any thread.
class PyRef {
 public:
  explicit PyRef(PyObject* object) : object_(object) { Py_XINCREF(object_); }
  ~PyRef() {
    if (object_ == nullptr || Finalizing() || InForkedChild()) return;
    PyGILState_STATE state = PyGILState_Ensure();
    Py_DECREF(object_);
    PyGILState_Release(state);
  }
  PyRef(const PyRef&) = delete;
  PyRef& operator=(const PyRef&) = delete;
  PyObject* get() const { return object_; }

 private:
  PyObject* object_;
};

// Set once on_error has seen the fatal error: receive() raises it only then,
// as on the pure path, where on_error runs before the subscriber fails.
struct FatalReported {
  std::mutex mu;
  std::condition_variable cv;
  bool reported = false;
  std::atomic<bool> seen{false};  // = reported, read without the lock

  void Set() {
    std::lock_guard lock(mu);
    reported = true;
    seen.store(true, std::memory_order_release);
    cv.notify_all();
  }
  // Without the GIL.
  void Await(std::chrono::milliseconds at_most) {
    std::unique_lock lock(mu);
    cv.wait_for(lock, at_most, [this] { return reported; });
  }
};

// Calls report(code, error, endpoint[, fatal]) on the calling SDK thread; a
// raising report is printed, as an exception in a thread would be.
void Report(PyObject* report, int code, const std::string& error,
            const std::string& endpoint, std::optional<bool> fatal,
            FatalReported* fatal_reported = nullptr) {
  WithGil([&] {
    PyObject* result =
        fatal
            ? PyObject_CallFunction(report, "issO", code, error.c_str(), endpoint.c_str(),
                                    *fatal ? Py_True : Py_False)
            : PyObject_CallFunction(report, "iss", code, error.c_str(), endpoint.c_str());
    if (result == nullptr) PyErr_WriteUnraisable(report);
    Py_XDECREF(result);
    // Before the GIL goes: a thread that saw on_error end sees it reported.
    if (fatal_reported != nullptr && *fatal) fatal_reported->Set();
  });
}

struct State {
  std::shared_ptr<client::Subscriber> subscriber;
  std::deque<ReceivedObject*> pending;
  Py_ssize_t next = 0;   // first message of pending.front() not handed out
  bool stopped = false;  // no more hand-outs (stop() or close())
  bool closed = false;   // the SDK's Close was called
  std::thread closer;    // a close() made from a callback runs here
  PyObject* make_error = nullptr;
  PyObject* failure = nullptr;  // the typed fatal error, made once
  std::chrono::milliseconds ack_deadline{0};
  std::shared_ptr<FatalReported> fatal_reported;  // null without report_error
};

struct SubscriberObject {
  PyObject_HEAD State* state;
};

PyObject* SubscriberNew(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  static const char* keywords[] = {"endpoints",
                                   "group",
                                   "topics",
                                   "ordering",
                                   "ack_deadline_ms",
                                   "max_outstanding_messages",
                                   "max_outstanding_bytes",
                                   "start",
                                   "start_ms",
                                   "filter",
                                   "max_delivery_attempts",
                                   "dead_letter_topic",
                                   "client_id",
                                   "ack_batch_count",
                                   "ack_batch_delay_ms",
                                   "max_extension_ms",
                                   "backoff_initial_ms",
                                   "backoff_max_ms",
                                   "close_timeout_ms",
                                   "tls",
                                   "ca_file",
                                   "cert_file",
                                   "key_file",
                                   "token",
                                   "make_error",
                                   "report_error",
                                   "report_receipt_failure",
                                   nullptr};
  PyObject *endpoints, *topics, *make_error, *report_error, *report_receipt;
  const char *group, *filter, *dead_letter_topic, *client_id;
  const char *ca_file = "", *cert_file = "", *key_file = "", *token = "";
  int ordering, start, max_attempts, ack_batch_count, tls = 0;
  long long ack_deadline_ms, max_messages, max_bytes, start_ms, ack_batch_delay_ms,
      max_extension_ms, backoff_initial_ms, backoff_max_ms, close_timeout_ms;
  if (!PyArg_ParseTupleAndKeywords(
          args, kwargs, "$OsOiLLLiLsissiLLLLLpssssOOO", const_cast<char**>(keywords),
          &endpoints, &group, &topics, &ordering, &ack_deadline_ms, &max_messages,
          &max_bytes, &start, &start_ms, &filter, &max_attempts, &dead_letter_topic,
          &client_id, &ack_batch_count, &ack_batch_delay_ms, &max_extension_ms,
          &backoff_initial_ms, &backoff_max_ms, &close_timeout_ms, &tls, &ca_file,
          &cert_file, &key_file, &token, &make_error, &report_error, &report_receipt)) {
    return nullptr;
  }
  if (InForkedChild()) {
    PyErr_SetString(PyExc_RuntimeError,
                    "ferry._native: not usable in a child forked after it was used");
    return nullptr;
  }
  std::optional<std::vector<std::string>> endpoint_list = Strings(endpoints, "endpoints");
  std::optional<std::vector<std::string>> topic_list = Strings(topics, "topics");
  if (!endpoint_list || !topic_list) return nullptr;
  using std::chrono::milliseconds;
  client::StartPosition position = client::StartPosition::Latest();
  if (start == 1) position = client::StartPosition::Earliest();
  if (start == 2) {
    position = client::StartPosition::At(std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            milliseconds(start_ms))));
  }
  client::Subscriber::Builder builder;
  builder.Endpoints(std::move(*endpoint_list))
      .Group(group)
      .Topics(std::move(*topic_list))
      .Ordering(static_cast<client::Ordering>(ordering))
      .AckDeadline(milliseconds(ack_deadline_ms))
      .FlowControl(max_messages, max_bytes)
      .StartAt(position)
      .Filter(filter)
      .MaxDeliveryAttempts(max_attempts)
      .DeadLetterTopic(dead_letter_topic)
      .ClientId(client_id)
      .AckBatch(ack_batch_count, milliseconds(ack_batch_delay_ms))
      .MaxExtension(milliseconds(max_extension_ms))
      .ReconnectBackoff(milliseconds(backoff_initial_ms), milliseconds(backoff_max_ms))
      .CloseTimeout(milliseconds(close_timeout_ms))
      .Security({.tls = tls != 0,
                 .ca_file = ca_file,
                 .cert_file = cert_file,
                 .key_file = key_file,
                 .token = token});
  std::shared_ptr<FatalReported> fatal_reported;
  if (report_error != Py_None) {
    fatal_reported = std::make_shared<FatalReported>();
    builder.OnError([report = std::make_shared<PyRef>(report_error),
                     fatal_reported](const client::SubscriberError& e) {
      Report(report->get(), e.code, e.error, e.endpoint, e.fatal, fatal_reported.get());
      if (e.fatal) fatal_reported->Set();  // also while Python finalizes
    });
  }
  if (report_receipt != Py_None) {
    builder.OnReceiptFailure([report = std::make_shared<PyRef>(report_receipt)](
                                 const client::ReceiptFailure& f) {
      Report(report->get(), f.code, f.error, f.endpoint, std::nullopt);
    });
  }
  // The object first: failing after Build would end the subscriber here,
  // with the GIL, which its background thread may be waiting for.
  auto state = std::make_unique<State>();
  auto* self = reinterpret_cast<SubscriberObject*>(type->tp_alloc(type, 0));
  if (self == nullptr) return nullptr;
  self->state = state.release();
  // Marked before Build starts gRPC's threads and the SDK's: a child forked
  // from here on must not build one on their copied state.
  NoteSubscriberBuilt();
  std::string error;
  std::shared_ptr<client::Subscriber> subscriber;
  try {
    subscriber = WithoutGil(
        [&] { return std::shared_ptr<client::Subscriber>(builder.Build(&error)); });
  } catch (...) {
    Py_DECREF(self);
    throw;
  }
  if (subscriber == nullptr) {
    Py_DECREF(self);
    PyErr_SetString(PyExc_ValueError, error.c_str());
    return nullptr;
  }
  self->state->subscriber = std::move(subscriber);
  self->state->ack_deadline = milliseconds(ack_deadline_ms);
  self->state->fatal_reported = std::move(fatal_reported);
  Py_INCREF(make_error);
  self->state->make_error = make_error;
  return reinterpret_cast<PyObject*>(self);
}

void NackPending(State* s);

// The typed fatal error, made once; false with make_error's exception set.
bool MakeFailure(State* s, const client::SubscriberError& e) {
  if (s->failure == nullptr) {
    s->failure = PyObject_CallFunction(s->make_error, "iss", e.code, e.error.c_str(),
                                       e.endpoint.c_str());
  }
  return s->failure != nullptr;
}

// Sets the fatal error as the current exception.
PyObject* RaiseFailure(State* s, const client::SubscriberError& e) {
  if (MakeFailure(s, e)) {
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(s->failure)), s->failure);
  }
  return nullptr;
}

// Whether the subscriber failed: on_error's report of it (an atomic read)
// when it is wired, else the SDK's Failure() (a lock) once per response.
bool FailureKnown(State* s) {
  if (s->fatal_reported) return s->fatal_reported->seen.load(std::memory_order_acquire);
  return s->next == 0 && s->subscriber->Failure();
}

// The next message (one) or batch of at most `max` messages; None after
// close or when `timeout` (seconds; negative: none) passed; the fatal error
// raised after one.
PyObject* Take(State* s, double timeout, bool one, Py_ssize_t max) {
  using Clock = std::chrono::steady_clock;
  const bool forever = timeout < 0;
  // Set at the first wait: a message already taken costs no clock read.
  Clock::time_point deadline = Clock::time_point::max();
  for (bool first = true;; first = false) {
    // As the pure path: after a fatal failure receivers get the error, not
    // what was taken before it (their acks would be dropped).
    if (!s->pending.empty() && !s->stopped && FailureKnown(s)) NackPending(s);
    while (!s->pending.empty()) {
      ReceivedObject* front = s->pending.front();
      const auto size = static_cast<Py_ssize_t>(front->received->settled.size());
      PyObject* taken = nullptr;
      if (s->next < size) {
        Py_ssize_t stop = one ? s->next + 1 : std::min(size, s->next + max);
        taken = one ? NewMessage(front, s->next) : NewBatch(front, s->next, stop);
        if (taken == nullptr) return nullptr;
        s->next = stop;
      }
      if (s->next >= size) {
        s->pending.pop_front();
        s->next = 0;
        Py_DECREF(front);
      }
      if (taken != nullptr) return taken;
    }
    if (s->stopped) Py_RETURN_NONE;
    Clock::time_point now = Clock::now();
    if (first && !forever) {
      deadline = now + std::chrono::duration_cast<Clock::duration>(
                           std::chrono::duration<double>(timeout));
    }
    if (!first && now >= deadline) Py_RETURN_NONE;
    auto wait =
        forever ? kWaitSlice
                : std::min(kWaitSlice, std::chrono::ceil<std::chrono::milliseconds>(
                                           std::max(deadline - now, Clock::duration(0))));
    std::optional<client::MessageBatch> batch;
    std::optional<client::SubscriberError> failure;
    client::Subscriber* subscriber = s->subscriber.get();
    WithoutGil([&] {
      batch = subscriber->NextBatch(wait);
      if (!batch) failure = subscriber->Failure();
    });
    if (batch) {
      if (batch->empty()) continue;
      ReceivedObject* received = NewReceived(std::move(*batch), s->ack_deadline);
      if (received == nullptr) return nullptr;
      if (s->stopped) {  // stopped while this thread waited: as stop() does
        NackRange(received, 0,
                  static_cast<Py_ssize_t>(received->received->settled.size()));
        Py_DECREF(received);
        Py_RETURN_NONE;
      }
      try {
        s->pending.push_back(received);
      } catch (...) {  // not handed out: nacked, not left to the ack deadline
        NackRange(received, 0,
                  static_cast<Py_ssize_t>(received->received->settled.size()));
        Py_DECREF(received);
        throw;
      }
      continue;
    }
    if (failure && !s->stopped) {
      if (FatalReported* reported = s->fatal_reported.get()) {
        WithoutGil([reported] { reported->Await(std::chrono::seconds(5)); });
      }
      return RaiseFailure(s, *failure);
    }
    if (PyErr_CheckSignals() < 0) return nullptr;
  }
}

// A timeout argument: None (-1: none) or seconds.
std::optional<double> TimeoutArg(PyObject* value) {
  if (value == nullptr || value == Py_None) return -1.0;
  double seconds = PyFloat_AsDouble(value);
  if (seconds == -1.0 && PyErr_Occurred()) return std::nullopt;
  return std::max(seconds, 0.0);
}

State* Open(PyObject* self) {
  State* s = reinterpret_cast<SubscriberObject*>(self)->state;
  if (InForkedChild()) {
    PyErr_SetString(PyExc_RuntimeError,
                    "ferry: this subscriber belongs to the parent process");
    return nullptr;
  }
  return s;
}

PyObject* Receive(PyObject* self, PyObject* const* args, Py_ssize_t n,
                  PyObject* kwnames) {
  State* s = Open(self);
  std::array<PyObject*, 1> given;
  if (s == nullptr || !Arguments(args, n, kwnames, std::array{"timeout"}, given))
    return nullptr;
  std::optional<double> timeout = TimeoutArg(given[0]);
  if (!timeout) return nullptr;
  return Take(s, *timeout, true, 1);
}

PyObject* ReceiveBatch(PyObject* self, PyObject* const* args, Py_ssize_t n,
                       PyObject* kwnames) {
  State* s = Open(self);
  std::array<PyObject*, 2> given;
  if (s == nullptr ||
      !Arguments(args, n, kwnames, std::array{"timeout", "max_messages"}, given)) {
    return nullptr;
  }
  std::optional<double> timeout = TimeoutArg(given[0]);
  if (!timeout) return nullptr;
  Py_ssize_t max = PY_SSIZE_T_MAX;
  if (given[1] != nullptr && given[1] != Py_None) {
    max = PyLong_AsSsize_t(given[1]);
    if (max == -1 && PyErr_Occurred()) return nullptr;
    if (max < 1) {
      PyErr_SetString(PyExc_ValueError, "max_messages must be >= 1");
      return nullptr;
    }
  }
  return Take(s, *timeout, false, max);
}

PyObject* IterNext(PyObject* self) {
  State* s = Open(self);
  if (s == nullptr) return nullptr;
  PyObject* message = Take(s, -1.0, true, 1);
  if (message == Py_None) {
    Py_DECREF(message);
    return nullptr;  // StopIteration
  }
  return message;
}

// Nacks what was taken from the SDK but not handed out (as the pure path's
// close takes back its queue).
void NackPending(State* s) {
  for (std::size_t i = 0; i < s->pending.size(); ++i) {
    ReceivedObject* r = s->pending[i];
    NackRange(r, i == 0 ? s->next : 0,
              static_cast<Py_ssize_t>(r->received->settled.size()));
    Py_DECREF(r);
  }
  s->pending.clear();
  s->next = 0;
}

// Stops handing out messages (receive returns None) and nacks what was taken
// but not handed out; the streams stay open, for the settlements of
// messages handed out before (the callback API's close waits for its
// handlers between stop() and close()).
PyObject* Stop(PyObject* self, PyObject*) {
  State* s = reinterpret_cast<SubscriberObject*>(self)->state;
  if (!InForkedChild() && !s->stopped) {
    s->stopped = true;
    NackPending(s);
  }
  Py_RETURN_NONE;
}

PyObject* Close(PyObject* self, PyObject* arg) {
  State* s = reinterpret_cast<SubscriberObject*>(self)->state;
  if (InForkedChild()) Py_RETURN_TRUE;
  std::optional<double> timeout = TimeoutArg(arg);
  if (!timeout) return nullptr;
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::duration<double>(std::max(*timeout, 0.0)));
  Stop(self, nullptr);
  if (s->closed) {
    if (s->closer.joinable() && !InCallback()) WithoutGil([s] { s->closer.join(); });
    Py_RETURN_TRUE;
  }
  s->closed = true;
  if (InCallback()) {
    // The SDK's Close waits for the thread running this callback: close
    // from another one. ferry.Subscriber never gets here (its close from a
    // callback moves to a Python thread first); a guard for raw use of
    // ferry._native.Subscriber, which would otherwise join itself.
    try {
      s->closer =
          std::thread([subscriber = s->subscriber, ms] { subscriber->Close(ms); });
    } catch (const std::system_error& e) {  // no thread to be had: not closed
      s->closed = false;
      PyErr_Format(PyExc_RuntimeError, "ferry: cannot close from a callback: %s",
                   e.what());
      return nullptr;
    }
    Py_RETURN_TRUE;
  }
  client::Subscriber* subscriber = s->subscriber.get();
  return PyBool_FromLong(WithoutGil([subscriber, ms] { return subscriber->Close(ms); }));
}

PyObject* Failure(PyObject* self, PyObject*) {
  State* s = Open(self);
  if (s == nullptr) return nullptr;
  if (s->failure == nullptr) {
    std::optional<client::SubscriberError> failure = s->subscriber->Failure();
    if (!failure) Py_RETURN_NONE;
    if (!MakeFailure(s, *failure)) return nullptr;
  }
  Py_INCREF(s->failure);
  return s->failure;
}

PyObject* Stats(PyObject* self, PyObject*) {
  State* s = Open(self);
  if (s == nullptr) return nullptr;
  client::SubscriberStats st = s->subscriber->Stats();
  return Py_BuildValue("(LLLLLLLi)", static_cast<long long>(st.received),
                       static_cast<long long>(st.acks_sent),
                       static_cast<long long>(st.nacks_sent),
                       static_cast<long long>(st.extensions_sent),
                       static_cast<long long>(st.dropped_settlements),
                       static_cast<long long>(st.receipt_failures),
                       static_cast<long long>(st.reconnects), st.open_streams);
}

// Ends the subscriber off this thread when it is one of the SDK's (a
// callback's), which ~Subscriber joins; `s` is deleted there.
void EndState(State* s) {
  if (!InCallback()) {
    WithoutGil([s] {
      if (s->closer.joinable()) s->closer.join();
      delete s;
    });
    return;
  }
  try {
    Detach([s] {
      if (s->closer.joinable()) s->closer.join();
      delete s;
    });
  } catch (const std::exception&) {
    // No thread to end it: left open rather than joined from itself.
    if (s->closer.joinable()) s->closer.detach();
  }
}

void SubscriberDealloc(PyObject* self) {
  State* s = reinterpret_cast<SubscriberObject*>(self)->state;
  if (s != nullptr && !InForkedChild()) {  // in a forked child: left alone
    try {
      NackPending(s);
    } catch (const std::exception&) {
      // Out of memory: what was not nacked is left to its ack deadline.
    }
    Py_CLEAR(s->failure);
    Py_CLEAR(s->make_error);
    EndState(s);
  }
  PyTypeObject* type = Py_TYPE(self);
  type->tp_free(self);
  Py_DECREF(type);
}

PyMethodDef subscriber_methods[] = {
    {"receive", AsMethod(Safe<Receive>), METH_FASTCALL | METH_KEYWORDS,
     "receive(timeout=None) -> Message or None"},
    {"receive_batch", AsMethod(Safe<ReceiveBatch>), METH_FASTCALL | METH_KEYWORDS,
     "receive_batch(timeout=None, max_messages=None) -> MessageBatch or None"},
    {"stop", AsMethod(Safe<Stop>), METH_NOARGS,
     "Stops handing out messages; streams stay open."},
    {"close", AsMethod(Safe<Close>), METH_O, "close(timeout) -> bool"},
    {"failure", AsMethod(Safe<Failure>), METH_NOARGS, "The fatal error, or None."},
    {"stats", AsMethod(Safe<Stats>), METH_NOARGS,
     "The counters as a tuple (ferry.Stats order)."},
    {nullptr, nullptr, 0, nullptr}};

PyType_Slot subscriber_slots[] = {
    {Py_tp_new, reinterpret_cast<void*>(Safe<SubscriberNew>)},
    {Py_tp_dealloc, reinterpret_cast<void*>(SubscriberDealloc)},
    {Py_tp_iter, reinterpret_cast<void*>(PyObject_SelfIter)},
    {Py_tp_iternext, reinterpret_cast<void*>(Safe<IterNext>)},
    {Py_tp_methods, subscriber_methods},
    {Py_tp_doc,
     const_cast<char*>("The C++ SDK's subscriber, pull mode (see ferry.Subscriber).")},
    {0, nullptr}};
PyType_Spec subscriber_spec = {"ferry._native.Subscriber", sizeof(SubscriberObject), 0,
                               Py_TPFLAGS_DEFAULT, subscriber_slots};

}  // namespace

bool AddSubscriberType(PyObject* module) {
  return AddType(module, &subscriber_spec, &NativeTypes().subscriber, "Subscriber");
}

}  // namespace ferry::python
