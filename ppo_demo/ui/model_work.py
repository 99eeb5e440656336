"""The model's work for Train as a pure generator, ready to run as a ZeroGPU function.

``train_steps(request)`` sets a session's state up on the shared model, trains, and yields
after every step what the session must keep: the step's metrics and rollouts and the trained
state (weights, value head, AdamW state, steps done, the adaptive KL coefficient), as CPU
tensors. It reads nothing from the session and writes nothing to it, so it can run in another
process (ZeroGPU forks a worker and pickles the arguments and every yielded value; see
``zerogpu.py``); the caller, in the main process, stores what it receives. The app calls it
for ONE step at a time, during one turn at the model (``run_jobs.py``): the state that comes out
of one call goes into the next, so a run cut into calls equals one long call, bit for bit.

The shared model is found through a registry key, not passed: pickling the request must not
pickle the model. A forked worker inherits the registry (and the models loaded before it was
forked); one it loads itself stays in that worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Literal

from .. import evaluation
from .. import probe as probe_module
from ..config import TrainConfig
from ..policy import PolicyRuntime, PolicyState
from ..reward import RewardConfig
from ..tasks import Task
from ..text import LocalizedError
from ..trainer import PPOTrainer, StepResult
from .errors import USER_ERRORS, unexpected_error_text, user_errors
from .session import ModelRegistry
from .zerogpu import SHORT_DURATION, TRAIN_DURATION, gpu_job

_REGISTRIES: dict[str, ModelRegistry] = {}


def registry_key(registry: ModelRegistry) -> str:
    """A picklable handle on ``registry`` (registered on first use)."""
    key = f"registry-{id(registry)}"
    _REGISTRIES.setdefault(key, registry)
    return key


@dataclass
class TrainRequest:
    """Everything a training job needs, all picklable (no model, no session, no lock)."""

    registry_key: str
    model: str
    config: TrainConfig
    tasks: list[Task]
    reward: RewardConfig
    state: PolicyState | None  # None: a fresh adapter; else the whole state, optimizer included
    steps: int


@dataclass
class TrainOutcome:
    """One message from the job. ``kind``: "ready" (set up, about to sample step 1), "step",
    "setup_error" (bad input found while setting up: ``message`` is for the user)."""

    kind: Literal["ready", "step", "setup_error"]
    result: StepResult | None = None
    state: PolicyState | None = None  # the trained state after this step (None: not snapshotted)
    message: str = ""
    error: LocalizedError | None = None  # "setup_error" with a catalogue key: the page renders it in its language


@gpu_job(TRAIN_DURATION)
def train_steps(request: TrainRequest, stop_event=None) -> Iterator[TrainOutcome]:
    """Set up, then yield a TrainOutcome per step; the trained state comes with every step in
    LoRA mode (a few MB). Full fine-tuning copies every weight, so there it comes with the last
    outcome only, which needs ``stop_event`` to end the run early: in one process the caller
    passes its Event; across processes (ZeroGPU; an Event does not pickle) the caller closes
    the generator instead, and full mode then snapshots every step too."""
    loaded = _REGISTRIES[request.registry_key].get(request.model)
    try:
        trainer = PPOTrainer(loaded, request.config, request.tasks, request.reward, state=request.state)
    except USER_ERRORS as exc:
        yield TrainOutcome("setup_error", message=str(exc), error=exc if isinstance(exc, LocalizedError) else None)
        return
    except Exception as exc:
        yield TrainOutcome("setup_error", message=f"Could not set up the policy: {unexpected_error_text(exc)}")
        return
    snapshot_each_step = request.config.mode == "lora" or stop_event is None
    last = None
    try:
        yield TrainOutcome("ready")
        for result in trainer.train(request.steps, stop_event):
            last = result
            yield TrainOutcome("step", result, trainer.state() if snapshot_each_step else None)
    except Exception:
        if not snapshot_each_step and last is not None:  # keep the last good weights
            yield TrainOutcome("step", None, trainer.state())
        raise
    else:
        if not snapshot_each_step and last is not None:
            yield TrainOutcome("step", None, trainer.state())
    finally:
        trainer.runtime.release()


# --- the other model jobs: one call each, a picklable result ----------------------------------

def _runtime(key: str, model: str, config: TrainConfig, state: PolicyState | None) -> PolicyRuntime:
    """The state on the shared model, as ``with ... as runtime`` (which takes it off again)."""
    loaded = _REGISTRIES[key].get(model)
    with user_errors(unexpected="Could not set up the policy"):
        return PolicyRuntime.for_config(loaded, config, state)


@gpu_job(SHORT_DURATION)
def compare_answers(key: str, model: str, config: TrainConfig, state: PolicyState | None,
                    prompt: str) -> tuple[str, str]:
    """(base answer, adapted answer), same seed and sampling settings."""
    with _runtime(key, model, config, state) as runtime:
        return evaluation.compare(runtime, prompt, seed=config.seed, temperature=config.temperature,
                                  top_p=config.top_p, max_new_tokens=config.max_new_tokens)


@gpu_job(SHORT_DURATION)
def evaluate_policy(key: str, model: str, config: TrainConfig, state: PolicyState | None, tasks: list[Task],
                    reward: RewardConfig, samples_per_task: int, max_batch: int):
    """Base vs adapted success and reward per task (an EvaluationReport)."""
    with _runtime(key, model, config, state) as runtime:
        return evaluation.evaluate(runtime, tasks, reward, config, samples_per_task=samples_per_task,
                                   seed=config.seed, max_batch=max_batch)


@gpu_job(SHORT_DURATION)
def probe_policy(key: str, model: str, config: TrainConfig, state: PolicyState | None, tasks: list[Task],
                 reward: RewardConfig, samples_per_task: int, max_batch: int):
    """K answers per task from the state's adapter (the base model when there is none), scored
    with the run's reward and flagged (a ProbeReport)."""
    with _runtime(key, model, config, state) as runtime:
        return probe_module.probe(runtime, tasks, reward, config, samples_per_task=samples_per_task,
                                  adapters=state is not None, seed=config.seed, max_batch=max_batch)


@gpu_job(SHORT_DURATION)
def check_fits_model(key: str, model: str, config: TrainConfig, state: PolicyState) -> None:
    """Trial load: an uploaded state's shapes and names must fit this model (else a gr.Error)."""
    with _runtime(key, model, config, state):
        pass
