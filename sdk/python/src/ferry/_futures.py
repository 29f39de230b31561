"""The futures ``publish`` and ``publish_many`` return, on both paths."""
import concurrent.futures
import threading


class PublishFuture(concurrent.futures.Future):
    """A concurrent.futures.Future whose ``result`` and ``exception`` raise
    RuntimeError, instead of waiting forever, when called while it is
    pending on the thread that completes it (in a publish callback or a done
    callback of the same publisher). Each publisher has its own subclass
    (``for_thread``) naming that thread."""

    _completer = None  # threading.get_ident() of the completing thread

    def result(self, timeout=None):
        self._refuse_self_wait()
        return super().result(timeout)

    def exception(self, timeout=None):
        self._refuse_self_wait()
        return super().exception(timeout)

    def _refuse_self_wait(self):
        if self._completer == threading.get_ident() and not self.done():
            raise RuntimeError("ferry: waiting in a publish callback for a pending future "
                               "of the same publisher would wait forever")


def for_thread(ident) -> type:
    """The PublishFuture subclass of one publisher, completed on ``ident``."""
    return type("PublishFuture", (PublishFuture,), {"_completer": ident})
