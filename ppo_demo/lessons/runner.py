"""Run a lesson's arms with the real trainer, seed after seed, and read its verdict.

Order: every arm of the first seed, then every arm of the next, so a lesson stopped early
still has comparable arms. Each arm is a fresh run from the base model (the LoRA adapters are
new for every trainer) with the lesson's shared knobs, the arm's own knobs and the seed.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any, Callable

from ..config import ConfigError, TrainConfig, preset_config
from ..reward import RewardConfig
from ..tasks import TASK_PRESET_MATCH_MODE, TASK_PRESETS, Task
from .core import Arm, Lesson, LessonError, Outcome, Runs
from .probes import step_probes


@dataclass
class ArmRun:
    """What one arm needs to be trained: its config, tasks and reward."""

    arm: Arm
    seed: int
    config: TrainConfig
    tasks: list[Task]
    reward: RewardConfig


@dataclass
class LessonResult:
    lesson: Lesson
    runs: Runs  # arm key -> one history per seed (each step's metrics plus the probes)
    outcome: Outcome
    seconds: float
    seeds: tuple[int, ...] = ()  # the seeds each arm ran with, in order


def get_lesson(name: str) -> Lesson:
    from .library import LESSONS

    if name not in LESSONS:
        raise LessonError("lesson.error.unknown", name=name, names=", ".join(LESSONS))
    return LESSONS[name]


def parse_seeds(text: str) -> tuple[int, ...]:
    """'1,2,3' -> (1, 2, 3); each a valid seed knob, no repeats."""
    try:
        seeds = tuple(int(part) for part in str(text).split(",") if part.strip())
    except ValueError:
        raise LessonError("lesson.error.seeds", value=text) from None
    if not seeds or len(set(seeds)) != len(seeds) or any(not (0 <= s < 2**31) for s in seeds):
        raise LessonError("lesson.error.seeds", value=text)
    return seeds


def repeat_with_seeds(config: TrainConfig, seeds: tuple[int, ...]) -> list[TrainConfig]:
    """The same run with other seeds: one config per seed, every other knob unchanged."""
    return [config.replace(seed=int(seed)) for seed in seeds]


def plan(lesson: Lesson, steps: int | None = None, seeds: tuple[int, ...] | None = None) -> list[ArmRun]:
    """Every run of the lesson, in the order they train. Raises LessonError when this build
    lacks a knob the lesson needs, ConfigError for bad knobs."""
    missing = lesson.missing_knobs()
    if missing:
        raise LessonError("lesson.error.needs_knob", lesson=lesson.name, knobs=", ".join(missing))
    if steps is not None and steps < 1:
        raise LessonError("lesson.error.steps", steps=steps)
    runs = []
    for seed in seeds or lesson.seeds:
        for arm in lesson.arms:
            knobs = {**lesson.shared, **arm.overrides, "steps": steps or lesson.steps, "seed": seed}
            config = preset_config(lesson.preset, **knobs)
            tasks = list(arm.tasks) if arm.tasks is not None else _lesson_tasks(lesson)
            match = TASK_PRESET_MATCH_MODE.get(lesson.tasks, "contains") if isinstance(lesson.tasks, str) else "contains"
            reward = RewardConfig.from_dict({"match_mode": match, **lesson.reward, **arm.reward})
            runs.append(ArmRun(arm, seed, config, tasks, reward))
    return runs


def _lesson_tasks(lesson: Lesson) -> list[Task]:
    if isinstance(lesson.tasks, str):
        return list(TASK_PRESETS[lesson.tasks])
    return list(lesson.tasks)


def arm_metrics(result, config: TrainConfig) -> dict[str, Any]:
    """A step's metrics plus the probes a lesson reads (see probes.py)."""
    return {**result.metrics, **step_probes(result.rollouts, config.group_size)}


def judge(lesson: Lesson, runs: Runs) -> Outcome:
    return lesson.signal(runs)


def run_lesson(lesson: Lesson, loaded, *, steps: int | None = None, seeds: tuple[int, ...] | None = None,
               on_step: Callable[[ArmRun, dict], None] | None = None,
               stop_event: threading.Event | None = None) -> LessonResult:
    """Train every arm (seed after seed), collecting each step's metrics and probes, then
    judge. ``on_step(arm_run, metrics)`` is called after every step (the CLI prints there)."""
    import time

    from ..trainer import PPOTrainer

    started = time.perf_counter()
    seeds = tuple(seeds or lesson.seeds)
    runs: Runs = {arm.key: [] for arm in lesson.arms}
    for arm_run in plan(lesson, steps, seeds):
        if stop_event is not None and stop_event.is_set():
            break
        trainer = PPOTrainer(loaded, arm_run.config, arm_run.tasks, arm_run.reward)
        history: list[dict] = []
        runs[arm_run.arm.key].append(history)
        for result in trainer.train(stop_event=stop_event):
            metrics = arm_metrics(result, arm_run.config)
            history.append(metrics)
            if on_step is not None:
                on_step(arm_run, metrics)
        del trainer
    return LessonResult(lesson, runs, judge(lesson, runs), time.perf_counter() - started, seeds)


def band(histories: list[list[dict]], key: str) -> list[tuple[int, float, float, float]]:
    """Per step, over runs repeated with other seeds: (step, mean, min, max) of ``key`` (steps
    every run reached and measured as a finite number)."""
    by_step: dict[int, list[float]] = {}
    for history in histories:
        for m in history:
            v = m.get(key)
            if isinstance(v, (int, float)) and math.isfinite(v):
                by_step.setdefault(int(m.get("step", 0)), []).append(float(v))
    return [(step, sum(vs) / len(vs), min(vs), max(vs)) for step, vs in sorted(by_step.items())
            if len(vs) == len(histories)]


__all__ = ["ArmRun", "LessonResult", "get_lesson", "parse_seeds", "repeat_with_seeds", "plan", "run_lesson",
           "judge", "band", "ConfigError"]
