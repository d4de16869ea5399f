"""Give freed memory back to the operating system while a long stream runs.

glibc serves big allocations with mmap until one is freed, then raises its threshold so
that later ones of that size come from the heap, where freeing rarely shrinks the process: a
stream that allocates and frees arrays of a few MiB per window (the data-quality report's key
sets) then grows its resident memory long after its live data stopped growing. Fixing the
threshold keeps such arrays in mmap, returned on free. Elsewhere than glibc this does nothing.
"""

import ctypes
import ctypes.util
import functools

M_MMAP_THRESHOLD = -3
"""mallopt's parameter number (glibc malloc.h)."""
MMAP_THRESHOLD_BYTES = 1 << 20


@functools.cache
def return_big_blocks_on_free() -> bool:
    """Fix glibc's mmap threshold at 1 MiB for this process; True when it took effect."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    except (OSError, AttributeError):
        return False
