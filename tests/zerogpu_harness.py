"""Run a generator the way ZeroGPU runs a ``@spaces.GPU`` generator function, on CPU.

spaces 0.51 (``spaces/zero/wrappers.py``) forks a worker (multiprocessing 'fork'), sends it
the pickled arguments, and the worker sends back every yielded value pickled; an exception
comes back as its type and traceback; closing the generator in the caller sets the worker's
stop event, which ends the job between two yields. Anything the worker changes in globals
stays in the worker. This harness does the same with a fresh fork per call.
"""

from __future__ import annotations

import multiprocessing
import pickle
import traceback


def _worker(fn, arg_queue, res_queue, stop_event):
    import torch

    torch.set_num_threads(1)  # a forked child must not reuse the parent's OpenMP pool
    try:
        args, kwargs = pickle.loads(arg_queue.get())
        for value in fn(*args, **kwargs):
            res_queue.put(("ok", pickle.dumps(value)))  # a value that does not pickle fails here
            if stop_event.is_set():
                break
        res_queue.put(("end", None))
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the caller
        res_queue.put(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))


def run_forked(fn, *args, timeout: float = 600, **kwargs):
    """Yield what ``fn(*args, **kwargs)`` yields, computed in a forked child."""
    ctx = multiprocessing.get_context("fork")
    arg_queue, res_queue, stop_event = ctx.Queue(), ctx.Queue(), ctx.Event()
    payload = pickle.dumps((args, kwargs))  # the arguments must pickle, as on ZeroGPU
    process = ctx.Process(target=_worker, args=(fn, arg_queue, res_queue, stop_event), daemon=True)
    process.start()
    arg_queue.put(payload)
    try:
        while True:
            kind, value = res_queue.get(timeout=timeout)
            if kind == "ok":
                try:
                    yield pickle.loads(value)
                except GeneratorExit:
                    stop_event.set()
                    raise
            elif kind == "error":
                raise RuntimeError(f"the forked job failed: {value}")
            else:
                return
    finally:
        process.join(timeout=60)
        if process.is_alive():
            process.kill()
