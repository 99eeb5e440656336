"""Train, Stop and Reset: a run streamed step by step from its model job."""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Iterator

import gradio as gr

from ...config import TrainConfig
from ...policy import check_state_fits, lora_settings
from ...reward import RewardConfig
from ...tasks import Task
from ...text import LocalizedError, tn
from ..errors import user_error, user_errors
from ..i18n import t
from ..run_jobs import TrainingJob
from ..limits import Limits
from ..model_work import TrainRequest, registry_key
from ..runs import Run, describe_differences
from ..session import ModelRegistry, Session
from .common import (SETUP_PREFIX, TrainView, build_config, build_reward, build_tasks, check_adapter_model,
                     check_room_for_runs, idle_status, load_model, setup_message, view_of)


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
             trained=tn("plural.steps_trained", int(metrics.get("step", 0)), lang))


def _check_adapter_fits(session: Session, config: TrainConfig, lang: str = "en") -> None:
    """The session's adapter must fit the knobs Train would continue it with."""
    if session.policy_state is None:
        return
    with user_errors(lang=lang):
        check_state_fits(session.policy_state, config.mode, lora_settings(config) if config.mode == "lora" else None)


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
    if all(task.held_out for task in tasks):  # held-out tasks are never trained on
        raise user_error(t("tasks.all_held_out", lang))
    reward = build_reward(match_mode, length_penalty, tasks, lang)
    if planned:  # queued runs each start from the base model
        check_room_for_runs(session, len(planned), lang)
    elif session.runs.current is None:
        check_room_for_runs(session, 1, lang)
    else:
        check_adapter_model(session.runs.current, model, lang)
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
    session.runs.planned, session.runs.focus = [], []
    if not registry.is_loaded(model):
        yield view_of(session, t("status.model_loading", lang, model=model), running=True)
    load_model(registry, model, lang)  # in this process: a model that cannot load is a message here
    reward_settings = {"match_mode": reward.match_mode, "length_penalty": reward.length_penalty}
    budget_left = limits.max_run_seconds  # per press: the KL demo's runs share it
    for config in configs:
        knob_values = config.to_dict()
        changes = {}
        if planned:
            with user_errors(lang=lang):
                run = session.runs.start(knob_values, reward_settings, tasks, model)
            session.runs.focus.append(run.number)
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
        error = LocalizedError("error.ended_before_start")
        return replace(event, message=str(error), error=error)
    return None  # e.g. a "step" cannot come first; keep reading


def waiting_status(ahead: int, done: int, total: int, lang: str = "en") -> str:
    return t("status.waiting_turn", lang, ahead=ahead, done=done, total=total)


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
            yield view_of(session, f"{t('status.stopped_before_start', lang)} {idle_status(session, lang)}",
                        finished=True)
            return "stopped", job.compute_seconds
        raise user_error(setup_message(set_up.message, lang, set_up.error))
    if continues and changes:
        _warn_about_changes(run, changes, lang)
    yield view_of(session, t("status.sampling", lang, run=name, step=1, total=steps), running=True)

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
                yield view_of(session, status, running=True)
            elif event.kind == "waiting":
                yield view_of(session, waiting_status(event.ahead, done, steps, lang), running=True)
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
    yield view_of(session, f"{status} {idle_status(session, lang)}", finished=True, error=error)
    return outcome, job.compute_seconds


def _wait_for_set_up(session: Session, job: TrainingJob, steps: int, lang: str):
    """Yield "waiting" views until the job's first turn has set the policy up; return that event."""
    set_up = None
    try:
        while set_up is None:  # the first turn sets the policy up (or finds why it cannot)
            event = job.next_event()
            if event is not None and event.kind == "waiting":
                yield view_of(session, waiting_status(event.ahead, 0, steps, lang), running=True)
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
    return tn("plural.done", done, lang, run=name), "done"


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
        return view_of(session, t("status.reset", lang, run=kept.name(lang)))
    return view_of(session, t("status.reset_empty", lang))
