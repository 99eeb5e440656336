"""Checks every feature shares: reading the model, knobs, tasks and reward from the page, the
run a press applies to, room for new runs, and what the Train-tab outputs show.

Every check on user input happens on the server, before anything changes: the sliders' ranges
protect nobody who calls the API. Bad input raises ``gr.Error`` with a sentence a student can
act on, and the session is left exactly as it was.
"""

from __future__ import annotations

import html
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import gradio as gr
import pandas as pd

from ...config import TrainConfig
from ...health import check as check_health
from ...policy import PolicyState
from ...reward import RewardConfig, compile_expected
from ...tasks import Task, tasks_from_rows
from ..errors import user_error, user_errors
from ...text import LocalizedError, tn
from ..i18n import knob_label, t
from ..limits import Limits
from ..runs import Run
from ..session import ModelRegistry, Session

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


def check_adapter_model(run: Run | None, model: str, lang: str = "en") -> None:
    """A run's adapter only fits the base model it was trained on."""
    if run is not None and run.training_state is not None and run.model_name not in (None, model):
        raise user_error(t("error.other_model", lang, trained=run.model_name, model=model))


def adapter_config(config: TrainConfig, state: PolicyState | None) -> TrainConfig:
    """For Compare / Evaluate: the adapter's own LoRA shape, whatever the knobs say now."""
    if state is None:
        return config
    if state.mode == "full":
        return config.replace(mode="full")
    lora = state.lora
    return config.replace(mode="lora", lora_r=lora["r"], lora_alpha=lora["alpha"],
                          lora_dropout=lora["dropout"], lora_targets=list(lora["targets"]))


def load_model(registry: ModelRegistry, model: str, lang: str = "en"):
    with user_errors(lang=lang):
        return registry.get(model)


SETUP_PREFIX = "Could not set up the policy: "  # model_work' English prefix for an unexpected error


def setup_message(message: str, lang: str = "en", error: LocalizedError | None = None) -> str:
    """A model job's error in ``lang``: its ``error``'s own sentence when it carries a catalogue
    key, else the English ``message`` the job wrote (SETUP_PREFIX and what went wrong: the
    prefix is translated; an engine sentence written in English only stays as it is)."""
    if error is not None:
        return error.in_lang(lang)
    if message.startswith(SETUP_PREFIX):
        return t("error.setup", lang, error=message[len(SETUP_PREFIX):])
    return message


@contextmanager
def model_job_errors(lang: str = "en"):
    """Around a model job's call: its gr.Error (written in English) re-raised in ``lang``."""
    try:
        yield
    except gr.Error as exc:
        if lang == "en":
            raise
        raise user_error(setup_message(html.unescape(str(exc.message)), lang)) from None


def chosen_run(session: Session, number, lang: str) -> Run | None:
    """The run Compare / Evaluate use: the one picked, else the current one (None = base model)."""
    if number in (None, "", 0):
        return session.runs.current
    with user_errors(lang=lang):
        return session.runs.get(int(number))


def check_room_for_runs(session: Session, new_runs: int, lang: str) -> None:
    """Starting ``new_runs`` runs must fit under the session's cap on kept runs."""
    runs = session.runs
    free = runs.max_runs - len(runs.runs)
    if new_runs > free:
        if new_runs == 1:
            raise user_error(t("error.max_runs", lang, limit=runs.max_runs))
        raise user_error(t("error.max_runs_plan", lang, need=new_runs, free=max(free, 0), limit=runs.max_runs))


def tell_waiting(lang: str = "en"):
    """``on_wait`` for a Compare / Evaluate / adapter load: one toast when it has to wait."""
    told: list[int] = []

    def on_wait(ahead: int) -> None:
        if not told:
            told.append(ahead)
            gr.Info(t("toast.waiting_turn", lang, ahead=ahead))
    return on_wait


# --- what the Train / Stop / Reset outputs show (also after loading an adapter) ------------

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
    warnings: list = field(default_factory=list)  # health warnings of the run so far (ppo_demo.health)


def idle_status(session: Session, lang: str = "en") -> str:
    if session.policy_state is None:
        return t("status.base", lang)
    return t("status.adapter", lang, model=session.model_name, describe=describe_state(session.policy_state, lang))


def describe_state(state, lang: str = "en") -> str:
    """'LoRA r=8 on 210 layers (2,442,240 params), 1 step trained', in ``lang``
    (PolicyState.describe is the English one for logs and the CLI)."""
    from ...policy import VALUE_HEAD_PREFIX

    steps = tn("plural.steps_trained", state.steps_trained, lang)
    if state.mode != "lora":
        return t("describe.full", lang, steps=steps)
    params = sum(v.numel() for k, v in state.tensors.items() if not k.startswith(VALUE_HEAD_PREFIX))
    return t("describe.lora", lang, r=state.lora["r"], layers=len(state.tensors) // 2 - 1, params=f"{params:,}",
             steps=steps)


def health_warnings(session: Session) -> list:
    """The current run's health warnings, each at the step where it first fired."""
    run = session.runs.current
    cap = run.knobs.get("max_new_tokens") if run is not None else None
    return check_health(session.history, cap)


def view_of(session: Session, status: str, **kw) -> TrainView:
    return TrainView(status=status, history=list(session.history), rollouts=list(session.last_rollouts),
                     tasks_expected=[task.expected for task in session.tasks], warnings=health_warnings(session),
                     **kw)
