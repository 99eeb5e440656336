"""Turns on the shared model: one job at a time, first come first served, one step per turn.

A job changes the shared model in place (injecting adapters, loading a session's tensors), so
two jobs must never overlap: every job that touches the model (a training step, a Compare, an
Evaluate, an adapter's trial load) holds a turn here, and only the holder may change or run the
model. Turns are granted strictly in the order they were asked for (FIFO). A training run takes
one turn per PPO step and asks again after each, so it queues behind everybody who arrived
meanwhile: runs of different sessions alternate step by step (round-robin) and a Compare waits
for at most the step in progress plus one step of each run queued before it, never for whole
runs. The gate (not Gradio's concurrency limit) is what keeps jobs apart: a cancelled Gradio task
can leave its worker thread running, and that thread still waits for its turn.

A waiting job can see how many are ahead of it (``Ticket.ahead``) to tell its user, and gives
up its place (``Ticket.release``) when its user leaves.
"""

from __future__ import annotations

import threading
from collections import deque
from contextlib import contextmanager
from typing import Callable, Iterator


class Ticket:
    """A place in the queue for the model; the turn is this ticket's once ``wait`` returns True."""

    def __init__(self, turns: "ModelGate", owner: str):
        self._turns = turns
        self.owner = owner
        self.holding = False
        self.released = False

    @property
    def ahead(self) -> int:
        """Jobs before this one: the holder of the turn plus those queued earlier (0 = my turn)."""
        return self._turns._ahead(self)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until it is this ticket's turn (True) or ``timeout`` seconds pass (False)."""
        return self._turns._wait(self, timeout)

    def release(self) -> None:
        """End the turn, or leave the queue if the turn never came. Idempotent."""
        self._turns._release(self)

    def __enter__(self) -> "Ticket":
        self.wait()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


class ModelGate:
    """The queue for the shared model (one per process: :data:`MODEL_GATE`)."""

    def __init__(self):
        self._cond = threading.Condition()
        self._queue: deque[Ticket] = deque()  # waiting tickets, oldest first
        self._holder: Ticket | None = None

    def request(self, owner: str = "") -> Ticket:  # owner: the session id, for messages
        """Join the queue. The caller must eventually ``release`` the ticket (or use ``with``)."""
        ticket = Ticket(self, owner)
        with self._cond:
            self._queue.append(ticket)
            self._grant()
        return ticket

    @contextmanager
    def turn(self, owner: str = "", on_wait: Callable[[int], None] | None = None,
             poll: float = 0.25) -> Iterator[Ticket]:
        """Hold a turn for the ``with`` block. While waiting, ``on_wait(ahead)`` is called every
        ``poll`` seconds (e.g. to show "2 ahead of you"); an exception from it gives up the place."""
        ticket = self.request(owner)
        try:
            while not ticket.wait(poll):
                if on_wait is not None:
                    on_wait(ticket.ahead)
            yield ticket
        finally:
            ticket.release()

    def waiting(self) -> int:
        """Jobs queued behind the current holder."""
        with self._cond:
            return len(self._queue)

    # --- the queue itself (all under self._cond) ------------------------------------------------
    def _grant(self) -> None:
        if self._holder is None and self._queue:
            self._holder = self._queue.popleft()
            self._holder.holding = True
            self._cond.notify_all()

    def _ahead(self, ticket: Ticket) -> int:
        with self._cond:
            if ticket.holding or ticket.released:
                return 0
            try:
                return self._queue.index(ticket) + (self._holder is not None)
            except ValueError:
                return 0

    def _wait(self, ticket: Ticket, timeout: float | None) -> bool:
        with self._cond:
            if ticket.released:
                raise RuntimeError("This ticket was released; request a new one.")
            return self._cond.wait_for(lambda: ticket.holding, timeout)

    def _release(self, ticket: Ticket) -> None:
        with self._cond:
            if ticket.released:
                return
            ticket.released = True
            if ticket.holding:
                ticket.holding = False
                self._holder = None
            else:
                try:
                    self._queue.remove(ticket)
                except ValueError:
                    pass
            self._grant()
            self._cond.notify_all()


MODEL_GATE = ModelGate()
