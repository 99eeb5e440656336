"""Twenty train / stop / reset / close cycles in one process must not grow memory or leave
sessions, threads or temp folders behind (handlers on tiny-random).

Run: .venv/bin/python -m pytest tests/test_leaks.py -q -s   (-s prints the RSS numbers)
"""

from __future__ import annotations

import gc
import threading

import psutil
import pytest

from ppo_demo.cpu_tuning import release_freed_memory
from ppo_demo.ui import handlers as h
from ppo_demo.ui.model_gate import MODEL_GATE
from ppo_demo.ui.session import ModelRegistry, SessionStore
from test_ui_handlers import LIMITS, TINY, knobs
from gate_probe import gate_is_free

CYCLES = 20
MEASURE_AT = (5, 20)
TOLERANCE_MB = 30.0  # growth allowed between cycle 5 and cycle 20
TASKS = [["Say yes.", "yes"], ["Say no.", "no"]]


def rss_mb() -> float:
    gc.collect()
    release_freed_memory()  # freed heap pages back to the OS: RSS reflects live memory, not fragmentation
    return psutil.Process().memory_info().rss / 2**20


def one_cycle(store: SessionStore, registry: ModelRegistry, i: int) -> None:
    sid = f"leak-tab-{i}"
    session = store.get(sid)
    steps = 1 + i % 2
    gen = h.train(session, TINY, knobs(steps=steps), TASKS, "contains", 0.002, registry=registry, limits=LIMITS)
    views = []
    for view in gen:
        views.append(view)
        if steps == 2 and view.status.startswith("Step 1/"):
            h.stop(session)  # every other cycle stops after the first step
    assert views[-1].finished and views[-1].error is None
    assert session.policy_state is not None and 1 <= len(session.history) <= 2
    h.download_tasks(session, TASKS, LIMITS)  # creates the session's temp folder
    files_dir = session.files_dir()
    h.reset(session)
    assert session.policy_state is None and session.history == []
    job = session.job
    store.close(sid)
    job.join(30)
    assert sid not in store
    assert not files_dir.exists()
    assert gate_is_free(MODEL_GATE)


def test_repeated_cycles_do_not_leak(capsys):
    registry, store = ModelRegistry(), SessionStore()
    registry.get(TINY)
    threads_before = threading.active_count()
    measured = {}
    for i in range(1, CYCLES + 1):
        one_cycle(store, registry, i)
        if i in MEASURE_AT:
            measured[i] = rss_mb()
    growth = measured[20] - measured[5]
    with capsys.disabled():
        print(f"\nRSS after gc: cycle 5 = {measured[5]:.1f} MB, cycle 20 = {measured[20]:.1f} MB, "
              f"growth = {growth:+.1f} MB (tolerance {TOLERANCE_MB} MB)")
    assert growth < TOLERANCE_MB, f"RSS grew {growth:.1f} MB over 15 cycles"
    assert len(store) == 0, "closed sessions were left in the store"
    assert threading.active_count() <= threads_before, "training threads were left running"
