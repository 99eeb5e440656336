"""The app's event functions: plain values in, plain values (or a generator of them) out.

``layout`` turns these into component updates; the tests call them directly. Every check on
user input happens here, on the server, before anything changes: the sliders' ranges protect
nobody who calls the API. Bad input raises ``gr.Error`` with a sentence a student can act on,
and the session is left exactly as it was.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

import gradio as gr
import pandas as pd

from ..config import DEFAULT_PRESET, PRESETS, ConfigError, TrainConfig, knob_fields, preset_config
from ..export import TARGETS as EXPORT_TARGETS, export_record, make_run_record, zip_bundle
from ..peft_format import (FORMAT_PEFT, LAB_SETTINGS_FILE, PEFT_WEIGHTS_FILE, VALUE_HEAD_FILE, adapter_format,
                           base_model_id, load_any_adapter, save_peft_adapter)
from ..policy import (ADAPTER_CONFIG_FILE, ADAPTER_FILE, OPTIMIZER_FILE, PolicyState, check_state_fits, hidden_size,
                      lora_settings, save_optimizer_state, save_policy_state)
from ..reward import RewardConfig, compile_expected
from ..tasks import TASK_PRESET_MATCH_MODE, TASK_PRESETS, Task, load_tasks_file, tasks_from_rows, tasks_to_csv
from .errors import user_error, user_errors
from .jobs import TrainingJob
from . import model_jobs
from .model_jobs import TrainRequest, registry_key
from .limits import Limits
from .model_gate import MODEL_GATE
from .plots import metrics_csv, task_label
from .session import ModelRegistry, Session

EVAL_HEADERS = ["task", "expected", "base success", "adapted success", "base reward", "adapted reward"]


# --- reading the inputs -------------------------------------------------------------------

def resolve_model(choice: str | None, custom: str | None, limits: Limits) -> str:
    """The custom id/path box wins over the dropdown when filled in."""
    name = (custom or "").strip() or (choice or "").strip()
    if not name:
        raise user_error("Choose a model.")
    with user_errors():
        return limits.check_model(name)


def build_config(knobs: dict[str, Any], limits: Limits) -> TrainConfig:
    """Validate every knob (types and ranges from the dataclass) and the server's limits."""
    with user_errors():
        config = TrainConfig.from_dict(dict(knobs))
        limits.check_mode(config.mode)
    for name, cap in limits.knob_caps().items():
        if getattr(config, name) > cap:
            label = TrainConfig.__dataclass_fields__[name].metadata["label"]
            raise user_error(f"{label} is limited to {cap} on this server; got {getattr(config, name)}.")
    return config


def table_rows(table) -> list[list]:
    """A gr.Dataframe value (pandas frame, list of lists or {"data": ...}) as rows."""
    if table is None:
        return []
    if isinstance(table, pd.DataFrame):
        return table.values.tolist()
    if isinstance(table, dict):
        return list(table.get("data") or [])
    return [list(row) for row in table]


def build_tasks(table, limits: Limits) -> list[Task]:
    with user_errors():
        return tasks_from_rows(table_rows(table), max_tasks=limits.max_tasks,
                               max_prompt_chars=limits.max_prompt_chars)


def build_reward(match_mode: str, length_penalty, tasks: list[Task]) -> RewardConfig:
    """Also compiles every expected answer in regex mode, so a bad pattern is caught now."""
    with user_errors():
        reward = RewardConfig.from_dict({"match_mode": match_mode, "length_penalty": length_penalty})
        for task in tasks:
            compile_expected(task.expected, reward)
    return reward


def _check_adapter_model(session: Session, model: str) -> None:
    if session.policy_state is not None and session.model_name not in (None, model):
        raise user_error(f"Your adapter was trained on '{session.model_name}', not '{model}'. "
                         "Switch the model back, or press Reset to start over on the new model.")


def _adapter_config(config: TrainConfig, state: PolicyState | None) -> TrainConfig:
    """For Compare / Evaluate: the adapter's own LoRA shape, whatever the knobs say now."""
    if state is None:
        return config
    if state.mode == "full":
        return config.replace(mode="full")
    lora = state.lora
    return config.replace(mode="lora", lora_r=lora["r"], lora_alpha=lora["alpha"],
                          lora_dropout=lora["dropout"], lora_targets=list(lora["targets"]))


def _load(registry: ModelRegistry, model: str):
    with user_errors():
        return registry.get(model)


# --- training ----------------------------------------------------------------------------

@dataclass
class TrainView:
    """What the Train / Stop / Reset outputs show."""

    status: str
    history: list[dict] = field(default_factory=list)
    rollouts: list = field(default_factory=list)
    task_labels: list[str] = field(default_factory=list)  # legend names of the per-task curves
    running: bool = False
    finished: bool = False  # the last update of a run (time to refresh the downloads)
    error: str | None = None


def _eta(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 60}m {seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def step_status(metrics: dict, done: int, total: int, started: float) -> str:
    per_step = (time.monotonic() - started) / max(done, 1)
    return (f"Step {done}/{total} · {per_step:.1f} s/step · ETA {_eta(per_step * (total - done))} · "
            f"reward {metrics.get('reward_mean', float('nan')):+.3f} · success {metrics.get('success_rate', 0):.0%} · "
            f"KL/token {metrics.get('kl_mean', float('nan')):+.4f} · {metrics.get('step', 0)} steps trained in total")


def idle_status(session: Session) -> str:
    if session.policy_state is None:
        return "Base model, no adapter yet. Press Train."
    return f"Adapter on {session.model_name}: {session.policy_state.describe()}."


def _view(session: Session, status: str, **kw) -> TrainView:
    return TrainView(status=status, history=list(session.history), rollouts=list(session.last_rollouts),
                     task_labels=[task_label(i, t.expected) for i, t in enumerate(session.tasks)], **kw)


def _check_adapter_fits(session: Session, config: TrainConfig) -> None:
    """The session's adapter must fit the knobs Train would continue it with."""
    if session.policy_state is None:
        return
    with user_errors():
        check_state_fits(session.policy_state, config.mode, lora_settings(config) if config.mode == "lora" else None)


def check_train(session: Session, model: str, knobs: dict, table, match_mode: str, length_penalty, *,
                limits: Limits) -> tuple[TrainConfig, list[Task], RewardConfig]:
    """Every check Train makes before it touches the model: run by the page as its own quick
    event first, so a mistake is a message on the spot, not a run that fails on the Train tab."""
    if session.running:
        raise user_error("A run is already going in this tab. Press Stop first.")
    config = build_config(knobs, limits)
    tasks = build_tasks(table, limits)
    reward = build_reward(match_mode, length_penalty, tasks)
    _check_adapter_model(session, model)
    _check_adapter_fits(session, config)
    return config, tasks, reward


def train(session: Session, model: str, knobs: dict, table, match_mode: str, length_penalty, *,
          registry: ModelRegistry, limits: Limits) -> Iterator[TrainView]:
    """Validate, then stream one TrainView per PPO step until the run ends.

    Continues from the session's adapter (steps and plots carry on). Stop / a closed tab set
    ``session.stop_event``; the run then ends after the current step and keeps its adapter.
    """
    config, tasks, reward = check_train(session, model, knobs, table, match_mode, length_penalty, limits=limits)
    tasks_changed = bool(session.history) and tasks != session.tasks

    if not registry.is_loaded(model):
        yield _view(session, f"Loading {model}… (the first start of the embedded model converts it, about 30 s)",
                    running=True)
    _load(registry, model)  # in this process: a model that cannot load is a message here

    def start_over_task_curves():  # run by the job once set up, before its first step
        if tasks_changed:  # per-task curves are indexed by row: old rows would mislabel new tasks
            session.history = [{k: v for k, v in m.items() if not k.startswith("task_reward/")}
                               for m in session.history]

    # The job takes one turn at the model per step, with the session's state as of that turn.
    request = TrainRequest(registry_key(registry), model, config, tasks, reward, session.policy_state, config.steps)
    session.stop_event.clear()
    job = TrainingJob(session, request, max_seconds=limits.max_run_seconds, on_ready=start_over_task_curves)
    session.job = job.start()
    set_up = None
    try:
        while set_up is None:  # the first turn sets the policy up (or finds why it cannot)
            event = job.next_event()
            if event is not None and event.kind == "waiting":
                yield _view(session, waiting_status(event.ahead, 0, config.steps), running=True)
            elif event is not None:
                set_up = _set_up_outcome(event, session)
    finally:
        if set_up is None and job.is_alive():  # our reader went away while waiting: leave the queue
            session.stop_event.set()
    if set_up.kind != "ready":
        # Nothing in the session changed, so this error leaves it as it was.
        job.join()
        if set_up.kind == "stopped":
            yield _view(session, f"Stopped before the first step. {idle_status(session)}", finished=True)
            return
        raise user_error(set_up.message)
    if tasks_changed:
        gr.Warning("The tasks changed since the last run: the per-task reward curves start over.")
    yield _view(session, f"Sampling step 1/{config.steps}…", running=True)

    started, done, error, budget = time.monotonic(), 0, None, None
    try:
        while True:
            event = job.next_event()
            if event is None:
                continue
            if event.kind == "step":
                done += 1
                status = step_status(event.step.metrics, done, config.steps, started)
                if session.stop_event.is_set():
                    status = "Stopping… " + status
                yield _view(session, status, running=True)
            elif event.kind == "waiting":
                yield _view(session, waiting_status(event.ahead, done, config.steps), running=True)
            elif event.kind == "budget":
                budget = event.message
            elif event.kind == "error":
                error = event.message
            elif event.kind == "end":
                break
    finally:
        if job.is_alive():  # our reader went away (Gradio closed the generator): end the run
            session.stop_event.set()
    stopped = session.stop_event.is_set() and done < config.steps
    if error:
        gr.Warning(error)
        status = f"Run ended with an error after {done} step(s): {error}"
    elif budget:
        reason = (f"Stopped after {done} of {config.steps} steps: this server's compute budget per Train press "
                  f"({budget}) is used up. The adapter is kept; press Train to continue.")
        gr.Warning(reason)
        status = f"{reason} {idle_status(session)}"
    elif stopped:
        status = f"Stopped after {done} of {config.steps} steps; the adapter is kept. {idle_status(session)}"
    else:
        status = f"Done: {done} steps. {idle_status(session)}"
    yield _view(session, status, finished=True, error=error)


def _set_up_outcome(event, session: Session):
    """How the job's first turn went: "ready", "setup_error" (the message says why), or
    "stopped" (Stop / Reset while the first step waited for its turn)."""
    if event.kind in ("ready", "setup_error"):
        return event
    if event.kind == "error":
        return replace(event, message=f"Could not set up the policy: {event.message}")
    if event.kind == "end" and session.stop_event.is_set():
        return replace(event, kind="stopped")
    if event.kind == "end":
        return replace(event, message="The run ended before it started.")
    return None  # e.g. a "step" cannot come first; keep reading


def waiting_status(ahead: int, done: int, total: int) -> str:
    return (f"Waiting for the model: {ahead} ahead of you. Visitors take turns, one training step each "
            f"({done}/{total} steps done).")


def _tell_waiting():
    """``on_wait`` for a Compare / Evaluate / adapter load: one toast when it has to wait."""
    told: list[int] = []

    def on_wait(ahead: int) -> None:
        if not told:
            told.append(ahead)
            gr.Info(f"Waiting for the model: {ahead} ahead of you. Visitors take turns, one training step each.")
    return on_wait


def stop(session: Session) -> str:
    """Ask the run to end after the current step (also after sampling, before updating)."""
    if not session.running:
        return "Nothing is running. " + idle_status(session)
    session.stop_event.set()
    return "Stopping after the current step…"


def reset(session: Session, wait_seconds: float = 120.0) -> TrainView:
    """Back to the base model: no adapter, no history. A running run is stopped first."""
    if session.running:
        session.stop_event.set()
        session.job.join(wait_seconds)
        if session.running:
            raise user_error("The run is still finishing its step; try Reset again in a moment.")
    session.reset()
    return _view(session, "Reset: back to the base model, no adapter and no history.")


# --- comparing and evaluating ------------------------------------------------------------

def check_compare(session: Session, model: str, knobs: dict, prompt: str, *,
                  limits: Limits) -> tuple[str, TrainConfig]:
    """Compare's checks, also run as a quick event of their own (see :func:`check_train`)."""
    prompt = (prompt or "").strip()
    if not prompt:
        raise user_error("Type a prompt or pick a task to compare.")
    if len(prompt) > limits.max_prompt_chars:
        raise user_error(f"The prompt is {len(prompt)} characters; the limit is {limits.max_prompt_chars}.")
    if session.running:
        raise user_error("Training is running in this tab. Press Stop first, then Compare.")
    config = _adapter_config(build_config(knobs, limits), session.policy_state)
    _check_adapter_model(session, model)
    return prompt, config


def compare(session: Session, model: str, knobs: dict, prompt: str, *, registry: ModelRegistry,
            limits: Limits) -> tuple[str, str]:
    """(base answer, adapted answer) for one prompt, same seed and sampling settings."""
    prompt, config = check_compare(session, model, knobs, prompt, limits=limits)
    _load(registry, model)
    with MODEL_GATE.turn(session.session_id, on_wait=_tell_waiting()):
        return model_jobs.compare_answers(registry_key(registry), model, config, session.policy_state, prompt)


def check_evaluate(session: Session, model: str, knobs: dict, table, match_mode: str, length_penalty,
                   samples_per_task, *, limits: Limits) -> tuple[int, TrainConfig, list[Task], RewardConfig]:
    """Evaluate's checks, also run as a quick event of their own (see :func:`check_train`)."""
    try:
        k = int(samples_per_task)
    except (TypeError, ValueError):
        raise user_error(f"Samples per task must be a whole number; got {samples_per_task!r}.") from None
    if not 1 <= k <= limits.max_eval_samples:
        raise user_error(f"Samples per task must be between 1 and {limits.max_eval_samples}; got {k}.")
    if session.running:
        raise user_error("Training is running in this tab. Press Stop first, then Evaluate.")
    config = _adapter_config(build_config(knobs, limits), session.policy_state)
    tasks = build_tasks(table, limits)
    reward = build_reward(match_mode, length_penalty, tasks)
    _check_adapter_model(session, model)
    return k, config, tasks, reward


def evaluate(session: Session, model: str, knobs: dict, table, match_mode: str, length_penalty,
             samples_per_task, *, registry: ModelRegistry, limits: Limits) -> pd.DataFrame:
    """Success rate and mean reward per task, base vs adapted, over K samples each."""
    k, config, tasks, reward = check_evaluate(session, model, knobs, table, match_mode, length_penalty,
                                              samples_per_task, limits=limits)
    _load(registry, model)
    with MODEL_GATE.turn(session.session_id, on_wait=_tell_waiting()):
        report = model_jobs.evaluate_policy(registry_key(registry), model, config, session.policy_state, tasks,
                                            reward, k, limits.max_batch)
    rows = [(t.prompt, t.expected, t.base_success, t.adapted_success, t.base_reward, t.adapted_reward)
            for t in report.tasks]
    n = len(report.tasks)
    rows.append(("all tasks", "", report.base_success, report.adapted_success,
                 sum(t.base_reward for t in report.tasks) / n, sum(t.adapted_reward for t in report.tasks) / n))
    frame = pd.DataFrame(rows, columns=EVAL_HEADERS)
    return frame.round({c: 3 for c in EVAL_HEADERS[2:]})


# --- files -------------------------------------------------------------------------------

def export_adapter(session: Session) -> str | None:
    """A zip of the adapter, or None without one: PEFT format in LoRA mode (adapter_config.json,
    adapter_model.safetensors, plus value_head.safetensors and ppo_lab.json), the lab's own
    format (adapter.safetensors + adapter_config.json) for a full fine-tune. Both also carry
    optimizer.safetensors (AdamW's moments and step count) when the session has trained, so
    that training the uploaded zip continues exactly as if it had never stopped."""
    state = session.policy_state
    if state is None:
        return None
    folder = Path(tempfile.mkdtemp(dir=session.files_dir()))
    if state.mode == "lora":
        save_peft_adapter(state, folder)
        save_optimizer_state(state, folder)
        names = [ADAPTER_CONFIG_FILE, PEFT_WEIGHTS_FILE, VALUE_HEAD_FILE, LAB_SETTINGS_FILE]
    else:
        save_policy_state(state, folder)  # with the optimizer's file
        names = [ADAPTER_FILE, ADAPTER_CONFIG_FILE]
    if (folder / OPTIMIZER_FILE).exists():
        names.append(OPTIMIZER_FILE)
    stem = f"ppo-lora-{(session.model_name or 'model').replace('/', '_')}-{state.steps_trained}steps"
    target = folder / f"{stem}.zip"
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in names:
            zf.write(folder / name, name)
    return str(target)


def export_run(session: Session, model: str, knobs: dict, table, match_mode: str, length_penalty, *,
               registry: ModelRegistry, limits: Limits) -> str:
    """A zip with the run as bundles for TRL, veRL and OpenRLHF (trl/, verl/, openrlhf/), built
    from the tasks, reward and knobs on the page, with the session's adapter if it has one."""
    config = build_config(knobs, limits)
    tasks = build_tasks(table, limits)
    reward = build_reward(match_mode, length_penalty, tasks)
    # The EOS text only matters to OpenRLHF's reward (it sees special tokens); no model is
    # loaded just for it.
    eos = registry.get(model).tokenizer.eos_token if registry.is_loaded(model) else ""
    state = session.policy_state if session.model_name == model else None
    record = make_run_record(model, tasks, reward, config, eos_token=eos or "",
                             steps_trained=state.steps_trained if state else 0)
    root = Path(tempfile.mkdtemp(dir=session.files_dir()))
    adapter = None
    if state is not None and state.mode == "lora":
        adapter = root / "adapter"
        save_peft_adapter(state, adapter)
    bundle = root / "ppo-lab-export"
    with user_errors():
        for target in EXPORT_TARGETS:
            export_record(record, target, bundle / target, adapter_dir=adapter)
    return str(zip_bundle(bundle, root / f"ppo-lab-export-{model.replace('/', '_')}.zip"))


def export_metrics(session: Session) -> str | None:
    if not session.history:
        return None
    target = Path(tempfile.mkdtemp(dir=session.files_dir())) / "metrics.csv"
    target.write_text(metrics_csv(session.history), encoding="utf-8")
    return str(target)


# The files an uploaded adapter may consist of: PEFT format (what Download gives) or the lab's
# older format (adapter.safetensors + adapter_config.json), either with optimizer.safetensors.
ADAPTER_UPLOAD_FILES = (ADAPTER_CONFIG_FILE, PEFT_WEIGHTS_FILE, VALUE_HEAD_FILE, LAB_SETTINGS_FILE, ADAPTER_FILE,
                        OPTIMIZER_FILE)


def _gather_adapter_files(paths: list[str], folder: Path, max_bytes: int) -> None:
    """Put the adapter's files into ``folder`` from a zip or the files themselves. Gradio already
    refused uploads over the limit while they arrived; a zip's members are checked here."""
    for path in paths:
        p = Path(path)
        if p.stat().st_size > max_bytes:
            raise user_error(f"{p.name} is larger than this server's upload limit ({max_bytes // 1024 ** 2} MB).")
        if p.suffix.lower() == ".zip":
            try:
                with zipfile.ZipFile(p) as zf:
                    for info in zf.infolist():
                        base = Path(info.filename).name  # ignore folders inside the zip
                        if base in ADAPTER_UPLOAD_FILES:
                            if info.file_size > max_bytes:
                                raise user_error(f"{base} in the zip is too large.")
                            (folder / base).write_bytes(zf.read(info))
            except zipfile.BadZipFile:
                raise user_error(f"{p.name} is not a readable zip file.") from None
        elif p.name in ADAPTER_UPLOAD_FILES:
            shutil.copyfile(p, folder / p.name)
        elif p.suffix.lower() == ".safetensors":  # renamed on the way (the older format's weights)
            shutil.copyfile(p, folder / ADAPTER_FILE)
        elif p.suffix.lower() == ".json":
            shutil.copyfile(p, folder / ADAPTER_CONFIG_FILE)
        else:
            raise user_error(f"{p.name}: upload the .zip from Download, or the adapter's files "
                             f"({PEFT_WEIGHTS_FILE} and {ADAPTER_CONFIG_FILE}).")


def _read_uploaded_adapter(folder: Path, model: str, registry: ModelRegistry) -> PolicyState:
    """Either format. A PEFT adapter made by peft has no value head: a fresh (zero) one is made
    for the selected model, which is then loaded to learn its width."""
    with user_errors():
        fmt = adapter_format(folder)
        hidden = None
        if fmt == FORMAT_PEFT and not (folder / VALUE_HEAD_FILE).is_file():
            hidden = hidden_size(_load(registry, model).model)
        state = load_any_adapter(folder, hidden)
    if state.model_name and base_model_id(state.model_name) == base_model_id(model):
        state.model_name = model  # e.g. 'HuggingFaceTB/SmolLM2-135M-Instruct' from peft = the embedded model
    return state


def import_adapter(session: Session, files, model: str, knobs: dict, *, registry: ModelRegistry,
                   limits: Limits) -> tuple[TrainView, dict]:
    """Load a saved adapter into the session after checking it fits the selected model.

    Returns the view and the knob values the adapter implies (mode, LoRA shape), so the
    controls show what will be continued. Any problem: gr.Error, session unchanged.
    """
    if not files:
        raise user_error("Choose the adapter .zip (or its two files) first.")
    if session.running:
        raise user_error("Training is running in this tab. Press Stop first.")
    paths = [files] if isinstance(files, (str, Path)) else [getattr(f, "name", f) for f in files]
    config = build_config(knobs, limits)
    with tempfile.TemporaryDirectory() as tmp:
        _gather_adapter_files([str(p) for p in paths], Path(tmp), limits.max_upload_bytes)
        state = _read_uploaded_adapter(Path(tmp), model, registry)
    if state.model_name and state.model_name != model:
        raise user_error(f"This adapter was trained on '{state.model_name}'; select that model first.")
    try:
        config = _adapter_config(config, state)
    except ConfigError as exc:
        raise user_error(f"The adapter's settings are invalid: {exc}") from None
    _load(registry, model)
    with MODEL_GATE.turn(session.session_id, on_wait=_tell_waiting()):  # a trial load: shapes and names must fit
        model_jobs.check_fits_model(registry_key(registry), model, config, state)
    session.reset()
    session.policy_state, session.model_name = state, model
    knob_values = {k: v for k, v in config.to_dict().items()
                   if k in ("mode", "lora_r", "lora_alpha", "lora_dropout", "lora_targets")}
    knob_values["lora_targets"] = ", ".join(knob_values["lora_targets"])
    return _view(session, f"Loaded adapter: {state.describe()}. Train continues from it."), knob_values


# --- tasks and presets -------------------------------------------------------------------

def preset_tasks(name: str) -> tuple[list[list[str]], str]:
    """(rows, match mode) of a built-in task list."""
    if name not in TASK_PRESETS:
        raise user_error(f"Unknown task preset '{name}'. Choose one of: {', '.join(TASK_PRESETS)}.")
    return [[t.prompt, t.expected] for t in TASK_PRESETS[name]], TASK_PRESET_MATCH_MODE[name]


def upload_tasks(path: str, limits: Limits) -> list[list[str]]:
    with user_errors():
        tasks = load_tasks_file(path, max_tasks=limits.max_tasks, max_prompt_chars=limits.max_prompt_chars)
    return [[t.prompt, t.expected] for t in tasks]


def download_tasks(session: Session, table, limits: Limits) -> str:
    tasks = build_tasks(table, limits)
    target = Path(tempfile.mkdtemp(dir=session.files_dir())) / "tasks.csv"
    target.write_text(tasks_to_csv(tasks), encoding="utf-8")
    return str(target)


def preset_knobs(name: str, limits: Limits) -> dict[str, Any]:
    """Every knob of a preset, with the knobs this server caps lowered to its limits."""
    if name not in PRESETS:
        raise user_error(f"Unknown preset '{name}'. Choose one of: {', '.join(PRESETS)}.")
    capped = {knob: min(PRESETS[name][knob], cap) for knob, cap in limits.knob_caps().items()
              if knob != "num_minibatches"}  # follows the batch size (see preset_config)
    values = preset_config(name, **capped).to_dict()
    values["lora_targets"] = ", ".join(values["lora_targets"])
    return {name: "" if value is None else value for name, value in values.items()}  # "" = an optional knob off


def default_knobs(limits: Limits) -> dict[str, Any]:
    """The knobs the page starts with: the same preset as the CLI without --preset."""
    values = preset_knobs(DEFAULT_PRESET, limits)
    return {f.name: values[f.name] for f in knob_fields()}
