"""A training run in its own thread: the one object that owns a run's life.

The run takes the shared model one PPO step at a time. For each step it waits for a turn at
:data:`~ppo_demo.ui.model_gate.MODEL_GATE`, then calls the model's work,
:func:`model_work.train_steps`, for ONE step with the session's whole training state (adapter
or weights, value head, AdamW moments and step count, steps done, the adaptive KL coefficient),
stores the state and metrics it yields back (CPU tensors) in the session, and hands the turn
back. Other sessions' work (a Compare, an Evaluate, another run's step) runs in between; each
step's randomness comes from its own seed, so the interleaving changes nothing in the weights.

``train_steps`` is a pure generator (a ZeroGPU function on a ZeroGPU Space): the state goes in
and comes out by value, so a turn is the same whether the step runs in this process or in a
forked GPU worker. On ZeroGPU a turn is one ``@spaces.GPU`` call.

Why a thread of our own rather than iterating inside Gradio's generator: Gradio runs each
``next()`` of a generator on a worker thread and may simply stop asking for more (client gone,
event cancelled) without closing it. A run owned by a thread always ends in a known way: after
the last step, on Stop, on an error, when its compute budget is spent, or when nobody has read
its progress for ``abandon_after`` seconds. Whatever the ending, the session keeps the last good
state and no turn is left held or queued.
"""

from __future__ import annotations

import queue
import threading
import time
from contextlib import closing
from dataclasses import dataclass, replace
from typing import Callable, Literal

from ..text import LocalizedError
from ..trainer import StepResult, TrainingError, check_bad_updates
from .errors import unexpected_error_text
from .model_gate import MODEL_GATE
from .model_work import TrainRequest, train_steps
from .session import Session
from .zerogpu import on_zerogpu


class _LeaveQueue(Exception):
    """Stop, Reset or a closed tab while the next step waits, or nobody reads the run's progress
    any more (the tab closed without an unload event): give up the place in the queue."""


class _SetupFailed(Exception):
    """The first step could not set the policy up (bad input only the model can reveal)."""


# What a run's job tells the page, in order: "waiting" (for its turn; ``ahead``), "ready" (set
# up), "setup_error" (could not set up: ``message``), "step" (one more step: ``step``), "budget"
# (the compute budget is used up), "error" (a step failed: ``message``), and always last "end".
# The page itself turns an "end" before "ready" after Stop into "stopped".
JobEventKind = Literal["waiting", "ready", "setup_error", "stopped", "step", "budget", "error", "end"]


@dataclass
class JobEvent:
    kind: JobEventKind
    step: StepResult | None = None
    message: str = ""
    error: LocalizedError | None = None  # "setup_error" with a catalogue key (see model_work.TrainOutcome)
    ahead: int = 0  # "waiting": jobs before this run's next step


class TrainingJob:
    """Runs ``request.steps`` PPO steps for ``session``, one turn on the shared model per step.

    ``max_seconds`` is the compute budget: the time spent in the job's own turns, not the time
    spent waiting for them. The job takes no turn before ``start``."""

    def __init__(self, session: Session, request: TrainRequest, *, max_seconds: float | None = None,
                 abandon_after: float = 90.0, on_ready: Callable[[], None] | None = None):
        self.session = session
        self.request = request
        self.on_ready = on_ready  # runs on this thread once set up, before the first step's sampling
        self.max_seconds = max_seconds
        self.abandon_after = abandon_after
        self.compute_seconds = 0.0
        self.events: queue.Queue[JobEvent] = queue.Queue()
        self.last_read = time.monotonic()
        self._last_ahead: int | None = None
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

    # --- one turn -------------------------------------------------------------------------------
    def _watched(self) -> None:
        if time.monotonic() - self.last_read > self.abandon_after:
            self.session.stop_event.set()
            raise _LeaveQueue()

    def _waiting(self, ahead: int) -> None:
        """Called while the next step waits for its turn: tell the reader how many are ahead."""
        self._watched()
        if self.session.stop_event.is_set():
            raise _LeaveQueue()
        if ahead != self._last_ahead:
            self._last_ahead = ahead
            self.events.put(JobEvent("waiting", ahead=ahead))

    def _one_step(self, first: bool) -> StepResult | None:
        """Wait for a turn; run one step of ``train_steps`` on the session's state; store what
        comes back. None: stopped (before the step, or after sampling, before any update)."""
        session = self.session
        with MODEL_GATE.turn(session.session_id, on_wait=self._waiting):
            self._last_ahead = None
            if session.stop_event.is_set():
                return None
            # The session's state as of now (the previous turn stored it), by value: the job
            # may run in another process and never writes to the session itself.
            request = replace(self.request, state=session.policy_state, steps=1)
            # Across processes (ZeroGPU) an Event does not travel: there Stop takes effect
            # between steps only.
            stop = None if on_zerogpu() else session.stop_event
            started = time.monotonic()
            result, state = None, None
            try:
                with closing(train_steps(request, stop)) as outcomes:  # closing: released if we leave early
                    for outcome in self._outcomes(outcomes):
                        if outcome.kind == "setup_error":
                            if first:
                                self.events.put(JobEvent("setup_error", message=outcome.message, error=outcome.error))
                                raise _SetupFailed()
                            raise TrainingError(outcome.message)
                        if outcome.kind == "ready":
                            if first:
                                if self.on_ready is not None:
                                    self.on_ready()
                                self.events.put(JobEvent("ready"))
                            continue
                        # A full fine-tune sends its state after the step's result (see train_steps).
                        result = outcome.result if outcome.result is not None else result
                        state = outcome.state if outcome.state is not None else state
            finally:
                self.compute_seconds += time.monotonic() - started
            if result is not None:
                self._commit(result, state)
        return result

    @staticmethod
    def _outcomes(outcomes):
        """train_steps' outcomes. Its trainer counts non-finite losses within its own call; with one
        step per call that count is this job's (see _run), so a TrainingError raised after the
        step was yielded only ends the call."""
        stepped = False
        try:
            for outcome in outcomes:
                stepped = stepped or outcome.kind == "step"
                yield outcome
        except TrainingError:
            if not stepped:
                raise

    def _commit(self, result: StepResult, state) -> None:
        """Store the trained state and the step's metrics together, so the adapter and the
        plots never disagree about how far training got."""
        runs = self.session.runs
        run = runs.current
        if run is None:
            raise RuntimeError("no current run: RunBook.begin() starts one before anything is trained")
        if state is not None:
            run.model_name, run.tasks = self.request.model, list(self.request.tasks)
        runs.record_step(run, result.metrics, state, result.rollouts)

    # --- the run --------------------------------------------------------------------------------
    def _run(self) -> None:
        sink = _tracking_sink(self.request)
        total = self.request.steps
        bad_in_a_row = 0
        try:
            for done in range(1, total + 1):
                result = self._one_step(first=done == 1)
                if result is None:
                    break
                if sink is not None:
                    sink.log(result.metrics)
                self.events.put(JobEvent("step", result))
                # Counted here, across turns: each turn's train_steps sees one step only.
                bad_in_a_row = 0 if result.updated else bad_in_a_row + 1
                check_bad_updates(bad_in_a_row, self.request.config.max_bad_updates)
                if self.max_seconds is not None and self.compute_seconds >= self.max_seconds and done < total:
                    self.events.put(JobEvent("budget", message=f"{self.max_seconds:g} s"))
                    break
                self._watched()
        except (_LeaveQueue, _SetupFailed):
            pass
        except TrainingError as exc:
            self.events.put(JobEvent("error", message=str(exc)))
        except Exception as exc:  # a failing step ends the run, never the app
            self.events.put(JobEvent("error", message=f"The run stopped after an error in a step "
                                     f"({unexpected_error_text(exc)}). The adapter keeps its last good weights."))
        finally:
            try:
                if sink is not None:
                    sink.finish()
            finally:
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
