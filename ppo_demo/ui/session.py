"""Who owns what: one shared base model per name, one small state per browser session.

The base model's weights are large and read-only for LoRA, so every session shares one copy
(loaded once by :class:`ModelRegistry`). What a session trains is a :class:`PolicyState` of CPU
tensors; a model job puts it onto the shared model, runs, and takes it off again, during its
turn at :data:`~ppo_demo.ui.model_gate.MODEL_GATE`.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..models import LoadedModel, ModelLoadError, load_model, resolve_model_name
from ..policy import PolicyState
from ..tasks import Task


class ModelRegistry:
    """Loads each base model once and hands the same object to every session."""

    def __init__(self, loader=load_model):
        self._loader = loader
        self._models: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()  # one load at a time; a second caller waits for the first

    def is_loaded(self, name: str) -> bool:
        return resolve_model_name(name) in self._models

    def get(self, name: str) -> LoadedModel:
        """The loaded model, loading it on first use. Raises ModelLoadError."""
        name = resolve_model_name(name)
        with self._lock:
            if name not in self._models:
                self._models[name] = self._loader(name)
            return self._models[name]

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


@dataclass
class Session:
    """Everything one browser tab owns. Reset empties it; closing the tab drops it."""

    session_id: str
    policy_state: PolicyState | None = None  # None = the base model (no adapter yet)
    model_name: str | None = None  # the base model the policy_state belongs to
    history: list[dict] = field(default_factory=list)  # one metrics dict per trained step
    last_rollouts: list = field(default_factory=list)  # RolloutRecords of the latest step
    tasks: list[Task] = field(default_factory=list)  # the tasks of the latest run
    stop_event: threading.Event = field(default_factory=threading.Event)
    job: object | None = None  # the running TrainingJob, if any
    last_active: float = field(default_factory=time.monotonic)
    _files_dir: Path | None = None

    @property
    def running(self) -> bool:
        return self.job is not None and self.job.is_alive()

    def files_dir(self) -> Path:
        """A private folder for this session's downloads, removed when the session closes."""
        if self._files_dir is None or not self._files_dir.exists():
            self._files_dir = Path(tempfile.mkdtemp(prefix="ppo-lab-"))
        return self._files_dir

    def reset(self) -> None:
        self.policy_state = None
        self.model_name = None
        self.history = []
        self.last_rollouts = []

    def close(self) -> None:
        """Stop any run (its thread ends after the current step) and free the state."""
        self.stop_event.set()
        self.reset()
        if self._files_dir is not None:
            shutil.rmtree(self._files_dir, ignore_errors=True)


class SessionStore:
    """session_hash -> Session. Closed tabs are dropped on unload; API clients never unload,
    so sessions idle for longer than ``idle_seconds`` are dropped as well."""

    def __init__(self, idle_seconds: float = 6 * 3600):
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()
        self.idle_seconds = idle_seconds

    def get(self, session_id: str) -> Session:
        now = time.monotonic()
        with self._lock:
            self._drop_idle(now)
            session = self._sessions.get(session_id)
            if session is None:
                session = self._sessions[session_id] = Session(session_id)
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
