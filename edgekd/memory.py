"""Handing freed memory back to the operating system after a build.

A build allocates and frees a lot (training batches, teacher logits, conversion graphs, onnxruntime sessions).
glibc's allocator keeps freed heap pages mapped for reuse, so a process that runs builds one after another (a
release pipeline calling ``edgekd.build``) shows a resident size that swings by hundreds of MB from build to build
with no live object behind it: benchmarks/soak.py measured 816-1170 MB after fresh default builds whose live memory
(resident size after ``malloc_trim``) stayed at 750-754 MB. ``release_free_memory`` runs the garbage collector
and ``malloc_trim(0)``; elsewhere than glibc it only collects.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys
from functools import lru_cache


@lru_cache(maxsize=1)
def _malloc_trim():
    """glibc's ``malloc_trim``, or None (macOS, Windows, musl: no such call, or nothing to gain)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def release_free_memory() -> bool:
    """Collect garbage and return free heap pages to the OS; True when the allocator could be asked to."""
    gc.collect()
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
