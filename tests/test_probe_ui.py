"""The page's side of the reward probe, held-out tasks and health warnings, on ``tiny-random``
(handlers called directly, no browser; the browser test is in test_browser.py).

Run: .venv/bin/python -m pytest tests/test_probe_ui.py -q
"""

from __future__ import annotations

import json

import gradio as gr
import pytest

from ppo_demo.health import HealthWarning
from ppo_demo.ui import handlers as h
from ppo_demo.ui.limits import limits_from_env
from ppo_demo.ui.plots import chart_frame, warning_layers
from ppo_demo.ui.session import ModelRegistry, Session
from ppo_demo.ui.updates import train_chart

TINY = "tiny-random"
LIMITS = limits_from_env({"PPO_DEMO_MODEL": TINY})
TABLE = [["Say yes.", "yes", False], ["Say no.", r"\z.", False], ["Say maybe.", "maybe", True]]


@pytest.fixture(scope="module")
def registry():
    return ModelRegistry()


@pytest.fixture
def session():
    s = Session("probe-session")
    yield s
    s.close()
    if s.job is not None:
        s.job.join(30)


def knobs(**changes):
    return {**h.default_knobs(LIMITS), "steps": 2, "batch_size": 4, "num_minibatches": 2, "max_new_tokens": 6,
            **changes}


def test_the_probe_flags_a_regex_that_can_never_match_before_training(session, registry):
    md = h.probe(session, TINY, knobs(), TABLE, "regex", 0.002, registry=registry, limits=LIMITS)
    rows = [line for line in md.splitlines() if line.startswith("| ")]
    never = next(r for r in rows if r.startswith("| 2 "))
    assert "`matches_nothing`" in never and "`never_solved`" in never
    assert "| 3 [held out]" in md  # the held-out task is probed too, and marked
    assert f"{h.probe_samples(LIMITS)} answers per task from the base model" in md
    assert session.policy_state is None and session.history == []  # probing trains nothing
    zh = h.probe(session, TINY, knobs(), TABLE, "regex", 0.002, registry=registry, limits=LIMITS, lang="zh")
    assert "模式匹配不到模型说的任何内容" in zh


def test_the_probe_checks_its_input_first(session):
    with pytest.raises(gr.Error, match="is not a valid regular expression"):
        h.check_probe(session, TINY, knobs(), [["x", "(", False]], "regex", 0.002, limits=LIMITS)
    with pytest.raises(gr.Error, match="task table is empty"):
        h.check_probe(session, TINY, knobs(), [["", "", False]], "contains", 0.002, limits=LIMITS)


def test_the_table_keeps_the_held_out_column_and_training_skips_those_rows(session, registry):
    rows, _ = h.preset_tasks("english")
    assert [r[2] for r in rows].count(True) >= 3
    views = list(h.train(session, TINY, knobs(), TABLE, "contains", 0.002, registry=registry, limits=LIMITS))
    assert {r.task_index for r in views[-1].rollouts} <= {0, 1}
    assert all("heldout_success_rate" in m for m in session.history)
    md = h.probe(session, TINY, knobs(), TABLE, "contains", 0.002, registry=registry, limits=LIMITS)
    assert "answers per task from the current adapter" in md  # after training: the run's policy
    path = h.download_tasks(session, TABLE, LIMITS)
    assert open(path, encoding="utf-8").read().splitlines()[0] == "prompt,expected,held_out"
    with pytest.raises(gr.Error, match="held out"):
        h.check_train(session, TINY, knobs(), [["a", "a", True]], "contains", 0.002, limits=LIMITS)


def test_evaluate_reports_training_and_held_out_tasks_apart(session, registry):
    frame = h.evaluate(session, TINY, knobs(), TABLE, "contains", 0.002, 2, registry=registry, limits=LIMITS)
    labels = frame.iloc[:, 0].tolist()
    assert labels[2].endswith("[held out]") and labels[-2:] == ["training tasks", "held-out tasks"]
    training, held = frame.iloc[-2, 3], frame.iloc[-1, 3]
    assert training == pytest.approx(frame.iloc[:2, 3].mean(), abs=1e-3) and held == frame.iloc[2, 3]
    plain = h.evaluate(session, TINY, knobs(), TABLE[:2], "contains", 0.002, 2, registry=registry, limits=LIMITS)
    assert plain.iloc[-1, 0] == "all tasks"


def _history(n=4):
    return [dict(step=i + 1, reward_mean=0.1 * i, success_rate=0.5, heldout_success_rate=0.25, kl_mean=0.1,
                 kl_sum_mean=1.0, kl_coef=0.05) for i in range(n)]


def test_warnings_are_marked_on_the_chart_of_their_metric():
    warnings = [HealthWarning("kl_high", 3, "kl_mean", 1.2, 1.0), HealthWarning("clip_high", 2, "clip_frac", 0.4, 0.3)]
    assert [layer["data"]["values"][0]["step"] for layer in warning_layers(warnings, "kl")] == [3, 3]
    assert warning_layers(warnings, "reward") == []
    spec = json.loads(train_chart(_history(), "kl", [], "en", warnings=warnings).plot)
    def marks(layers):  # the KL chart has two y axes: a layer (line and points) per axis
        return [m for layer in layers for m in (marks(layer["layer"]) if "layer" in layer else [layer["mark"]["type"]])]

    assert marks(spec["layer"]) == ["line", "point", "line", "point", "rule", "text"]
    assert spec["layer"][-2]["encoding"]["y"] is None  # the rule spans the chart, not a series' value
    plain = json.loads(train_chart(_history(), "kl", [], "en").plot)
    assert marks(plain["layer"]) == ["line", "point", "line", "point"]


def test_the_success_chart_draws_the_held_out_tasks_apart():
    frame = chart_frame(_history(), "success", lang="en")
    assert "held-out success" in set(frame["series"]) and len(set(frame["series"])) == 2


def test_the_status_line_carries_the_latest_warning(session, registry):
    # every answer misses and no length or EOS term: every reward ties -> no_reward_variance at step 1
    table = [["Say a.", "qqqqqqqqqq", False]]
    views = list(h.train(session, TINY, knobs(missing_eos_penalty=0), table, "contains", 0.0,
                         registry=registry, limits=LIMITS))
    assert [w.name for w in views[-1].warnings] == ["no_reward_variance"]
    from ppo_demo.ui.updates import view_updates

    class Names(dict):
        def __missing__(self, key):
            return key
    updates = view_updates(Names(), views[-1], session, 0, "advantage", files=False)
    assert "⚠ 1 health warning; the latest, step 1:" in updates["status"]


def test_the_probe_job_gives_the_same_report_in_a_forked_worker(registry):
    """On ZeroGPU a model job runs in a forked worker and its result is pickled back."""
    from zerogpu_harness import run_forked

    from ppo_demo.ui import model_work

    key, config = model_work.registry_key(registry), h.build_config(knobs(), LIMITS)
    tasks, reward = h.build_tasks(TABLE, LIMITS), h.build_reward("regex", 0.002, [])

    def job(*args):
        yield model_work.probe_policy(*args)

    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same float sums in parent and child
    try:
        (forked,) = list(run_forked(job, key, TINY, config, None, tasks, reward, 2, 8))
        assert forked == model_work.probe_policy(key, TINY, config, None, tasks, reward, 2, 8)
    finally:
        torch.set_num_threads(threads)
    assert "matches_nothing" in forked.tasks[1].flags
