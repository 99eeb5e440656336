"""The rule reward r_rm(x, y): did the response say the expected answer, and how briefly.

    r_rm = (+1 if hit else -1) - length_penalty * len(normalize(y)) - missing_eos_penalty·[no EOS]

``hit`` depends on the match mode: ``contains`` (the seed: the normalised expected answer occurs
in the normalised response), ``exact`` (they are equal) or ``regex`` (the expected answer is a
regular expression searched, case-insensitively, in the stripped response; it runs on RE2, a
linear-time engine, see ``matching.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import check_knobs, knob, knobs_from_dict
from .matching import PatternError, compile_pattern, search
from .text import LocalizedError

MATCH_MODES = ("contains", "exact", "regex")
# The seed's list, plus the full-width forms a Chinese answer may use.
_STRIPPED_CHARS = [" ", "\n", "\t", "\r", "。", "，", ",", ".", "!", "?", "：", ":", "\"", "'",
                   "！", "？", "“", "”", "‘", "’", "\u3000"]
_STRIP_TABLE = str.maketrans({ch: None for ch in _STRIPPED_CHARS})


class RewardError(LocalizedError):
    """A reward setting is invalid (e.g. a regex that does not compile)."""


@dataclass(frozen=True)
class RewardConfig:
    """The terms of r_rm that are knobs, defined once with :func:`~ppo_demo.config.knob` like
    every training knob (the CLI's flags and the UI's reward controls are made from them). The
    third term, the missing-EOS penalty, is a knob of ``TrainConfig``'s reward group because the
    presets set it."""

    match_mode: str = knob("contains", "contains: the answer appears in the response (the seed) · "
                           "exact: nothing else · regex: a pattern", choices=MATCH_MODES, group="reward",
                           label="Match mode")
    length_penalty: float = knob(0.002, "reward lost per character of the normalised response (the seed: "
                                 "0.002)", low=0, high=1, group="reward", label="Length penalty", step=0.001)
    hit_reward: float = 1.0
    miss_reward: float = -1.0

    def validate(self) -> "RewardConfig":
        check_knobs(self, RewardError)
        return self

    @classmethod
    def from_dict(cls, values: dict) -> "RewardConfig":
        """From untyped input (CLI strings, UI/API values), coerced and validated."""
        return knobs_from_dict(cls, values).validate()


def normalize_text(text: str) -> str:
    """The seed's normaliser: strip, lower-case, drop spaces and punctuation.

    Strips again at the end: removing punctuation can expose whitespace the table does not
    list (e.g. '.\u2003a' -> '\u2003a'), which would make the normaliser not idempotent."""
    return text.strip().lower().translate(_STRIP_TABLE).strip()


def compile_expected(expected: str, config: RewardConfig):
    """Compile a regex answer up front so a bad pattern is reported before training starts."""
    if config.match_mode != "regex":
        return None
    try:
        return compile_pattern(expected)
    except PatternError as exc:
        if exc.invalid is not None:  # not a regular expression at all
            raise RewardError("reward.bad_regex", answer=repr(expected), error=exc.invalid) from None
        raise RewardError("reward.re2_refuses", answer=repr(expected), reason=str(exc)) from None


def is_hit(response: str, expected: str, config: RewardConfig) -> bool:
    if config.match_mode == "regex":
        return search(compile_expected(expected, config), response.strip())
    resp, exp = normalize_text(response), normalize_text(expected)
    if config.match_mode == "exact":
        return resp == exp
    return exp in resp


def rule_reward(response: str, expected: str, config: RewardConfig = RewardConfig(),
                ended_with_eos: bool = True, missing_eos_penalty: float = 0.0) -> float:
    """Score one response. ``ended_with_eos`` False means it was cut at max_new_tokens."""
    hit = is_hit(response, expected, config)
    score = (config.hit_reward if hit else config.miss_reward)
    score -= config.length_penalty * len(normalize_text(response))
    if not ended_with_eos:
        score -= missing_eos_penalty
    return score
