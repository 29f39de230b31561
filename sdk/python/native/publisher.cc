// ferry._native.Publisher: ferry::client::Publisher (callback forms) for the
// Python SDK's publish(), publish(callback=) and publish_many(). The SDK's
// sender thread only queues each result (a lock, no GIL); one delivery
// thread per publisher takes the GIL once per batch of queued results and
// completes their futures (ferry._futures.PublishFuture: CompleteAlone, or
// set_result / set_exception once someone waits on one) or calls their
// callbacks.
#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "future.h"
#include "native.h"
#include "publish_input.h"

namespace ferry::python {
namespace {

// Set once at import (set_publish_hooks): process-wide, so a thread ending a
// publisher needs no GIL for them.
PyObject* make_result = nullptr;    // PublishResult: a tuple subclass
PyObject* make_error = nullptr;     // (code, error, retryable, endpoint) -> FerryError
PyObject* report_raised = nullptr;  // report(exception): logs what a callback raised
// (self, *args, **kwargs) with the pure path's publish signature and name:
// raises its TypeError for arguments publish does not take.
PyObject* refuse_publish_arguments = nullptr;
PyObject* set_result_name = nullptr;
PyObject* set_exception_name = nullptr;

constexpr int kUnavailable = 14;
constexpr int kInvalidArgument = 3;
constexpr std::string_view kClosed = "publisher closed";

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

// A FerryError, with the endpoint of the node that failed the message (None:
// no node was tried); a failure once closing is final (the SDK marks it
// retryable with its last error appended), as the pure path's
// Unavailable("publisher closed", retryable=False): retrying after one's own
// close cannot succeed.
PyObject* ErrorOf(int code, const std::string& error, bool retryable,
                  const std::string& endpoint = {}) {
  if (code == kUnavailable && std::string_view(error).starts_with(kClosed))
    retryable = false;
  if (endpoint.empty()) {
    return PyObject_CallFunction(make_error, "isOO", code, error.c_str(),
                                 retryable ? Py_True : Py_False, Py_None);
  }
  return PyObject_CallFunction(make_error, "isOs", code, error.c_str(),
                               retryable ? Py_True : Py_False, endpoint.c_str());
}

// A PublishResult (a tuple subclass) made as tuple.__new__ makes it, without
// its Python __new__; `direct` is a class attribute set on the instance only
// when true. The cluster's str is kept while results name the same one.
PyObject* ResultOf(const std::string& cluster, int32_t partition, int64_t offset,
                   bool direct) {
  static PyObject* last_cluster = nullptr;  // under the GIL
  static std::string& last_text = *new std::string;
  if (last_cluster == nullptr || last_text != cluster) {
    PyObject* name = PyUnicode_FromStringAndSize(cluster.data(),
                                                 static_cast<Py_ssize_t>(cluster.size()));
    if (name == nullptr) return nullptr;
    Py_XSETREF(last_cluster, name);
    last_text = cluster;
  }
  PyObject* items = PyTuple_New(3);
  if (items == nullptr) return nullptr;
  PyTuple_SET_ITEM(items, 0, Py_NewRef(last_cluster));
  PyTuple_SET_ITEM(items, 1, PyLong_FromLong(partition));
  PyTuple_SET_ITEM(items, 2, PyLong_FromLongLong(offset));
  PyObject* args =
      PyTuple_GET_ITEM(items, 1) != nullptr && PyTuple_GET_ITEM(items, 2) != nullptr
          ? PyTuple_Pack(1, items)
          : nullptr;
  Py_DECREF(items);
  if (args == nullptr) return nullptr;
  PyObject* result =
      PyTuple_Type.tp_new(reinterpret_cast<PyTypeObject*>(make_result), args, nullptr);
  Py_DECREF(args);
  if (result != nullptr && direct &&
      PyObject_SetAttrString(result, "direct", Py_True) < 0)
    Py_CLEAR(result);
  return result;
}

PyObject* Convert(const client::PublishResult& r, bool* failed) {
  *failed = !r.ok();
  return r.ok() ? ResultOf(r.cluster, r.partition, r.offset, r.direct)
                : ErrorOf(r.code, r.error, r.retryable, r.endpoint);
}

// Raises `error` (stolen; null: already set).
std::nullptr_t Raise(PyObject* error) {
  if (error != nullptr) {
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(error)), error);
    Py_DECREF(error);
  }
  return nullptr;
}

// Completes `future` with `value` (stolen; null: the current exception).
void Complete(const FutureSlots& slots, PyObject* future, PyObject* value, bool failed) {
  if (value == nullptr) {
    PyObject *type, *exc, *tb;
    PyErr_Fetch(&type, &exc, &tb);
    PyErr_NormalizeException(&type, &exc, &tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    value = exc != nullptr ? exc : Py_NewRef(Py_None);
    failed = exc != nullptr;
  }
  if (CompleteAlone(slots, future, value, failed)) return;
  // Runs the done callbacks (concurrent.futures logs what they raise).
  PyObject* r = PyObject_CallMethodOneArg(
      future, failed ? set_exception_name : set_result_name, value);
  if (r == nullptr) ReportRaised(future);  // InvalidStateError: set by someone else
  Py_XDECREF(r);
  Py_DECREF(value);
}

// The outcome of each message of a PublishMany call, as a list.
PyObject* ManyOutcomes(const client::PublishManyResult& r) {
  PyObject* list = PyList_New(static_cast<Py_ssize_t>(r.size()));
  if (list == nullptr) return nullptr;
  for (std::size_t i = 0; i < r.size(); ++i) {
    const client::MessageOutcome& m = r.messages[i];
    PyObject* item =
        m.ok() ? ResultOf(r.clusters[m.cluster], m.partition, m.offset, m.direct)
               : ErrorOf(m.code, r.errors[m.error], m.retryable, r.endpoints[m.endpoint]);
    if (item == nullptr) {
      Py_DECREF(list);
      return nullptr;
    }
    PyList_SET_ITEM(list, static_cast<Py_ssize_t>(i), item);
  }
  return list;
}

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

// Shared by the SDK's callbacks and the delivery thread; outlives the SDK
// publisher (whose callbacks point to it) and the delivery thread.
struct Delivery {
  FutureSlots future_slots;  // set before the delivery thread starts
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Completion> queue;
  std::vector<ManyCompletion> many;
  uint64_t pushed = 0;     // results queued
  uint64_t delivered = 0;  // results whose delivery ran
  bool stop = false;

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
  void Stop() {
    std::lock_guard lock(mu);
    stop = true;
    cv.notify_all();
  }
};

// Delivers one batch under the GIL (held).
void DeliverBatch(const FutureSlots& slots, std::vector<Completion>& batch,
                  std::vector<ManyCompletion>& many) {
  for (Completion& c : batch) {
    bool failed;
    PyObject* outcome = Convert(c.result, &failed);
    if (c.callback) {
      PyObject* r = outcome == nullptr ? nullptr : PyObject_CallOneArg(c.target, outcome);
      if (r == nullptr) ReportRaised(c.target);
      Py_XDECREF(r);
      Py_XDECREF(outcome);
    } else {
      Complete(slots, c.target, outcome, failed);
    }
    Py_DECREF(c.target);
  }
  for (ManyCompletion& c : many) {
    Complete(slots, c.target, ManyOutcomes(c.result), false);
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
    WithGil([&] { DeliverBatch(d->future_slots, batch, many); });
    batch.clear();
    many.clear();
    std::lock_guard lock(d->mu);
    d->delivered += taken;
    d->cv.notify_all();
  }
}

struct State {
  std::unique_ptr<client::Publisher> publisher;
  std::shared_ptr<Delivery> delivery;
  std::thread thread;               // runs DeliveryLoop
  std::thread::id delivery_thread;  // its id (read while another thread joins it)
  PyObject* future_type = nullptr;  // a ferry._futures.PublishFuture subclass
  std::size_t max_outstanding_bytes = 0;
  std::chrono::milliseconds close_timeout{0};  // how long a dropped one flushes
  client::PublisherStats final_stats{};        // stats() after close
  bool closed = false;                         // under the GIL: no call starts once set
  std::atomic<int> calls{0};                   // calls that may be in the SDK publisher
  std::atomic<bool> shut{false};  // Close ended the SDK publisher and the thread
};

struct PublisherObject {
  PyObject_HEAD State* state;
};

// Counts a call into the SDK publisher (begun under the GIL after Open):
// Close destroys it only once every call returned (the SDK's contract).
class InCall {
 public:
  explicit InCall(State* s) : s_(s) { s_->calls.fetch_add(1); }
  ~InCall() {
    if (s_->calls.fetch_sub(1) == 1) s_->calls.notify_all();
  }
  InCall(const InCall&) = delete;
  InCall& operator=(const InCall&) = delete;

 private:
  State* s_;
};

// True on this publisher's delivery thread (its callbacks' and futures').
bool OnDeliveryThread(const State* s) {
  return std::this_thread::get_id() == s->delivery_thread;
}

// Ends the SDK publisher (failing what is still outstanding: the caller
// flushed first) once no call is in it, then the delivery thread once it
// delivered everything, those failures included. No GIL held.
void Shut(State* s) {
  for (int n = s->calls.load(); n != 0; n = s->calls.load()) s->calls.wait(n);
  s->final_stats = s->publisher->Stats();
  s->publisher.reset();
  s->delivery->Stop();
  if (s->thread.joinable()) s->thread.join();
  s->shut.store(true);
  s->shut.notify_all();
}

void WaitShut(State* s) {
  WithoutGil([s] { s->shut.wait(false); });
}

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
                                   "future_type",
                                   nullptr};
  PyObject *endpoints, *future_type;
  const char *client_id, *ca_file, *cert_file, *key_file, *token;
  int block, pushed, tls;
  long long max_messages, max_bytes, linger_ms, max_outstanding, request_ms, delivery_ms,
      backoff_initial, backoff_max, close_ms;
  if (!PyArg_ParseTupleAndKeywords(
          args, kwargs, "$OLLLLpLLLLLpspssssO", const_cast<char**>(keywords), &endpoints,
          &max_messages, &max_bytes, &linger_ms, &max_outstanding, &block, &request_ms,
          &delivery_ms, &backoff_initial, &backoff_max, &close_ms, &pushed, &client_id,
          &tls, &ca_file, &cert_file, &key_file, &token, &future_type)) {
    return nullptr;
  }
  if (InForkedChild()) {
    PyErr_SetString(PyExc_RuntimeError,
                    "ferry._native: not usable in a child forked after it was used");
    return nullptr;
  }
  if (make_result == nullptr) {
    PyErr_SetString(PyExc_RuntimeError, "ferry._native: set_publish_hooks not called");
    return nullptr;
  }
  std::optional<std::vector<std::string>> endpoint_list = Strings(endpoints, "endpoints");
  FutureSlots future_slots;
  if (!endpoint_list || !FutureSlotsOf(future_type, &future_slots)) return nullptr;
  auto* self = reinterpret_cast<PublisherObject*>(type->tp_alloc(type, 0));
  if (self == nullptr) return nullptr;
  self->state = nullptr;
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
  state->delivery->future_slots = future_slots;
  std::string error;
  state->publisher = WithoutGil([&] { return builder.Build(&error); });
  if (state->publisher == nullptr) {
    Py_DECREF(self);
    PyErr_SetString(PyExc_ValueError, error.c_str());
    return nullptr;
  }
  state->thread = std::thread(DeliveryLoop, state->delivery);
  state->delivery_thread = state->thread.get_id();
  NoteSubscriberBuilt();
  state->future_type = Py_NewRef(future_type);
  state->max_outstanding_bytes = static_cast<std::size_t>(max_outstanding);
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
  if (s->closed) return Raise(ErrorOf(kUnavailable, std::string(kClosed), false));
  return s;
}

// A new future of this publisher, running from the start as the pure
// path's (a queued message cannot be taken back).
PyObject* NewFuture(State* s) { return PyObject_CallNoArgs(s->future_type); }

// Set while this thread is in Publish: a result handed over inline (the
// message failed at once) lands here and is raised, as the pure path does.
thread_local std::optional<client::PublishResult>* inline_result = nullptr;

class InlineResult {
 public:
  explicit InlineResult(std::optional<client::PublishResult>* to) { inline_result = to; }
  ~InlineResult() { inline_result = nullptr; }
  InlineResult(const InlineResult&) = delete;
  InlineResult& operator=(const InlineResult&) = delete;
};

// The SDK's callbacks: on its thread, or inline (failed at once); either
// way they only queue, without the GIL. Two pointers each, so std::function
// keeps them without a heap allocation.
template <bool kCallback>
struct Done {
  Delivery* d;
  PyObject* target;  // a callback (kCallback) or a Future
  void operator()(client::PublishResult r) const {
    if (inline_result != nullptr) {
      *inline_result = std::move(r);
      return;
    }
    d->Push({target, kCallback, std::move(r)});
  }
};

// Arguments publish does not take: raises the TypeError the pure path's
// publish raises for them (refuse_publish_arguments binds them as it does).
std::nullptr_t RefuseArguments(PyObject* self, PyObject* const* args, Py_ssize_t n,
                               PyObject* kwnames) {
  if (PyErr_Occurred()) {
    if (!PyErr_ExceptionMatches(PyExc_TypeError)) return nullptr;
    PyErr_Clear();
  }
  const Py_ssize_t keywords = kwnames == nullptr ? 0 : PyTuple_GET_SIZE(kwnames);
  std::vector<PyObject*> with_self(static_cast<std::size_t>(1 + n + keywords));
  with_self[0] = self;
  std::copy(args, args + n + keywords, with_self.begin() + 1);
  PyObject* r = PyObject_Vectorcall(refuse_publish_arguments, with_self.data(),
                                    static_cast<std::size_t>(1 + n), kwnames);
  if (r != nullptr) {  // bound there: this side and the pure signature differ
    Py_DECREF(r);
    PyErr_SetString(PyExc_TypeError, "publish: arguments not taken");
  }
  return nullptr;
}

// publish(topic, value, key=None, headers=None, ordering_key=None, *, id=None,
//         timestamp=None, callback=None) -> Future or None
PyObject* Publish(PyObject* self, PyObject* const* args, Py_ssize_t n,
                  PyObject* kwnames) {
  constexpr Py_ssize_t kPositional = 5;  // the rest are keyword-only
  std::array<PyObject*, 8> given;
  if (n > kPositional ||
      !Arguments(args, n, kwnames,
                 std::array{"topic", "value", "key", "headers", "ordering_key", "id",
                            "timestamp", "callback"},
                 given) ||
      given[0] == nullptr || given[1] == nullptr) {
    return RefuseArguments(self, args, n, kwnames);
  }
  State* s = Open(self);
  if (s == nullptr) return nullptr;
  if (!PyUnicode_Check(given[0])) {
    PyErr_Format(PyExc_TypeError, "topic must be str, not %s",
                 Py_TYPE(given[0])->tp_name);
    return nullptr;
  }
  if (given[5] != nullptr && given[5] != Py_None && !PyUnicode_Check(given[5])) {
    PyErr_SetString(PyExc_TypeError, "id must be str");
    return nullptr;
  }
  Owned owned;
  std::string_view topic, value, key, ordering_key, id;
  client::Message message;
  if (!BytesOf(given[0], &topic, "topic", &owned) ||
      !BytesOf(given[1], &value, "value", &owned) ||
      !BytesOf(given[2], &key, "key", &owned) ||
      !HeadersOf(given[3], &message.headers, &owned) ||
      !BytesOf(given[4], &ordering_key, "ordering_key", &owned) ||
      !BytesOf(given[5], &id, "id", &owned)) {
    return nullptr;
  }
  if (given[6] != nullptr && given[6] != Py_None && !TimestampOf(given[6], &message))
    return nullptr;
  message.key = key;
  message.value = value;
  message.ordering_key = ordering_key;
  message.id = id;
  PyObject* callback = given[7] != nullptr && given[7] != Py_None ? given[7] : nullptr;
  PyObject* future = nullptr;
  if (callback == nullptr) {
    if ((future = NewFuture(s)) == nullptr) return nullptr;
    owned.refs.push_back(future);  // ours, returned below (released if the SDK throws)
  }
  // This reference goes with the result (the SDK's callback).
  PyObject* target = Py_NewRef(callback != nullptr ? callback : future);
  client::Publisher::Callback done =
      callback != nullptr
          ? client::Publisher::Callback(Done<true>{s->delivery.get(), target})
          : client::Publisher::Callback(Done<false>{s->delivery.get(), target});
  std::string topic_copy(topic);
  std::optional<client::PublishResult> failed_at_once;
  {
    InCall in_call(s);
    client::Publisher* publisher = s->publisher.get();
    WithoutGil([&] {
      InlineResult inline_to(&failed_at_once);
      publisher->Publish(std::move(topic_copy), std::move(message), std::move(done));
    });
  }
  if (failed_at_once) {
    Py_DECREF(target);
    bool failed;
    return Raise(Convert(*failed_at_once, &failed));
  }
  if (callback != nullptr) Py_RETURN_NONE;
  return Py_NewRef(future);
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
  Owned owned;
  std::string_view topic;
  if (!BytesOf(given[0], &topic, "topic", &owned)) return nullptr;
  // A tuple of its own: the caller's list may change while the GIL is released.
  PyObject* items = PySequence_Tuple(given[1]);
  if (items == nullptr) return nullptr;
  owned.refs.push_back(items);
  const Py_ssize_t count = PyTuple_GET_SIZE(items);
  std::vector<client::MessageView> views(static_cast<std::size_t>(count));
  std::vector<std::vector<client::Header>> headers(static_cast<std::size_t>(count));
  std::size_t bytes = 0;  // as the SDK counts them against max_outstanding_bytes
  for (Py_ssize_t i = 0; i < count; ++i) {
    auto k = static_cast<std::size_t>(i);
    if (!ViewOf(PyTuple_GET_ITEM(items, i), &views[k], &headers[k], &owned))
      return nullptr;
    views[k].headers = headers[k];
    bytes += views[k].key.size() + views[k].value.size() + views[k].ordering_key.size();
    for (const client::Header& h : headers[k]) bytes += h.key.size() + h.value.size();
  }
  if (bytes > s->max_outstanding_bytes) {  // never fits: as the pure path, at once
    std::string text = "publish_many call of " + std::to_string(bytes) +
                       " bytes exceeds max_outstanding_bytes " +
                       std::to_string(s->max_outstanding_bytes);
    return Raise(ErrorOf(kInvalidArgument, text, false));
  }
  PyObject* future = NewFuture(s);
  if (future == nullptr) return nullptr;
  owned.refs.push_back(future);  // ours, returned below
  PyObject* target = Py_NewRef(future);
  Delivery* d = s->delivery.get();
  auto done = [d, target](client::PublishManyResult r) {
    d->PushMany({target, std::move(r)});
  };
  {
    InCall in_call(s);
    client::Publisher* publisher = s->publisher.get();
    // `owned` keeps the viewed bytes alive until PublishMany returned.
    WithoutGil([&] { publisher->PublishMany(topic, views, done); });
  }
  return Py_NewRef(future);
}

PyObject* Flush(PyObject* self, PyObject* arg) {
  State* s = Open(self);
  if (s == nullptr) return nullptr;
  if (OnDeliveryThread(s)) {
    PyErr_SetString(PyExc_RuntimeError,
                    "ferry: flush from this publisher's callback would wait for itself");
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
  InCall in_call(s);
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

PyObject* Close(PyObject* self, PyObject*) {
  State* s = reinterpret_cast<PublisherObject*>(self)->state;
  if (InForkedChild()) Py_RETURN_NONE;
  if (OnDeliveryThread(s)) {
    PyErr_SetString(PyExc_RuntimeError,
                    "ferry: close from this publisher's callback would wait for itself");
    return nullptr;
  }
  if (s->closed) {  // another thread's close may still be ending it
    WaitShut(s);
    Py_RETURN_NONE;
  }
  s->closed = true;
  WithoutGil([s] { Shut(s); });
  Py_RETURN_NONE;
}

PyObject* Stats(PyObject* self, PyObject*) {
  State* s = reinterpret_cast<PublisherObject*>(self)->state;
  if (InForkedChild()) {
    PyErr_SetString(PyExc_RuntimeError,
                    "ferry: this publisher belongs to the parent process");
    return nullptr;
  }
  if (s->closed) WaitShut(s);
  client::PublisherStats st = s->closed ? s->final_stats : s->publisher->Stats();
  return Py_BuildValue(
      "(LLOOLdid)", static_cast<long long>(st.ferry_messages),
      static_cast<long long>(st.direct_messages), st.fallback_active ? Py_True : Py_False,
      st.config_fetched ? Py_True : Py_False, static_cast<long long>(st.node_batches),
      st.linger.count() / 1e3, st.max_batch_messages, st.delivery_timeout.count() / 1e3);
}

PyObject* DeliveryThread(PyObject* self, PyObject*) {
  State* s = reinterpret_cast<PublisherObject*>(self)->state;
  static_assert(sizeof(std::thread::native_handle_type) <= sizeof(unsigned long));
  // pthread_self(), which threading.get_ident() returns there.
  return PyLong_FromUnsignedLong(static_cast<unsigned long>(s->thread.native_handle()));
}

// An unclosed publisher let go: flushed for close_timeout, then ended. On its
// own delivery thread (released in its callback, or collected there) that
// runs on a thread of its own, which cannot join the thread it runs on;
// join_detached waits for it at exit.
void PublisherDealloc(PyObject* self) {
  State* s = reinterpret_cast<PublisherObject*>(self)->state;
  if (s != nullptr && !InForkedChild()) {  // in a forked child: left alone
    Py_CLEAR(s->future_type);
    auto end = [s] {
      if (!s->closed) {
        s->closed = true;
        s->publisher->Flush(s->close_timeout);
        Shut(s);
      }
      delete s;
    };
    if (!OnDeliveryThread(s)) {
      WithoutGil(end);
    } else {
      try {
        Detach(end);
      } catch (const std::exception&) {
        // No thread to be had: left running rather than joined from itself.
      }
    }
  }
  PyTypeObject* type = Py_TYPE(self);
  type->tp_free(self);
  Py_DECREF(type);
}

PyMethodDef publisher_methods[] = {
    {"publish", AsMethod(Safe<Publish>), METH_FASTCALL | METH_KEYWORDS,
     "publish($self, /, topic, value, key=None, headers=None, ordering_key=None, "
     "id=None, "
     "timestamp=None, callback=None)\n--\n\n"
     "Queues one message; a concurrent.futures.Future of its PublishResult, or None "
     "with callback (see ferry.Publisher.publish)."},
    {"publish_many", AsMethod(Safe<PublishMany>), METH_FASTCALL | METH_KEYWORDS,
     "publish_many($self, /, topic, messages)\n--\n\n"
     "A concurrent.futures.Future of a list of outcomes (see "
     "ferry.Publisher.publish_many)."},
    {"flush", AsMethod(Safe<Flush>), METH_O, "flush(timeout) -> bool"},
    {"close", AsMethod(Safe<Close>), METH_NOARGS,
     "Fails what is outstanding (flush first), then ends."},
    {"stats", AsMethod(Safe<Stats>), METH_NOARGS,
     "(ferry_messages, direct_messages, fallback_active, config_fetched, node_batches, "
     "linger, max_batch_messages, delivery_timeout)"},
    {"delivery_thread", AsMethod(Safe<DeliveryThread>), METH_NOARGS,
     "The threading.get_ident() of the thread completing this publisher's futures."},
    {nullptr, nullptr, 0, nullptr}};

PyType_Slot publisher_slots[] = {
    {Py_tp_new, reinterpret_cast<void*>(Safe<PublisherNew>)},
    {Py_tp_dealloc, reinterpret_cast<void*>(PublisherDealloc)},
    {Py_tp_methods, publisher_methods},
    {Py_tp_doc, const_cast<char*>("The C++ SDK's publisher (see ferry.Publisher).")},
    {0, nullptr}};
PyType_Spec publisher_spec = {"ferry._native.Publisher", sizeof(PublisherObject), 0,
                              Py_TPFLAGS_DEFAULT, publisher_slots};

}  // namespace

PyObject* SetPublishHooks(PyObject*, PyObject* const* args, Py_ssize_t n) {
  if (n != 4) {
    PyErr_SetString(PyExc_TypeError,
                    "set_publish_hooks(make_result, make_error, report, "
                    "refuse_publish_arguments)");
    return nullptr;
  }
  if (!PyType_Check(args[0]) ||
      !PyType_IsSubtype(reinterpret_cast<PyTypeObject*>(args[0]), &PyTuple_Type)) {
    PyErr_SetString(PyExc_TypeError, "make_result must be a tuple subclass");
    return nullptr;
  }
  Py_XSETREF(make_result, Py_NewRef(args[0]));
  Py_XSETREF(make_error, Py_NewRef(args[1]));
  Py_XSETREF(report_raised, Py_NewRef(args[2]));
  Py_XSETREF(refuse_publish_arguments, Py_NewRef(args[3]));
  Py_RETURN_NONE;
}

bool AddPublisherType(PyObject* module) {
  set_result_name = PyUnicode_InternFromString("set_result");
  set_exception_name = PyUnicode_InternFromString("set_exception");
  if (set_result_name == nullptr || set_exception_name == nullptr ||
      !LoadPublishInputTypes()) {
    return false;
  }
  return AddType(module, &publisher_spec, &NativeTypes().publisher, "Publisher");
}

}  // namespace ferry::python
