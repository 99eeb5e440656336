"""Check the reward before training: sample K answers per task and see what the reward makes of them.

A task that can never pay teaches nothing, and a user otherwise finds out minutes into a run. The
probe samples ``K`` answers per task from a policy (the base model, or a run's adapter) with the
run's sampling settings, scores each with the very reward the run will use (:func:`rule_reward`,
missing-EOS penalty included) and reports per task:

* hit rate, reward mean and spread (population std over the K answers), mean answer length in
  tokens, the share of answers that ended with EOS, and the K answers with their scores;
* flags, each with its reason in plain words (``probe.flag.<name>`` in the text catalogue):

  ============================  ============================================================
  ``already_solved``            every one of the K answers hits: nothing left to learn
  ``never_solved``              no answer hits: the reward gives no direction (GRPO/RLOO:
                                every group ties, so every advantage is 0)
  ``no_reward_variance``        all K answers score the same (to 1e-9): advantages are 0
  ``no_eos``                    fewer than ``NO_EOS_MAX_SHARE`` of the answers end with EOS:
                                the missing-EOS penalty will dominate the reward
  ``matches_everything``        (regex, contains) the pattern also hits every unrelated text
                                of ``CONTROL_TEXTS``: it rewards anything
  ``matches_nothing``           (regex, contains) the pattern matches nothing the model says:
                                regex: no answer, no line and no word of one; contains: no
                                answer holds even one word of the expected answer
  ============================  ============================================================

Held-out tasks are probed too and summarised apart (:attr:`ProbeReport.train_hit_rate`,
:attr:`ProbeReport.held_out_hit_rate`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from .config import TrainConfig
from .policy import PolicyRuntime
from .reward import RewardConfig, compile_expected, is_hit, normalize_text, rule_reward
from .rollout import DEFAULT_SYSTEM_PROMPT
from .tasks import Task
from .text import t

FLAGS = ("already_solved", "never_solved", "no_reward_variance", "no_eos", "matches_everything", "matches_nothing")
NO_EOS_MAX_SHARE = 0.25  # no_eos fires when fewer than a quarter of the answers end
REWARD_TIE = 1e-9  # rewards closer than this count as equal
# Texts unrelated to any task: a pattern that hits all of them rewards anything.
CONTROL_TEXTS = ("zzz", "The quick brown fox jumps over the lazy dog.", "12345", "我不知道", "?")


@dataclass
class ProbeAnswer:
    text: str
    reward: float
    hit: bool
    ended_with_eos: bool
    tokens: int


@dataclass
class TaskProbe:
    index: int
    task: Task
    answers: list[ProbeAnswer]
    flags: list[str]

    @property
    def hit_rate(self) -> float:
        return sum(a.hit for a in self.answers) / len(self.answers)

    @property
    def reward_mean(self) -> float:
        return sum(a.reward for a in self.answers) / len(self.answers)

    @property
    def reward_std(self) -> float:
        """Population std of the K rewards (0 when they all agree)."""
        mean = self.reward_mean
        return math.sqrt(sum((a.reward - mean) ** 2 for a in self.answers) / len(self.answers))

    @property
    def length_mean(self) -> float:
        return sum(a.tokens for a in self.answers) / len(self.answers)

    @property
    def eos_rate(self) -> float:
        return sum(a.ended_with_eos for a in self.answers) / len(self.answers)

    def reasons(self, lang: str = "en", **values) -> list[str]:
        """Each flag's reason in plain words."""
        return [t(f"probe.flag.{flag}", lang, **values) for flag in self.flags]

    def to_json(self, missing_eos_penalty: float = 0.0) -> dict:
        return {"event": "probe", "task": self.index, "prompt": self.task.prompt, "expected": self.task.expected,
                "held_out": self.task.held_out, "hit_rate": self.hit_rate, "reward_mean": self.reward_mean,
                "reward_std": self.reward_std, "length_mean": self.length_mean, "eos_rate": self.eos_rate,
                "flags": list(self.flags), "reasons": self.reasons("en", penalty=missing_eos_penalty),
                "answers": [{"text": a.text, "reward": a.reward, "hit": a.hit, "ended_with_eos": a.ended_with_eos,
                             "tokens": a.tokens} for a in self.answers]}


@dataclass
class ProbeReport:
    samples_per_task: int
    policy: str  # "base" or "adapter"
    tasks: list[TaskProbe] = field(default_factory=list)

    def _mean_hit(self, held_out: bool) -> float | None:
        rates = [p.hit_rate for p in self.tasks if p.task.held_out == held_out]
        return sum(rates) / len(rates) if rates else None

    @property
    def train_hit_rate(self) -> float | None:
        return self._mean_hit(False)

    @property
    def held_out_hit_rate(self) -> float | None:
        return self._mean_hit(True)


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[\s\.,!?;:\"'()\[\]{}，。！？：；“”‘’、]+", text) if w]


def _matches_nothing(task: Task, answers: list[str], reward: RewardConfig) -> bool:
    if reward.match_mode == "regex":
        pieces = [piece for a in answers for piece in (a, *a.splitlines(), *_words(a))]
        return not any(is_hit(piece, task.expected, reward) for piece in pieces)
    expected_words = [normalize_text(w) for w in _words(task.expected)]
    expected_words = [w for w in expected_words if w] or [normalize_text(task.expected)]
    normalized = [normalize_text(a) for a in answers]
    return not any(w in a for w in expected_words for a in normalized)


def task_flags(task: Task, answers: list[ProbeAnswer], reward: RewardConfig) -> list[str]:
    """The flags of one task's K probed answers (see the module docstring), in ``FLAGS`` order."""
    if not answers:
        return []
    hits = [a.hit for a in answers]
    rewards = [a.reward for a in answers]
    flags = []
    if all(hits):
        flags.append("already_solved")
    if not any(hits):
        flags.append("never_solved")
    if len(answers) > 1 and max(rewards) - min(rewards) <= REWARD_TIE:
        flags.append("no_reward_variance")
    if sum(a.ended_with_eos for a in answers) < NO_EOS_MAX_SHARE * len(answers):
        flags.append("no_eos")
    if reward.match_mode in ("regex", "contains"):
        if all(is_hit(text, task.expected, reward) for text in CONTROL_TEXTS):
            flags.append("matches_everything")
        elif _matches_nothing(task, [a.text for a in answers], reward):
            flags.append("matches_nothing")
    return flags


def probe(runtime: PolicyRuntime, tasks: list[Task], reward: RewardConfig, config: TrainConfig, *,
          samples_per_task: int = 8, adapters: bool = False, seed: int = 1234, max_batch: int = 32,
          system_prompt: str | None = DEFAULT_SYSTEM_PROMPT) -> ProbeReport:
    """K answers per task from the base model (``adapters=False``) or the runtime's adapter,
    sampled with the run's temperature, top-p and max new tokens (the distribution PPO will
    sample from), scored with the run's reward."""
    if samples_per_task < 1:
        raise ValueError("samples_per_task must be at least 1")
    for task in tasks:
        compile_expected(task.expected, reward)  # a bad regex is reported before any sampling
    prompt_ids = [runtime.prompt_ids(task.prompt, system_prompt) for task in tasks for _ in range(samples_per_task)]
    texts, ended, lengths = [], [], []
    for start in range(0, len(prompt_ids), max_batch):
        batch = runtime.sample(prompt_ids[start:start + max_batch], max_new_tokens=config.max_new_tokens,
                               temperature=config.temperature, top_p=config.top_p, seed=seed + start,
                               adapters=adapters)
        texts += runtime.decode(batch)
        ended += batch.ended_with_eos.tolist()
        lengths += batch.response_lengths.tolist()
    report = ProbeReport(samples_per_task, "adapter" if adapters else "base")
    for index, task in enumerate(tasks):
        rows = range(index * samples_per_task, (index + 1) * samples_per_task)
        answers = [ProbeAnswer(texts[r], rule_reward(texts[r], task.expected, reward, ended_with_eos=ended[r],
                                                     missing_eos_penalty=config.missing_eos_penalty),
                               is_hit(texts[r], task.expected, reward), bool(ended[r]), int(lengths[r]))
                   for r in rows]
        report.tasks.append(TaskProbe(index, task, answers, task_flags(task, answers, reward)))
    return report


def format_report(report: ProbeReport, missing_eos_penalty: float = 0.0, lang: str = "en",
                  show_answers: int = 3) -> str:
    """The report as readable text (the CLI without --jsonl)."""
    lines = [t("probe.header", lang, k=report.samples_per_task, policy=t(f"probe.policy.{report.policy}", lang))]
    for p in report.tasks:
        tag = t("probe.held_out_tag", lang) if p.task.held_out else ""
        lines.append(t("probe.task_line", lang, index=p.index + 1, tag=tag, prompt=p.task.prompt[:60],
                       expected=p.task.expected, hit=p.hit_rate, mean=p.reward_mean, std=p.reward_std,
                       length=p.length_mean, eos=p.eos_rate))
        for reason in p.reasons(lang, penalty=missing_eos_penalty):
            lines.append("    ! " + reason)
        for a in p.answers[:show_answers]:
            lines.append(f"    {a.reward:+.3f} {'✓' if a.hit else '✗'} {a.text.strip()[:70]!r}")
    for held_out, rate in ((False, report.train_hit_rate), (True, report.held_out_hit_rate)):
        if rate is not None:
            lines.append(t("probe.summary.held_out" if held_out else "probe.summary.train", lang, hit=rate))
    return "\n".join(lines)


def _cell(text: str, width: int = 80, code: bool = False) -> str:
    """A Markdown table cell: one line, pipes escaped, cut to ``width``. Inside a code span
    (``code``) a backslash is literal, so only the pipe is escaped there."""
    text = " ".join(text.split())
    text = text if len(text) <= width else text[:width - 1] + "…"
    if not code:
        text = text.replace("\\", "\\\\")
    return text.replace("|", "\\|").replace("`", "'") or "∅"


def report_markdown(report: ProbeReport, missing_eos_penalty: float = 0.0, lang: str = "en") -> str:
    """The report as Markdown for the page: a summary table (one row per task, flags named),
    the reasons of each flagged task, then each task's K answers with their scores."""
    lines = [f"**{t('probe.header', lang, k=report.samples_per_task, policy=t(f'probe.policy.{report.policy}', lang))}**",
             "", t("probe.md.table_header", lang), "|---|---|---|---|---|---|---|---|"]
    for p in report.tasks:
        tag = t("probe.held_out_tag", lang).strip() if p.task.held_out else ""
        flags = ", ".join(f"`{f}`" for f in p.flags) or "—"
        lines.append(f"| {p.index + 1} {tag} | {_cell(p.task.prompt, 50)} | `{_cell(p.task.expected, 30, code=True)}` | "
                     f"{p.hit_rate:.2f} | {p.reward_mean:+.3f} ± {p.reward_std:.3f} | {p.length_mean:.1f} | "
                     f"{p.eos_rate:.2f} | {flags} |")
    summary = [t("probe.summary.held_out" if held else "probe.summary.train", lang, hit=rate)
               for held, rate in ((False, report.train_hit_rate), (True, report.held_out_hit_rate)) if rate is not None]
    lines += ["", " · ".join(summary)]
    flagged = {flag: [p.index + 1 for p in report.tasks if flag in p.flags] for flag in FLAGS}
    reasons = [f"- `{flag}` ({t('probe.md.tasks', lang, tasks=', '.join(map(str, tasks)))}): "
               f"{t(f'probe.flag.{flag}', lang, penalty=missing_eos_penalty)}"
               for flag, tasks in flagged.items() if tasks]  # each reason once, with the tasks it names
    if reasons:
        lines += [""] + reasons
    for p in report.tasks:
        lines += ["", f"<details><summary>{t('probe.md.answers', lang, index=p.index + 1, k=len(p.answers))}</summary>",
                  "", t("probe.md.answers_header", lang), "|---|---|---|---|"]
        lines += [f"| {a.reward:+.3f} | {'✓' if a.hit else '✗'} | {'✓' if a.ended_with_eos else '✗'} | {_cell(a.text)} |"
                  for a in p.answers]
        lines += ["", "</details>"]
    return "\n".join(lines)
