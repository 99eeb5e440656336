"""trackio (Hugging Face's local-first, wandb-compatible tracker) as an opt-in metrics sink.

Off unless asked for: the CLI's ``--trackio PROJECT``, or ``PPO_DEMO_TRACKIO=PROJECT`` for the
app. A public Space must not publish its visitors' tasks, so nothing is logged by default, and
the run's tasks are never sent (only the knobs). trackio writes to ``TRACKIO_DIR`` (default
``~/.cache/huggingface/trackio``); ``trackio show`` opens the dashboard.

Metric names: where a metric means the same thing as in veRL (the PPO-with-critic trainer we
export to) it takes veRL's name, so dashboards of a lab run and its exported run line up:

    lab metric            logged as                     veRL (verl 0.9.1)            TRL GRPO (trl 1.16.0)
    reward_mean           critic/score/mean             critic/score/mean            reward
    reward_std            critic/score/std              -                            reward_std
    kl_mean               actor/reward_kl_penalty       actor/reward_kl_penalty      kl
    policy_loss           actor/pg_loss                 actor/pg_loss                loss (no critic)
    value_loss            critic/vf_loss                critic/vf_loss               -
    entropy               actor/entropy                 actor/entropy                entropy
    approx_kl             actor/ppo_kl                  actor/ppo_kl                 -
    clip_frac_low         clip_ratio/low_mean           -                            clip_ratio/low_mean
    clip_frac_high        clip_ratio/high_mean          -                            clip_ratio/high_mean
    clip_frac_low + _high actor/pg_clipfrac             actor/pg_clipfrac            clip_ratio/region_mean
    frac_reward_zero_std  frac_reward_zero_std          -                            frac_reward_zero_std
    explained_variance    critic/vf_explained_var       critic/vf_explained_var      -
    response_length_mean  response_length/mean         response_length/mean         completions/mean_length
    step_seconds          timing_s/step                 timing_s/step                step_time
    tokens_per_second     perf/throughput               perf/throughput (per GPU)    -

Everything else keeps the lab's name under ``lab/`` (e.g. ``lab/success_rate``,
``lab/task_reward/0``), among them ``lab/clip_frac``: CleanRL's share of tokens with rho outside
the clip range whatever the sign of A, which is not veRL's pg_clipfrac (the tokens whose gradient
the clip stopped, logged from clip_frac_low + clip_frac_high).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys

ENV_VAR = "PPO_DEMO_TRACKIO"
METRIC_NAMES = {
    "reward_mean": "critic/score/mean",
    "reward_std": "critic/score/std",
    "kl_mean": "actor/reward_kl_penalty",
    "policy_loss": "actor/pg_loss",
    "value_loss": "critic/vf_loss",
    "entropy": "actor/entropy",
    "approx_kl": "actor/ppo_kl",
    "clip_frac_low": "clip_ratio/low_mean",  # veRL logs only their sum (pg_clipfrac)
    "clip_frac_high": "clip_ratio/high_mean",
    "frac_reward_zero_std": "frac_reward_zero_std",
    "explained_variance": "critic/vf_explained_var",
    "response_length_mean": "response_length/mean",
    "step_seconds": "timing_s/step",
    "tokens_per_second": "perf/throughput",
}


class TrackingError(RuntimeError):
    """trackio was asked for but cannot be used; the message says what to do."""


def tracked_metrics(metrics: dict) -> dict[str, float]:
    """The step's numbers under their logged names (non-numbers and the step index dropped)."""
    out = {}
    for key, value in metrics.items():
        if key == "step" or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if isinstance(value, float) and not math.isfinite(value):
            continue
        out[METRIC_NAMES.get(key, f"lab/{key}")] = float(value)
    if "clip_ratio/low_mean" in out and "clip_ratio/high_mean" in out:  # veRL logs only their sum
        out["actor/pg_clipfrac"] = out["clip_ratio/low_mean"] + out["clip_ratio/high_mean"]
    return out


def project_from_env() -> str | None:
    """The app's opt-in: PPO_DEMO_TRACKIO=PROJECT (unset or empty: off)."""
    return os.environ.get(ENV_VAR, "").strip() or None


class TrackioSink:
    """One trackio run: ``log(metrics)`` per step, ``finish()`` at the end."""

    def __init__(self, project: str, config: dict | None = None, name: str | None = None):
        try:
            import trackio
        except ImportError:
            raise TrackingError("--trackio needs the trackio package: pip install trackio==0.43.0") from None
        self._trackio = trackio
        # trackio prints where it logs; stdout stays for the CLI's own output (--jsonl).
        with contextlib.redirect_stdout(sys.stderr):
            self.run = trackio.init(project=project, name=name, config=config or {}, auto_log_gpu=False,
                                    auto_log_cpu=False, embed=False)

    def log(self, metrics: dict) -> None:
        step = metrics.get("step")
        self._trackio.log(tracked_metrics(metrics), step=int(step) if step is not None else None)

    def finish(self) -> None:
        with contextlib.redirect_stdout(sys.stderr):
            self._trackio.finish()
