"""What a class sees on a projector, without a browser: colours, chart layout, names, words.

Run: .venv/bin/python -m pytest tests/test_projector.py -q
"""

from __future__ import annotations

import re

import pytest

from ppo_demo.text import t, tn
from ppo_demo.ui.heatmap import _CASE_COLOURS, heatmap_html
from ppo_demo.ui.plots import CHARTS, PAGE_BACKGROUND, PALETTE, RIGHT_AXIS, series_name, train_chart_spec


def luminance(colour: str) -> float:
    """WCAG relative luminance of '#rrggbb'."""
    channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_contrast_formula_can_fail():
    assert contrast("#F0E442", "#ffffff") < 3  # Okabe-Ito's yellow: the pale colour the class could not see
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)


def test_every_run_colour_stands_out_from_the_page():
    """WCAG 2.1's 3:1 for graphics, against the page's background; no two colours the same."""
    for colour in PALETTE:
        assert contrast(colour, PAGE_BACKGROUND) >= 3.0, colour
    assert len(set(PALETTE)) == len(PALETTE) >= 8


def test_clip_cases_of_one_side_differ_in_lightness():
    """② and ③ were near-identical light blues: each side's cases (① ② ③, ④ ⑤ ⑥) now step in
    lightness (at least 1.25:1 between neighbours), so they stay apart in grey."""
    for side in ((0, 1, 2), (5, 4, 3)):
        backgrounds = [_CASE_COLOURS[code][0] for code in side]
        for darker, lighter in zip(backgrounds, backgrounds[1:]):
            assert luminance(darker) < luminance(lighter) and contrast(darker, lighter) >= 1.25, (darker, lighter)


def test_train_charts_have_titles_of_their_own_and_one_quantity_per_axis():
    history = [{"step": s, "reward_mean": 0.1 * s, "success_rate": 1.0, "kl_mean": 0.01 * s,
                "kl_sum_mean": 80.0 * s, "kl_coef": 0.05, "policy_loss": 0.1, "entropy": 2.0, "value_loss": 0.3,
                "explained_variance": -16.0, "clip_frac": 0.2, "approx_kl": 0.001} for s in (1, 2, 3)]
    for chart in CHARTS:
        spec = train_chart_spec(history, chart, ["4"])
        assert spec["title"]["text"] == t(f"chart.{chart}") or chart == "kl"
        assert spec["padding"]["top"] <= 10  # no room kept for a label floating over the data
        right = [m for m in CHARTS[chart] if m in RIGHT_AXIS]
        if right:  # each axis names its one quantity
            assert spec["resolve"] == {"scale": {"y": "independent"}}
            titles = [layer["encoding"]["y"]["axis"]["title"] for layer in spec["layer"]]
            drawn = [m for m in CHARTS[chart] if m in history[0]]
            assert titles == [", ".join(series_name(m) for m in drawn if m not in RIGHT_AXIS), series_name(right[0])]
    kl = train_chart_spec(history, "kl")
    assert [layer["encoding"]["y"]["axis"]["orient"] for layer in kl["layer"]] == ["left", "right"]
    success = train_chart_spec(history, "success")
    assert success["encoding"]["y"]["scale"]["domain"][1] > 1.0  # 100 % drawn inside the frame
    health = train_chart_spec(history, "health")
    assert health["layer"][0]["encoding"]["y"]["axis"]["format"] == ".0%"  # clip fraction is a share


def test_heatmap_prints_numbers_on_the_tokens_when_asked():
    from test_estimators_ui import record

    plain = heatmap_html(record(), "advantage")
    with_numbers = heatmap_html(record(), "advantage", numbers=True)
    assert "tok-num" not in plain
    numbers = re.findall(r"class='tok-num'>([^<]*)<", with_numbers)
    assert numbers == [f"{a:+.2f}" for a in record().advantages]
    cases = re.findall(r"class='tok-num'>([^<]*)<", heatmap_html(record(), "clip_case", numbers=True))
    assert cases and all(c in "①②③④⑤⑥·" for c in cases)


def test_plurals_in_both_languages():
    assert tn("plural.steps_trained", 1) == "1 step trained"
    assert tn("plural.steps_trained", 2) == "2 steps trained"
    assert tn("plural.done", 1, run="run 1") == "Done: 1 step (run 1)."
    assert tn("plural.done", 1, "zh", run="运行 1") == "完成：1 步（运行 1）。"
    from ppo_demo.ui.runs import RunBook

    assert RunBook().next_press(1) == "Train starts run 1: 1 step from the base model."


def test_compare_picker_follows_the_table():
    from ppo_demo.ui.handlers import compare_pick

    table = [["What is 2+2?", "4"], ["Capital of France?", "Paris"]]
    # The page's headers put in Chinese (the same rows): the pick stays, and is never blank.
    assert compare_pick(table, "What is 2+2?", "What is 2+2?") == (["What is 2+2?", "Capital of France?"],
                                                                  "What is 2+2?", None)
    assert compare_pick(table, None, "") == (["What is 2+2?", "Capital of France?"], "What is 2+2?", "What is 2+2?")
    # An upload replaced the tasks: the pick and the prompt box move to the first new task.
    uploaded = [["Say yes.", "yes"]]
    assert compare_pick(uploaded, "What is 2+2?", "What is 2+2?") == (["Say yes."], "Say yes.", "Say yes.")
    # A prompt a person typed stays.
    assert compare_pick(uploaded, "What is 2+2?", "Tell me a joke")[2] is None


def test_overlay_steps_axis_covers_only_the_runs_shown():
    """A 20-step run 1 stretched the 8-step KL demo runs; shown alone, the demo runs fill the axis."""
    from ppo_demo.ui.runs import RunBook

    book = RunBook()
    long = book.begin({"kl_coef": 0.05}, {}, [], "m")
    for step in range(1, 21):
        book.record_step(long, {"step": step, "reward_mean": 0.0})
    book.close_current()
    short = book.start({"kl_coef": 0.5}, {}, [], "m")
    for step in range(1, 9):
        book.record_step(short, {"step": step, "reward_mean": 0.0})
    steps = {r["step"] for r in book.overlay_chart("reward_mean", [short.number])["data"]["values"]}
    assert max(steps) == 8
    assert max(r["step"] for r in book.overlay_chart("reward_mean")["data"]["values"]) == 20


def test_next_press_line_says_the_run_cap_and_the_budget_before_the_press():
    """The line said 'Train starts run 7' when Train would be refused for the 6-run cap."""
    from ppo_demo.ui.runs import RunBook

    book = RunBook(max_runs=3, budget_seconds=600.0)
    assert book.next_press(8) == ("Train starts run 1: 8 steps from the base model. "
                                  "Each press stops after 600 s of compute.")
    for number in range(3):
        run = book.begin({"kl_coef": 0.05 * number}, {}, [], "m")
        book.record_step(run, {"step": 1, "reward_mean": 0.0})
        book.close_current()
        if number == 1:
            assert "1 of 3 runs left" in book.next_press(8)
    assert not book.can_train()
    assert book.next_press(8).startswith("Train is off: 3 runs are kept")
    assert book.next_press(8, "zh").startswith("“训练”不可用")
    book.delete(1)
    assert book.can_train() and book.next_press(8).startswith("Train starts run 4")


def test_knobs_fall_into_five_sections_with_the_lessons_knobs_first():
    from ppo_demo.config import knob_fields
    from ppo_demo.ui.tabs import BASIC_KNOBS, knob_sections

    sections = dict(knob_sections(knob_fields()))
    assert list(sections) == ["basic", "ppo", "lora", "sampling", "memory"]
    assert [f.name for f in sections["basic"]] == list(BASIC_KNOBS)
    assert {"kl_coef", "clip_eps", "advantage_estimator"} <= {f.name for f in sections["basic"]}
    assert "lora_r" in {f.name for f in sections["lora"]} and "top_p" in {f.name for f in sections["sampling"]}
    assert "micro_batch_tokens" in {f.name for f in sections["memory"]}
    placed = [f.name for members in sections.values() for f in members]
    expected = [f.name for f in knob_fields() if f.metadata["group"] != "reward"]
    assert sorted(placed) == sorted(expected) and len(placed) == len(set(placed))  # each knob once


def test_a_preset_highlights_the_knobs_it_changes():
    from ppo_demo.ui import handlers
    from ppo_demo.ui.limits import limits_from_env

    limits = limits_from_env({"PPO_DEMO_MODEL": "tiny-random"})
    current = handlers.default_knobs(limits)
    seed = handlers.preset_knobs("seed", limits)
    changed = handlers.changed_knobs(current, seed)
    assert changed and all(str(current[n]) != str(seed[n]) for n in changed)
    assert handlers.changed_knobs(current, dict(current)) == []
    assert handlers.changed_knobs({"lora_targets": "q_proj,v_proj", "kl_target": None, "lr": 0.1},
                                  {"lora_targets": "q_proj, v_proj", "kl_target": "", "lr": "0.1"}) == []


def test_every_metric_a_step_reports_has_a_label_in_both_languages(tiny):
    """The Runs metric picker showed 15 raw keys (grad_norm, ratio_mean, ...), in English too."""
    from ppo_demo.config import TrainConfig
    from ppo_demo.tasks import Task
    from ppo_demo.trainer import PPOTrainer

    config = TrainConfig(batch_size=2, max_new_tokens=3, steps=1)
    metrics = PPOTrainer(tiny, config, [Task("Say yes.", "yes")]).step().metrics
    keys = [k for k in metrics if k != "step" and not k.startswith("task_reward/")]
    assert len(keys) >= 25
    for key in keys:
        from ppo_demo.text import has

        assert has(f"series.{key}") or has(f"metric.{key}"), f"{key} has no label"
        english, chinese = series_name(key), series_name(key, "zh")
        assert chinese != english and re.search(r"[\u4e00-\u9fff]", chinese), f"{key} has no Chinese label"
