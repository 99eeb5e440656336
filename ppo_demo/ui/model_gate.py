"""Turns on the shared model: the one place a model job waits for it and hands it back.

A job changes the shared model in place (injecting adapters, loading a session's tensors), so
two jobs must never overlap. Today a turn lasts a whole job (a training run, one Compare, one
evaluation, an adapter's trial load) and the gate is a single lock. Gradio's shared concurrency
limit already queues the model events, but a cancelled Gradio task can leave its worker thread
running, and the gate is what keeps that thread and the next job apart.

A scheduler that gives the model back between training steps (fair turns between sessions)
replaces this class behind the same four calls: ``acquire``, ``release``, ``turn``, ``busy``.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager


class ModelGate:
    """One holder at a time. ``acquire`` and ``release`` may happen on different threads (a
    training job is started by the request's thread and ends on its own)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.holder: str | None = None  # the session id of the job holding the model, for messages

    def acquire(self, session_id: str, timeout: float = -1) -> bool:
        """Wait up to ``timeout`` seconds (-1: for ever) for the model; True once it is ours."""
        if not self._lock.acquire(timeout=timeout):
            return False
        self.holder = session_id
        return True

    def release(self) -> None:
        self.holder = None
        self._lock.release()

    @contextmanager
    def turn(self, session_id: str):
        """``with MODEL_GATE.turn(session_id): ...``: the model is ours for the block."""
        self.acquire(session_id)
        try:
            yield
        finally:
            self.release()

    def busy(self) -> bool:
        return self._lock.locked()


MODEL_GATE = ModelGate()
