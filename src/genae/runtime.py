"""Process-wide settings that `genae` applies before any work (and benchmarks too).

- Subnormal floats flushed to zero on every thread (see genae.device.flush_denormals).
- glibc's malloc: a fixed mmap threshold of 4 MiB. By default glibc raises the threshold each
  time a large block is freed, so the 10–16 MB temporaries of importance sampling end up on the
  heap, which fragments and grows without bound over a long `genae eval` (docs/speed.md). With the
  threshold fixed, blocks above 4 MiB go back to the system when freed. Fixing it also stops glibc
  from raising the trim threshold with it, so that one is set to 64 MiB: the heap's top is not
  handed back and re-faulted at every training step.
"""

from __future__ import annotations

import ctypes
import ctypes.util

from genae.device import flush_denormals

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
MMAP_THRESHOLD_BYTES = 4 * 1024 * 1024
TRIM_THRESHOLD_BYTES = 64 * 1024 * 1024


def fix_malloc_mmap_threshold(nbytes: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Fix glibc's mmap threshold (no-op, returning False, where the C library is not glibc)."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, nbytes)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))


def configure_process() -> None:
    flush_denormals()
    fix_malloc_mmap_threshold()
