"""A session's runs: each the sequence of steps from the base model to now, kept side by side.

Reset starts a new run (the previous one is kept); Train after Stop continues the current one.
A :class:`Run` keeps what it was trained with (knobs, reward settings, tasks, model), what it
measured (one metrics dict per step) and what it trained (``training_state``: whatever the
session trains, a ``PolicyState`` today, maybe with optimizer moments later; this module never
looks inside it). Its name says what differs from the session's first run (run 1: from the
page's start settings), the most telling settings first ("run 3 · Advantage estimator GRPO,
Group size G 4"), so a legend answers "which curve was which?" by itself; a person may rename it.

:class:`RunBook` is one session's list: start, continue, delete, a cap on how many are kept (each
holds an adapter in memory), a summary table, one CSV of every run's metrics with its knobs, and
overlay frames (one series per run) for the plots. Display strings take a ``lang`` ('en'/'zh').
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import pandas as pd

from ..config import all_knob_fields
from ..tasks import Task
from ..text import LocalizedError, has, tn
from .i18n import knob_label, t
from .plots import PLOTTED_METRICS, SHARE_METRICS, line_chart, series_name

# Knobs that change memory or time but not the numbers (same updates): never a difference.
SAME_RESULTS_KNOBS = frozenset({"micro_batch_tokens", "gradient_checkpointing", "max_bad_updates"})
# Steps is how long one Train press goes, not what a run is (the table shows each run's steps).
NOT_IN_NAMES = SAME_RESULTS_KNOBS | {"steps"}
NAME_DIFFS = 3  # a name lists at most this many differences, then "+N more"
# The settings a lesson varies, most telling first: a name lists these before any other, so the
# one that matters is never the one cut ("+N more"). The rest follow in the knobs' order.
NAME_PRIORITY = ("advantage_estimator", "kl_coef", "clip_eps", "ppo_epochs", "length_penalty", "match_mode",
                 "kl_in", "kl_target", "mode", "learning_rate", "group_size", "lora_r", "tasks", "model")
MAX_TITLE_CHARS = 60
DEFAULT_MAX_RUNS = 6
KL_DEMO_BETAS = (0.0, 0.05, 0.5)
NEAR_RUN_CAP = 2  # the next-press line counts the runs left once this few are
FINAL_STEPS = 3  # the Runs table's final values: the mean of this many last steps (one batch is noisy)


class RunsError(LocalizedError):
    """A request about runs that cannot be done; ``key``/``values`` give the message in any language."""


def format_value(value: Any, lang: str = "en", knob: str = "") -> str:
    """A knob value as a person writes it: 0.5, 1e-04, on, q_proj, v_proj; an optional knob left
    empty (None, e.g. no Target KL) is "off"; an option of ``knob`` by its name in ``lang``
    ('GRPO (group mean)')."""
    if knob and isinstance(value, str) and has(f"option.{knob}.{value}"):
        return t(f"option.{knob}.{value}", lang)
    if value is None:
        return t("run.off", lang)
    if isinstance(value, bool):
        return t("run.on" if value else "run.off", lang)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def duration(seconds: float, lang: str = "en") -> str:
    """'42 s', '3 min 05 s' (the Runs table's time per run)."""
    seconds = int(round(seconds))
    if seconds < 60:
        return t("duration.seconds", lang, s=seconds)
    return t("duration.minutes", lang, m=seconds // 60, s=seconds % 60)


def knob_differences(before: dict[str, Any], after: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """knob -> (before, after) for every setting that changes the numbers, in the knobs' order.
    A setting ``before`` does not know (e.g. a knob added since) is not a difference."""
    known = [f.name for f in all_knob_fields()] + ["tasks", "model"]
    known = [n for n in NAME_PRIORITY if n in known] + [n for n in known if n not in NAME_PRIORITY]
    order = known + sorted(set(after) - set(known))
    diffs = {}
    for name in order:
        if name in NOT_IN_NAMES or name not in after or name not in before:
            continue
        old, new = before.get(name), after[name]
        if isinstance(old, tuple) or isinstance(new, tuple):
            old, new = list(old or []), list(new)
        if old != new:
            diffs[name] = (before.get(name), after[name])
    return diffs


def describe_differences(diffs: dict[str, tuple[Any, Any]], lang: str = "en", limit: int | None = None) -> str:
    """'KL coef β 0.5, Seed 7' (new values; at most ``limit`` of them, then '+N more')."""
    parts = []
    for name, (_, new) in diffs.items():
        if name == "tasks":
            parts.append(t("run.tasks_changed", lang))
        elif name == "model":
            parts.append(t("run.model", lang, model=new))
        else:
            parts.append(f"{knob_label(name, lang)} {format_value(new, lang, name)}")
    if limit is not None and len(parts) > limit:
        parts = parts[:limit] + [t("run.more", lang, n=len(parts) - limit)]
    return ", ".join(parts)


@dataclass
class Run:
    """One run: from the base model, through every step trained since, to its latest state."""

    number: int  # 1, 2, 3... in the order started; never reused within a session
    knobs: dict[str, Any]  # TrainConfig.to_dict() as last trained with
    reward: dict[str, Any]  # the reward's settings (match_mode, length_penalty)
    tasks: list[Task]
    model_name: str
    differs: dict[str, tuple[Any, Any]]  # what differs from the session's first run (or the start settings)
    history: list[dict] = field(default_factory=list)  # one metrics dict per step
    training_state: Any = None  # what the session trains; None = nothing trained yet (the base model)
    last_rollouts: list = field(default_factory=list)  # the latest step's records (heatmap, table)
    changes: list[tuple[int, dict[str, tuple[Any, Any]]]] = field(default_factory=list)  # (first step, diffs)
    title: str = ""  # a name a person gave it ("GRPO"); empty = named by what differs

    @property
    def steps(self) -> int:
        return len(self.history)

    @property
    def seconds(self) -> float:
        """Training time: the steps' own durations (time waiting for the model is not counted)."""
        return sum(float(m.get("step_seconds", 0.0)) for m in self.history)

    def name(self, lang: str = "en") -> str:
        """'run 3 · KL coef β 0.5': the number and what differs from the session's first run (or
        the title a person gave it: 'run 3 · GRPO')."""
        label = t("run.name", lang, number=self.number)
        if self.title:
            return f"{label} · {self.title}"
        if not self.differs:
            return label
        return f"{label} · {describe_differences(self.differs, lang, limit=NAME_DIFFS)}"

    def settings(self) -> dict[str, Any]:
        """Everything a difference is measured on: knobs, reward settings, tasks, model."""
        return {**self.knobs, **self.reward, "tasks": list(self.tasks), "model": self.model_name}

    def final(self, key: str) -> float:
        """The last step's value of a metric (NaN before the first step or if never measured)."""
        for metrics in reversed(self.history):
            value = metrics.get(key)
            if _finite(value):
                return float(value)
        return math.nan

    def final_mean(self, key: str, k: int) -> float:
        """The mean of a metric over the last ``k`` steps that measured it (NaN if none did)."""
        values = [float(m[key]) for m in self.history if _finite(m.get(key))][-k:]
        return sum(values) / len(values) if values else math.nan

    def knobs_at(self, step_index: int) -> dict[str, Any]:
        """The knobs in effect for the ``step_index``-th step (0-based) of this run."""
        knobs = dict(self.knobs)
        for first, diffs in reversed(self.changes):  # undo the changes made after this step
            if step_index < first:
                knobs.update({name: old for name, (old, _) in diffs.items()})
        return knobs


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class RunBook:
    """One session's runs, the current one last started. Not thread-safe on its own: the session's
    training job and its event handlers take turns (a handler refuses to change runs while a job
    runs)."""

    def __init__(self, start_settings: dict[str, Any] | None = None, max_runs: int = DEFAULT_MAX_RUNS,
                 keep_for_comparison: Callable[[Any], Any] = lambda state: state,
                 budget_seconds: float | None = None):
        if max_runs < 1:
            raise ValueError("max_runs must be at least 1")
        self.start_settings = dict(start_settings or {})  # run 1 is named by what differs from these
        # Later runs are named by what differs from the session's first run (kept if it is deleted).
        self.first_settings: dict[str, Any] | None = None
        self.max_runs = max_runs
        self.budget_seconds = budget_seconds  # the server's compute budget per Train press (None: none)
        # Applied to a run's state when it stops being current: it can no longer be continued, only
        # compared, so e.g. optimizer moments may be dropped here to save memory.
        self.keep_for_comparison = keep_for_comparison
        self.runs: list[Run] = []
        self.current: Run | None = None  # None after Reset: the next Train starts a new run
        self.planned: list[dict[str, Any]] = []  # knob overrides of queued runs (the KL demo)
        # The runs a queue trained: the Runs tab shows just these after it (a longer run 1 would
        # stretch the steps axis of an 8-step demo); empty after an ordinary press.
        self.focus: list[int] = []
        self._next_number = 1

    # --- life of a run ------------------------------------------------------------------
    def begin(self, knobs: dict[str, Any], reward: dict[str, Any], tasks: list[Task], model_name: str) -> Run:
        """The run a Train press trains: the current one, or a new one after Reset.

        Continuing with changed settings is allowed (the run records from which step they
        changed); :meth:`pending_changes` says beforehand what would change, for a warning.
        """
        if self.current is not None:
            changes = self.pending_changes(knobs, reward, tasks, model_name)
            if changes:
                self.current.changes.append((self.current.steps, changes))
                self.current.knobs, self.current.reward = dict(knobs), dict(reward)
                self.current.tasks, self.current.model_name = list(tasks), model_name
            return self.current
        return self.start(knobs, reward, tasks, model_name)

    def start(self, knobs: dict[str, Any], reward: dict[str, Any], tasks: list[Task], model_name: str) -> Run:
        """A new run from the base model, named by what differs from the session's first run (the
        first run itself: from the start settings)."""
        if len(self.runs) >= self.max_runs:
            raise RunsError("error.max_runs", limit=self.max_runs)
        self.close_current()
        before = self.first_settings or {**self.start_settings, "tasks": list(tasks), "model": model_name}
        run = Run(number=self._next_number, knobs=dict(knobs), reward=dict(reward), tasks=list(tasks),
                  model_name=model_name, differs={})
        run.differs = knob_differences(before, run.settings())
        if self.first_settings is None:
            self.first_settings = run.settings()
        self._next_number += 1
        self.runs.append(run)
        self.current = run
        return run

    def pending_changes(self, knobs, reward, tasks, model_name) -> dict[str, tuple[Any, Any]]:
        """What continuing the current run with these settings would change ({} if nothing)."""
        if self.current is None:
            return {}
        return knob_differences(self.current.settings(),
                                {**knobs, **reward, "tasks": list(tasks), "model": model_name})

    @staticmethod
    def record_step(run: Run, metrics: dict, training_state: Any = None, rollouts: list | None = None) -> None:
        """A step's metrics and the state after it, together, so the plots and the adapter never
        disagree about how far the run got. ``training_state=None``: the state did not come with
        this step (a full fine-tune's weights come with the run's last step only)."""
        run.history.append(dict(metrics))
        if training_state is not None:
            run.training_state = training_state
        if rollouts is not None:
            run.last_rollouts = list(rollouts)

    def close_current(self) -> None:
        """Reset: the current run is kept for comparison and the next Train starts a new one."""
        if self.current is not None:
            if self.current.steps == 0 and self.current.training_state is None:
                self.runs.remove(self.current)  # a run that never trained a step is nothing to keep
            else:
                self.current.training_state = self.keep_for_comparison(self.current.training_state)
            self.current = None

    def delete(self, number: int) -> Run:
        run = self.get(number)
        self.runs.remove(run)
        if run is self.current:
            self.current = None
        return run

    def get(self, number: int) -> Run:
        for run in self.runs:
            if run.number == number:
                return run
        raise RunsError("error.no_such_run", number=number)

    def rename(self, number: int, title: str) -> Run:
        """Give a run a name of its own ('' goes back to the name by differences)."""
        title = " ".join(str(title or "").split())
        if len(title) > MAX_TITLE_CHARS:
            raise RunsError("error.run_title_long", limit=MAX_TITLE_CHARS, n=len(title))
        run = self.get(number)
        run.title = title
        return run

    def trained(self) -> list[Run]:
        """The runs with at least one step (what a table, a plot or Compare can show)."""
        return [run for run in self.runs if run.steps]

    def clear(self) -> None:
        self.runs, self.current, self.planned, self.first_settings = [], None, [], None

    # --- a queue of runs (the KL demo) --------------------------------------------------
    def plan(self, overrides: list[dict[str, Any]]) -> None:
        """Queue runs: each Train of the queue starts a new run with these knobs changed."""
        free = self.max_runs - len(self.runs) + (1 if self.current is not None and not self.current.steps else 0)
        if len(overrides) > free:
            raise RunsError("error.max_runs_plan", need=len(overrides), free=max(free, 0), limit=self.max_runs)
        self.planned = [dict(o) for o in overrides]

    # --- what a person reads --------------------------------------------------------------
    def can_train(self) -> bool:
        """Whether a Train press now is allowed by the cap on kept runs (said before the press)."""
        if self.planned:
            return len(self.planned) <= self.max_runs - len(self.runs)
        return self.current is not None or len(self.runs) < self.max_runs

    def next_press(self, steps: int, lang: str = "en") -> str:
        """One sentence: what pressing Train now will do, with the limits it will meet (the cap on
        kept runs, the compute budget per press), so nobody learns of them only after pressing."""
        if not self.can_train():
            return t("next.run_cap", lang, limit=self.max_runs)
        if self.planned:
            names = ", ".join(describe_differences({k: (None, v) for k, v in o.items()}, lang) for o in self.planned)
            sentence = t("next.plan", lang, n=len(self.planned), names=names)
        elif self.current is None:
            name = t("run.name", lang, number=self._next_number)
            sentence = tn("plural.next_start", steps, lang, run=name)
            left = self.max_runs - len(self.runs)
            if left <= NEAR_RUN_CAP:
                sentence += " " + t("next.runs_left", lang, left=left, limit=self.max_runs)
        else:
            run = self.current
            done = run.history[-1].get("step", run.steps) if run.history else 0
            sentence = tn("plural.next_continue", steps, lang, run=run.name(lang), first=done + 1,
                          last=done + steps)
        if self.budget_seconds:
            sentence += " " + t("next.budget", lang, seconds=f"{self.budget_seconds:g}")
        return sentence

    def summary(self, lang: str = "en") -> pd.DataFrame:
        """One row per run, for a class: name, what differs, steps, then the reward, success rate
        (in %) and KL per token as the mean of the last :data:`FINAL_STEPS` steps (one batch is
        noisy), and the run's training time."""
        k = FINAL_STEPS
        headers = [t("header.run", lang), t("header.differs", lang), t("header.steps", lang),
                   t("header.mean_reward_last", lang, k=k), t("header.mean_success_last", lang, k=k),
                   t("header.mean_kl_last", lang, k=k), t("header.time", lang)]
        rows = []
        for run in self.runs:
            differs = describe_differences(run.differs, lang) or t("run.start_settings", lang)
            for first, diffs in run.changes:
                differs += "; " + t("run.changed_at", lang, changes=describe_differences(diffs, lang), step=first + 1)
            name = run.name(lang) + (f" ({t('run.current', lang)})" if run is self.current else "")
            success = run.final_mean("success_rate", k)
            rows.append([name, differs, run.steps, round(run.final_mean("reward_mean", k), 3),
                         "" if math.isnan(success) else f"{success:.0%}", round(run.final_mean("kl_mean", k), 4),
                         duration(run.seconds, lang)])
        return pd.DataFrame(rows, columns=headers)

    def metrics_csv(self, lang: str = "en") -> str:
        """Every step of every run, one row each: run, its knobs at that step, then the metrics."""
        if not any(run.history for run in self.runs):
            return "run,step\n"
        rows = []
        for run in self.runs:
            for index, metrics in enumerate(run.history):
                knobs = {k: format_value(v) if isinstance(v, (list, tuple)) else v
                         for k, v in run.knobs_at(index).items()}
                rows.append({"run": run.name(lang), "run_number": run.number, "model": run.model_name,
                             **knobs, **run.reward, **metrics})
        frame = pd.DataFrame(rows)
        knob_names = [f.name for f in all_knob_fields() if f.name in frame.columns]
        first = ["run", "run_number", "model", *knob_names, "step"]
        metric_names = sorted(c for c in frame.columns if c not in first)
        return frame[first + metric_names].to_csv(index=False)

    def overlay_frame(self, metric: str, numbers: list[int] | None = None, lang: str = "en") -> pd.DataFrame:
        """Long frame (step, value, series) with one series per chosen run (all if ``numbers`` is None)."""
        rows = []
        for run in self.runs:
            if numbers is not None and run.number not in numbers:
                continue
            for metrics in run.history:
                value = metrics.get(metric)
                if _finite(value):
                    rows.append((int(metrics.get("step", 0)), float(value), run.name(lang)))
        return pd.DataFrame(rows, columns=["step", "value", "series"]).astype(
            {"step": "int64", "value": "float64", "series": "str"})

    def run_styles(self, lang: str = "en") -> dict[str, int]:
        """series name -> style index: a run keeps its colour and marker when others are hidden."""
        return {run.name(lang): run.number - 1 for run in self.runs}

    def metric_choices(self) -> list[str]:
        """Metric keys any run measured as numbers, the plotted ones first."""
        seen = {k for run in self.runs for m in run.history for k, v in m.items()
                if _finite(v) and k != "step" and not k.startswith("task_reward/")}
        return [k for k in PLOTTED_METRICS if k in seen] + sorted(seen - set(PLOTTED_METRICS))


    def metric_options(self, lang: str = "en") -> list[tuple[str, str]]:
        """(name in ``lang``, metric key) for the overlay's metric picker."""
        return [(series_name(metric, lang), metric) for metric in self.metric_choices() or PLOTTED_METRICS[:3]]

    def run_options(self, lang: str = "en") -> list[tuple[str, int]]:
        """(name, number) of every trained run, for the pickers (show, compare, delete)."""
        return [(run.name(lang), run.number) for run in self.trained()]

    def overlay_chart(self, metric: str, numbers: list[int] | None = None, lang: str = "en") -> dict:
        """The overlay plot's spec: ``metric`` of each chosen run, one colour and marker per run."""
        frame = self.overlay_frame(metric, numbers, lang)
        return line_chart(frame, styles=self.run_styles(lang), y_title=series_name(metric, lang),
                          share=metric in SHARE_METRICS, lang=lang, legend_columns=2,
                          title=t("overlay.title", lang, metric=series_name(metric, lang)))


def kl_demo_plan(betas: tuple[float, ...] = KL_DEMO_BETAS) -> list[dict[str, Any]]:
    """The classic demonstration: the same seed and knobs, only the KL coefficient β changes.
    With β = 0 the reward climbs fastest and the KL to the reference grows unchecked; with a large
    β the policy stays near the reference and learns slower."""
    return [{"kl_coef": float(beta)} for beta in betas]
