"""Metrics history -> long pandas frames for ``gr.LinePlot`` (columns step, value, series).

One frame per plot; each plot groups quantities a student reads together: the reward (overall
and per task), the KL to the reference, the policy, the critic, and the PPO health
gauges (clip fraction, approx KL). The policy's loss sits with its entropy and the critic's with
its explained variance (entropy beside explained variance would flatten the latter). Non-finite values (a skipped update) are left out rather
than drawn as zero; a run without a critic gets one legend entry saying so. The KL plot also
draws β, which moves when the adaptive KL controller is on.
"""

from __future__ import annotations

import math

import pandas as pd

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
