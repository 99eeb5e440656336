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

# Colour-blind-safe and strong enough for a projector: Okabe-Ito's dark colours and Paul Tol's
# dark ones, each at least 3:1 against a white page (WCAG's bar for graphics; Okabe-Ito's yellow,
# sky blue and orange are not, so they are out). Marker shapes and dashes tell runs apart too.
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#AA3377", "#000000", "#996600", "#332288", "#882255"]
PAGE_BACKGROUND = "#ffffff"
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
    # kl_mean: the estimator in use (k1 can go below 0); kl_exact: the true KL per token, never < 0;
    # β, moved by the adaptive controller, is in the chart's title
    "kl": ["kl_mean", "kl_exact", "kl_sum_mean"],
    "policy": ["policy_loss", "entropy"],
    "critic": ["value_loss", "explained_variance"],
    "health": ["clip_frac", "clip_frac_low", "clip_frac_high", "frac_reward_zero_std", "approx_kl"],
}
# One quantity per axis: these metrics get the chart's second axis, on the right, so KL per
# response (tens) does not flatten KL per token, nor explained variance (down to -16) the value loss.
RIGHT_AXIS = frozenset({"kl_sum_mean", "entropy", "explained_variance", "approx_kl"})
SHARE_METRICS = frozenset({"success_rate", "heldout_success_rate", "eos_rate", "clip_frac", "clip_frac_low",
                           "clip_frac_high", "frac_reward_zero_std", "value_clip_frac"})  # on a 0-100 % axis
PLOTTED_METRICS = [metric for metrics in CHARTS.values() for metric in metrics]
# Eight shapes Vega-Lite knows, paired with PALETTE: with both, nine or more curves stay apart
# (the ninth repeats the colour with another shape).
SHAPES = ["circle", "square", "triangle-up", "diamond", "cross", "triangle-down", "triangle-right", "triangle-left"]
DASHES = [[1, 0], [8, 4], [2, 3], [8, 3, 2, 3], [1, 0], [12, 4], [4, 4], [2, 6]]
MAX_MARKERS = 40  # markers per series at most; longer series get one every k steps


def series_name(metric: str, lang: str = "en") -> str:
    """A metric's name for people ('KL per token', '梯度范数（裁剪前）'): the plots', the metric
    picker's and the tables' label. Files (the CSVs) keep the metric's stable key."""
    for key in (f"series.{metric}", f"metric.{metric}"):
        if has(key):
            return t(key, lang)
    return metric


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


def _y_axis(title: str, share: bool, orient: str = "left", colour: str | None = None) -> tuple[dict, dict]:
    """(axis, scale) of one y axis; ``share`` draws 0 % to 100 % with a little room, so a line at
    100 % is not drawn on the frame."""
    axis: dict[str, Any] = {"title": title or None, "grid": orient == "left", "orient": orient,
                            "labelFontSize": 14, "titleFontSize": 15}
    if colour:
        axis["titleColor"] = colour
    scale: dict[str, Any] = {"zero": False}
    if share:
        axis.update(format=".0%", values=[0, 0.2, 0.4, 0.6, 0.8, 1.0])
        scale = {"domain": [-0.03, 1.03], "nice": False}
    return axis, scale


def _marks(dashes: dict, shapes: dict, filter_expr: str | None = None) -> dict:
    """A line and its markers (one layer each); ``filter_expr`` keeps one axis's series."""
    layer = {"layer": [
        {"mark": {"type": "line", "strokeWidth": 3},
         "encoding": {"strokeDash": {"field": "series", "type": "nominal", "scale": dashes, "legend": None}}},
        {"transform": [{"filter": "datum.marker"}],
         "mark": {"type": "point", "filled": True, "size": 90, "opacity": 1, "strokeWidth": 0},
         "encoding": {"shape": {"field": "series", "type": "nominal", "scale": shapes}}},
    ]}
    if filter_expr:
        layer["transform"] = [{"filter": filter_expr}]
    return layer


def _x_encoding(records: list[dict], step_range: tuple[int, int] | None, lang: str) -> dict:
    """The steps axis: whole numbers, one tick per step when there are few; ``step_range`` fixes it."""
    steps = sorted({r["step"] for r in records} | set(step_range or ()))
    axis: dict[str, Any] = {"tickMinStep": 1, "format": "d", "grid": False, "labelFontSize": 14, "titleFontSize": 15}
    if steps and steps[-1] - steps[0] <= 12:  # few steps: one tick each (tickMinStep alone still halves them)
        axis["values"] = list(range(steps[0], steps[-1] + 1))
    scale: dict[str, Any] = {"zero": False, "nice": False, "padding": 10}
    if step_range:
        scale["domain"] = list(step_range)
    return {"field": "step", "type": "quantitative", "title": t("axis.step", lang), "axis": axis, "scale": scale}


def line_chart(frame: pd.DataFrame, *, styles: dict[str, int] | None = None, y_title: str = "",
               share: bool = False, lang: str = "en", height: int = 240, legend_columns: int = 2,
               title: str = "", right: list[str] | None = None, right_share: bool = False,
               step_range: tuple[int, int] | None = None) -> dict:
    """A Vega-Lite spec: one line per series, each with its own colour, marker shape and dash.

    ``styles`` maps a series to its style index (a run keeps its look when other runs are hidden);
    by default series are styled in order of appearance. ``share`` draws a 0-100 % axis. Series
    named in ``right`` get a second y axis on the right (``right_share``: 0-100 %), so each axis
    carries one quantity; its title is the series' name in the series' colour. ``title`` is drawn
    by Vega above the plot area (laid out, never over the data). ``step_range`` fixes the x axis.
    Step ticks are whole numbers; the legend sits below the chart in columns, labels never truncated.
    """
    names = list(dict.fromkeys(frame["series"]))
    styles = styles or {}
    index = {name: styles.get(name, i) for i, name in enumerate(names)}
    right = [name for name in (right or []) if name in names]
    records = _chart_records(frame)
    for record in records:
        record["axis"] = "right" if record["series"] in right else "left"

    def scale(values):
        return {"domain": names, "range": [values[index[n] % len(values)] for n in names]}

    legend = {"orient": "bottom", "title": None, "columns": min(legend_columns, max(len(names), 1)),
              "labelLimit": 0, "labelFontSize": 15, "symbolSize": 150, "symbolStrokeWidth": 0,
              "columnPadding": 20, "rowPadding": 6}
    encoding = {
        "x": _x_encoding(records, step_range, lang),
        "color": {"field": "series", "type": "nominal", "scale": scale(PALETTE), "legend": legend},
        "tooltip": [{"field": "series", "type": "nominal", "title": " "},
                    {"field": "step", "type": "quantitative", "title": t("axis.step", lang)},
                    {"field": "value", "type": "quantitative", "title": t("axis.value", lang),
                     "format": ".4~g"}],
    }
    spec: dict[str, Any] = {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        # SVG rather than vega-embed's default canvas: sharp when a projector scales the page, and
        # the legend is text in the page (found by a search, read by a screen reader, tested).
        "usermeta": {"embedOptions": {"renderer": "svg", "actions": False}},
        "height": height, "autosize": {"type": "fit-x", "contains": "padding"},
        "padding": {"top": 8, "left": 6, "right": 14, "bottom": 6},
        "data": {"values": records}, "encoding": encoding,
    }
    if title:
        spec["title"] = {"text": title, "anchor": "start", "fontSize": 17, "fontWeight": "bold", "offset": 10,
                         "limit": 0}
    _add_y_axes(spec, names, right, y_title, share, right_share, scale)
    return spec


def _add_y_axes(spec: dict, names: list[str], right: list[str], y_title: str, share: bool, right_share: bool,
                scale) -> None:
    """One y axis (the marks in ``spec["layer"]``), or a left and a right one, each with its own
    scale and its series' marks (``resolve``: independent y)."""
    dashes, shapes = scale(DASHES), scale(SHAPES)
    if not right:
        axis, y_scale = _y_axis(y_title, share)
        spec["encoding"]["y"] = {"field": "value", "type": "quantitative", "axis": axis, "scale": y_scale}
        if share:
            spec["encoding"]["tooltip"][2]["format"] = ".0%"
        spec["layer"] = _marks(dashes, shapes)["layer"]
        return
    left = [name for name in names if name not in right]
    layers = []
    for side, members, side_share in (("left", left, share), ("right", right, right_share)):
        if not members:
            continue
        colour = scale(PALETTE)["range"][names.index(members[0])] if len(members) == 1 else None
        axis, y_scale = _y_axis(", ".join(members), side_share, side, colour)
        layer = _marks(dashes, shapes, f"datum.axis === '{side}'")
        layer["encoding"] = {"y": {"field": "value", "type": "quantitative", "axis": axis, "scale": y_scale}}
        layers.append(layer)
    spec["layer"] = layers
    spec["resolve"] = {"scale": {"y": "independent"}}


def _beta_note(history: list[dict]) -> str:
    """'0.05' or, when the adaptive controller moved it, '0.05→0.0731' (first → latest)."""
    betas = [float(m["kl_coef"]) for m in history if _finite(m.get("kl_coef"))]
    if not betas:
        return ""
    return f"{betas[0]:.3g}" if betas[-1] == betas[0] else f"{betas[0]:.3g}→{betas[-1]:.3g}"


def train_chart_spec(history: list[dict], chart: str, tasks_expected: list[str] | None = None,
                     lang: str = "en") -> dict | None:
    """One Train-tab chart's spec (None while there is nothing to draw): its title above the plot,
    the right-axis metrics on their own axis, shares on 0-100 % axes."""
    frame = chart_frame(history, chart, tasks_expected, lang)
    if not len(frame):
        return None
    title = t(f"chart.{chart}", lang)
    beta = _beta_note(history) if chart == "kl" else ""
    if beta:
        title += f" · β {beta}"  # a symbol and a number: the same in every language
    left = [m for m in CHARTS[chart] if m not in RIGHT_AXIS]
    right = [m for m in CHARTS[chart] if m in RIGHT_AXIS]
    return line_chart(frame, lang=lang, title=title, right=[series_name(m, lang) for m in right],
                      share=bool(left) and all(m in SHARE_METRICS for m in left),
                      right_share=bool(right) and all(m in SHARE_METRICS for m in right))


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
