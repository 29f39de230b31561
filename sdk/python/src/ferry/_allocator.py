"""An explicit, process-wide opt-in for fast consumers on glibc.

gRPC (1.51) reads each Subscribe response into fresh 64 KiB buffers on its
poller thread; once a response's messages are done they are freed, glibc
hands the freed top of that thread's arena back to the kernel (madvise), and
the next response's reads fault the same pages in again. No gRPC channel
argument changes those buffers, so the only lever is glibc's, and it holds
for the whole process: the SDK never sets it unless asked.
"""
import ctypes
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_MAX = 32 << 20  # glibc refuses more on 64-bit


def keep_freed_memory(trim_threshold: int = 256 << 20, mmap_threshold: int = 16 << 20) -> bool:
    """Tell glibc's malloc, for the whole process, to keep up to
    ``trim_threshold`` bytes of freed memory per arena instead of returning
    it to the kernel, and to serve blocks below ``mmap_threshold`` from its
    arenas (both are set: the trim threshold alone turns off glibc's adaptive
    mmap threshold, and other large buffers would then be mapped and faulted
    in each time). The same as ``GLIBC_TUNABLES=glibc.malloc.trim_threshold=
    ...:glibc.malloc.mmap_threshold=...`` at start, but callable at run time.

    Cuts a heavy consumer's page faults (~0.1-0.2 to ~0.005 per 1 KiB
    message) and about a third of ``receive_batch``'s CPU per message
    (bench/RESULTS.md, branch ``pyconsume``), for up to ``trim_threshold``
    more memory held per arena. Returns False (and changes nothing) where
    the C library is not glibc."""
    if not 0 < trim_threshold < 2**31:
        raise ValueError("trim_threshold: 1 byte to 2 GiB - 1")
    if not 0 < mmap_threshold <= _MMAP_THRESHOLD_MAX:
        raise ValueError("mmap_threshold: 1 byte to 32 MiB (glibc's limit)")
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None)
    if not hasattr(libc, "gnu_get_libc_version"):  # musl and others: no mallopt of glibc's
        return False
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and \
        bool(libc.mallopt(_M_TRIM_THRESHOLD, trim_threshold))
