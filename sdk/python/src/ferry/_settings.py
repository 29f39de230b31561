"""The thread that keeps ``ferry.Publisher`` (without fallback, whose probe
does it) on the settings the operator pushes through the nodes.

The decisions (when to fetch, what to log) are
:class:`ferry._client_config.ConfigSchedule`'s; this adds one thread and the
calls. Its lock is never held across a call nor while ``apply`` runs, so
``apply`` may take the publisher's lock, and the publisher may tell it of a
reconnect under its own.
"""
import logging
import threading
import time

import grpc

from ferry._client_config import NO_ANSWER, ConfigSchedule
from ferry.v1 import admin_pb2, admin_pb2_grpc

log = logging.getLogger("ferry")

#: Deadline of one GetClientConfig call.
FETCH_TIMEOUT = 5.0


class SettingsFollower:
    def __init__(self, channels, client_id, apply, schedule=None):
        """``apply(PushedSettings)`` runs on the follower's thread with each
        configuration a node hands out."""
        self._admin = [admin_pb2_grpc.AdminStub(c) for c in channels]
        self._request = admin_pb2.GetClientConfigRequest(client_id=client_id or "")
        self._apply = apply
        self._schedule = schedule or ConfigSchedule()
        self._cond = threading.Condition()
        self._stopping = False
        self.fetched = False
        self._thread = threading.Thread(target=self._run, name="ferry-settings", daemon=True)
        self._thread.start()

    def reconnected(self) -> None:
        """A node answered the publisher after a call to it had failed."""
        with self._cond:
            self._schedule.reconnected(time.monotonic())
            self._cond.notify_all()

    def close(self) -> None:
        """Stops the thread (a fetch in flight ends within its deadline)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self):
        while True:
            with self._cond:
                while not self._stopping and not self._schedule.due(time.monotonic()):
                    self._cond.wait(self._schedule.wait(time.monotonic()))
                if self._stopping:
                    return
            self._round()

    def _round(self):
        """Asks the nodes in turn until one answers."""
        for stub in self._admin:
            try:
                response = stub.GetClientConfig(self._request, timeout=FETCH_TIMEOUT)
            except grpc.RpcError as e:
                with self._cond:
                    warning = self._schedule.failed(e.code(), e.details(), time.monotonic())
                if warning:
                    log.warning("%s", warning)
                if e.code() in NO_ANSWER:
                    continue
                return
            with self._cond:
                config = self._schedule.answered(response, time.monotonic())
            self.fetched = True
            self._apply(config.settings)
            return
