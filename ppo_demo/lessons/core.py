"""What a lesson is (data), what its runs measured, and the verdict written from those numbers.

A lesson is a classroom question answered by an experiment: shared knobs and tasks, a control
run and one or more treatments (the same seed, each changing a few knobs), the metrics to
overlay, and the expected signal as a predicate over the runs' histories. The predicate
returns an :class:`Outcome`: whether the signal was seen, the numbers it looked at
(``measured``), one :class:`Check` per comparison, and, when not seen, why that can happen.
The verdict is rendered from the checks, whose values are keys into ``measured``: it cannot
state a number the runs did not produce.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Callable

from ..text import LocalizedError, long_text, t

History = list[dict[str, Any]]  # one run: a metrics dict per step
Runs = dict[str, list[History]]  # arm key -> one history per seed


class LessonError(LocalizedError):
    """A lesson cannot run as asked (unknown name, a knob this build lacks, bad seeds)."""


@dataclass(frozen=True)
class Arm:
    """One run of a lesson: a key, its label (catalogue key) and the knobs it changes."""

    key: str
    overrides: dict[str, Any] = field(default_factory=dict)
    reward: dict[str, Any] = field(default_factory=dict)  # RewardConfig changes of this arm
    tasks: tuple | None = None  # this arm's own tasks (default: the lesson's)

    def label(self, lang: str = "en") -> str:
        return t(f"lesson.arm.{self.key}", lang)


@dataclass(frozen=True)
class Check:
    """One comparison the verdict states: a catalogue sentence whose placeholders name
    ``measured`` keys, and whether it held."""

    key: str
    values: dict[str, str]  # placeholder -> measured key
    passed: bool | None  # None: a number shown for context, not part of the signal
    arms: dict[str, str] = field(default_factory=dict)  # placeholder -> arm key (its label)


@dataclass
class Outcome:
    observed: bool
    measured: dict[str, float]
    checks: list[Check]
    reasons: list[str] = field(default_factory=list)  # catalogue keys: why it may not show
    reason_values: dict[str, str] = field(default_factory=dict)  # placeholder -> measured key


@dataclass(frozen=True)
class Lesson:
    name: str
    arms: tuple[Arm, ...]
    signal: Callable[[Runs], Outcome]
    metrics: tuple[str, ...]  # what the Runs view overlays, first one first
    preset: str = "quick-cpu"
    shared: dict[str, Any] = field(default_factory=dict)  # knob overrides every arm gets
    reward: dict[str, Any] = field(default_factory=dict)
    tasks: Any = "english"  # a task preset name or a tuple of Task
    steps: int = 6
    seeds: tuple[int, ...] = (42,)
    requires: tuple[str, ...] = ()  # TrainConfig knobs the lesson needs

    def question(self, lang: str = "en") -> str:
        return t(f"lesson.{self.name}.question", lang)

    def expected(self, lang: str = "en") -> str:
        return t(f"lesson.{self.name}.expected", lang)

    def explanation(self, lang: str = "en") -> str:
        return long_text(f"lesson_{self.name}", lang)

    def missing_knobs(self) -> list[str]:
        from ..config import TrainConfig

        have = {f.name for f in dataclasses.fields(TrainConfig)}
        return [name for name in self.requires if name not in have]


# --- reading histories --------------------------------------------------------------------
def values(history: History, key: str) -> list[float]:
    """The finite values of ``key`` over a run's steps, in order."""
    out = []
    for m in history:
        v = m.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            out.append(float(v))
    return out


def last_mean(key: str, n: int = 3) -> Callable[[History], float]:
    def f(history: History) -> float:
        vs = values(history, key)[-n:]
        return sum(vs) / len(vs) if vs else math.nan
    return f


def first_mean(key: str, n: int = 2) -> Callable[[History], float]:
    def f(history: History) -> float:
        vs = values(history, key)[:n]
        return sum(vs) / len(vs) if vs else math.nan
    return f


def change(key: str, first: int = 2, last: int = 3) -> Callable[[History], float]:
    """Mean of the last ``last`` steps minus the mean of the first ``first`` (NaN if too short)."""
    def f(history: History) -> float:
        vs = values(history, key)
        if len(vs) < first + 1:
            return math.nan
        return last_mean(key, last)(history) - first_mean(key, first)(history)
    return f


def max_of(key: str) -> Callable[[History], float]:
    def f(history: History) -> float:
        vs = values(history, key)
        return max(vs) if vs else math.nan
    return f


def min_of(key: str) -> Callable[[History], float]:
    def f(history: History) -> float:
        vs = values(history, key)
        return min(vs) if vs else math.nan
    return f


def mean_of(key: str) -> Callable[[History], float]:
    def f(history: History) -> float:
        vs = values(history, key)
        return sum(vs) / len(vs) if vs else math.nan
    return f


class Measure:
    """Collects what a predicate looks at. ``arm(...)`` records one statistic of one arm: the
    mean over its seeds under ``name``, and with several seeds ``name.min`` / ``name.max``."""

    def __init__(self, runs: Runs):
        self.runs = runs
        self.measured: dict[str, float] = {}
        self.checks: list[Check] = []
        self.spreads: list[str] = []  # names with a seed range

    def arm(self, name: str, arm: str, statistic: Callable[[History], float]) -> float:
        per_seed = [statistic(h) for h in self.runs.get(arm, [])]
        finite = [v for v in per_seed if math.isfinite(v)]
        mean = sum(finite) / len(finite) if finite else math.nan
        self.measured[name] = mean
        if len(finite) > 1:
            self.measured[f"{name}.min"], self.measured[f"{name}.max"] = min(finite), max(finite)
            self.spreads.append(name)
        return mean

    def check(self, key: str, passed: bool, arms: dict[str, str] | None = None, **values: str) -> bool:
        """A sentence of the verdict that is part of the signal; NaN in any value it names
        makes it not passed. ``values`` map placeholders to measured keys, ``arms`` to arm keys."""
        numbers = [self.measured[v] for v in values.values()]
        passed = bool(passed) and all(math.isfinite(x) for x in numbers)
        self.checks.append(Check(key, dict(values), passed, dict(arms or {})))
        return passed

    def above(self, a: str, b: str) -> bool:
        """``a`` > ``b``, and with several seeds each way: a's lowest seed above b's highest (a
        difference inside seed noise is not a signal)."""
        m = self.measured
        if f"{a}.min" in m and f"{b}.max" in m:
            return m[f"{a}.min"] > m[f"{b}.max"]
        return m[a] > m[b]

    def note(self, key: str, arms: dict[str, str] | None = None, **values: str) -> None:
        """A sentence of the verdict giving context (no ✓/✗, not part of the signal)."""
        self.checks.append(Check(key, dict(values), None, dict(arms or {})))

    def outcome(self, steps_needed: int = 0) -> Outcome:
        signal = [c for c in self.checks if c.passed is not None]
        observed = bool(signal) and all(c.passed for c in signal)
        reasons, reason_values = [], {}
        if not observed:
            shortest = min((len(h) for hs in self.runs.values() for h in hs), default=0)
            if shortest < steps_needed:
                self.measured["steps_run"] = float(shortest)
                reasons.append("lesson.reason.too_few_steps")
                reason_values["steps"] = "steps_run"
            if any(self._overlaps(c) for c in self.checks if c.passed is False):
                reasons.append("lesson.reason.seed_noise")
            elif not self.spreads:
                reasons.append("lesson.reason.one_seed")
            reasons.append("lesson.reason.noise")
        return Outcome(observed, self.measured, self.checks, reasons, reason_values)

    def _overlaps(self, check: Check) -> bool:
        """Whether two of the arm statistics a failed comparison names have overlapping seed
        ranges (then the comparison could go either way with other seeds)."""
        ranges = [(self.measured[f"{n}.min"], self.measured[f"{n}.max"]) for n in check.values.values()
                  if n in self.spreads]
        return any(a[0] <= b[1] and b[0] <= a[1] for i, a in enumerate(ranges) for b in ranges[i + 1:])


# --- the verdict ------------------------------------------------------------------------
def fmt(x: float) -> str:
    """Every number a verdict shows, formatted one way (3 significant digits)."""
    if not math.isfinite(x):
        return "n/a"
    if x == 0:
        return "0"
    if abs(x) >= 1000 or abs(x) < 1e-3:
        return f"{x:.2e}"
    return f"{x:.3g}"


def render_check(check: Check, measured: dict[str, float], labels: dict[str, str], lang: str) -> str:
    mark = {True: "✓", False: "✗", None: "·"}[check.passed]
    values = {p: fmt(measured[m]) for p, m in check.values.items()}
    values.update({p: labels[a] for p, a in check.arms.items()})
    return f"{mark} " + t(check.key, lang, **values)


def verdict_text(lesson: Lesson, outcome: Outcome, lang: str = "en") -> str:
    """The verdict in Markdown: expected, measured (numbers from the runs only), seen or not,
    and when not, why that can happen."""
    m = outcome.measured
    labels = {arm.key: arm.label(lang) for arm in lesson.arms}
    lines = [f"**{t('lesson.verdict.expected', lang)}** {lesson.expected(lang)}", "",
             f"**{t('lesson.verdict.measured', lang)}**", ""]
    lines += [f"- {render_check(c, m, labels, lang)}" for c in outcome.checks]
    spreads = sorted({k[:-4] for k in m if k.endswith(".min")})
    if spreads:
        lines += ["", f"**{t('lesson.verdict.spread', lang)}**", ""]
        for name in spreads:
            stat, _, arm = name.partition("@")
            lines.append(f"- {labels.get(arm, arm)} · `{stat}`: {fmt(m[name])} "
                         f"({fmt(m[name + '.min'])} … {fmt(m[name + '.max'])})")
    lines += ["", "**" + t("lesson.verdict.seen" if outcome.observed else "lesson.verdict.not_seen", lang) + "**"]
    for key in outcome.reasons:
        lines.append(f"- {t(key, lang, **{p: fmt(m[k]) for p, k in outcome.reason_values.items()})}"
                     if key == "lesson.reason.too_few_steps" else f"- {t(key, lang)}")
    return "\n".join(lines)
