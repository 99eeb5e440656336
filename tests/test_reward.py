"""The rule reward against values worked out by hand (the seed's normaliser and penalty)."""

import pytest

from ppo_demo.reward import RewardConfig, RewardError, compile_expected, normalize_text, rule_reward


def test_normaliser_drops_the_seeds_punctuation_full_width_too():
    assert normalize_text("  I Like, Machine Learning.\n") == "ilikemachinelearning"
    assert normalize_text("小鱼儿。") == "小鱼儿"
    assert normalize_text("“通义千问”！") == "通义千问"


def test_hit_is_plus_one_minus_length_penalty():
    # "小鱼儿。" normalises to 3 characters: 1 - 0.002 * 3
    assert rule_reward("小鱼儿。", "小鱼儿") == pytest.approx(0.994)
    # "The answer is 4." -> "theansweris4", 12 characters, contains "4": 1 - 0.024
    assert rule_reward("The answer is 4.", "4") == pytest.approx(0.976)


def test_miss_is_minus_one_minus_length_penalty_and_missing_eos_penalty():
    # "five" (4 characters) misses "4": -1 - 0.008; cut at max_new_tokens: a further -0.5
    assert rule_reward("five", "4") == pytest.approx(-1.008)
    assert rule_reward("five", "4", ended_with_eos=False, missing_eos_penalty=0.5) == pytest.approx(-1.508)
    assert rule_reward("five", "4", ended_with_eos=True, missing_eos_penalty=0.5) == pytest.approx(-1.008)


def test_match_modes():
    exact = RewardConfig(match_mode="exact")
    assert rule_reward("Paris.", "paris", exact) == pytest.approx(1 - 0.002 * 5)
    assert rule_reward("It is Paris.", "paris", exact) == pytest.approx(-1 - 0.002 * 9)  # "itisparis"
    assert rule_reward("我喜欢，机器学习", "我喜欢机器学习", exact) == pytest.approx(1 - 0.002 * 7)
    regex = RewardConfig(match_mode="regex")
    assert rule_reward("  4 apples", r"^4\b", regex) == pytest.approx(1 - 0.002 * 7)
    assert rule_reward("14 apples", r"^4\b", regex) == pytest.approx(-1 - 0.002 * 8)


def test_bad_regex_is_a_reward_error_naming_the_pattern():
    with pytest.raises(RewardError, match=r"'\('"):
        compile_expected("(", RewardConfig(match_mode="regex"))
