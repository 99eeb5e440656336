"""A training run in its own thread: the one object that owns a run's life.

It holds the model's turn (:data:`~ppo_demo.ui.model_gate.MODEL_GATE`) from the moment it is
built until its thread ends, releases the policy runtime, and is how a step reaches the screen
(:meth:`TrainingJob.next_event`).

Why a thread of our own rather than iterating the trainer inside Gradio's generator: Gradio
runs each ``next()`` of a generator on a worker thread and may simply stop asking for more
(client gone, event cancelled) without closing it. A run owned by a thread always ends in a
known way: after the last step, on Stop, on an error, or when nobody has read its progress
for ``abandon_after`` seconds. Whatever the ending, it stores the last good adapter in the
session, releases the runtime and hands the model's turn back.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass

from ..trainer import PPOTrainer, StepResult, TrainingError
from .errors import unexpected_error_text
from .model_gate import MODEL_GATE
from .session import Session


@dataclass
class JobEvent:
    kind: str  # "step" | "error" | "end"
    step: StepResult | None = None
    message: str = ""


class TrainingJob:
    """Runs ``trainer.train(steps)`` for ``session``. The caller must already hold the model's
    turn (``MODEL_GATE.acquire``); the job hands it back when its thread ends."""

    def __init__(self, session: Session, trainer: PPOTrainer, steps: int, abandon_after: float = 90.0):
        self.session = session
        self.trainer = trainer
        self.steps = steps
        self.abandon_after = abandon_after
        self.events: queue.Queue[JobEvent] = queue.Queue()
        self.last_read = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"train-{session.session_id[:8]}", daemon=True)

    def start(self) -> "TrainingJob":
        self._thread.start()
        return self

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def next_event(self, timeout: float = 0.25) -> JobEvent | None:
        """What happened since the last call, or None; reading proves someone is watching."""
        self.last_read = time.monotonic()
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            return None

    def _commit(self, result: StepResult | None) -> None:
        """Copy the trained tensors and the step's metrics into the session together, so the
        adapter and the plots never disagree about how far training got."""
        session = self.session
        session.policy_state = self.trainer.state()
        session.model_name = self.trainer.loaded.name
        session.tasks = list(self.trainer.tasks)
        if result is not None:
            session.history.append(dict(result.metrics))
            session.last_rollouts = result.rollouts

    def _run(self) -> None:
        stop = self.session.stop_event
        # Full fine-tuning copies every weight to the CPU; do that once at the end, not per step.
        snapshot_each_step = self.trainer.config.mode == "lora"
        pending: StepResult | None = None
        try:
            for result in self.trainer.train(self.steps, stop):
                if snapshot_each_step:
                    self._commit(result)
                else:
                    self.session.history.append(dict(result.metrics))
                    self.session.last_rollouts = result.rollouts
                    pending = result
                self.events.put(JobEvent("step", result))
                if time.monotonic() - self.last_read > self.abandon_after:
                    stop.set()  # nobody is watching (tab closed without an unload event)
        except TrainingError as exc:
            self.events.put(JobEvent("error", message=str(exc)))
        except Exception as exc:  # a failing step ends the run, never the app
            self.events.put(JobEvent("error", message=f"The run stopped after an error in a step "
                                     f"({unexpected_error_text(exc)}). The adapter keeps its last good weights."))
        finally:
            try:
                if not snapshot_each_step and pending is not None:
                    self._commit(None)
                self.trainer.runtime.release()
            finally:
                MODEL_GATE.release()
                self.events.put(JobEvent("end"))
