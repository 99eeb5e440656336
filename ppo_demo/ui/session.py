"""Who owns what: one shared base model per name, one small state per browser session.

The base model's weights are large and read-only for LoRA, so every session shares one copy
(loaded once by :class:`ModelRegistry`). What a session trains is a :class:`PolicyState` of CPU
tensors; a model job puts it onto the shared model, runs, and takes it off again, during its
turn at :data:`~ppo_demo.ui.model_gate.MODEL_GATE`. A session keeps its runs side by side
(:class:`~ppo_demo.ui.runs.RunBook`); what it trains and shows is the current run's.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..models import LoadedModel, ModelLoadError, load_model, resolve_model_name
from ..policy import PolicyState
from ..tasks import Task
from .runs import RunBook


def without_optimizer(state: PolicyState | None) -> PolicyState | None:
    """A kept run can be compared but not continued, so its AdamW moments (twice the trained
    weights: 2.2 GB per run for a full fine-tune of SmolLM2) are dropped when it stops being current."""
    return replace(state, optimizer=None) if state is not None else None


class ModelRegistry:
    """Loads each base model once and hands the same object to every session."""

    def __init__(self, loader=load_model):
        self._loader = loader
        self._models: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()  # one load at a time; a second caller waits for the first
        self._loading: set[str] = set()  # names being loaded now, so the page can say so
        self._failed: dict[str, str] = {}  # name -> why its last load failed (a later get() retries)

    def is_loaded(self, name: str) -> bool:
        return resolve_model_name(name) in self._models

    def load_state(self, name: str) -> tuple[str, str]:
        """("ready" | "loading" | "failed" | "not loaded", error message) for the status line:
        a page opened during a cold start says the model is loading, not "press Train"."""
        name = resolve_model_name(name)
        if name in self._models:
            return "ready", ""
        if name in self._loading:
            return "loading", ""
        if name in self._failed:
            return "failed", self._failed[name]
        return "not loaded", ""

    def get(self, name: str) -> LoadedModel:
        """The loaded model, loading it on first use. Raises ModelLoadError."""
        name = resolve_model_name(name)
        self._loading.add(name)
        try:
            with self._lock:
                if name not in self._models:
                    self._models[name] = self._loader(name)
                    self._failed.pop(name, None)
                return self._models[name]
        except ModelLoadError as exc:
            self._failed[name] = str(exc)
            raise
        finally:
            self._loading.discard(name)

    def preload(self, name: str) -> threading.Thread:
        """Start loading in the background, so the page is usable while weights load."""
        def run():
            try:
                self.get(name)
            except ModelLoadError:  # reported when a user asks for the model: get() tries again
                pass
        thread = threading.Thread(target=run, name=f"preload-{name}", daemon=True)
        thread.start()
        return thread


class _OfCurrentRun:
    """A Session attribute that is its current run's ``attr``: ``empty()`` without a current run;
    setting it needs one (RunBook.begin() starts one before anything is trained)."""

    def __init__(self, attr: str, empty, doc: str, store=lambda value: value):
        self.attr, self.empty, self.store, self.__doc__ = attr, empty, store, doc

    def __get__(self, session, owner=None):
        if session is None:
            return self
        run = session.runs.current
        return getattr(run, self.attr) if run is not None else self.empty()

    def __set__(self, session, value) -> None:
        setattr(session._current_run(), self.attr, self.store(value))


@dataclass
class Session:
    """Everything one browser tab owns: its runs, the one training now, its files. Reset keeps
    the runs and makes the next Train start a new one; closing the tab drops everything."""

    session_id: str
    runs: RunBook = field(default_factory=lambda: RunBook(keep_for_comparison=without_optimizer))
    stop_event: threading.Event = field(default_factory=threading.Event)
    job: object | None = None  # the running TrainingJob, if any
    last_active: float = field(default_factory=time.monotonic)
    heat_numbers: bool = False  # the heatmap prints each token's value under it (a page toggle)
    _files_dir: Path | None = None

    # What is trained and shown is the current run's; without one (before the first Train, after
    # Reset) the session is the base model with nothing trained and nothing to plot.
    policy_state = _OfCurrentRun("training_state", lambda: None, "the current run's training state; "
                                 "None = the base model (no adapter yet)")
    model_name = _OfCurrentRun("model_name", lambda: None, "the base model the current run trains")
    history = _OfCurrentRun("history", list, "one metrics dict per step of the current run")
    last_rollouts = _OfCurrentRun("last_rollouts", list, "the RolloutRecords of the current run's latest step")
    tasks = _OfCurrentRun("tasks", list, "the current run's tasks", store=list)

    def _current_run(self):
        if self.runs.current is None:
            raise RuntimeError("no current run: RunBook.begin() starts one before anything is trained")
        return self.runs.current

    @property
    def running(self) -> bool:
        return self.job is not None and self.job.is_alive()

    def files_dir(self) -> Path:
        """A private folder for this session's downloads, removed when the session closes."""
        if self._files_dir is None or not self._files_dir.exists():
            self._files_dir = Path(tempfile.mkdtemp(prefix="ppo-lab-"))
        return self._files_dir

    def reset(self) -> None:
        """Back to the base model: the current run is kept, the next Train starts a new one."""
        self.runs.close_current()

    def close(self) -> None:
        """Stop any run (its thread ends after the current step) and free every run's state."""
        self.stop_event.set()
        self.runs.clear()
        if self._files_dir is not None:
            shutil.rmtree(self._files_dir, ignore_errors=True)


class SessionStore:
    """session_hash -> Session. Closed tabs are dropped on unload; API clients never unload,
    so sessions idle for longer than ``idle_seconds`` are dropped as well."""

    def __init__(self, idle_seconds: float = 6 * 3600, new_runbook=RunBook):
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()
        self.idle_seconds = idle_seconds
        self.new_runbook = new_runbook  # each session's RunBook (the app passes its cap and start settings)

    def get(self, session_id: str) -> Session:
        now = time.monotonic()
        with self._lock:
            self._drop_idle(now)
            session = self._sessions.get(session_id)
            if session is None:
                session = self._sessions[session_id] = Session(session_id, runs=self.new_runbook())
            session.last_active = now
            return session

    def close(self, session_id: str) -> None:
        with self._lock:
            session = self._sessions.pop(session_id, None)
        if session is not None:
            session.close()

    def __len__(self) -> int:
        return len(self._sessions)

    def __contains__(self, session_id: str) -> bool:
        return session_id in self._sessions

    def _drop_idle(self, now: float) -> None:
        for sid, session in list(self._sessions.items()):
            if now - session.last_active > self.idle_seconds and not session.running:
                del self._sessions[sid]
                session.close()
