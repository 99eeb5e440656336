"""Process-wide settings that make CPU training several times faster, applied once.

Why: a grad-enabled forward keeps every activation alive for the backward pass, so each step
allocates hundreds of multi-megabyte tensors. glibc serves those with fresh ``mmap`` pages and
hands them back on ``free``; re-faulting the pages cost about half the time of a step (measured
on 2 cores: forward+backward of SmolLM2-135M on 8x83 tokens, 5.3 s before, 2.6 s after).
Keeping freed memory in the heap (high trim threshold, top pad, the largest mmap threshold
glibc accepts) removes the page faults. Nothing changes numerically.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

import torch

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
_applied = False


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _glibc():
    """glibc loaded through ctypes, or None (not Linux, or musl or another libc)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def tune_glibc_malloc() -> bool:
    """Ask glibc to keep freed memory for reuse. Returns False where it does not apply."""
    libc = _glibc()
    if libc is None:
        return False
    ok = libc.mallopt(_M_MMAP_THRESHOLD, 32 * 1024 * 1024)  # glibc's maximum on 64-bit
    ok &= libc.mallopt(_M_TRIM_THRESHOLD, 1024 * 1024 * 1024)
    ok &= libc.mallopt(_M_TOP_PAD, 64 * 1024 * 1024)
    return bool(ok)


def release_freed_memory() -> bool:
    """Hand the heap's free memory back to the OS (glibc ``malloc_trim``). Why: with the
    settings above, half a gigabyte freed after one phase (the packed weights of a sampling
    call) would stay resident while the next phase (the update) allocates elsewhere, and the
    two would add up in the peak. Returns False where it does not apply."""
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False


def configure_cpu_runtime() -> None:
    """Apply the settings once per process (idempotent); no-op for the allocator off Linux."""
    global _applied
    if _applied:
        return
    _applied = True
    if os.environ.get("PPO_DEMO_NO_MALLOC_TUNING") != "1":
        tune_glibc_malloc()
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(usable_cpus())
