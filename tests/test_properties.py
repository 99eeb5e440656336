"""Property tests (hypothesis) for the reward rules and the task parser.

Run: .venv/bin/python -m pytest tests/test_properties.py -q
"""

from __future__ import annotations

import json
import re

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from ppo_demo.reward import MATCH_MODES, RewardConfig, is_hit, normalize_text, rule_reward
from ppo_demo.tasks import Task, TaskError, parse_tasks_text, tasks_to_csv

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text that often contains the characters the normaliser cares about.
PUNCT = " \n\t\r。，,.!?：:\"'！？“”‘’\u3000\u2003\x0bAaZzİẞß"
texts = st.text(alphabet=st.one_of(st.characters(), st.sampled_from(PUNCT), st.sampled_from(PUNCT)), max_size=40)
penalties = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
scores = st.floats(min_value=-10.0, max_value=10.0, allow_nan=False)


def reward_configs(modes=("contains", "exact")):
    return st.builds(RewardConfig, match_mode=st.sampled_from(modes), length_penalty=penalties,
                     hit_reward=scores, miss_reward=scores)


# --- reward ------------------------------------------------------------------------------

@SETTINGS
@given(texts)
@example(".\u2003a")  # punctuation hiding a Unicode space that strip() only sees afterwards
def test_normalize_is_idempotent(text):
    once = normalize_text(text)
    assert normalize_text(once) == once


@SETTINGS
@given(texts)
def test_normalize_drops_case_and_edges(text):
    out = normalize_text(text)
    assert out == out.strip()
    if text.isascii():
        assert normalize_text(text.upper()) == normalize_text(text.lower())


@SETTINGS
@given(texts)
def test_a_response_equal_to_the_answer_hits(text):
    assume(normalize_text(text))
    assert is_hit(text, text, RewardConfig(match_mode="contains"))
    assert is_hit(text, text, RewardConfig(match_mode="exact"))
    # Padding the answer with words and punctuation still hits in contains mode.
    assert is_hit(f"Well, the answer is: {text}!", text, RewardConfig(match_mode="contains"))


@SETTINGS
@given(texts)
def test_regex_mode_matches_the_escaped_answer(text):
    assume(text.strip())
    assert is_hit(text, re.escape(text.strip()), RewardConfig(match_mode="regex"))


@SETTINGS
@given(texts, texts, reward_configs(), st.booleans(), penalties)
def test_reward_is_bounded_and_decomposes(response, expected, config, eos, eos_penalty):
    score = rule_reward(response, expected, config, ended_with_eos=eos, missing_eos_penalty=eos_penalty)
    hit = is_hit(response, expected, config)
    base = config.hit_reward if hit else config.miss_reward
    length = config.length_penalty * len(normalize_text(response))
    assert score <= base + 1e-12
    assert abs(score - (base - length - (0.0 if eos else eos_penalty))) < 1e-9
    # Cutting a response off never scores better than ending it.
    ended = rule_reward(response, expected, config, ended_with_eos=True, missing_eos_penalty=eos_penalty)
    assert score <= ended


@SETTINGS
@given(texts, texts, penalties)
def test_default_rewards_are_bounded(response, expected, penalty):
    config = RewardConfig(match_mode="contains", length_penalty=penalty)
    score = rule_reward(response, expected, config)
    if is_hit(response, expected, config):
        assert score <= 1.0
    else:
        assert score <= -1.0


@SETTINGS
@given(texts, texts)
def test_exact_hit_implies_contains_hit(response, expected):
    if is_hit(response, expected, RewardConfig(match_mode="exact")):
        assert is_hit(response, expected, RewardConfig(match_mode="contains"))


# --- tasks -------------------------------------------------------------------------------

cell = st.text(min_size=1, max_size=60).filter(lambda s: s.strip())
task_lists = st.lists(st.builds(Task, prompt=cell, expected=cell), min_size=1, max_size=12)


@SETTINGS
@given(task_lists)
def test_csv_round_trip(tasks):
    parsed = parse_tasks_text(tasks_to_csv(tasks), "csv")
    assert parsed == [Task(t.prompt.strip(), t.expected.strip()) for t in tasks]


@SETTINGS
@given(task_lists)
def test_csv_round_trip_is_stable(tasks):
    once = parse_tasks_text(tasks_to_csv(tasks), "csv")
    assert parse_tasks_text(tasks_to_csv(once), "csv") == once


def _parse_or_task_error(text, fmt):
    try:
        tasks = parse_tasks_text(text, fmt)
    except TaskError:
        return
    assert tasks and all(isinstance(t, Task) and t.prompt and t.expected for t in tasks)
    assert all(t.prompt == t.prompt.strip() and t.expected == t.expected.strip() for t in tasks)


@SETTINGS
@given(st.text(max_size=200), st.sampled_from(["csv", "json"]))
def test_arbitrary_text_raises_only_task_error(text, fmt):
    _parse_or_task_error(text, fmt)


@SETTINGS
@given(st.text(max_size=200))
def test_arbitrary_csv_body_raises_only_task_error(body):
    _parse_or_task_error("prompt,expected\n" + body, "csv")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["prompt", "expected", "other"]) | st.text(max_size=5), children, max_size=4),
    max_leaves=12)


@SETTINGS
@given(json_values)
def test_arbitrary_json_raises_only_task_error(value):
    _parse_or_task_error(json.dumps(value), "json")


@SETTINGS
@given(st.lists(st.fixed_dictionaries({"prompt": json_values, "expected": json_values}), max_size=6))
def test_json_task_lists_raise_only_task_error(items):
    _parse_or_task_error(json.dumps(items), "json")


def test_match_modes_are_covered():
    assert set(MATCH_MODES) == {"contains", "exact", "regex"}
