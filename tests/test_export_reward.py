"""The exported reward.py computes exactly ppo_demo.reward.rule_reward, with no import of ppo_demo.

Run: .venv/bin/python -m pytest -q tests/test_export_reward.py
"""

from __future__ import annotations

import ast
import importlib.util

import pytest

from ppo_demo.export.reward_file import reward_file_source
from ppo_demo.reward import RewardConfig, rule_reward

CORPUS = [
    ("Paris", "Paris"), ("paris.", "Paris"), ("The capital is Paris!", "Paris"), ("  PARIS \n", "paris"),
    ("London", "Paris"), ("", "Paris"), ("4", "4"), ("The answer is 4.", "4"), ("44", "4"), ("four", "4"),
    ("小鱼儿。", "小鱼儿"), ("“小鱼儿”！", "小鱼儿"), ("小鱼儿，小鱼儿？", "小鱼儿"), ("通义千问：", "通义千问"),
    ("I like machine learning.", "I like machine learning"), ("i like machine-learning", "I like machine learning"),
    ("答案：４", "4"), ("\u3000小鱼儿\u3000", "小鱼儿"), ("hello\u2003.", "hello"), ("Hello, hello!", "hello"),
    ("cold", "c.ld"), ("COLD weather", "^cold"), ("it is cold", "^cold"), ("x" * 300, "x+"),
]
SETTINGS = [
    (RewardConfig("contains", 0.002), 0.0), (RewardConfig("exact", 0.01), 0.5),
    (RewardConfig("regex", 0.0), 1.0), (RewardConfig("contains", 0.0, hit_reward=2.0, miss_reward=-0.5), 0.25),
]


def load_reward_file(tmp_path, reward, missing_eos, eos_token="<|im_end|>", name="reward.py"):
    path = tmp_path / name
    path.write_text(reward_file_source(reward, missing_eos, eos_token), encoding="utf-8")
    spec = importlib.util.spec_from_file_location(f"exported_{id(path)}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("reward, missing_eos", SETTINGS)
def test_same_numbers_as_the_lab_on_the_corpus(tmp_path, reward, missing_eos):
    exported = load_reward_file(tmp_path, reward, missing_eos)
    checked = 0
    for response, expected in CORPUS:
        if reward.match_mode != "regex" and expected.startswith("^"):
            continue
        for ended in (True, False):
            ours = rule_reward(response, expected, reward, ended_with_eos=ended, missing_eos_penalty=missing_eos)
            assert exported.rule_reward(response, expected, ended_with_eos=ended) == ours, (response, expected, ended)
            checked += 1
    assert checked >= 40
    # The corpus is not trivial: both hits and misses occur.
    hits = {exported.is_hit(r, e) for r, e in CORPUS if reward.match_mode == "regex" or not e.startswith("^")}
    assert hits == {True, False}


def test_the_file_imports_nothing_from_the_lab(tmp_path):
    source = reward_file_source(RewardConfig("regex", 0.002), 0.5, "<|im_end|>")
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    # re2 for regex answers (imported on first use); torch only inside OpenRLHF's entry point.
    assert imported <= {"re2", "torch"}, imported


def test_regex_answers_match_on_the_labs_re2_with_its_options_and_bound(tmp_path):
    from ppo_demo import matching

    exported = load_reward_file(tmp_path, RewardConfig("regex", 0.0), 0.0)
    assert exported.RE2_OPTIONS == matching.RE2_OPTIONS
    assert exported.MAX_MATCHED_CHARS == matching.MAX_MATCHED_CHARS
    reward = RewardConfig("regex", 0.0)
    # Where RE2 and Python's re disagree, the file sides with the lab: \d is ASCII-only in RE2
    # (re would match the full-width four), only the first MAX_MATCHED_CHARS characters are
    # searched, a lone surrogate is U+FFFD, and a catastrophic pattern answers at once.
    cases = [("答案：４", r"\d"), ("x" * matching.MAX_MATCHED_CHARS + "yes", "yes"), ("a\ud800b", "a.b"),
             ("a" * 3000 + "!", "(a*)*b"), ("The answer is 4.", r"\b4\b")]
    for response, pattern in cases:
        ours = rule_reward(response, pattern, reward)
        assert exported.rule_reward(response, pattern) == ours, (response[:20], pattern)
    assert [exported.is_hit(r, p) for r, p in cases] == [False, False, True, False, True]


def test_without_google_re2_regex_answers_say_what_to_install(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "re2", None)  # as if google-re2 were not installed
    exported = load_reward_file(tmp_path, RewardConfig("regex", 0.0), 0.0)
    assert exported.is_hit("Paris", "Paris", match_mode="contains")  # the other modes need only Python
    with pytest.raises(ImportError, match="pip install google-re2=="):
        exported.rule_reward("Paris", "P.ris")


def test_each_tool_entry_point_gives_the_rule_reward(tmp_path):
    reward = RewardConfig("contains", 0.002)
    exported = load_reward_file(tmp_path, reward, 0.5)
    expected = ["Paris", "4"]
    # TRL: chat completions, ids cut after EOS (id 2); the second never ended.
    completions = [[{"role": "assistant", "content": "Paris."}], [{"role": "assistant", "content": "five"}]]
    got = exported.trl_reward(["p", "q"], completions, [[5, 6, 2], [7, 8]], expected, eos_token_ids={2})
    assert got == [rule_reward("Paris.", "Paris", reward), rule_reward("five", "4", reward, False, 0.5)]
    # veRL: compute_score as the naive reward manager calls it (keywords, extra_info dict).
    assert exported.compute_score(data_source="ppo_lora_lab", solution_str="Paris.", ground_truth="Paris",
                                  extra_info={"num_turns": None}) == rule_reward("Paris.", "Paris", reward)
    # OpenRLHF: query = prompt + response with special tokens kept.
    prompt = "<|im_start|>user\nCapital?<|im_end|>\n<|im_start|>assistant\n"
    out = exported.reward_func([prompt + "Paris<|im_end|>", prompt + "Lyon and"], [prompt, prompt], ["Paris", "Paris"])
    assert out["rewards"].tolist() == pytest.approx([rule_reward("Paris", "Paris", reward),
                                                     rule_reward("Lyon and", "Paris", reward, False, 0.5)])
