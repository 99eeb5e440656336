"""Model jobs as ZeroGPU functions: ``@spaces.GPU`` when the ``spaces`` package is importable.

On a ZeroGPU Space a function decorated with ``@spaces.GPU`` runs in a forked worker process
that holds a GPU for the call. Its arguments and every value it yields cross the process
boundary by pickling, and whatever it changes in module globals stays in the worker. Elsewhere
(``spaces`` absent, or present but not on ZeroGPU) the decorator returns the function unchanged.

So a model job here is written as a pure generator: it takes the session's state as an
argument (CPU tensors, picklable) and yields it back with every step; the caller, in the
main process, stores what it receives in the session. Nothing the job changes on the shared
model or in globals is needed after it returns.
"""

from __future__ import annotations

import importlib.util
import os

# Longest GPU time asked for per call (seconds). The app calls train_steps once per PPO step
# (one turn at the model, see ui/run_jobs.py), so this bounds one step, not a whole run. ZeroGPU
# queues shorter requests first and cuts a call at its duration (that step is then lost, the
# state before it kept).
TRAIN_DURATION = int(os.environ.get("PPO_DEMO_GPU_SECONDS", "120"))
SHORT_DURATION = 60


def spaces_available() -> bool:
    return importlib.util.find_spec("spaces") is not None


def gpu_job(duration: int = SHORT_DURATION):
    """Decorator: ``spaces.GPU(duration=...)`` if ``spaces`` is installed, else the identity."""
    def decorate(fn):
        if not spaces_available():
            return fn
        import spaces

        return spaces.GPU(duration=duration)(fn)
    return decorate


def on_zerogpu() -> bool:
    """Is this process a ZeroGPU Space's main process (where @spaces.GPU forks a worker)?"""
    if not spaces_available():
        return False
    from spaces.config import Config

    return bool(Config.zero_gpu)
