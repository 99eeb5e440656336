"""The app's event functions: plain values in, plain values (or a generator of them) out.

``layout`` turns these into component updates; the tests call them directly. Every check on
user input happens here, on the server, before anything changes: the sliders' ranges protect
nobody who calls the API. Bad input raises ``gr.Error`` with a sentence a student can act on,
and the session is left exactly as it was.
"""

from __future__ import annotations

import html
import math
import shutil
import tempfile
import time
import zipfile
from contextlib import contextmanager
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
from .i18n import engine_message, knob_label, t
from .jobs import TrainingJob
from . import model_jobs
from .model_jobs import TrainRequest, registry_key
from .limits import Limits
from .model_gate import MODEL_GATE
from .plots import task_series
from .runs import Run, kl_demo_plan
from .session import ModelRegistry, Session

EVAL_KEYS = ["task", "expected", "base_success", "adapted_success", "base_reward", "adapted_reward"]
EVAL_HEADERS = [t(f"header.{key}") for key in EVAL_KEYS]  # English; eval_headers(lang) for others


def eval_headers(lang: str = "en") -> list[str]:
    return [t(f"header.{key}", lang) for key in EVAL_KEYS]


# --- reading the inputs -------------------------------------------------------------------

def resolve_model(choice: str | None, custom: str | None, limits: Limits, lang: str = "en") -> str:
    """The custom id/path box wins over the dropdown when filled in."""
    name = (custom or "").strip() or (choice or "").strip()
    if not name:
        raise user_error(t("error.choose_model", lang))
    with user_errors(lang=lang):
        return limits.check_model(name)


def build_config(knobs: dict[str, Any], limits: Limits, lang: str = "en") -> TrainConfig:
    """Validate every knob (types and ranges from the dataclass) and the server's limits."""
    with user_errors(lang=lang):
        config = TrainConfig.from_dict(dict(knobs))
        limits.check_mode(config.mode)
    for name, cap in limits.knob_caps().items():
        if getattr(config, name) > cap:
            raise user_error(t("error.server_limit", lang, label=knob_label(name, lang), cap=cap,
                               value=getattr(config, name)))
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


def build_tasks(table, limits: Limits, lang: str = "en") -> list[Task]:
    with user_errors(lang=lang):
        return tasks_from_rows(table_rows(table), max_tasks=limits.max_tasks,
                               max_prompt_chars=limits.max_prompt_chars)


def build_reward(match_mode: str, length_penalty, tasks: list[Task], lang: str = "en") -> RewardConfig:
    """Also compiles every expected answer in regex mode, so a bad pattern is caught now."""
    with user_errors(lang=lang):
        reward = RewardConfig.from_dict({"match_mode": match_mode, "length_penalty": length_penalty})
        for task in tasks:
            compile_expected(task.expected, reward)
    return reward


def _check_adapter_model(run: Run | None, model: str, lang: str = "en") -> None:
    """A run's adapter only fits the base model it was trained on."""
    if run is not None and run.training_state is not None and run.model_name not in (None, model):
        raise user_error(t("error.other_model", lang, trained=run.model_name, model=model))


def _adapter_config(config: TrainConfig, state: PolicyState | None) -> TrainConfig:
    """For Compare / Evaluate: the adapter's own LoRA shape, whatever the knobs say now."""
    if state is None:
        return config
    if state.mode == "full":
        return config.replace(mode="full")
    lora = state.lora
    return config.replace(mode="lora", lora_r=lora["r"], lora_alpha=lora["alpha"],
                          lora_dropout=lora["dropout"], lora_targets=list(lora["targets"]))


def _load(registry: ModelRegistry, model: str, lang: str = "en"):
    with user_errors(lang=lang):
        return registry.get(model)


SETUP_PREFIX = "Could not set up the policy: "  # model_jobs' English prefix for an unexpected error


def setup_message(message: str, lang: str = "en") -> str:
    """A model job's English error sentence in ``lang`` (the jobs run apart from the page and
    write English: the engine's sentence, or SETUP_PREFIX and what went wrong)."""
    if message.startswith(SETUP_PREFIX):
        return t("error.setup", lang, error=message[len(SETUP_PREFIX):])
    return engine_message(message, lang)


@contextmanager
def _model_job_errors(lang: str = "en"):
    """Around a model job's call: its gr.Error (written in English) re-raised in ``lang``."""
    try:
        yield
    except gr.Error as exc:
        if lang == "en":
            raise
        raise user_error(setup_message(html.unescape(str(exc.message)), lang)) from None


# --- training ----------------------------------------------------------------------------

@dataclass
class TrainView:
    """What the Train / Stop / Reset outputs show."""

    status: str
    history: list[dict] = field(default_factory=list)
    rollouts: list = field(default_factory=list)
    tasks_expected: list[str] = field(default_factory=list)  # per-task curves are named by their answers
    running: bool = False
    finished: bool = False  # the last update of a run (time to refresh the downloads and the Runs tab)
    error: str | None = None

    @property
    def task_labels(self) -> list[str]:
        """English legend names of the per-task curves (as the plots name them)."""
        return [task_series(i, expected) for i, expected in enumerate(self.tasks_expected)]


def _eta(seconds: float, lang: str = "en") -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return t("eta.unknown", lang)
    seconds = int(round(seconds))
    if seconds >= 60:
        return t("eta.minutes", lang, m=seconds // 60, s=seconds % 60)
    return t("eta.seconds", lang, s=seconds)


def step_status(metrics: dict, done: int, total: int, started: float, run_name: str = "",
                lang: str = "en") -> str:
    per_step = (time.monotonic() - started) / max(done, 1)
    nan = float("nan")
    return t("status.step", lang, run=run_name, done=done, total=total, per_step=per_step,
             eta=_eta(per_step * (total - done), lang), reward=metrics.get("reward_mean", nan),
             success=metrics.get("success_rate", 0), kl=metrics.get("kl_mean", nan),
             trained=metrics.get("step", 0))


def idle_status(session: Session, lang: str = "en") -> str:
    if session.policy_state is None:
        return t("status.base", lang)
    return t("status.adapter", lang, model=session.model_name, describe=session.policy_state.describe())


def _view(session: Session, status: str, **kw) -> TrainView:
    return TrainView(status=status, history=list(session.history), rollouts=list(session.last_rollouts),
                     tasks_expected=[task.expected for task in session.tasks], **kw)


def _check_adapter_fits(session: Session, config: TrainConfig, lang: str = "en") -> None:
    """The session's adapter must fit the knobs Train would continue it with."""
    if session.policy_state is None:
        return
    with user_errors(lang=lang):
        check_state_fits(session.policy_state, config.mode, lora_settings(config) if config.mode == "lora" else None)


def _check_room_for_runs(session: Session, new_runs: int, lang: str) -> None:
    """Starting ``new_runs`` runs must fit under the session's cap on kept runs."""
    runs = session.runs
    free = runs.max_runs - len(runs.runs)
    if new_runs > free:
        if new_runs == 1:
            raise user_error(t("error.max_runs", lang, limit=runs.max_runs))
        raise user_error(t("error.max_runs_plan", lang, need=new_runs, free=max(free, 0), limit=runs.max_runs))


def check_train(session: Session, model: str, knobs: dict, table, match_mode: str, length_penalty, *,
                limits: Limits, lang: str = "en") -> tuple[list[TrainConfig], list[Task], RewardConfig]:
    """Every check Train makes before it touches the model: run by the page as its own quick
    event first, so a mistake is a message on the spot, not a run that fails on the Train tab.

    Returns one config per run this press trains: the queued runs' (each the knobs with its
    changes), or the one run it continues or starts.
    """
    if session.running:
        raise user_error(t("error.already_running", lang))
    planned = list(session.runs.planned)
    configs = [build_config({**knobs, **changes}, limits, lang) for changes in planned or [{}]]
    tasks = build_tasks(table, limits, lang)
    reward = build_reward(match_mode, length_penalty, tasks, lang)
    if planned:  # queued runs each start from the base model
        _check_room_for_runs(session, len(planned), lang)
    elif session.runs.current is None:
        _check_room_for_runs(session, 1, lang)
    else:
        _check_adapter_model(session.runs.current, model, lang)
        _check_adapter_fits(session, configs[0], lang)
    return configs, tasks, reward


def train(session: Session, model: str, knobs: dict, table, match_mode: str, length_penalty, *,
          registry: ModelRegistry, limits: Limits, lang: str = "en") -> Iterator[TrainView]:
    """Validate, then stream one TrainView per PPO step until the run (or the queued runs) end.

    Continues the current run (its steps and plots carry on), or starts a new one after Reset;
    queued runs (the KL demo) each start a new run. Stop / a closed tab set ``session.stop_event``:
    the run then ends after the current step and keeps its adapter, and the rest of a queue is
    dropped, so the next Train continues the stopped run.
    """
    configs, tasks, reward = check_train(session, model, knobs, table, match_mode, length_penalty, limits=limits,
                                         lang=lang)
    planned = bool(session.runs.planned)
    session.runs.planned = []
    if not registry.is_loaded(model):
        yield _view(session, t("status.model_loading", lang, model=model), running=True)
    _load(registry, model, lang)  # in this process: a model that cannot load is a message here
    reward_settings = {"match_mode": reward.match_mode, "length_penalty": reward.length_penalty}
    budget_left = limits.max_run_seconds  # per press: the KL demo's runs share it
    for config in configs:
        knob_values = config.to_dict()
        changes = {}
        if planned:
            with user_errors(lang=lang):
                run = session.runs.start(knob_values, reward_settings, tasks, model)
        else:
            changes = session.runs.pending_changes(knob_values, reward_settings, tasks, model)
            with user_errors(lang=lang):
                run = session.runs.begin(knob_values, reward_settings, tasks, model)
        request = TrainRequest(registry_key(registry), model, config, tasks, reward, session.policy_state,
                               config.steps)
        outcome, spent = yield from _train_run(session, run, request, changes, lang, budget_left)
        if outcome != "done":
            break
        if budget_left is not None:
            budget_left = max(budget_left - spent, 1.0)  # the next queued run still gets a step's chance


def _warn_about_changes(run: Run, changes: dict, lang: str) -> None:
    """Continuing a run with other settings is allowed, and said: it blends two settings into one curve."""
    if "tasks" in changes:
        gr.Warning(t("warning.tasks_changed", lang, run=run.name(lang)))
    others = {k: v for k, v in changes.items() if k != "tasks"}
    if others:
        from .runs import describe_differences

        gr.Warning(t("warning.knobs_changed", lang, run=run.name(lang), changes=describe_differences(others, lang)))


def _set_up_outcome(event, session: Session):
    """How the job's first turn went: "ready", "setup_error" (the message says why), or
    "stopped" (Stop / Reset while the first step waited for its turn)."""
    if event.kind in ("ready", "setup_error"):
        return event
    if event.kind == "error":
        return replace(event, message=f"{SETUP_PREFIX}{event.message}")
    if event.kind == "end" and session.stop_event.is_set():
        return replace(event, kind="stopped")
    if event.kind == "end":
        return replace(event, message="The run ended before it started.")
    return None  # e.g. a "step" cannot come first; keep reading


def waiting_status(ahead: int, done: int, total: int, lang: str = "en") -> str:
    return t("status.waiting_turn", lang, ahead=ahead, done=done, total=total)


def _tell_waiting(lang: str = "en"):
    """``on_wait`` for a Compare / Evaluate / adapter load: one toast when it has to wait."""
    told: list[int] = []

    def on_wait(ahead: int) -> None:
        if not told:
            told.append(ahead)
            gr.Info(t("toast.waiting_turn", lang, ahead=ahead))
    return on_wait


def _train_run(session: Session, run: Run, request: TrainRequest, changes: dict, lang: str,
               max_seconds: float | None):
    """Train ``request.steps`` steps of ``run`` (the session's current run) as a model job that
    takes one turn at the shared model per step; yields views and returns how it ended ("done",
    "stopped", "budget" or "error") and the compute seconds its turns used."""
    name, steps = run.name(lang), request.steps
    continues = bool(run.steps)  # a run with steps already: a change of settings blends into its curves

    def start_over_task_curves():  # run by the job once set up, before its first step
        if continues and "tasks" in changes:  # per-task curves are indexed by row: old rows would mislabel new tasks
            session.history = [{k: v for k, v in m.items() if not k.startswith("task_reward/")}
                               for m in session.history]

    session.stop_event.clear()
    job = TrainingJob(session, request, max_seconds=max_seconds, on_ready=start_over_task_curves)
    session.job = job.start()
    set_up = yield from _wait_for_set_up(session, job, steps, lang)
    if set_up.kind != "ready":
        # Nothing in the run changed, so this error leaves it as it was.
        job.join()
        if not run.steps and run.training_state is None:
            session.runs.close_current()  # a run that could not even start is not kept
        if set_up.kind == "stopped":
            yield _view(session, f"{t('status.stopped_before_start', lang)} {idle_status(session, lang)}",
                        finished=True)
            return "stopped", job.compute_seconds
        raise user_error(setup_message(set_up.message, lang))
    if continues and changes:
        _warn_about_changes(run, changes, lang)
    yield _view(session, t("status.sampling", lang, run=name, step=1, total=steps), running=True)

    started, done, error, budget = time.monotonic(), 0, None, None
    try:
        while True:
            event = job.next_event()
            if event is None:
                continue
            if event.kind == "step":
                done += 1
                status = step_status(event.step.metrics, done, steps, started, name, lang)
                if session.stop_event.is_set():
                    status = t("status.stopping_prefix", lang) + status
                yield _view(session, status, running=True)
            elif event.kind == "waiting":
                yield _view(session, waiting_status(event.ahead, done, steps, lang), running=True)
            elif event.kind == "budget":
                budget = event.message
            elif event.kind == "error":
                error = event.message
            elif event.kind == "end":
                break
    finally:
        if job.is_alive():  # our reader went away (Gradio closed the generator): end the run
            session.stop_event.set()
    stopped = session.stop_event.is_set() and done < steps
    status, outcome = _how_the_run_ended(name, done, steps, error, budget, stopped, lang)
    yield _view(session, f"{status} {idle_status(session, lang)}", finished=True, error=error)
    return outcome, job.compute_seconds


def _wait_for_set_up(session: Session, job: TrainingJob, steps: int, lang: str):
    """Yield "waiting" views until the job's first turn has set the policy up; return that event."""
    set_up = None
    try:
        while set_up is None:  # the first turn sets the policy up (or finds why it cannot)
            event = job.next_event()
            if event is not None and event.kind == "waiting":
                yield _view(session, waiting_status(event.ahead, 0, steps, lang), running=True)
            elif event is not None:
                set_up = _set_up_outcome(event, session)
    finally:
        if set_up is None and job.is_alive():  # our reader went away while waiting: leave the queue
            session.stop_event.set()
    return set_up


def _how_the_run_ended(name: str, done: int, steps: int, error: str | None, budget: str | None, stopped: bool,
                       lang: str) -> tuple[str, str]:
    """(status line, outcome) at the end of a run; an error or a used-up budget is also a toast."""
    if error:
        gr.Warning(error)
        return t("status.error_end", lang, done=done, error=error), "error"
    if budget:
        reason = t("status.budget", lang, run=name, done=done, total=steps, budget=budget)
        gr.Warning(reason)
        return reason, "budget"
    if stopped:
        return t("status.stopped", lang, run=name, done=done, total=steps), "stopped"
    return t("status.done", lang, run=name, done=done), "done"


def stop(session: Session, lang: str = "en") -> str:
    """Ask the run to end after the current step (also after sampling, before updating)."""
    if not session.running:
        return f"{t('status.nothing_running', lang)} {idle_status(session, lang)}"
    session.stop_event.set()
    return t("status.stopping", lang)


def reset(session: Session, wait_seconds: float = 120.0, lang: str = "en") -> TrainView:
    """Back to the base model: the current run is kept on the Runs tab and the next Train starts
    a new one. A running run is stopped first."""
    if session.running:
        session.stop_event.set()
        session.job.join(wait_seconds)
        if session.running:
            raise user_error(t("error.still_finishing", lang))
    kept = session.runs.current
    session.runs.planned = []
    session.reset()
    if kept is not None and kept in session.runs.runs:
        return _view(session, t("status.reset", lang, run=kept.name(lang)))
    return _view(session, t("status.reset_empty", lang))


def next_press(session: Session, steps, lang: str = "en") -> str:
    """What pressing Train now will do (the line under the buttons)."""
    if session.running:
        return t("next.running", lang, run=session.runs.current.name(lang) if session.runs.current else "")
    try:
        steps = int(steps)
    except (TypeError, ValueError):
        steps = 0
    return session.runs.next_press(steps, lang)


# --- runs ---------------------------------------------------------------------------------

def _chosen_run(session: Session, number, lang: str) -> Run | None:
    """The run Compare / Evaluate use: the one picked, else the current one (None = base model)."""
    if number in (None, "", 0):
        return session.runs.current
    with user_errors(lang=lang):
        return session.runs.get(int(number))


def delete_run(session: Session, number, lang: str = "en") -> None:
    """Forget a run and its adapter. The run being trained cannot be deleted."""
    if number in (None, ""):
        raise user_error(t("error.pick_run", lang))
    with user_errors(lang=lang):
        run = session.runs.get(int(number))
    if session.running and run is session.runs.current:
        raise user_error(t("error.delete_running", lang, run=run.name(lang)))
    session.runs.delete(run.number)


def queue_kl_demo(session: Session, steps, lang: str = "en") -> str:
    """Queue the classic demonstration: the same knobs and seed, β = 0, 0.05 and 0.5."""
    if session.running:
        raise user_error(t("error.running_other", lang))
    with user_errors(lang=lang):
        session.runs.plan(kl_demo_plan())
    return next_press(session, steps, lang)


def export_runs_csv(session: Session, lang: str = "en") -> str | None:
    """Every step of every kept run, one CSV with a ``run`` column and the knobs."""
    if not session.runs.trained():
        return None
    target = Path(tempfile.mkdtemp(dir=session.files_dir())) / "metrics-all-runs.csv"
    target.write_text(session.runs.metrics_csv(lang), encoding="utf-8")
    return str(target)


# --- comparing and evaluating ------------------------------------------------------------

def check_compare(session: Session, model: str, knobs: dict, prompt: str, *, limits: Limits, run_number=None,
                  lang: str = "en") -> tuple[str, TrainConfig, Run | None]:
    """Compare's checks, also run as a quick event of their own (see :func:`check_train`)."""
    prompt = (prompt or "").strip()
    if not prompt:
        raise user_error(t("error.no_prompt", lang))
    if len(prompt) > limits.max_prompt_chars:
        raise user_error(t("error.prompt_too_long", lang, n=len(prompt), limit=limits.max_prompt_chars))
    if session.running:
        raise user_error(t("error.running_compare", lang))
    run = _chosen_run(session, run_number, lang)
    state = run.training_state if run else None
    config = _adapter_config(build_config(knobs, limits, lang), state)
    _check_adapter_model(run, model, lang)
    return prompt, config, run


def compare(session: Session, model: str, knobs: dict, prompt: str, *, registry: ModelRegistry,
            limits: Limits, run_number=None, lang: str = "en") -> tuple[str, str]:
    """(base answer, adapted answer) for one prompt, same seed and sampling settings; the
    adapter is the chosen run's (by default the current one)."""
    prompt, config, run = check_compare(session, model, knobs, prompt, limits=limits, run_number=run_number, lang=lang)
    _load(registry, model, lang)
    state = run.training_state if run else None
    with MODEL_GATE.turn(session.session_id, on_wait=_tell_waiting(lang)), _model_job_errors(lang):
        return model_jobs.compare_answers(registry_key(registry), model, config, state, prompt)


def check_evaluate(session: Session, model: str, knobs: dict, table, match_mode: str, length_penalty,
                   samples_per_task, *, limits: Limits, run_number=None,
                   lang: str = "en") -> tuple[int, TrainConfig, list[Task], RewardConfig, Run | None]:
    """Evaluate's checks, also run as a quick event of their own (see :func:`check_train`)."""
    try:
        k = int(samples_per_task)
    except (TypeError, ValueError):
        raise user_error(t("error.samples_whole", lang, value=repr(samples_per_task))) from None
    if not 1 <= k <= limits.max_eval_samples:
        raise user_error(t("error.samples_range", lang, limit=limits.max_eval_samples, value=k))
    if session.running:
        raise user_error(t("error.running_evaluate", lang))
    run = _chosen_run(session, run_number, lang)
    config = _adapter_config(build_config(knobs, limits, lang), run.training_state if run else None)
    tasks = build_tasks(table, limits, lang)
    reward = build_reward(match_mode, length_penalty, tasks, lang)
    _check_adapter_model(run, model, lang)
    return k, config, tasks, reward, run


def evaluate(session: Session, model: str, knobs: dict, table, match_mode: str, length_penalty,
             samples_per_task, *, registry: ModelRegistry, limits: Limits, run_number=None,
             lang: str = "en") -> pd.DataFrame:
    """Success rate and mean reward per task, base vs the chosen run's adapter, over K samples each."""
    k, config, tasks, reward, run = check_evaluate(session, model, knobs, table, match_mode, length_penalty,
                                                   samples_per_task, limits=limits, run_number=run_number, lang=lang)
    _load(registry, model, lang)
    state = run.training_state if run else None
    with MODEL_GATE.turn(session.session_id, on_wait=_tell_waiting(lang)), _model_job_errors(lang):
        report = model_jobs.evaluate_policy(registry_key(registry), model, config, state, tasks, reward, k,
                                            limits.max_batch)
    rows = [(t_.prompt, t_.expected, t_.base_success, t_.adapted_success, t_.base_reward, t_.adapted_reward)
            for t_ in report.tasks]
    n = len(report.tasks)
    rows.append((t("header.all_tasks", lang), "", report.base_success, report.adapted_success,
                 sum(t_.base_reward for t_ in report.tasks) / n, sum(t_.adapted_reward for t_ in report.tasks) / n))
    headers = eval_headers(lang)
    frame = pd.DataFrame(rows, columns=headers)
    return frame.round({c: 3 for c in headers[2:]})


# --- files -------------------------------------------------------------------------------

def export_adapter(session: Session) -> str | None:
    """A zip of the current run's adapter, or None without one: PEFT format in LoRA mode (adapter_config.json,
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
               registry: ModelRegistry, limits: Limits, lang: str = "en") -> str:
    """A zip with the run as bundles for TRL, veRL and OpenRLHF (trl/, verl/, openrlhf/), built
    from the tasks, reward and knobs on the page, with the current run's adapter if it has one."""
    config = build_config(knobs, limits, lang)
    tasks = build_tasks(table, limits, lang)
    reward = build_reward(match_mode, length_penalty, tasks, lang)
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
    with user_errors(lang=lang):
        for target in EXPORT_TARGETS:
            export_record(record, target, bundle / target, adapter_dir=adapter)
    return str(zip_bundle(bundle, root / f"ppo-lab-export-{model.replace('/', '_')}.zip"))


def export_metrics(session: Session, lang: str = "en") -> str | None:
    """Every kept run's metrics in one CSV (see :func:`export_runs_csv`)."""
    return export_runs_csv(session, lang)


# The files an uploaded adapter may consist of: PEFT format (what Download gives) or the lab's
# older format (adapter.safetensors + adapter_config.json), either with optimizer.safetensors.
ADAPTER_UPLOAD_FILES = (ADAPTER_CONFIG_FILE, PEFT_WEIGHTS_FILE, VALUE_HEAD_FILE, LAB_SETTINGS_FILE, ADAPTER_FILE,
                        OPTIMIZER_FILE)


def _gather_adapter_files(paths: list[str], folder: Path, max_bytes: int, lang: str = "en") -> None:
    """Put the adapter's files into ``folder`` from a zip or the files themselves. Gradio already
    refused uploads over the limit while they arrived; a zip's members are checked here."""
    for path in paths:
        p = Path(path)
        if p.stat().st_size > max_bytes:
            raise user_error(t("error.file_too_large", lang, name=p.name, mb=max_bytes // 1024 ** 2))
        if p.suffix.lower() == ".zip":
            try:
                with zipfile.ZipFile(p) as zf:
                    for info in zf.infolist():
                        base = Path(info.filename).name  # ignore folders inside the zip
                        if base in ADAPTER_UPLOAD_FILES:
                            if info.file_size > max_bytes:
                                raise user_error(t("error.zip_member_too_large", lang, name=base))
                            (folder / base).write_bytes(zf.read(info))
            except zipfile.BadZipFile:
                raise user_error(t("error.bad_zip", lang, name=p.name)) from None
        elif p.name in ADAPTER_UPLOAD_FILES:
            shutil.copyfile(p, folder / p.name)
        elif p.suffix.lower() == ".safetensors":  # renamed on the way (the older format's weights)
            shutil.copyfile(p, folder / ADAPTER_FILE)
        elif p.suffix.lower() == ".json":
            shutil.copyfile(p, folder / ADAPTER_CONFIG_FILE)
        else:
            raise user_error(t("error.adapter_files", lang, name=p.name, weights=PEFT_WEIGHTS_FILE,
                               config=ADAPTER_CONFIG_FILE))


def _read_uploaded_adapter(folder: Path, model: str, registry: ModelRegistry, lang: str = "en") -> PolicyState:
    """Either format. A PEFT adapter made by peft has no value head: a fresh (zero) one is made
    for the selected model, which is then loaded to learn its width."""
    with user_errors(lang=lang):
        fmt = adapter_format(folder)
        hidden = None
        if fmt == FORMAT_PEFT and not (folder / VALUE_HEAD_FILE).is_file():
            hidden = hidden_size(_load(registry, model, lang).model)
        state = load_any_adapter(folder, hidden)
    if state.model_name and base_model_id(state.model_name) == base_model_id(model):
        state.model_name = model  # e.g. 'HuggingFaceTB/SmolLM2-135M-Instruct' from peft = the embedded model
    return state


def import_adapter(session: Session, files, model: str, knobs: dict, *, registry: ModelRegistry,
                   limits: Limits, lang: str = "en") -> tuple[TrainView, dict]:
    """Load a saved adapter into the session after checking it fits the selected model.

    The adapter becomes a new run (the current one is kept), which Train continues. Returns the
    view and the knob values the adapter implies (mode, LoRA shape), so the controls show what
    will be continued. Any problem: gr.Error, session unchanged.
    """
    if not files:
        raise user_error(t("error.choose_adapter", lang))
    if session.running:
        raise user_error(t("error.running_other", lang))
    paths = [files] if isinstance(files, (str, Path)) else [getattr(f, "name", f) for f in files]
    config = build_config(knobs, limits, lang)
    with tempfile.TemporaryDirectory() as tmp:
        _gather_adapter_files([str(p) for p in paths], Path(tmp), limits.max_upload_bytes, lang)
        state = _read_uploaded_adapter(Path(tmp), model, registry, lang)
    if state.model_name and state.model_name != model:
        raise user_error(t("error.adapter_model", lang, model=state.model_name))
    try:
        config = _adapter_config(config, state)
    except ConfigError as exc:
        raise user_error(t("error.adapter_settings", lang, error=exc)) from None
    _check_room_for_runs(session, 1, lang)
    _load(registry, model, lang)
    with MODEL_GATE.turn(session.session_id, on_wait=_tell_waiting(lang)), _model_job_errors(lang):  # trial load: shapes and names must fit this model
        model_jobs.check_fits_model(registry_key(registry), model, config, state)
    previous = session.runs.runs[-1] if session.runs.runs else None
    session.reset()
    with user_errors(lang=lang):
        session.runs.start(config.to_dict(), dict(previous.reward) if previous else {},
                           list(previous.tasks) if previous else [], model)
    session.policy_state = state
    knob_values = {k: v for k, v in config.to_dict().items()
                   if k in ("mode", "lora_r", "lora_alpha", "lora_dropout", "lora_targets")}
    knob_values["lora_targets"] = ", ".join(knob_values["lora_targets"])
    return _view(session, t("status.loaded_adapter", lang, describe=state.describe())), knob_values


# --- tasks and presets -------------------------------------------------------------------

def preset_tasks(name: str, lang: str = "en") -> tuple[list[list[str]], str]:
    """(rows, match mode) of a built-in task list."""
    if name not in TASK_PRESETS:
        raise user_error(t("error.unknown_task_preset", lang, name=name, choices=", ".join(TASK_PRESETS)))
    return [[t.prompt, t.expected] for t in TASK_PRESETS[name]], TASK_PRESET_MATCH_MODE[name]


def upload_tasks(path: str, limits: Limits, lang: str = "en") -> list[list[str]]:
    with user_errors(lang=lang):
        tasks = load_tasks_file(path, max_tasks=limits.max_tasks, max_prompt_chars=limits.max_prompt_chars)
    return [[t.prompt, t.expected] for t in tasks]


def download_tasks(session: Session, table, limits: Limits, lang: str = "en") -> str:
    tasks = build_tasks(table, limits, lang)
    target = Path(tempfile.mkdtemp(dir=session.files_dir())) / "tasks.csv"
    target.write_text(tasks_to_csv(tasks), encoding="utf-8")
    return str(target)


def preset_knobs(name: str, limits: Limits, lang: str = "en") -> dict[str, Any]:
    """Every knob of a preset, with the knobs this server caps lowered to its limits."""
    if name not in PRESETS:
        raise user_error(t("error.unknown_preset", lang, name=name, choices=", ".join(PRESETS)))
    capped = {knob: min(PRESETS[name][knob], cap) for knob, cap in limits.knob_caps().items()
              if knob != "num_minibatches"}  # follows the batch size (see preset_config)
    values = preset_config(name, **capped).to_dict()
    values["lora_targets"] = ", ".join(values["lora_targets"])
    return {name: "" if value is None else value for name, value in values.items()}  # "" = an optional knob off


def start_settings(limits: Limits, match_mode: str) -> dict[str, Any]:
    """What the page starts with, as a run records its settings: run 1 is named by what differs."""
    reward = RewardConfig.from_dict({"match_mode": match_mode})
    return {**build_config(default_knobs(limits), limits).to_dict(), "match_mode": reward.match_mode,
            "length_penalty": reward.length_penalty}


def default_knobs(limits: Limits) -> dict[str, Any]:
    """The knobs the page starts with: the same preset as the CLI without --preset."""
    values = preset_knobs(DEFAULT_PRESET, limits)
    return {f.name: values[f.name] for f in knob_fields()}
