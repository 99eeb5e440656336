"""The reward probe: each flag fires on a constructed case and stays quiet on its near miss; the
probe scores with the run's reward; the CLI prints one JSON object per task.

Run: OMP_NUM_THREADS=1 python -m pytest tests/test_probe.py -q
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ppo_demo.config import TrainConfig
from ppo_demo.policy import PolicyRuntime
from ppo_demo.probe import FLAGS, ProbeAnswer, ProbeReport, TaskProbe, format_report, probe, task_flags
from ppo_demo.reward import RewardConfig, RewardError, is_hit, rule_reward
from ppo_demo.tasks import Task
from ppo_demo.text import t

ROOT = Path(__file__).resolve().parents[1]
CONTAINS, REGEX, EXACT = (RewardConfig(match_mode=m) for m in ("contains", "regex", "exact"))


def answers(task, texts, reward, ended=True):
    ends = ended if isinstance(ended, list) else [ended] * len(texts)
    return [ProbeAnswer(x, rule_reward(x, task.expected, reward, ended_with_eos=e, missing_eos_penalty=0.5),
                        is_hit(x, task.expected, reward), e, len(x.split())) for x, e in zip(texts, ends)]


def flags(task, texts, reward=CONTAINS, ended=True):
    return task_flags(task, answers(task, texts, reward, ended), reward)


PARIS = Task("Capital of France?", "Paris")
MIXED = ["Paris.", "It is Lyon, I think.", "Paris!", "Marseille"]


def test_a_healthy_task_has_no_flag():
    assert flags(PARIS, MIXED) == []
    assert flags(Task("cap", r"^paris\W*$"), MIXED, REGEX) == []


def test_already_solved_fires_only_when_every_answer_hits():
    assert "already_solved" in flags(PARIS, ["Paris.", "Paris!", "It's Paris"])
    assert "already_solved" not in flags(PARIS, ["Paris.", "Paris!", "Lyon"])


def test_never_solved_fires_only_when_no_answer_hits():
    assert "never_solved" in flags(PARIS, ["Lyon", "Nice", "Marseille"])
    assert "never_solved" not in flags(PARIS, ["Lyon", "Nice", "Paris"])


def test_no_reward_variance_fires_when_every_score_ties():
    # exact match: three different misses of the same normalised length score alike
    assert "no_reward_variance" in flags(Task("x", "yes"), ["No.", "no", "NO!"], EXACT)
    assert "no_reward_variance" not in flags(Task("x", "yes"), ["No.", "nope", "NO!"], EXACT)
    assert "no_reward_variance" not in flags(PARIS, ["Lyon"])  # one answer: nothing to compare


def test_no_eos_fires_when_answers_are_cut():
    assert "no_eos" in flags(PARIS, MIXED, ended=False)
    assert "no_eos" in flags(PARIS, MIXED + ["Paris"], ended=[True, False, False, False, False])  # 1 in 5
    assert "no_eos" not in flags(PARIS, MIXED, ended=[True, False, False, False])  # 1 in 4 = a quarter


@pytest.mark.parametrize("expected,reward", [(".*", REGEX), ("", REGEX), ("a?", REGEX), ("...", CONTAINS),
                                             ("?!", CONTAINS)])
def test_matches_everything(expected, reward):
    assert "matches_everything" in flags(Task("x", expected), MIXED, reward)


@pytest.mark.parametrize("expected,reward", [("paris", REGEX), (r"\w+ \w+", REGEX), ("Paris", CONTAINS),
                                             ("l", EXACT)])
def test_does_not_match_everything(expected, reward):
    assert "matches_everything" not in flags(Task("x", expected), MIXED, reward)


def test_matches_nothing_for_an_impossible_or_misspelt_pattern():
    for pattern in (r"\z.", r"[^\s\S]", "Pariss", r"^paris\.$x"):
        assert "matches_nothing" in flags(Task("x", pattern), MIXED, REGEX), pattern
    assert "matches_nothing" in flags(Task("x", "Rome"), MIXED, CONTAINS)


def test_an_anchored_pattern_that_matches_a_word_is_not_matches_nothing():
    """'^paris$' misses every whole answer but matches the word 'Paris' inside them: the task
    is never solved, yet the pattern is not dead (the user needs to drop the anchors)."""
    got = flags(Task("x", "^paris$"), ["Paris is it.", "The capital is Paris, of course."], REGEX)
    assert "never_solved" in got and "matches_nothing" not in got
    got = flags(Task("x", "I like machine learning"), ["I love machine learning"], CONTAINS)
    assert "never_solved" in got and "matches_nothing" not in got


def test_exact_mode_never_gets_the_pattern_flags():
    got = flags(Task("x", "Rome"), MIXED, EXACT)
    assert "matches_nothing" not in got and "matches_everything" not in got


def test_every_flag_has_a_reason_in_both_languages():
    for flag in FLAGS:
        english, chinese = t(f"probe.flag.{flag}", "en", penalty=0.5), t(f"probe.flag.{flag}", "zh", penalty=0.5)
        assert english and chinese and english != chinese


def test_stats_are_over_the_k_answers():
    task = Task("x", "a")
    probe_ = TaskProbe(0, task, [ProbeAnswer("a", 1.0, True, True, 2), ProbeAnswer("b", -1.0, False, False, 4)], [])
    assert (probe_.hit_rate, probe_.reward_mean, probe_.reward_std, probe_.length_mean, probe_.eos_rate) == \
        (0.5, 0.0, 1.0, 3.0, 0.5)
    report = ProbeReport(2, "base", [probe_, TaskProbe(1, Task("y", "y", held_out=True),
                                                       [ProbeAnswer("y", 1.0, True, True, 1)] * 2, [])])
    assert report.train_hit_rate == 0.5 and report.held_out_hit_rate == 1.0
    assert "held out" in format_report(report)


def _config():
    return TrainConfig(max_new_tokens=6, seed=3, missing_eos_penalty=0.5).validate()


def test_probe_scores_each_answer_with_the_runs_reward(tiny):
    tasks = [Task("say a", "a"), Task("say b", r"\z.", held_out=True)]
    with PolicyRuntime.for_config(tiny, _config()) as runtime:
        report = probe(runtime, tasks, REGEX, _config(), samples_per_task=3)
        again = probe(runtime, tasks, REGEX, _config(), samples_per_task=3)
    assert [len(p.answers) for p in report.tasks] == [3, 3]
    assert [a.text for p in report.tasks for a in p.answers] == [a.text for p in again.tasks for a in p.answers]
    for p in report.tasks:
        for a in p.answers:
            assert a.reward == rule_reward(a.text, p.task.expected, REGEX, ended_with_eos=a.ended_with_eos,
                                           missing_eos_penalty=0.5)
            assert 1 <= a.tokens <= 6
    assert "matches_nothing" in report.tasks[1].flags and "never_solved" in report.tasks[1].flags


def test_probe_refuses_a_bad_regex_before_sampling(tiny):
    with PolicyRuntime.for_config(tiny, _config()) as runtime:
        with pytest.raises(RewardError):
            probe(runtime, [Task("x", "(")], REGEX, _config(), samples_per_task=1)


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "ppo_demo", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_cli_probe_prints_one_json_object_per_task(tmp_path):
    tasks = tmp_path / "tasks.csv"
    tasks.write_text("prompt,expected,held_out\nsay a,a,\nsay b,\\z.,yes\n", encoding="utf-8")
    proc = run_cli("probe", "--model", "tiny-random", "--tasks", str(tasks), "--samples", "2",
                   "--max-new-tokens", "4", "--match-mode", "regex", "--jsonl")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(x["event"], x["task"], x["held_out"]) for x in lines] == [("probe", 0, False), ("probe", 1, True)]
    assert "matches_nothing" in lines[1]["flags"] and len(lines[1]["answers"]) == 2
    assert all(0.0 <= x["hit_rate"] <= 1.0 and len(x["reasons"]) == len(x["flags"]) for x in lines)


def test_cli_probe_bad_input_is_one_line():
    proc = run_cli("probe", "--model", "tiny-random", "--samples", "0")
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "--samples" in proc.stderr


def test_report_markdown_names_flags_and_keeps_the_table_intact():
    task = Task("a | b", "x|y", held_out=True)
    answers_ = [ProbeAnswer("one | two\nthree", -1.0, False, False, 3)] * 2
    report = ProbeReport(2, "base", [TaskProbe(0, task, answers_, ["never_solved", "no_eos"])])
    from ppo_demo.probe import report_markdown
    for lang in ("en", "zh"):
        md = report_markdown(report, 0.5, lang)
        row = next(line for line in md.splitlines() if line.startswith("| 1 "))
        assert row.count(" | ") == 7  # eight cells: the pipes inside the texts are escaped
        assert "`never_solved`" in row and t("probe.flag.no_eos", lang, penalty=0.5) in md
        assert "one \\| two three" in md


def test_cli_probe_of_a_trained_adapter_samples_from_it(tmp_path):
    tasks = tmp_path / "tasks.csv"
    tasks.write_text("prompt,expected\nsay a,a\n", encoding="utf-8")
    out = tmp_path / "run"
    trained = run_cli("train", "--model", "tiny-random", "--steps", "2", "--batch-size", "2", "--max-new-tokens", "4",
                      "--learning-rate", "0.05", "--tasks", str(tasks), "--out", str(out), "--jsonl")
    assert trained.returncode == 0, trained.stderr
    common = ("probe", "--model", "tiny-random", "--tasks", str(tasks), "--samples", "3", "--max-new-tokens", "4",
              "--jsonl")
    base, adapted = run_cli(*common), run_cli(*common, "--adapter", str(out))
    assert base.returncode == 0 and adapted.returncode == 0, adapted.stderr
    texts = [[a["text"] for a in json.loads(p.stdout)["answers"]] for p in (base, adapted)]
    assert texts[0] != texts[1]  # the same seed: only the adapter differs
    missing = run_cli(*common, "--adapter", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and missing.stderr.startswith("error:") and missing.stderr.count("\n") == 1
