"""Live health warnings: is this run going wrong? Computed from the step metrics alone.

Every warning is one row of :data:`RULES`, the one table of thresholds (rendered into
``docs/health.md`` by :func:`rules_markdown`; a test keeps the two equal). A row names the metric
it reads, the condition in words, the threshold, the warm-up (steps before it may fire) and the
window (how many steps the condition must hold, or how far back it compares). Its meaning and
what to try are in the text catalogue (``health.<name>.meaning`` / ``health.<name>.try``).

:func:`check` is pure: a metrics history (the dicts a trainer yields, oldest first, as printed
by ``python -m ppo_demo train --jsonl``) in, the warnings out, each at the first step where its
condition held, and each at most once per history (a run is one episode: a warning that fired
is not repeated every step). The thresholds are set so that none fires on the default quick-CPU
run of the English tasks on the embedded model (``tests/fixtures/quick_cpu_english_metrics.jsonl``)
and each fires on a constructed run that shows its problem (``tests/test_health.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from .text import t


@dataclass(frozen=True)
class HealthRule:
    name: str
    metric: str  # the step metric it reads (the first one when it reads two)
    condition: str  # in words, with the threshold, warm-up and window below
    threshold: float
    warmup: int  # it may fire only after this many steps
    window: int  # steps the condition must hold in a row, or the span it compares


RULES: tuple[HealthRule, ...] = (
    HealthRule("kl_high", "kl_mean", "KL per token above the threshold (nats) for `window` steps in a row",
               1.0, 0, 3),
    HealthRule("kl_growing", "kl_mean", "mean KL per token over the last `window` steps at least twice that of "
               "the `window` steps before, and above the threshold (nats)", 0.5, 10, 5),
    HealthRule("entropy_collapse", "entropy", "token entropy below the threshold (nats) while the success rate, "
               "averaged over the last `window` steps, is below 0.5", 0.1, 3, 3),
    HealthRule("clip_high", "clip_frac", "clip fraction above the threshold for `window` steps in a row",
               0.3, 0, 3),
    HealthRule("value_nonfinite", "value_loss", "value loss NaN or infinite in a run with a critic "
               "(GAE); threshold unused", math.inf, 0, 1),
    HealthRule("explained_variance_low", "explained_variance", "explained variance below the threshold for "
               "`window` steps in a row, counting only steps whose reward spread (reward_std) is at least 0.1 "
               "(when the returns barely vary, explained variance is ill-conditioned)", -10.0, 5, 2),
    HealthRule("reward_gamed", "reward_mean", "mean reward of the last `window` steps up by at least the "
               "threshold on the `window` steps before, while the success rate did not rise and stays below 0.9",
               0.2, 6, 3),
    HealthRule("length_to_cap", "response_length_mean", "mean response length at least the threshold times "
               "max new tokens for `window` steps in a row, having started below it", 0.9, 1, 3),
    HealthRule("no_reward_variance", "reward_std", "every response of a batch got the same reward (spread "
               "at most the threshold)", 1e-9, 0, 1),
)
RULES_BY_NAME = {rule.name: rule for rule in RULES}


@dataclass(frozen=True)
class HealthWarning:
    name: str
    step: int  # the step at which it fired (the metrics' own step count)
    metric: str
    value: float  # the metric's value at that step
    threshold: float

    def meaning(self, lang: str = "en") -> str:
        return t(f"health.{self.name}.meaning", lang)

    def advice(self, lang: str = "en") -> str:
        return t(f"health.{self.name}.try", lang)

    def message(self, lang: str = "en") -> str:
        """One line: step, what it means, one thing to try."""
        return t("health.line", lang, step=self.step, meaning=self.meaning(lang), advice=self.advice(lang))

    def to_json(self) -> dict:
        return {"event": "warning", "name": self.name, "step": self.step, "metric": self.metric,
                "value": _json_number(self.value), "threshold": _json_number(self.threshold),
                "message": self.meaning("en"), "try": self.advice("en")}


def _json_number(x: float):
    return x if math.isfinite(x) else None


def _value(metrics: dict, key: str) -> float:
    value = metrics.get(key)
    return float(value) if isinstance(value, (int, float)) else math.nan


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _in_a_row(history: list[dict], end: int, window: int, condition: Callable[[dict], bool]) -> bool:
    """The condition held at each of the ``window`` steps ending at index ``end``."""
    return end + 1 >= window and all(condition(m) for m in history[end + 1 - window:end + 1])


# Each rule's test at index i of the history, given the rule and the run's max new tokens.
def _kl_high(h, i, r, cap):
    return _in_a_row(h, i, r.window, lambda m: _value(m, "kl_mean") > r.threshold)


def _kl_growing(h, i, r, cap):
    if i + 1 < 2 * r.window:
        return False
    recent = _mean([_value(m, "kl_mean") for m in h[i + 1 - r.window:i + 1]])
    before = _mean([_value(m, "kl_mean") for m in h[i + 1 - 2 * r.window:i + 1 - r.window]])
    return recent > r.threshold and recent >= 2 * max(before, 0.0)


def _entropy_collapse(h, i, r, cap):
    if i + 1 < r.window:
        return False
    success = _mean([_value(m, "success_rate") for m in h[i + 1 - r.window:i + 1]])
    return _value(h[i], "entropy") < r.threshold and success < 0.5


def _clip_high(h, i, r, cap):
    return _in_a_row(h, i, r.window, lambda m: _value(m, "clip_frac") > r.threshold)


def _value_nonfinite(h, i, r, cap):
    # A critic-free run reports value_loss as NaN (n/a) on purpose: its explained variance is NaN
    # too. A run with a critic has a finite explained variance, so a NaN value loss there is real.
    # In the JSON lines NaN is null and infinity has no form: a null value loss with a finite
    # explained variance is the same signal.
    v, ev = h[i].get("value_loss"), _value(h[i], "explained_variance")
    has_critic = math.isfinite(ev)
    return has_critic and (v is None or not math.isfinite(float(v)))


def _explained_variance_low(h, i, r, cap):
    considered = [m for m in h[:i + 1] if _value(m, "reward_std") >= 0.1]
    if _value(h[i], "reward_std") < 0.1 or len(considered) < r.window:
        return False
    return all(_value(m, "explained_variance") < r.threshold for m in considered[-r.window:])


def _reward_gamed(h, i, r, cap):
    if i + 1 < 2 * r.window:
        return False
    recent, before = h[i + 1 - r.window:i + 1], h[i + 1 - 2 * r.window:i + 1 - r.window]
    reward_gain = _mean([_value(m, "reward_mean") for m in recent]) - _mean([_value(m, "reward_mean") for m in before])
    success_recent = _mean([_value(m, "success_rate") for m in recent])
    success_gain = success_recent - _mean([_value(m, "success_rate") for m in before])
    return reward_gain >= r.threshold and success_gain <= 0.0 and success_recent < 0.9


def _length_to_cap(h, i, r, cap):
    if not cap:
        return False
    at_cap = lambda m: _value(m, "response_length_mean") >= r.threshold * cap  # noqa: E731
    return not at_cap(h[0]) and _in_a_row(h, i, r.window, at_cap)


def _no_reward_variance(h, i, r, cap):
    return _value(h[i], "samples") > 1 and _value(h[i], "reward_std") <= r.threshold


_TESTS = {"kl_high": _kl_high, "kl_growing": _kl_growing, "entropy_collapse": _entropy_collapse,
          "clip_high": _clip_high, "value_nonfinite": _value_nonfinite,
          "explained_variance_low": _explained_variance_low, "reward_gamed": _reward_gamed,
          "length_to_cap": _length_to_cap, "no_reward_variance": _no_reward_variance}
assert set(_TESTS) == set(RULES_BY_NAME)


def check(history: list[dict], max_new_tokens: int | None = None) -> list[HealthWarning]:
    """Every warning the history shows, each once, at the first step where it held, in step
    order. ``max_new_tokens`` (the run's cap) enables ``length_to_cap``.

    A warning's step never moves as the history grows (each test looks only at steps up to the
    one it judges), so a caller emits the new ones with ``[w for w in check(h) if w.step ==
    h[-1]["step"]]`` after each step."""
    warnings = []
    for rule in RULES:
        test = _TESTS[rule.name]
        for i, metrics in enumerate(history):
            if i + 1 <= rule.warmup:
                continue
            if test(history, i, rule, max_new_tokens):
                step = int(metrics.get("step", i + 1))
                warnings.append(HealthWarning(rule.name, step, rule.metric, _value(metrics, rule.metric),
                                              rule.threshold))
                break
    return sorted(warnings, key=lambda w: (w.step, [r.name for r in RULES].index(w.name)))


def new_warnings(history: list[dict], max_new_tokens: int | None = None) -> list[HealthWarning]:
    """The warnings that first fired at the history's last step."""
    if not history:
        return []
    last = int(history[-1].get("step", len(history)))
    return [w for w in check(history, max_new_tokens) if w.step == last]


def rules_markdown(lang: str = "en") -> str:
    """The threshold table as Markdown (what ``docs/health.md`` shows)."""
    head = t("health.table.header", lang)
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    for r in RULES:
        threshold = "—" if math.isinf(r.threshold) else f"{r.threshold:g}"
        lines.append(f"| `{r.name}` | `{r.metric}` | {r.condition} | {threshold} | {r.warmup} | {r.window} | "
                     f"{t(f'health.{r.name}.meaning', lang)} | {t(f'health.{r.name}.try', lang)} |")
    return "\n".join(lines) + "\n"


def status_text(warnings: list[HealthWarning], lang: str = "en") -> str:
    """The warnings for a status line: their count, then each one's line (step, meaning, advice)."""
    if not warnings:
        return ""
    from .text import tn

    count = tn("health.status", len(warnings), lang)
    return "\n".join([t("health.list", lang, count=count)] + [f"- {w.message(lang)}" for w in warnings])


def status_line(warnings: list[HealthWarning], lang: str = "en") -> str:
    """The warnings in one line for the page's status: their count and the latest in full."""
    if not warnings:
        return ""
    from .text import tn

    return t("health.latest", lang, count=tn("health.status", len(warnings), lang),
             line=warnings[-1].message(lang))
