"""Regex mode cannot hang: catastrophic patterns run on RE2 (linear time), refusals explain why.

The corpus below makes Python's ``re`` backtrack exponentially (test_the_corpus_is_catastrophic_
for_python_re proves it, so the RE2 tests can fail); on RE2 every pattern answers at once.

Run: .venv/bin/python -m pytest tests/test_matching.py -q
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ppo_demo import matching
from ppo_demo.reward import RewardConfig, RewardError, compile_expected, is_hit, rule_reward

REGEX = RewardConfig(match_mode="regex")

# (pattern, the unit a nearly matching response repeats, the tail that makes it match).
# Ending the repeated units with "-" instead makes the match fail late, after the backtracking.
CATASTROPHIC = [
    (r"(a+)+$", "a", ""),
    (r"(.*.*)*Q", "a", "Q"),
    (r"(a|aa)+$", "a", ""),
    (r"(x+x+)+y", "x", "y"),
    (r"([a-z]+)*[0-9]$", "a", "1"),
    (r"^(\w+\s?)*$", "ab ", ""),
    (r"([ab]*[ab]*)*c", "ab", "c"),
    (r"(\d+\d*)+!", "1", "!"),
    (r"((a*)*)*b", "a", "b"),
    (r"(.+)+\.$", "a", "."),
]


def test_the_corpus_is_catastrophic_for_python_re():
    """Each pattern keeps Python's re busy for over half a second on a response of at most 64
    characters: without RE2 the tests below would hang, so they can fail."""
    script = r"""
import json, re, signal, sys
class Busy(Exception): pass
def interrupt(*_): raise Busy()
signal.signal(signal.SIGALRM, interrupt)
still_busy = []
for pattern, unit, _ in json.loads(sys.argv[1]):
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    try:
        re.search(pattern, (unit * 64)[:64] + "-", re.IGNORECASE)
    except Busy:
        still_busy.append(pattern)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
print(json.dumps(still_busy))
"""
    done = subprocess.run([sys.executable, "-c", script, json.dumps(CATASTROPHIC)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [pattern for pattern, _, _ in CATASTROPHIC]


@pytest.mark.timeout(60)  # the bound: each search on Python's re would run for years
@pytest.mark.parametrize("length", [64, 1000, matching.MAX_MATCHED_CHARS - 1])
def test_catastrophic_patterns_answer_on_long_responses(length):
    for pattern, unit, hit_tail in CATASTROPHIC:
        body = (unit * length)[:length]
        assert not is_hit(body + "-", pattern, REGEX), pattern
        # The answer is computed, not skipped: the same pattern matches the matching response.
        assert is_hit(body + hit_tail, pattern, REGEX), pattern


def test_regex_answers_are_compiled_by_re2_not_python_re():
    compiled = compile_expected(r"(a+)+$", REGEX)
    assert type(compiled).__module__.startswith("re2")


def test_search_is_case_insensitive_anywhere_in_the_stripped_response():
    assert is_hit("  The answer is PARIS.\n", r"paris\.$", REGEX)
    assert is_hit("ÉCOLE", r"école", REGEX)
    assert not is_hit("The answer is Paris, France", r"paris$", REGEX)
    assert is_hit("我喜欢机器学习", r"机器.习", REGEX)


def test_a_lone_surrogate_is_matched_not_a_crash():
    """Python's re took it; RE2 needs UTF-8, which has no form for it (found by hypothesis)."""
    assert is_hit("\ud800", "\ud800", REGEX)
    assert is_hit("x\ud800y", r"x.y", REGEX)
    assert not is_hit("abc", "\ud800", REGEX)


def test_only_the_first_max_matched_chars_are_searched():
    head = "a" * matching.MAX_MATCHED_CHARS
    assert is_hit(head + "tail", r"^a+", REGEX)
    assert not is_hit(head + "tail", r"tail", REGEX)  # past the bound
    assert is_hit(head[:-4] + "tail", r"tail$", REGEX)  # just inside it


@pytest.mark.parametrize("pattern, construct, fragment", [
    (r"(a)\1", "a backreference", r"\1"),
    (r"(?P<x>a)(?P=x)", "a named backreference", "(?P="),
    (r"(?<x>a)\k<x>", "a named backreference", r"\k"),
    (r"foo(?=bar)", "a lookahead", "(?="),
    (r"foo(?!bar)", "a negative lookahead", "(?!"),
    (r"(?<=foo)bar", "a lookbehind", "(?<="),
    (r"(?<!foo)bar", "a negative lookbehind", "(?<!"),
    (r"(?>a+)b", "an atomic group", "(?>"),
    (r"a++b", "a possessive quantifier", "++"),
    (r"(a)?(?(1)b|c)", "a conditional group", "(?("),
])
def test_unsupported_constructs_are_named_with_the_reason(pattern, construct, fragment):
    with pytest.raises(RewardError) as refused:
        compile_expected(pattern, REGEX)
    message = str(refused.value)
    assert repr(pattern) in message
    assert f"uses {construct} ({fragment})" in message
    assert "linear-time" in message and "backtracking" in message


def test_other_refusals_say_what_to_write_instead():
    with pytest.raises(RewardError, match=r"\\Z.*Write \\z instead"):
        compile_expected(r"4\Z", REGEX)
    with pytest.raises(RewardError, match=r"at most 1000 repetitions"):
        compile_expected(r"(a{100}){100}", REGEX)
    with pytest.raises(RewardError, match=r"syntax RE2 does not support .*re2/wiki/Syntax"):
        compile_expected(r"(?x) a b", REGEX)
    # A typo is still called a typo, as before.
    with pytest.raises(RewardError, match=r"'ye\(s' is not a valid regular expression: missing \)"):
        compile_expected("ye(s", REGEX)


def test_a_missing_re2_fails_at_import_with_the_fix(monkeypatch):
    monkeypatch.setitem(sys.modules, "re2", None)  # what an environment without google-re2 looks like
    spec = importlib.util.spec_from_file_location("matching_without_re2", Path(matching.__file__))
    with pytest.raises(ImportError, match="needs google-re2 .*requirements.txt"):
        spec.loader.exec_module(importlib.util.module_from_spec(spec))


# --- random patterns: any pattern either is refused with a RewardError or answers ----------

_ATOMS = st.sampled_from(["a", "b", "x", ".", r"\w", r"\d", "[ab]", "[^x]", r"\s", "ab", "Q", "^", "$"])
_QUANTIFIERS = st.sampled_from(["*", "+", "?", "{2,}", "{1,30}", "*?", "+?", "{3}"])


def _patterns():
    return st.recursive(
        _ATOMS,
        lambda inner: st.one_of(
            st.tuples(inner, _QUANTIFIERS).map(lambda t: f"(?:{t[0]}){t[1]}"),
            st.tuples(inner, _QUANTIFIERS).map(lambda t: f"({t[0]}){t[1]}"),
            st.tuples(inner, inner).map("".join),
            st.tuples(inner, inner).map("|".join)),
        max_leaves=12)


@pytest.mark.filterwarnings("ignore:Generating overly large repr")  # the recursive strategy's own repr
@settings(max_examples=150, deadline=timedelta(seconds=5), suppress_health_check=[HealthCheck.too_slow])
@given(_patterns(), st.text(alphabet="abx Q1-", min_size=1, max_size=8), st.integers(100, 6000),
       st.sampled_from(["", "-", "Q", "!"]))
def test_random_nested_patterns_answer_within_the_deadline(pattern, unit, length, tail):
    """hypothesis' deadline is the bound: 5 s per example, against a few ms measured."""
    response = (unit * length)[:length] + tail
    no_length_penalty = RewardConfig(match_mode="regex", length_penalty=0.0)
    try:
        score = rule_reward(response, pattern, no_length_penalty)
    except RewardError:
        return
    assert score == (1.0 if is_hit(response, pattern, REGEX) else -1.0)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=30), st.text(max_size=300))
def test_arbitrary_pattern_text_raises_only_reward_error(pattern, response):
    try:
        compiled = compile_expected(pattern, REGEX)
    except RewardError as exc:
        assert repr(pattern) in str(exc)
        return
    assert matching.search(compiled, response) in (True, False)
