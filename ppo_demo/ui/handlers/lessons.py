"""The Lessons tab: run a lesson's arms as runs of the session (fair turns, the compute budget
and the run cap apply as for Train), then judge them and write the verdict.

Each arm starts a new run from the base model, with the lesson's knobs, tasks and reward (not
the Lab's). After every step the run's last rollouts give the probes the lesson reads (see
:mod:`ppo_demo.lessons.probes`); they go into that step's metrics, so the Runs tab can overlay
them and the all-runs CSV carries them.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Iterator

from ...lessons import LESSONS, LessonError, get_lesson, plan, verdict_text
from ...lessons.export import lesson_markdown
from ...lessons.probes import step_probes
from ...lessons.runner import LessonResult
from ..errors import user_error, user_errors
from ..i18n import t
from ..limits import Limits
from ..model_work import TrainRequest, registry_key
from ..session import ModelRegistry, Session
from .common import build_config, check_room_for_runs, load_model, view_of
from .train import _train_run


def lesson_choices(lang: str = "en") -> list[tuple[str, str]]:
    """(question in ``lang``, name) of every lesson this build can run."""
    return [(lesson.question(lang), name) for name, lesson in LESSONS.items() if not lesson.missing_knobs()]


def lesson_intro(name: str, lang: str = "en") -> str:
    """The lesson's explanation (Markdown, with its formulas)."""
    try:
        return get_lesson(name).explanation(lang)
    except LessonError:
        return ""


def check_lesson(session: Session, name: str, limits: Limits, lang: str = "en"):
    """Every check before the model is touched: nothing running, a known lesson, room for its runs."""
    if session.running:
        raise user_error(t("error.already_running", lang))
    try:
        lesson = get_lesson(name)
        arm_runs = plan(lesson)
    except LessonError as exc:
        raise user_error(exc.in_lang(lang)) from None
    for arm_run in arm_runs:  # the server's caps (steps, batch, tokens...) apply to a lesson's knobs too
        build_config(arm_run.config.to_dict(), limits, lang)
    check_room_for_runs(session, len(arm_runs), lang)
    return lesson, arm_runs


def run_lesson(session: Session, model: str, name: str, *, registry: ModelRegistry, limits: Limits,
               lang: str = "en") -> Iterator[tuple]:
    """Stream (TrainView, verdict Markdown or None, runs of the lesson) per step; the last item
    carries the verdict. A stopped lesson still gets a verdict over what ran (it then says too
    few steps)."""
    lesson, arm_runs = check_lesson(session, name, limits, lang)
    session.runs.planned = []
    if not registry.is_loaded(model):
        yield view_of(session, t("status.model_loading", lang, model=model), running=True), None, []
    load_model(registry, model, lang)
    budget_left = limits.max_run_seconds  # the lesson's runs share one press's budget, as the KL demo's
    histories: dict[str, list[list[dict]]] = {arm.key: [] for arm in lesson.arms}
    numbers: list[int] = []
    for arm_run in arm_runs:
        config = arm_run.config
        reward_settings = {"match_mode": arm_run.reward.match_mode, "length_penalty": arm_run.reward.length_penalty}
        with user_errors(lang=lang):
            run = session.runs.start(config.to_dict(), reward_settings, arm_run.tasks, model)
        numbers.append(run.number)
        histories[arm_run.arm.key].append(run.history)
        request = TrainRequest(registry_key(registry), model, config, arm_run.tasks, arm_run.reward, None,
                               config.steps)
        steps, probed = _train_run(session, run, request, {}, lang, budget_left), 0
        while True:
            try:
                view = next(steps)
            except StopIteration as done:
                outcome, spent = done.value
                break
            if len(run.history) > probed and run.last_rollouts:  # the rollouts recorded with the latest step
                run.history[-1].update(step_probes(run.last_rollouts, config.group_size))
                probed = len(run.history)
            yield view, None, numbers
        if outcome != "done":
            break
        if budget_left is not None:
            budget_left = max(budget_left - spent, 1.0)
    seconds = sum(r.seconds for r in session.runs.runs if r.number in numbers)
    result = LessonResult(lesson, histories, lesson.signal(histories), seconds, tuple(lesson.seeds))
    session.lesson_result = result
    verdict = verdict_text(lesson, result.outcome, lang)
    yield view_of(session, t("lesson.ui.done", lang), finished=True), verdict, numbers


def export_lesson(session: Session, model: str, lang: str = "en") -> str | None:
    """The last lesson's verdict with its numbers and explanation, as Markdown for class notes."""
    result = getattr(session, "lesson_result", None)
    if result is None:
        return None
    target = Path(tempfile.mkdtemp(dir=session.files_dir())) / f"lesson-{result.lesson.name}.md"
    target.write_text(lesson_markdown(result, lang, model=model), encoding="utf-8")
    return str(target)
