"""Keeping freed memory for reuse, so a batch's large NumPy temporaries are not faulted in anew.

glibc's malloc returns freed memory at the top of a heap to the system once more than its trim
threshold is free, and serves allocations above its mmap threshold with fresh mappings. Both
thresholds adapt as the process runs, and explaining a 1,000-applicant batch (temporaries of
0.1 to 1 MB, on two threads with heaps of their own) could leave them where every batch gave its
memory back and faulted it in again: ~2,800 page faults per batch, a millisecond and more of
kernel time. Fixed thresholds keep that memory mapped.
"""

from __future__ import annotations

import ctypes
import logging

logger = logging.getLogger("loanrisk.memory")

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# glibc refuses an mmap threshold above half its heap size: 32 MB on 64-bit systems.
MAX_MMAP_THRESHOLD = 32 * 1024 * 1024
MAX_C_INT = 2**31 - 1


def keep_freed_memory(megabytes: int) -> bool:
    """Have the C library keep up to ``megabytes`` of freed memory for reuse and serve
    allocations below 32 MB (or ``megabytes``) from its heaps. Returns whether it applied: only
    glibc has these settings; 0 leaves the library's adaptive defaults. Per process: each
    uvicorn worker keeps its own."""
    if megabytes <= 0:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process runs on
    except (OSError, AttributeError, TypeError):  # TypeError: Windows has no CDLL(None)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt takes a C int: a larger value would be cut to 0 (trim after every free).
    size = min(megabytes * 1024 * 1024, MAX_C_INT)
    took_trim = mallopt(M_TRIM_THRESHOLD, size) == 1
    took_mmap = mallopt(M_MMAP_THRESHOLD, min(size, MAX_MMAP_THRESHOLD)) == 1
    if not (took_trim and took_mmap):
        logger.info(
            "the C library took %s of the malloc thresholds (trim %s, mmap %s)",
            "some" if took_trim or took_mmap else "none",
            took_trim,
            took_mmap,
        )
    return took_trim and took_mmap
