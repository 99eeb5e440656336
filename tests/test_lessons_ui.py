"""The Lessons tab's handlers on ``tiny-random``: a lesson's arms become runs of the session,
each step's metrics gain the probes, and the verdict is computed from those runs.

Run: OMP_NUM_THREADS=1 python -m pytest tests/test_lessons_ui.py -q
"""

from __future__ import annotations

import gradio as gr
import pytest

from ppo_demo.lessons import LESSONS
from ppo_demo.ui.handlers import lessons as hl
from ppo_demo.ui.limits import limits_from_env
from ppo_demo.ui.session import ModelRegistry, Session

TINY = "tiny-random"
LIMITS = limits_from_env({"PPO_DEMO_MODEL": TINY})


@pytest.fixture
def session():
    s = Session("lesson-session")
    yield s
    s.close()
    if s.job is not None:
        s.job.join(30)


def test_a_lesson_runs_its_arms_as_runs_and_writes_a_verdict_from_them(session):
    lesson = LESSONS["dropout"]
    items = list(hl.run_lesson(session, TINY, "dropout", registry=ModelRegistry(), limits=LIMITS))
    view, verdict, numbers = items[-1]
    assert view.finished and verdict is not None
    runs = session.runs.runs
    assert len(runs) == len(lesson.arms) == len(numbers)
    assert [r.knobs["dropout_in_ppo"] for r in runs] == [False, True]
    assert all(r.steps == lesson.steps for r in runs) and len({r.knobs["seed"] for r in runs}) == 1
    assert all("kl_neg_frac" in m and "adv_rms" in m for r in runs for m in r.history)  # probes on every step
    measured = session.lesson_result.outcome.measured
    assert measured["approx_kl_max@dropout"] == max(m["approx_kl"] for m in runs[1].history)
    assert ("✓" in verdict) or ("✗" in verdict)
    markdown = open(hl.export_lesson(session, TINY), encoding="utf-8").read()
    assert markdown.startswith("# Lesson: ") and "| dropout off in the update |" in markdown


def test_a_lesson_needs_room_for_its_runs_and_an_idle_tab(session):
    session.runs.max_runs = 1
    with pytest.raises(gr.Error):
        hl.check_lesson(session, "clip", LIMITS)
    with pytest.raises(gr.Error, match="Unknown lesson"):
        hl.check_lesson(session, "nope", LIMITS)


def test_lesson_choices_are_questions_in_the_pages_language():
    names = [name for _, name in hl.lesson_choices("zh")]
    assert "clip" in names and all(not LESSONS[n].missing_knobs() for n in names)
    assert dict((n, q) for q, n in hl.lesson_choices("zh"))["clip"] == "为什么要裁剪（clip）？"


def test_the_servers_caps_apply_to_a_lessons_knobs(session):
    capped = limits_from_env({"PPO_DEMO_MODEL": TINY, "PPO_DEMO_MAX_STEPS": "2"})
    with pytest.raises(gr.Error, match="2"):
        hl.check_lesson(session, "clip", capped)
