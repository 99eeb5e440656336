"""A training run in its own thread: the one object that owns a run's life.

It holds the model's turn (:data:`~ppo_demo.ui.model_gate.MODEL_GATE`) from the moment it is
built until its thread ends, and is how a step reaches the screen
(:meth:`TrainingJob.next_event`). The model's work itself is :func:`model_jobs.train_steps`, a
pure generator (a ZeroGPU function on a ZeroGPU Space); this thread stores what it yields in
the session.

Why a thread of our own rather than iterating the trainer inside Gradio's generator: Gradio
runs each ``next()`` of a generator on a worker thread and may simply stop asking for more
(client gone, event cancelled) without closing it. A run owned by a thread always ends in a
known way: after the last step, on Stop, on an error, or when nobody has read its progress
for ``abandon_after`` seconds. Whatever the ending, it stores the last good adapter in the
session and hands the model's turn back.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable

from ..trainer import StepResult, TrainingError
from .errors import unexpected_error_text
from .model_gate import MODEL_GATE
from .model_jobs import TrainOutcome, TrainRequest, train_steps
from .session import Session
from .zerogpu import on_zerogpu


@dataclass
class JobEvent:
    kind: str  # "ready" | "setup_error" | "step" | "error" | "end"
    step: StepResult | None = None
    message: str = ""


class TrainingJob:
    """Runs ``train_steps(request)`` for ``session``. The caller must already hold the model's
    turn (``MODEL_GATE.acquire``); the job hands it back when its thread ends."""

    def __init__(self, session: Session, request: TrainRequest, abandon_after: float = 90.0,
                 on_ready: Callable[[], None] | None = None):
        self.session = session
        self.request = request
        self.on_ready = on_ready  # runs on this thread once set up, before the first step
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

    def _commit(self, outcome: TrainOutcome) -> None:
        """Store the trained tensors and the step's metrics together, so the adapter and the
        plots never disagree about how far training got."""
        session = self.session
        if outcome.state is not None:
            session.policy_state = outcome.state
            session.model_name = self.request.model
            session.tasks = list(self.request.tasks)
        if outcome.result is not None:
            session.history.append(dict(outcome.result.metrics))
            session.last_rollouts = outcome.result.rollouts

    def _run(self) -> None:
        stop = self.session.stop_event
        # Across processes (ZeroGPU) an Event does not travel: Stop closes the generator.
        cross_process = on_zerogpu()
        steps = train_steps(self.request, None if cross_process else stop)
        sink = _tracking_sink(self.request)
        try:
            for outcome in steps:
                if outcome.kind in ("ready", "setup_error"):
                    if outcome.kind == "ready" and self.on_ready is not None:
                        self.on_ready()
                    self.events.put(JobEvent(outcome.kind, message=outcome.message))
                    continue
                self._commit(outcome)
                if outcome.result is None:
                    continue  # the final snapshot of a full fine-tune
                if sink is not None:
                    sink.log(outcome.result.metrics)
                self.events.put(JobEvent("step", outcome.result))
                if time.monotonic() - self.last_read > self.abandon_after:
                    stop.set()  # nobody is watching (tab closed without an unload event)
                if cross_process and stop.is_set():
                    break
        except TrainingError as exc:
            self.events.put(JobEvent("error", message=str(exc)))
        except Exception as exc:  # a failing step ends the run, never the app
            self.events.put(JobEvent("error", message=f"The run stopped after an error in a step "
                                     f"({unexpected_error_text(exc)}). The adapter keeps its last good weights."))
        finally:
            try:
                steps.close()  # releases the policy runtime if the loop left early
                if sink is not None:
                    sink.finish()
            finally:
                MODEL_GATE.release()
                self.events.put(JobEvent("end"))


def _tracking_sink(request: TrainRequest):
    """A trackio run when the server opted in (PPO_DEMO_TRACKIO=PROJECT); never the tasks."""
    from ..tracking import TrackingError, TrackioSink, project_from_env

    project = project_from_env()
    if project is None:
        return None
    try:
        return TrackioSink(project, config={"model": request.model, **request.config.to_dict()})
    except TrackingError:
        return None
