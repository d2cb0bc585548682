"""The C allocator's settings for the long-running agent: large buffers are always mapped
and returned to the system when freed. Process-wide, set once from `cli` (cvsync run).

glibc serves an allocation of at least M_MMAP_THRESHOLD bytes (128 KiB at start) with its
own mapping, unmapped on free. But each time such a buffer is freed, glibc raises the
threshold to its size (up to 32 MiB): after one broken commit of a megabyte, every later
large buffer (a file read from git, a long YAML scalar, a status document) comes from the
heap instead, whose freed holes are rarely returned. The Python heap stayed flat while RSS
crept (bench/soak.py: glibc's free heap grew from 7 to 11 MB and RSS by 13 MB in 4 minutes
of drift and broken commits); with the threshold fixed, the free heap stays under 1 MB.
Setting the threshold explicitly also turns glibc's adjustment off (mallopt(3)).
"""

from __future__ import annotations

import ctypes
import os
import platform

M_MMAP_THRESHOLD = -3  # from glibc's <malloc.h>
MMAP_THRESHOLD = 128 * 1024  # glibc's own starting value, kept
_ENVIRONMENT = "MALLOC_MMAP_THRESHOLD_"  # glibc's variable for the same setting


def keep_large_buffers_out_of_the_heap() -> bool:
    """Fix glibc's mmap threshold at 128 KiB; True when set. Nothing is changed on another C
    library, or when the environment already sets the threshold (the operator's choice)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    if _ENVIRONMENT in os.environ:
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
