"""ferry.keep_freed_memory: glibc keeps freed memory only when the
application asks (process-wide, so each case runs in a child process)."""
import ctypes
import subprocess
import sys

import pytest

import ferry

# Frees a 4 MiB block and prints how much freed memory malloc's arenas keep.
FREED_KEPT = """
import ctypes, socket, sys
import ferry
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
if sys.argv[1] == "ask":
    assert ferry.keep_freed_memory() is True
else:  # a native subscriber made and closed: the SDK itself must not set it
    port = socket.socket(); port.bind(("127.0.0.1", 0))
    ferry.Subscriber(["127.0.0.1:%d" % port.getsockname()[1]], "g", ["t"]).close()
block = libc.malloc(4 << 20)
libc.free(block)
print(libc.mallinfo2().fordblks)
"""

glibc = pytest.mark.skipif(not hasattr(ctypes.CDLL(None), "mallinfo2"), reason="needs glibc >= 2.33")


def freed_bytes_kept(mode):
    out = subprocess.run([sys.executable, "-c", FREED_KEPT, mode], check=True,
                         capture_output=True, text=True, timeout=60)
    return int(out.stdout)


@glibc
def test_freed_memory_is_kept_only_when_the_application_asks():
    assert freed_bytes_kept("ask") >= 4 << 20
    assert freed_bytes_kept("sdk-alone") < 4 << 20


def test_thresholds_out_of_glibcs_range_are_refused():
    for bad in ({"trim_threshold": 0}, {"trim_threshold": 2**31},
                {"mmap_threshold": 0}, {"mmap_threshold": (32 << 20) + 1}):
        with pytest.raises(ValueError):
            ferry.keep_freed_memory(**bad)
