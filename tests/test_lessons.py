"""Lessons: every predicate against synthetic histories with and without its signal, verdicts
that state only measured numbers, the probes on a hand-made step, the seed band, and the
'lesson' command end to end on the tiny model.

Run: OMP_NUM_THREADS=1 python -m pytest tests/test_lessons.py -q
"""

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ppo_demo.config import preset_config
from ppo_demo.lessons import LESSONS, LessonError, band, fmt, get_lesson, parse_seeds, plan, repeat_with_seeds, verdict_text
from ppo_demo.lessons.core import Measure, last_mean
from ppo_demo.lessons.probes import step_probes, tied_group_fraction
from ppo_demo.text import catalogue, long_text, t
from ppo_demo.trainer import RolloutRecord

ROOT = Path(__file__).resolve().parents[1]


def hist(**series):
    """A run's history from per-metric lists of equal length: [{'step': 1, k: v0}, ...]."""
    n = len(next(iter(series.values())))
    return [{"step": i + 1, **{k: v[i] for k, v in series.items()}} for i in range(n)]


# For every lesson: arm key -> series, once with the expected signal and once without it.
SYNTHETIC = {
    "beta": (
        {"beta_zero": dict(kl_mean=[0, .1, .2, .3], reward_mean=[-1, 0, .5, .6]),
         "beta_large": dict(kl_mean=[0, .01, .02, .01], reward_mean=[-1, -.5, 0, .1])},
        {"beta_zero": dict(kl_mean=[0, .01, .01, .01], reward_mean=[-1, 0, .5, .6]),
         "beta_large": dict(kl_mean=[0, .1, .2, .3], reward_mean=[-1, -.5, 0, .1])}),
    "clip": (
        {"one_epoch": dict(approx_kl=[0, 2e-9, 0], clip_frac=[0, 0, 0], success_rate=[.5, .5, .6]),
         "clipped": dict(approx_kl=[.02, .05, .08], clip_frac=[.1, .2, .2], success_rate=[.5, .7, .8]),
         "unclipped": dict(approx_kl=[.5, 4.0, 33.0], clip_frac=[0, 0, 0], success_rate=[.5, .2, 0])},
        {"one_epoch": dict(approx_kl=[0, .01, .02], clip_frac=[0, .05, 0], success_rate=[.5, .5, .6]),
         "clipped": dict(approx_kl=[.02, .05, .08], clip_frac=[.1, .2, .2], success_rate=[.5, .7, .8]),
         "unclipped": dict(approx_kl=[.02, .04, .05], clip_frac=[0, 0, 0], success_rate=[.5, .7, .8])}),
    "kl_negative": (
        {"k_one": dict(kl_neg_frac=[0, .3, .4], kl_token_min=[0, -.7, -1.2], kl_mean=[0, .02, -.01]),
         "k_three": dict(kl_neg_frac=[0, 0, 0], kl_token_min=[0, 0, 1e-6], kl_mean=[0, .03, .05])},
        {"k_one": dict(kl_neg_frac=[0, 0, 0], kl_token_min=[0, 0, 0], kl_mean=[0, 0, 0]),
         "k_three": dict(kl_neg_frac=[0, 0, 0], kl_token_min=[0, 0, 0], kl_mean=[0, 0, 0])}),
    "critic": (
        {"gae": dict(adv_rms=[1, .6, .5, .4], adv_mean=[-.5, -.1, 0, .05], explained_variance=[-.1, .2, .3, .4]),
         "reinforce": dict(adv_rms=[1, 1, .9, 1], adv_mean=[-.5, -.4, -.2, -.1],
                           explained_variance=[math.nan] * 4)},
        {"gae": dict(adv_rms=[1, 1.2, 1.1, 1.3], adv_mean=[-.5, -.1, 0, .05], explained_variance=[-.1, -.2, -.3, -.4]),
         "reinforce": dict(adv_rms=[1, 1, .9, 1], adv_mean=[-.5, -.4, -.2, -.1],
                           explained_variance=[math.nan] * 4)}),
    "grpo_zero": (
        {"mixed": dict(tied_group_frac=[1 / 3, 2 / 3, 1 / 3], zero_adv_frac=[.3, .6, .3], approx_kl=[.01, .02, .02]),
         "never": dict(tied_group_frac=[1, 1, 1], zero_adv_frac=[1, 1, 1], approx_kl=[0, 0, 0])},
        {"mixed": dict(tied_group_frac=[1, 1, 1], zero_adv_frac=[1, 1, 1], approx_kl=[0, 0, 0]),
         "never": dict(tied_group_frac=[1, 1, 1], zero_adv_frac=[1, 1, 1], approx_kl=[0, 0, 0])}),
    "reward_hacking": (
        {"honest": dict(reward_mean=[-.5, 0, .5, .7, .8], success_rate=[.3, .4, .7, .8, .9],
                        response_length_mean=[12, 11, 9, 8, 8]),
         "hacked": dict(reward_mean=[-16.6, -15, -12, -11, -10.4], success_rate=[.33, .3, .17, .08, .17],
                        response_length_mean=[16, 15, 10, 6, 5])},
        {"honest": dict(reward_mean=[-.5, 0, .5, .7, .8], success_rate=[.3, .4, .7, .8, .9],
                        response_length_mean=[12, 11, 9, 8, 8]),
         "hacked": dict(reward_mean=[-16.6, -15, -12, -11, -10.4], success_rate=[.3, .3, .6, .8, .9],
                        response_length_mean=[16, 15, 10, 6, 5])}),
    "dropout": (
        {"no_dropout": dict(approx_kl=[0, 1e-9, 0], clip_frac=[0, 0, 0]),
         "dropout": dict(approx_kl=[0, 2e-3, 5e-3], clip_frac=[0, .01, .03])},
        {"no_dropout": dict(approx_kl=[0, 1e-3, 0], clip_frac=[0, 0, 0]),
         "dropout": dict(approx_kl=[0, 2e-4, 5e-4], clip_frac=[0, .01, .03])}),
    "length_bias": (
        {"token_mean": dict(response_length_mean=[10, 10, 9, 9, 9]),
         "seq_mean": dict(response_length_mean=[10, 12, 14, 16, 18])},
        {"token_mean": dict(response_length_mean=[10, 12, 14, 16, 18]),
         "seq_mean": dict(response_length_mean=[10, 10, 9, 9, 9])}),
}


def synthetic_runs(name, present, seeds=1, jitter=0.0):
    """Runs of a lesson from SYNTHETIC, repeated over ``seeds`` with each seed's values moved by
    seed * jitter (so several seeds give a range)."""
    arms = SYNTHETIC[name][0 if present else 1]
    return {arm: [hist(**{k: [v + s * jitter for v in vs] for k, vs in series.items()}) for s in range(seeds)]
            for arm, series in arms.items()}


def test_every_lesson_has_synthetic_cases_and_at_least_seven_lessons():
    assert set(SYNTHETIC) == set(LESSONS)
    assert len(LESSONS) >= 7
    for name, lesson in LESSONS.items():
        assert set(SYNTHETIC[name][0]) == {arm.key for arm in lesson.arms}, name


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_predicate_sees_the_signal_when_present(name):
    outcome = LESSONS[name].signal(synthetic_runs(name, present=True))
    assert outcome.observed, [c for c in outcome.checks if c.passed is False]
    assert not outcome.reasons


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_predicate_does_not_claim_an_absent_signal_and_says_why(name):
    outcome = LESSONS[name].signal(synthetic_runs(name, present=False))
    assert not outcome.observed
    assert any(c.passed is False for c in outcome.checks)
    assert "lesson.reason.one_seed" in outcome.reasons and "lesson.reason.noise" in outcome.reasons
    text = verdict_text(LESSONS[name], outcome)
    assert t("lesson.verdict.not_seen") in text and t("lesson.verdict.seen") not in text


def test_empty_or_short_runs_are_not_a_signal():
    outcome = LESSONS["beta"].signal({"beta_zero": [[]], "beta_large": [[]]})
    assert not outcome.observed  # NaN comparisons never pass
    outcome = LESSONS["reward_hacking"].signal({"honest": [hist(reward_mean=[0], success_rate=[0])],
                                                "hacked": [hist(reward_mean=[0], success_rate=[0])]})
    assert not outcome.observed and "lesson.reason.too_few_steps" in outcome.reasons
    assert outcome.measured["steps_run"] == 1


NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def numbers_outside_labels(lesson, text, lang):
    # a label names a run's knobs ("β = 0.5"), it is not a measurement; longest first, so
    # removing "β = 0" does not leave the tail of "β = 0.05"
    for label in sorted((arm.label(lang) for arm in lesson.arms), key=len, reverse=True):
        text = text.replace(label, "")
    text = text.replace(lesson.expected(lang), "")  # the expectation is written before any run
    return NUMBER.findall(text)


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("name", sorted(SYNTHETIC))
@pytest.mark.parametrize("present,seeds", [(True, 1), (False, 1), (True, 2), (False, 3)])
def test_verdict_states_only_numbers_measured_in_its_runs(name, present, seeds, lang):
    lesson = LESSONS[name]
    outcome = lesson.signal(synthetic_runs(name, present, seeds=seeds, jitter=0.013))
    text = verdict_text(lesson, outcome, lang)
    allowed = {fmt(v) for v in outcome.measured.values()}
    found = numbers_outside_labels(lesson, text, lang)
    assert found, "a verdict must state what it measured"
    assert set(found) <= allowed, set(found) - allowed
    if seeds > 1:  # the spread over seeds is reported
        assert t("lesson.verdict.spread", lang) in text


def test_honesty_check_can_fail():
    """The number check above catches a number that is not among the measured values."""
    lesson = LESSONS["beta"]
    outcome = lesson.signal(synthetic_runs("beta", True))
    text = verdict_text(lesson, outcome) + "\n- the KL fell by 42.5"
    assert not set(numbers_outside_labels(lesson, text, "en")) <= {fmt(v) for v in outcome.measured.values()}


def test_seed_ranges_that_overlap_are_named_as_noise():
    lesson = LESSONS["beta"]
    runs = {"beta_zero": [hist(kl_mean=[0, .10, .10, .10]), hist(kl_mean=[0, .02, .02, .02])],
            "beta_large": [hist(kl_mean=[0, .12, .12, .12]), hist(kl_mean=[0, .04, .04, .04])]}
    outcome = lesson.signal(runs)
    assert not outcome.observed  # mean 0.06 vs 0.08
    assert "lesson.reason.seed_noise" in outcome.reasons
    m = outcome.measured
    assert m["kl_last@beta_zero.min"] == pytest.approx(.02) and m["kl_last@beta_zero.max"] == pytest.approx(.10)
    assert m["kl_last@beta_zero"] == pytest.approx(.06)


def test_measure_averages_over_seeds_and_ignores_nan():
    m = Measure({"a": [hist(x=[1, 2, 3]), hist(x=[3, 4, 5]), hist(x=[math.nan, math.nan, math.nan])]})
    assert m.arm("x_last@a", "a", last_mean("x", 2)) == pytest.approx((2.5 + 4.5) / 2)
    assert m.measured["x_last@a.min"] == 2.5 and m.measured["x_last@a.max"] == 4.5


def record(kl, adv, score, response="x", expected="x"):
    n = len(kl)
    return RolloutRecord(task_index=0, prompt="p", expected=expected, response=response, score=score, hit=True,
                         ended_with_eos=True, tokens=["t"] * n, logprobs=[0.0] * n, ref_logprobs=[0.0] * n, kl=kl,
                         values=[0.0] * n, advantages=adv, train_advantages=adv, returns=[0.0] * n,
                         rewards=[0.0] * n)


def test_probes_on_a_hand_made_step():
    rollouts = [record([0.5, -0.2, -1e-5], [1.0, -1.0, 0.0], 1.0, "Cold.", "cold"),
                record([0.0, 0.1, 0.0], [2.0, 0.0, 0.0], 1.0, "Very cold", "cold"),
                record([-0.3], [0.0], -1.0, "hot", "cold"),
                record([0.2], [3.0], 0.5, "cold", "cold")]
    p = step_probes(rollouts, group_size=2)
    assert p["kl_neg_frac"] == pytest.approx(2 / 8)  # -1e-5 is rounding, not a negative KL
    assert p["kl_token_min"] == -0.3
    assert p["adv_rms"] == pytest.approx(math.sqrt((1 + 1 + 4 + 9) / 8))
    assert p["adv_mean"] == pytest.approx(5 / 8)
    assert p["zero_adv_frac"] == pytest.approx(4 / 8)
    assert p["tied_group_frac"] == pytest.approx(1 / 2)  # (1, 1) ties, (-1, 0.5) does not
    assert p["exact_success"] == pytest.approx(2 / 4)  # "Cold." and "cold" equal 'cold' after normalising


def test_tied_groups_need_a_group():
    assert math.isnan(tied_group_fraction([1.0, 1.0], 1))
    assert tied_group_fraction([1.0, 1.0, 1.0, 0.0, 0.0, 1.0], 3) == pytest.approx(0.5)


def test_band_over_seeds_is_mean_min_max_of_steps_every_run_reached():
    histories = [hist(x=[1.0, 2.0, 3.0]), hist(x=[3.0, 4.0]), hist(x=[2.0, math.nan])]
    assert band(histories, "x") == [(1, 2.0, 1.0, 3.0)]  # step 2 is NaN in one run, step 3 missing in two


def test_repeat_with_seeds_changes_only_the_seed():
    config = preset_config("quick-cpu", kl_coef=0.3)
    repeats = repeat_with_seeds(config, (7, 8))
    assert [c.seed for c in repeats] == [7, 8]
    for c in repeats:
        assert {k: v for k, v in c.to_dict().items() if k != "seed"} == \
               {k: v for k, v in config.to_dict().items() if k != "seed"}


def test_plan_same_seed_across_arms_and_arm_knobs_applied():
    lesson = get_lesson("clip")
    runs = plan(lesson, steps=2, seeds=(5, 6))
    assert [(r.arm.key, r.seed) for r in runs] == [(a.key, s) for s in (5, 6) for a in lesson.arms]
    unclipped = next(r for r in runs if r.arm.key == "unclipped")
    assert unclipped.config.clip_eps == 10.0 and unclipped.config.ppo_epochs == 8 and unclipped.config.steps == 2
    hacked = next(r for r in plan(get_lesson("reward_hacking")) if r.arm.key == "hacked")
    assert hacked.reward.length_penalty == 0.5
    never = next(r for r in plan(get_lesson("grpo_zero")) if r.arm.key == "never")
    assert never.config.group_size == 4 and never.reward.length_penalty == 0.0
    assert never.tasks[0].expected == "5535"


def test_bad_seeds_unknown_lesson_and_missing_knobs_are_clear_errors():
    with pytest.raises(LessonError, match="distinct whole numbers"):
        parse_seeds("1,x")
    with pytest.raises(LessonError, match="distinct"):
        parse_seeds("3,3")
    with pytest.raises(LessonError, match="Unknown lesson"):
        get_lesson("nope")
    lesson = LESSONS["length_bias"]
    if lesson.missing_knobs():
        with pytest.raises(LessonError, match="loss_agg_mode"):
            plan(lesson)


def test_every_lesson_has_its_texts_in_both_languages():
    keys = catalogue()
    for name, lesson in LESSONS.items():
        for lang in ("en", "zh"):
            assert long_text(f"lesson_{name}", lang).strip()
        assert long_text(f"lesson_{name}", "zh") != long_text(f"lesson_{name}", "en")
        for key in (f"lesson.{name}.question", f"lesson.{name}.expected",
                    *(f"lesson.arm.{a.key}" for a in lesson.arms)):
            assert key in keys, key
        outcome = lesson.signal(synthetic_runs(name, True))
        for check in outcome.checks:
            assert check.key in keys, check.key


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "ppo_demo", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_cli_lists_lessons_one_per_line():
    proc = run_cli("lesson", "--list")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == list(LESSONS)


def test_cli_runs_a_lesson_end_to_end_on_the_tiny_model(tmp_path):
    notes = tmp_path / "verdict.md"
    proc = run_cli("lesson", "dropout", "--model", "tiny-random", "--steps", "2", "--jsonl", "--markdown", str(notes))
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    steps, verdict = lines[:-1], lines[-1]
    assert [(s["arm"], s["step"]) for s in steps] == [("no_dropout", 1), ("no_dropout", 2), ("dropout", 1),
                                                      ("dropout", 2)]
    assert all(s["seed"] == 42 for s in steps) and "kl_neg_frac" in steps[0] and "reward_mean" in steps[0]
    assert verdict["event"] == "verdict" and verdict["lesson"] == "dropout"
    assert isinstance(verdict["observed"], bool)
    # the verdict's numbers are the runs' own: the largest approx KL of each arm
    assert verdict["measured"]["approx_kl_max@dropout"] == pytest.approx(
        max(s["approx_kl"] for s in steps if s["arm"] == "dropout"))
    text = notes.read_text(encoding="utf-8")
    assert text.startswith("# Lesson: ") and "| dropout off in the update | 42 | 2 |" in text


@pytest.mark.parametrize("args,message", [
    (["lesson", "nope"], "Unknown lesson"),
    (["lesson"], "Name a lesson"),
    (["lesson", "beta", "--seeds", "a"], "Seeds must be"),
    (["lesson", "beta", "--steps", "0"], "Steps must be"),
])
def test_cli_bad_lesson_input_is_one_line(args, message, capsys):
    from ppo_demo.cli import main

    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_separate_seed_ranges_in_the_wrong_direction_are_not_called_noise():
    lesson = LESSONS["beta"]
    runs = {"beta_zero": [hist(kl_mean=[0, .01, .01, .01]), hist(kl_mean=[0, .02, .02, .02])],
            "beta_large": [hist(kl_mean=[0, .12, .12, .12]), hist(kl_mean=[0, .14, .14, .14])]}
    outcome = lesson.signal(runs)
    assert not outcome.observed
    assert "lesson.reason.seed_noise" not in outcome.reasons and "lesson.reason.one_seed" not in outcome.reasons


def test_a_difference_inside_the_seed_ranges_is_not_a_signal():
    """Means in the expected order, but the ranges overlap: not seen, and seed noise is named."""
    runs = {"beta_zero": [hist(kl_mean=[0, .15, .15, .15]), hist(kl_mean=[0, .17, .17, .17])],
            "beta_large": [hist(kl_mean=[0, .14, .14, .14]), hist(kl_mean=[0, .16, .16, .16])]}
    outcome = LESSONS["beta"].signal(runs)
    assert outcome.measured["kl_last@beta_zero"] > outcome.measured["kl_last@beta_large"]
    assert not outcome.observed and "lesson.reason.seed_noise" in outcome.reasons
