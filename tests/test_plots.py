"""Metrics history -> plot frames: what the charts are given."""

import math

from ppo_demo.ui.plots import chart_frame, task_series


def test_tasks_are_numbered_and_named_by_their_answer():
    assert task_series(0, "4") == "task 1 (4)"
    assert task_series(2, "I like machine learning") == "task 3 (I like mach…)"
    assert task_series(1, "Paris", "zh") == "任务 2（Paris）"


def test_skipped_updates_leave_gaps_not_zeros():
    history = [{"step": 1, "policy_loss": 0.2, "entropy": 2.0}, {"step": 2, "policy_loss": math.nan, "entropy": 1.9}]
    frame = chart_frame(history, "policy")
    assert frame[frame["series"] == "policy loss"]["step"].tolist() == [1]


# --- charts for a projector --------------------------------------------------------------
import json  # noqa: E402

from ppo_demo.ui.plots import CHARTS, DASHES, PALETTE, SHAPES, chart_frame, line_chart, plot_value  # noqa: E402


def _history(steps=3, tasks=6):
    return [{"step": s, "reward_mean": 0.1 * s, "success_rate": 0.25 * s, "kl_mean": 0.01,
             **{f"task_reward/{i}": 0.1 * i for i in range(tasks)}} for s in range(1, steps + 1)]


def test_success_rate_has_its_own_chart_on_a_percent_axis():
    reward = chart_frame(_history(), "reward", ["4"])
    assert "success rate" not in set(reward["series"])
    success = chart_frame(_history(), "success")
    assert set(success["series"]) == {"success rate"} and success["value"].between(0, 1).all()
    spec = line_chart(success, share=True)
    assert spec["encoding"]["y"]["axis"]["format"] == ".0%"
    low, high = spec["encoding"]["y"]["scale"]["domain"]
    assert low <= 0 and 1 <= high < 1.1
    assert "domain" not in line_chart(reward)["encoding"]["y"]["scale"]  # the reward's axis fits its data


def test_step_ticks_are_whole_numbers():
    axis = line_chart(chart_frame(_history(steps=3), "kl"))["encoding"]["x"]["axis"]
    assert axis["tickMinStep"] == 1 and axis["format"] == "d"
    assert axis["values"] == [1, 2, 3]  # a short run gets one tick per step, never 1.5
    assert "values" not in line_chart(chart_frame(_history(steps=40), "kl"))["encoding"]["x"]["axis"]


def test_seven_curves_differ_in_colour_marker_and_dash():
    frame = chart_frame(_history(tasks=6), "reward", ["4", "Paris", "hello", "cold", "yes", "no"])
    spec = line_chart(frame)
    names = list(dict.fromkeys(frame["series"]))
    assert len(names) == 7
    colour = spec["encoding"]["color"]["scale"]
    shape = spec["layer"][1]["encoding"]["shape"]["scale"]
    dash = spec["layer"][0]["encoding"]["strokeDash"]["scale"]
    assert colour["domain"] == shape["domain"] == dash["domain"] == names
    assert len(set(colour["range"])) == 7 and len(set(shape["range"])) == 7
    assert len({tuple(d) for d in dash["range"]}) >= 5


def test_legend_is_below_the_chart_and_never_truncates_a_name():
    legend = line_chart(chart_frame(_history(), "reward", ["I like machine learning"]))["encoding"]["color"]["legend"]
    assert legend["orient"] == "bottom" and legend["labelLimit"] == 0


def test_charts_are_drawn_as_svg():
    assert line_chart(chart_frame(_history(), "kl"))["usermeta"]["embedOptions"]["renderer"] == "svg"


def test_given_styles_keep_a_series_look_when_others_are_hidden():
    frame = chart_frame(_history(), "kl")
    spec = line_chart(frame[frame["series"] == "KL per token"], styles={"KL per token": 4})
    assert spec["encoding"]["color"]["scale"]["range"] == [PALETTE[4]]
    assert spec["layer"][1]["encoding"]["shape"]["scale"]["range"] == [SHAPES[4]]


def test_long_series_get_markers_every_few_steps_and_on_the_last():
    spec = line_chart(chart_frame(_history(steps=200, tasks=0), "kl"))
    marked = [r["step"] for r in spec["data"]["values"] if r["marker"] and r["series"] == "KL per token"]
    assert 20 <= len(marked) <= 41 and marked[0] == 1 and marked[-1] == 200
    assert len(spec["data"]["values"]) == 200  # the line itself keeps every step


def test_legends_follow_the_language_and_the_spec_is_plain_json():
    frame = chart_frame(_history(), "reward", ["4"], lang="zh")
    assert set(frame["series"]) == {"平均奖励", "任务 1（4）"}
    spec = line_chart(frame, lang="zh")
    assert spec["encoding"]["x"]["title"] == "步"
    value = plot_value(spec)
    assert value.chart == "line" and json.loads(value.plot) == spec


def test_every_chart_metric_has_a_legend_name_in_both_languages():
    from ppo_demo.text import catalogue

    MESSAGES = catalogue()

    for chart, metrics in CHARTS.items():
        for metric in metrics:
            assert f"series.{metric}" in MESSAGES, metric
            assert chart_frame([{"step": 1, metric: 0.5}], chart, lang="zh")["series"].iloc[0] == \
                MESSAGES[f"series.{metric}"][1]


def test_styles_cover_at_least_eight_runs():
    assert len(PALETTE) >= 8 and len(SHAPES) >= 8 and len(DASHES) >= 8
