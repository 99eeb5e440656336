"""Metrics history -> long pandas frames for ``gr.LinePlot`` (columns step, value, series).

One frame per plot; each plot groups quantities a student reads together: the reward (overall
and per task), the KL to the reference, the policy, the critic, and the PPO health
gauges (clip fraction, approx KL). The policy's loss sits with its entropy and the critic's with
its explained variance (entropy beside explained variance would flatten the latter). Non-finite values (a skipped update) are left out rather
than drawn as zero; a run without a critic gets one legend entry saying so. The KL plot also
draws β, which moves when the adaptive KL controller is on.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd

from .i18n import MESSAGES, t

COLUMNS = ["step", "value", "series"]
NO_CRITIC = "n/a: no critic (grpo, rloo, reinforce)"

# plot key -> [(metric key, series name)]
PLOT_SERIES = {
    "reward": [("reward_mean", "mean reward"), ("success_rate", "success rate")],
    "kl": [("kl_mean", "KL per token"), ("kl_sum_mean", "KL per response"), ("kl_coef", "β (KL coef)")],
    "policy": [("policy_loss", "policy loss"), ("entropy", "entropy")],
    "critic": [("value_loss", "value loss"), ("explained_variance", "explained variance")],
    "health": [("clip_frac", "clip fraction"), ("approx_kl", "approx KL (old→new)")],
}


def task_label(index: int, expected: str, width: int = 12) -> str:
    """'task 2 (Paris)': numbered as in the rollouts table, named by its answer, which is short
    (a prompt would push the other tasks out of the legend)."""
    short = expected if len(expected) <= width else expected[: width - 1] + "…"
    return f"task {index + 1} ({short})"


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def metric_frame(history: list[dict], plot: str, task_labels: list[str] | None = None) -> pd.DataFrame:
    """Long frame for one plot. The reward plot also gets one series per task."""
    rows = []
    for metrics in history:
        step = metrics.get("step")
        for key, name in PLOT_SERIES[plot]:
            if _finite(metrics.get(key)):
                rows.append((step, float(metrics[key]), name))
        if plot == "reward" and task_labels:
            for index, label in enumerate(task_labels):
                value = metrics.get(f"task_reward/{index}")
                if _finite(value):
                    rows.append((step, float(value), label))
    if plot == "critic" and history and not rows:
        # GRPO, RLOO and REINFORCE train no critic: their value metrics are NaN. Say so in the
        # legend (one empty point) instead of leaving a blank chart or drawing a made-up 0.
        rows.append((history[0].get("step"), math.nan, NO_CRITIC))
    if plot == "reward" and task_labels and history:
        # Every task's series is in the frame from the first update of a run, if need be as one
        # empty (NaN) point: the chart then fixes its colour domain once. Adding a series later
        # relies on a re-render that Gradio can drop while the previous one is still drawing
        # (seen: per-task curves gone after the task table changed).
        drawn = {series for _, _, series in rows}
        rows += [(history[0].get("step"), math.nan, label) for label in task_labels if label not in drawn]
    return pd.DataFrame(rows, columns=COLUMNS).astype({"step": "int64", "value": "float64", "series": "str"})


# Colour-blind-safe (Okabe-Ito), strong enough for a projector.
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]


def colour_map(frame: pd.DataFrame) -> dict[str, str]:
    """series -> colour, in order of appearance.

    Also a workaround: Gradio's LinePlot fixes its colour domain when it first draws and
    afterwards only swaps the data, so a series that appears later (a task first sampled at
    step 3) would never be drawn. A changed ``color_map`` makes it rebuild the chart.
    """
    names = list(dict.fromkeys(frame["series"]))
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def all_frames(history: list[dict], task_labels: list[str] | None = None) -> dict[str, pd.DataFrame]:
    return {plot: metric_frame(history, plot, task_labels) for plot in PLOT_SERIES}


ROLLOUT_HEADERS = ["#", "task", "response", "reward", "hit", "KL (sum)", "tokens"]


def rollouts_frame(rollouts: list) -> pd.DataFrame:
    """The latest step's sampled responses, one row each."""
    rows = [(i, r.task_index + 1, r.response, round(r.score, 3), "✓" if r.hit else "✗",
             round(r.kl_sum, 4), len(r.tokens)) for i, r in enumerate(rollouts)]
    return pd.DataFrame(rows, columns=ROLLOUT_HEADERS)


def metrics_csv(history: list[dict]) -> str:
    """Every metric of every step, one row per step (step first), as CSV text."""
    if not history:
        return "step\n"
    keys = sorted({k for row in history for k in row}, key=lambda k: (k != "step", k))
    return pd.DataFrame(history, columns=keys).to_csv(index=False)


# --- charts for a projector (Vega-Lite, drawn by gr.Plot) ----------------------------------
# Why not gr.LinePlot: in Gradio 6.31 its chart is fixed in the front end (native_plot.py only
# passes data, colours and axis formats): no markers or dashes per series, so five curves differ
# by colour alone, and no tick step, so a 3-step run gets ticks 0.5 apart. gr.Plot draws any
# Vega-Lite spec it is given (its "altair" type, the JSON passed through; no altair package
# needed), so the spec is ours. Marked as a "line" chart, the front end sizes it to its box and
# themes its text (so no width, background or config here: its theme replaces the config), and
# re-colours only colour scales inside layers, which is why the colour encoding is shared.

# chart key -> the metrics it draws; "reward" also draws one series per task.
CHARTS: dict[str, list[str]] = {
    "reward": ["reward_mean"],
    "success": ["success_rate"],  # a share in [0, 1]: its own axis, not squeezed into the reward's
    "kl": ["kl_mean", "kl_sum_mean"],
    "policy": ["policy_loss", "entropy"],
    "critic": ["value_loss", "explained_variance"],
    "health": ["clip_frac", "approx_kl"],
}
SHARE_METRICS = frozenset({"success_rate", "eos_rate", "clip_frac"})  # drawn on a 0-100 % axis when alone
PLOTTED_METRICS = [metric for metrics in CHARTS.values() for metric in metrics]
# Eight shapes Vega-Lite knows, paired with PALETTE: with both, nine or more curves stay apart
# (the ninth repeats the colour with another shape).
SHAPES = ["circle", "square", "triangle-up", "diamond", "cross", "triangle-down", "triangle-right", "triangle-left"]
DASHES = [[1, 0], [8, 4], [2, 3], [8, 3, 2, 3], [1, 0], [12, 4], [4, 4], [2, 6]]
MAX_MARKERS = 40  # markers per series at most; longer series get one every k steps


def series_name(metric: str, lang: str = "en") -> str:
    key = f"series.{metric}"
    return t(key, lang) if key in MESSAGES else metric


def task_series(index: int, expected: str, lang: str = "en", width: int = 12) -> str:
    """'task 2 (Paris)' / '任务 2（Paris）', named by the (short) answer rather than the prompt."""
    short = expected if len(expected) <= width else expected[: width - 1] + "…"
    return t("series.task", lang, number=index + 1, answer=short)


def chart_frame(history: list[dict], chart: str, tasks_expected: list[str] | None = None,
                lang: str = "en") -> pd.DataFrame:
    """Long frame (step, value, series) for one chart; non-finite values (a skipped update) left out."""
    rows = []
    for metrics in history:
        step = metrics.get("step")
        for key in CHARTS[chart]:
            if _finite(metrics.get(key)):
                rows.append((step, float(metrics[key]), series_name(key, lang)))
        if chart == "reward":
            for index, expected in enumerate(tasks_expected or []):
                value = metrics.get(f"task_reward/{index}")
                if _finite(value):
                    rows.append((step, float(value), task_series(index, expected, lang)))
    return pd.DataFrame(rows, columns=COLUMNS).astype({"step": "int64", "value": "float64", "series": "str"})


def line_chart(frame: pd.DataFrame, *, styles: dict[str, int] | None = None, y_title: str = "",
               share: bool = False, lang: str = "en", height: int = 240, legend_columns: int = 3) -> dict:
    """A Vega-Lite spec: one line per series, each with its own colour, marker shape and dash.

    ``styles`` maps a series to its style index (a run keeps its look when other runs are hidden);
    by default series are styled in order of appearance. ``share`` draws a 0-100 % axis. Step
    ticks are whole numbers; the legend sits below the chart in columns, labels never truncated.
    """
    names = list(dict.fromkeys(frame["series"]))
    styles = styles or {}
    index = {name: styles.get(name, i) for i, name in enumerate(names)}
    records = []
    for name, group in frame.groupby("series", sort=False):
        every = max(1, math.ceil(len(group) / MAX_MARKERS))
        for position, (step, value) in enumerate(zip(group["step"], group["value"])):
            marker = position % every == 0 or position == len(group) - 1
            records.append({"step": int(step), "value": float(value), "series": name, "marker": marker})

    def scale(values):
        return {"domain": names, "range": [values[index[n] % len(values)] for n in names]}

    fonts = {"labelFontSize": 14, "titleFontSize": 15}
    y_axis: dict[str, Any] = {"title": y_title or None, "grid": True, **fonts}
    y_scale: dict[str, Any] = {"zero": False}
    if share:  # 0 % to 100 %, a little room so a line at 100 % is not drawn on the frame
        y_axis.update(format=".0%", values=[0, 0.2, 0.4, 0.6, 0.8, 1.0])
        y_scale = {"domain": [-0.03, 1.03], "nice": False}
    legend = {"orient": "bottom", "title": None, "columns": min(legend_columns, max(len(names), 1)),
              "labelLimit": 0, "labelFontSize": 15, "symbolSize": 150, "symbolStrokeWidth": 0,
              "columnPadding": 20, "rowPadding": 6}
    encoding = {
        "x": {"field": "step", "type": "quantitative", "title": t("axis.step", lang),
              "axis": {"tickMinStep": 1, "format": "d", "grid": False, **fonts},
              "scale": {"zero": False, "nice": False, "padding": 10}},
        "y": {"field": "value", "type": "quantitative", "axis": y_axis, "scale": y_scale},
        "color": {"field": "series", "type": "nominal", "scale": scale(PALETTE), "legend": legend},
        "tooltip": [{"field": "series", "type": "nominal", "title": " "},
                    {"field": "step", "type": "quantitative", "title": t("axis.step", lang)},
                    {"field": "value", "type": "quantitative", "title": t("axis.value", lang),
                     "format": ".0%" if share else ".4~g"}],
    }
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        # SVG rather than vega-embed's default canvas: sharp when a projector scales the page, and
        # the legend is text in the page (found by a search, read by a screen reader, tested).
        "usermeta": {"embedOptions": {"renderer": "svg", "actions": False}},
        "height": height,
        "autosize": {"type": "fit-x", "contains": "padding"},
        "data": {"values": records},
        "encoding": encoding,
        "layer": [
            {"mark": {"type": "line", "strokeWidth": 2.5},
             "encoding": {"strokeDash": {"field": "series", "type": "nominal", "scale": scale(DASHES),
                                         "legend": None}}},
            {"transform": [{"filter": "datum.marker"}],
             "mark": {"type": "point", "filled": True, "size": 80, "opacity": 1, "strokeWidth": 0},
             "encoding": {"shape": {"field": "series", "type": "nominal", "scale": scale(SHAPES)}}},
        ],
    }


def plot_value(spec: dict):
    """What a gr.Plot shows for a Vega-Lite spec (see the note above CHARTS)."""
    from gradio.components.plot import AltairPlotData

    return AltairPlotData(chart="line", plot=json.dumps(spec, allow_nan=False))
