#!/usr/bin/env python3
"""What a handler thread's hand-off costs per call, alone (issue 18, the
callback API with ordering on the native path): CPU µs per call of a trivial
Python callback run
- by C threads that keep a thread state and take the GIL per call
  (PyEval_RestoreThread / call / PyEval_SaveThread), as the C++ SDK's
  HandlerPool threads would on the native path;
- by C threads calling a ctypes callback (PyGILState_Ensure makes a thread
  state per call when the thread keeps none);
- by Python threads taking chunks of 32 (or 1) from a queue.SimpleQueue, as
  the subscriber's handler threads do.
Hand-run, not CI; needs gcc and Python's headers.

    python3 bench/python_gil_handoff.py [CALLS]
"""
import ctypes
import os
import queue
import resource
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time

C_SOURCE = r"""
#include <Python.h>
#include <pthread.h>
typedef void (*callback_t)(void);
struct job { PyObject* callable; callback_t callback; long n; };
static void* kept(void* p) {  /* one thread state for the thread's life */
  struct job* j = p;
  PyGILState_STATE g = PyGILState_Ensure();
  PyThreadState* ts = PyEval_SaveThread();
  for (long i = 0; i < j->n; ++i) {
    PyEval_RestoreThread(ts);
    Py_XDECREF(PyObject_CallNoArgs(j->callable));
    ts = PyEval_SaveThread();
  }
  PyEval_RestoreThread(ts);
  PyGILState_Release(g);
  return NULL;
}
static void* foreign(void* p) {  /* ctypes takes the GIL per call */
  struct job* j = p;
  for (long i = 0; i < j->n; ++i) j->callback();
  return NULL;
}
static void run(void* (*body)(void*), struct job* j, int threads) {
  pthread_t t[64];
  Py_BEGIN_ALLOW_THREADS
  for (int i = 0; i < threads; ++i) pthread_create(&t[i], NULL, body, j);
  for (int i = 0; i < threads; ++i) pthread_join(t[i], NULL);
  Py_END_ALLOW_THREADS
}
void call_kept(PyObject* callable, int threads, long per_thread) {
  struct job j = {callable, NULL, per_thread};
  run(kept, &j, threads);
}
void call_foreign(callback_t callback, int threads, long per_thread) {
  struct job j = {NULL, callback, per_thread};
  run(foreign, &j, threads);
}
"""


def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def build(directory):
    source, library = os.path.join(directory, "handoff.c"), os.path.join(directory, "handoff.so")
    with open(source, "w") as f:
        f.write(C_SOURCE)
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-I", sysconfig.get_paths()["include"],
                    "-o", library, source, "-lpthread"], check=True)
    return ctypes.PyDLL(library)  # PyDLL: called with the GIL, which run() lets go


def main():
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else 200000
    count, lock = [0], threading.Lock()

    def handle():
        with lock:
            count[0] += 1

    with tempfile.TemporaryDirectory() as directory:
        lib = build(directory)
    callback_type = ctypes.CFUNCTYPE(None)
    foreign_callback = callback_type(handle)
    lib.call_kept.argtypes = [ctypes.py_object, ctypes.c_int, ctypes.c_long]
    lib.call_foreign.argtypes = [callback_type, ctypes.c_int, ctypes.c_long]

    def python_threads(threads, chunk):
        chunks = queue.SimpleQueue()

        def loop():
            while (items := chunks.get()) is not None:
                for _ in items:
                    handle()

        workers = [threading.Thread(target=loop) for _ in range(threads)]
        for worker in workers:
            worker.start()
        item = [0] * chunk
        for _ in range(calls // chunk):
            chunks.put(item)
        for _ in workers:
            chunks.put(None)
        for worker in workers:
            worker.join()

    forms = [
        ("C thread x1, kept thread state", lambda: lib.call_kept(handle, 1, calls)),
        ("C threads x4, kept thread state", lambda: lib.call_kept(handle, 4, calls // 4)),
        ("C thread x1, ctypes callback", lambda: lib.call_foreign(foreign_callback, 1, calls)),
        ("C threads x4, ctypes callback",
         lambda: lib.call_foreign(foreign_callback, 4, calls // 4)),
        ("Python threads x4, chunks of 32", lambda: python_threads(4, 32)),
        ("Python threads x4, chunks of 1", lambda: python_threads(4, 1)),
    ]
    for name, form in forms:
        count[0] = 0
        start_cpu, start = cpu(), time.monotonic()
        form()
        used, wall = cpu() - start_cpu, time.monotonic() - start
        print("%-34s %.2f µs CPU/call, %.2f µs wall/call (%d calls)" % (
            name, used / count[0] * 1e6, wall / count[0] * 1e6, count[0]))


if __name__ == "__main__":
    main()
