"""Live health warnings: each fires on a constructed run that shows its problem and stays quiet on
its near miss; none fires on the recorded default quick-CPU run of the English tasks.

The fixture ``tests/fixtures/quick_cpu_english_metrics.jsonl`` is the step lines of
``python -m ppo_demo train --preset quick-cpu --task-preset english --eval-samples 8 --jsonl``
(embedded SmolLM2-135M-Instruct, 20 steps) on an Intel Xeon (AVX-512 + AMX), 2 cores,
OMP_NUM_THREADS=1.

Run: OMP_NUM_THREADS=1 python -m pytest tests/test_health.py -q
"""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from ppo_demo.health import RULES, RULES_BY_NAME, check, new_warnings, rules_markdown
from ppo_demo.text import t

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "quick_cpu_english_metrics.jsonl"
CAP = 16


def healthy(n=16):
    """A run that learns: success and reward rise together, KL grows slowly and levels off."""
    history = []
    for i in range(n):
        success = min(1.0, 0.3 + 0.05 * i)
        history.append(dict(step=i + 1, samples=12, kl_mean=min(0.3, 0.03 * i), entropy=1.5 - 0.05 * i,
                            clip_frac=0.1, value_loss=0.2, explained_variance=0.3, reward_mean=2 * success - 1,
                            reward_std=0.8, success_rate=success, response_length_mean=8.0))
    return history


def with_values(history, key, values, start=1):
    """``history`` with ``key`` set to ``values`` from step ``start`` on."""
    history = [dict(m) for m in history]
    for offset, value in enumerate(values):
        history[start - 1 + offset][key] = value
    return history


def names(history, cap=CAP):
    return {w.name for w in check(history, cap)}


def fired(history, name, cap=CAP):
    return next((w for w in check(history, cap) if w.name == name), None)


def test_a_healthy_run_has_no_warning():
    assert check(healthy(), CAP) == []


def test_the_default_quick_cpu_english_run_has_no_warning():
    history = [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()]
    assert [m["step"] for m in history] == list(range(1, 21))
    assert all("heldout_success_rate" in m for m in history)  # the preset as shipped, held-out tasks too
    assert check(history, CAP) == []


def test_kl_high():
    w = fired(with_values(healthy(), "kl_mean", [1.2, 1.3, 1.2], start=5), "kl_high")
    assert w is not None and w.step == 7 and w.value == 1.2
    assert "kl_high" not in names(with_values(healthy(), "kl_mean", [1.2, 1.3, 0.9, 1.2], start=5))


def test_kl_growing():
    growing = with_values(healthy(), "kl_mean", [0.05 * 1.35 ** i for i in range(16)])
    assert fired(growing, "kl_growing") is not None
    assert "kl_growing" not in names(with_values(healthy(), "kl_mean", [0.8] * 16))  # high but level
    small = with_values(healthy(), "kl_mean", [0.005 * 1.35 ** i for i in range(16)])  # grows, stays < 0.5
    assert "kl_growing" not in names(small)


def test_entropy_collapse_only_before_the_tasks_are_solved():
    stuck = with_values(with_values(healthy(), "success_rate", [0.2] * 16), "entropy", [0.05] * 12, start=5)
    stuck = with_values(stuck, "reward_mean", [-0.6] * 16)
    assert fired(stuck, "entropy_collapse").step == 5
    solved = with_values(with_values(healthy(), "success_rate", [1.0] * 16), "entropy", [0.05] * 12, start=5)
    assert "entropy_collapse" not in names(solved)


def test_clip_high_must_persist():
    assert fired(with_values(healthy(), "clip_frac", [0.4, 0.5, 0.4], start=3), "clip_high").step == 5
    assert "clip_high" not in names(with_values(healthy(), "clip_frac", [0.4, 0.4, 0.2, 0.4], start=3))


@pytest.mark.parametrize("bad", [math.nan, math.inf, None])
def test_value_nonfinite_with_a_critic(bad):
    assert fired(with_values(healthy(), "value_loss", [bad], start=4), "value_nonfinite").step == 4


def test_a_critic_free_run_reports_no_value_loss_and_gets_no_warning():
    critic_free = with_values(with_values(healthy(), "value_loss", [math.nan] * 16), "explained_variance",
                              [math.nan] * 16)
    assert check(critic_free, CAP) == []


def test_explained_variance_very_negative_after_warm_up():
    assert fired(with_values(healthy(), "explained_variance", [-20, -30], start=8), "explained_variance_low").step == 9
    assert "explained_variance_low" not in names(with_values(healthy(), "explained_variance", [-20, -30], start=1))
    assert "explained_variance_low" not in names(with_values(healthy(), "explained_variance", [-20, -5, -30], start=8))
    # when every reward agrees the returns barely vary and EV is ill-conditioned: not counted
    flat = with_values(with_values(healthy(), "explained_variance", [-20, -30], start=8), "reward_std", [0.02] * 2,
                       start=8)
    assert "explained_variance_low" not in names(flat)


def test_reward_rising_while_success_stays_flat():
    gamed = with_values(with_values(healthy(), "success_rate", [0.5] * 16), "reward_mean",
                        [-0.2 + 0.1 * i for i in range(16)])
    assert fired(gamed, "reward_gamed") is not None
    assert "reward_gamed" not in names(healthy())  # reward and success rise together
    solved = with_values(with_values(healthy(), "success_rate", [1.0] * 16), "reward_mean",
                         [0.2 + 0.05 * i for i in range(16)])
    assert "reward_gamed" not in names(solved)  # success already high: shorter right answers are fine


def test_length_drifting_to_the_cap():
    drift = with_values(healthy(), "response_length_mean", [12, 14.5, 15, 15.8, 16], start=6)
    assert fired(drift, "length_to_cap").step == 9
    assert "length_to_cap" not in names(drift, cap=None)
    assert "length_to_cap" not in names(with_values(healthy(), "response_length_mean", [16] * 16))  # always there
    assert "length_to_cap" not in names(with_values(healthy(), "response_length_mean", [15, 14, 15, 15], start=6))


def test_a_batch_with_no_reward_variance():
    assert fired(with_values(healthy(), "reward_std", [0.0], start=3), "no_reward_variance").step == 3
    assert "no_reward_variance" not in names(with_values(healthy(), "reward_std", [1e-3], start=3))


def test_each_warning_fires_once_at_its_first_step_and_never_moves():
    history = with_values(healthy(), "kl_mean", [1.5] * 10, start=4)
    warnings = check(history, CAP)
    assert [w.step for w in warnings if w.name == "kl_high"] == [6]
    emitted = [w for n in range(1, len(history) + 1) for w in new_warnings(history[:n], CAP)]
    assert sorted((w.name, w.step) for w in emitted) == sorted((w.name, w.step) for w in warnings)


def test_every_rule_has_its_meaning_and_advice_in_both_languages_and_a_json_form():
    for rule in RULES:
        for part in ("meaning", "try"):
            assert t(f"health.{rule.name}.{part}", "en") != t(f"health.{rule.name}.{part}", "zh")
    w = fired(with_values(healthy(), "reward_std", [0.0], start=3), "no_reward_variance")
    assert w.to_json()["event"] == "warning" and w.to_json()["step"] == 3
    assert "第 3 步" in w.message("zh")
    assert RULES_BY_NAME["value_nonfinite"].threshold == math.inf
    json.dumps(fired(with_values(healthy(), "value_loss", [math.nan], start=4), "value_nonfinite").to_json(),
               allow_nan=False)


def test_docs_show_the_threshold_table():
    assert rules_markdown("en") in (ROOT / "docs" / "health.md").read_text(encoding="utf-8")


def test_cli_train_prints_warning_events(tmp_path):
    """Every answer misses and no length or EOS term: every reward ties -> no_reward_variance."""
    tasks = tmp_path / "tasks.csv"
    tasks.write_text("prompt,expected\nsay a,qqqqqqqqqq\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "ppo_demo", "train", "--model", "tiny-random", "--steps", "2",
                           "--batch-size", "2", "--max-new-tokens", "4", "--tasks", str(tasks), "--length-penalty",
                           "0", "--missing-eos-penalty", "0", "--jsonl"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    warnings = [x for x in lines if x.get("event") == "warning"]
    assert [(w["name"], w["step"]) for w in warnings] == [("no_reward_variance", 1)]
    assert lines.index(warnings[0]) == 1  # right after step 1's metrics


def test_status_text_counts_and_lists_the_warnings():
    from ppo_demo.health import status_text

    assert status_text([], "en") == ""
    history = with_values(with_values(healthy(), "reward_std", [0.0], start=3), "clip_frac", [0.5] * 3, start=5)
    warnings = check(history, CAP)
    assert status_text(warnings, "en").startswith("⚠ 2 health warnings:")
    assert status_text(warnings[:1], "en").startswith("⚠ 1 health warning:")
    assert "第 3 步" in status_text(warnings, "zh") and "第 7 步" in status_text(warnings, "zh")


def test_status_line_gives_the_count_and_the_latest_warning():
    from ppo_demo.health import status_line

    history = with_values(with_values(healthy(), "reward_std", [0.0], start=3), "clip_frac", [0.5] * 3, start=5)
    line = status_line(check(history, CAP), "en")
    assert line.startswith("⚠ 2 health warnings; the latest, step 7:") and "\n" not in line
    assert status_line([], "en") == ""
