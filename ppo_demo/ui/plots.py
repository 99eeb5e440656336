"""Metrics history -> charts (Vega-Lite specs for ``gr.Plot``), and the rollouts table.

One chart per group of quantities a student reads together: the reward (overall and per task),
the success rate (a share, on its own 0-100 % axis), the KL to the reference, the policy (loss
with entropy), the critic (value loss with explained variance: beside entropy it would be
flattened) and the PPO health gauges (clip fraction, approx KL). Non-finite values (a skipped
update) are left out rather than drawn as zero; a run without a critic gets one legend entry
saying so. The KL chart also draws β, which moves when the adaptive KL controller is on. Names in
the legends follow the page's language.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd

from ..text import has
from .i18n import t

COLUMNS = ["step", "value", "series"]
NO_CRITIC = t("series.no_critic")  # the critic chart's one entry when the estimator trains no critic

# Colour-blind-safe (Okabe-Ito), strong enough for a projector.
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]
ROLLOUT_KEYS = ["rollout", "task", "response", "reward", "hit", "kl_sum", "tokens"]
ROLLOUT_HEADERS = [t(f"header.{key}") for key in ROLLOUT_KEYS]


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def rollouts_frame(rollouts: list, lang: str = "en") -> pd.DataFrame:
    """The latest step's sampled responses, one row each."""
    rows = [(i, r.task_index + 1, r.response, round(r.score, 3), "✓" if r.hit else "✗",
             round(r.kl_sum, 4), len(r.tokens)) for i, r in enumerate(rollouts)]
    return pd.DataFrame(rows, columns=[t(f"header.{key}", lang) for key in ROLLOUT_KEYS])


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
    # a share in [0, 1]: its own axis, not squeezed into the reward's; the held-out tasks' success
    # (one answer per held-out task per step, never trained on) beside the training tasks'
    "success": ["success_rate", "heldout_success_rate"],
    # kl_mean: the estimator in use (k1 can go below 0); kl_exact: the true KL per token, never < 0
    "kl": ["kl_mean", "kl_exact", "kl_sum_mean", "kl_coef"],  # kl_coef: β, moved by the adaptive controller
    "policy": ["policy_loss", "entropy"],
    "critic": ["value_loss", "explained_variance"],
    "health": ["clip_frac", "clip_frac_low", "clip_frac_high", "frac_reward_zero_std", "approx_kl"],
}
SHARE_METRICS = frozenset({"success_rate", "eos_rate", "clip_frac", "clip_frac_low", "clip_frac_high",
                           "frac_reward_zero_std"})  # drawn on a 0-100 % axis when alone
PLOTTED_METRICS = [metric for metrics in CHARTS.values() for metric in metrics]
# Eight shapes Vega-Lite knows, paired with PALETTE: with both, nine or more curves stay apart
# (the ninth repeats the colour with another shape).
SHAPES = ["circle", "square", "triangle-up", "diamond", "cross", "triangle-down", "triangle-right", "triangle-left"]
DASHES = [[1, 0], [8, 4], [2, 3], [8, 3, 2, 3], [1, 0], [12, 4], [4, 4], [2, 6]]
MAX_MARKERS = 40  # markers per series at most; longer series get one every k steps


def series_name(metric: str, lang: str = "en") -> str:
    key = f"series.{metric}"
    return t(key, lang) if has(key) else metric


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
    if chart == "critic" and history and not rows:
        # GRPO, RLOO and REINFORCE train no critic: their value metrics are NaN. Say so in the
        # legend (one empty point) instead of leaving a blank chart or drawing a made-up 0.
        rows.append((history[0].get("step"), math.nan, t("series.no_critic", lang)))
    return pd.DataFrame(rows, columns=COLUMNS).astype({"step": "int64", "value": "float64", "series": "str"})


def _chart_records(frame: pd.DataFrame) -> list[dict]:
    """The chart's data: one record per point, at most MAX_MARKERS of each series marked."""
    records = []
    for name, group in frame.groupby("series", sort=False):
        every = max(1, math.ceil(len(group) / MAX_MARKERS))
        for position, (step, value) in enumerate(zip(group["step"], group["value"])):
            marker = position % every == 0 or position == len(group) - 1
            records.append({"step": int(step), "value": float(value) if math.isfinite(value) else None,
                            "series": name, "marker": marker})  # None: in the legend, not drawn
    return records


def line_chart(frame: pd.DataFrame, *, styles: dict[str, int] | None = None, y_title: str = "",
               share: bool = False, lang: str = "en", height: int = 240, legend_columns: int = 2) -> dict:
    """A Vega-Lite spec: one line per series, each with its own colour, marker shape and dash.

    ``styles`` maps a series to its style index (a run keeps its look when other runs are hidden);
    by default series are styled in order of appearance. ``share`` draws a 0-100 % axis. Step
    ticks are whole numbers; the legend sits below the chart in columns, labels never truncated.
    """
    names = list(dict.fromkeys(frame["series"]))
    styles = styles or {}
    index = {name: styles.get(name, i) for i, name in enumerate(names)}
    records = _chart_records(frame)

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
    steps = sorted({r["step"] for r in records})
    x_axis: dict[str, Any] = {"tickMinStep": 1, "format": "d", "grid": False, **fonts}
    if steps and steps[-1] - steps[0] <= 12:  # few steps: one tick each (tickMinStep alone still halves them)
        x_axis["values"] = list(range(steps[0], steps[-1] + 1))
    encoding = {
        "x": {"field": "step", "type": "quantitative", "title": t("axis.step", lang),
              "axis": x_axis,
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
        "padding": {"top": 44, "left": 6, "right": 14, "bottom": 6},  # the top is under gr.Plot's label
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


# Where a health warning fired, on the chart of the metric it reads (see ppo_demo.health.RULES).
WARNING_CHART = {"kl_mean": "kl", "entropy": "policy", "clip_frac": "health", "value_loss": "critic",
                 "explained_variance": "critic", "reward_mean": "reward", "reward_std": "reward",
                 "response_length_mean": "reward"}
WARNING_COLOUR = "#D55E00"


def warning_layers(warnings: list, chart: str, lang: str = "en") -> list[dict]:
    """Layers for a chart's spec: a dashed rule and a ⚠ at each step where a health warning about
    this chart's metrics fired; the tooltip names it and says what it means. Their own data, and
    no y or colour (``null`` drops the chart's shared encodings), so the series are untouched."""
    values = [{"step": w.step, "warning": w.name, "meaning": w.meaning(lang)}
              for w in warnings if WARNING_CHART.get(w.metric) == chart]
    if not values:
        return []
    encoding = {"y": None, "color": None,
                "tooltip": [{"field": "warning", "type": "nominal", "title": t("health.axis", lang)},
                            {"field": "step", "type": "quantitative", "title": t("axis.step", lang)},
                            {"field": "meaning", "type": "nominal", "title": " "}]}
    return [{"data": {"values": values}, "encoding": encoding,
             "mark": {"type": "rule", "color": WARNING_COLOUR, "strokeDash": [6, 4], "strokeWidth": 2}},
            {"data": {"values": values}, "encoding": encoding,
             "mark": {"type": "text", "text": "⚠", "y": 0, "baseline": "top", "fontSize": 18,
                      "color": WARNING_COLOUR}}]


def plot_value(spec: dict, redraw: int = 0):
    """What a gr.Plot shows for a Vega-Lite spec (see the note above CHARTS). A new ``redraw``
    number makes the browser draw an unchanged chart again: it skips a value equal to the last,
    even one drawn while its tab was hidden (0 px wide, blank)."""
    from gradio.components.plot import AltairPlotData

    if redraw:
        spec = {**spec, "usermeta": {**spec.get("usermeta", {}), "redraw": redraw}}
    return AltairPlotData(chart="line", plot=json.dumps(spec, allow_nan=False))
