"""Preferences: a table of (prompt, chosen, rejected), and the knobs of what learns from it.

Three ways to fill the table, because that is the lesson of RLHF's "HF":

* type or upload it (CSV with the header ``prompt,chosen,rejected``; :data:`PRESET_PAIRS` to
  start from);
* label the model's own answers: :func:`sample_answer_pair` draws two answers to a prompt and
  :func:`labelled_pair` turns a person's click (``a``, ``b`` or ``tie``) into a row;
* rank pairs by the rule reward: :func:`rule_ranked_pairs` draws two answers per task prompt
  and the one the rule scores higher is chosen (ties dropped). The rule then is a known gold
  standard, to measure a reward model, and over-optimisation, against.

:class:`RewardModelConfig` and :class:`DPOConfig` hold the knobs of the reward model and of
DPO, defined once with :func:`~ppo_demo.config.knob` like every training knob.
"""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .config import LORA_TARGETS_DEFAULT, ConfigError, check_knobs, knob, knobs_from_dict
from .reward import RewardConfig, rule_reward
from .rollout import DEFAULT_SYSTEM_PROMPT, RolloutBatch, chat_prompt_ids, left_pad
from .text import LocalizedError

if TYPE_CHECKING:
    from .policy import PolicyRuntime
    from .tasks import Task

PAIR_HEADER = ("prompt", "chosen", "rejected")
MAX_PAIRS_DEFAULT = 1024
MAX_CELL_CHARS_DEFAULT = 4000


class PreferenceError(LocalizedError):
    """The pairs, or a setting of what learns from them, are unusable; the message says which
    row or knob and what to do (English on the CLI, any language on the page)."""


@dataclass(frozen=True)
class Pair:
    """One human (or rule) judgement: for ``prompt``, ``chosen`` is better than ``rejected``."""

    prompt: str
    chosen: str
    rejected: str


# A small preset for the English tasks: the chosen answer is right and brief, the rejected one
# wrong, rambling or both, as a teacher would judge them.
PRESET_PAIRS = [
    Pair("What is 2+2? Reply with only the number.", "4", "2+2 is a math question. The answer is 5."),
    Pair("What is 2+2? Reply with only the number.", "4", "The sum of two and two is a number."),
    Pair("What is the capital of France? Answer with one word.", "Paris", "Lyon"),
    Pair("What is the capital of France? Answer with one word.", "Paris",
         "France is a country in Europe with many beautiful cities and a long history."),
    Pair("Say only the word: hello", "hello", "Hi there! How can I help you today?"),
    Pair("Say only the word: hello", "hello", "goodbye"),
    Pair("What is the opposite of hot? Answer with one word.", "cold", "warm"),
    Pair("What is the opposite of hot? Answer with one word.", "cold",
         "The opposite of hot is a temperature word that people use in winter."),
]


# --- the table: rows, CSV in and out --------------------------------------------------------
def _cell(value) -> str:
    """A table cell as text: None and pandas' NaN (an empty cell) become ''."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)


def pairs_from_rows(rows, max_pairs: int = MAX_PAIRS_DEFAULT, max_chars: int = MAX_CELL_CHARS_DEFAULT) -> list[Pair]:
    """Clean a table of (prompt, chosen, rejected) rows. Blank rows are dropped; a row with an
    empty cell, the same answer twice or an over-long cell is an error naming the row (1-based)."""
    pairs = []
    for index, row in enumerate(rows, start=1):
        prompt, chosen, rejected = (_cell(c).strip() for c in (list(row) + ["", "", ""])[:3])
        if not (prompt or chosen or rejected):
            continue
        for name, value in zip(PAIR_HEADER, (prompt, chosen, rejected)):
            if not value:
                raise PreferenceError("preferences.error.empty_cell", row=index, column=name)
            if len(value) > max_chars:
                raise PreferenceError("preferences.error.cell_too_long", row=index, column=name, n=len(value),
                                      limit=max_chars)
        if chosen == rejected:
            raise PreferenceError("preferences.error.same_answer", row=index)
        pairs.append(Pair(prompt, chosen, rejected))
    if not pairs:
        raise PreferenceError("preferences.error.empty_table")
    if len(pairs) > max_pairs:
        raise PreferenceError("preferences.error.too_many", n=len(pairs), limit=max_pairs)
    return pairs


def parse_pairs_csv(text: str, **limits) -> list[Pair]:
    """Pairs from CSV text with the header ``prompt,chosen,rejected`` (columns in any order)."""
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise PreferenceError("preferences.error.bad_csv", detail=str(exc)) from None
    if not rows:
        raise PreferenceError("preferences.error.empty_file")
    header = [h.strip().lower().lstrip("\ufeff") for h in rows[0]]
    if not set(PAIR_HEADER) <= set(header):
        raise PreferenceError("preferences.error.header", found=",".join(rows[0])[:80])
    columns = [header.index(name) for name in PAIR_HEADER]
    return pairs_from_rows([[r[c] if c < len(r) else "" for c in columns] for r in rows[1:]], **limits)


def load_pairs_file(path: str | Path, **limits) -> list[Pair]:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PreferenceError("preferences.error.unreadable", path=str(path), detail=exc.strerror or str(exc)) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PreferenceError("preferences.error.not_utf8", name=path.name) from None
    return parse_pairs_csv(text, **limits)


def pairs_to_csv(pairs: list[Pair]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(PAIR_HEADER)
    for pair in pairs:
        writer.writerow([pair.prompt, pair.chosen, pair.rejected])
    return out.getvalue()


# --- filling the table from the model's own answers -----------------------------------------
def labelled_pair(prompt: str, answer_a: str, answer_b: str, choice: str) -> Pair | None:
    """A person's judgement of two answers: ``a`` or ``b`` is better, or ``tie`` (no row)."""
    if choice == "tie":
        return None
    if choice not in ("a", "b"):
        raise ValueError(f"choice must be 'a', 'b' or 'tie'; got {choice!r}")
    if answer_a.strip() == answer_b.strip():
        return None  # the same answer twice teaches nothing
    return Pair(prompt, answer_a, answer_b) if choice == "a" else Pair(prompt, answer_b, answer_a)


def sample_answer_pair(runtime: "PolicyRuntime", prompt: str, *, seed: int, temperature: float = 1.0,
                       top_p: float = 1.0, max_new_tokens: int = 48, adapters: bool = True,
                       system_prompt: str | None = DEFAULT_SYSTEM_PROMPT) -> tuple[str, str]:
    """Two sampled answers to ``prompt`` (for a person to compare), reproducible from ``seed``."""
    texts, _ = runtime.answers([prompt, prompt], adapters=adapters, seed=seed, temperature=temperature, top_p=top_p,
                               max_new_tokens=max_new_tokens, system_prompt=system_prompt)
    return texts[0], texts[1]


def rule_ranked_pairs(runtime: "PolicyRuntime", tasks: list["Task"], reward: RewardConfig = RewardConfig(), *,
                      pairs_per_task: int, seed: int, temperature: float = 1.0, top_p: float = 1.0,
                      max_new_tokens: int = 48, missing_eos_penalty: float = 0.0, attempts: int = 3,
                      adapters: bool = True, system_prompt: str | None = DEFAULT_SYSTEM_PROMPT) -> list[Pair]:
    """Pairs ranked by the rule reward: two answers to a task's prompt are sampled, the one
    with the higher rule score is chosen, a tie is dropped (nothing to learn from it).

    Each round samples two answers per missing pair of every task in one batch; up to
    ``attempts`` rounds, so a task whose answers always tie (e.g. always right and equally
    long) may end with fewer pairs. Returns the pairs task by task."""
    found: list[list[Pair]] = [[] for _ in tasks]
    for attempt in range(attempts):
        wanted = [(i, pairs_per_task - len(found[i])) for i in range(len(tasks)) if len(found[i]) < pairs_per_task]
        if not wanted:
            break
        rows = [i for i, missing in wanted for _ in range(2 * missing)]  # answers a, b, a, b ... per task
        prompts = [tasks[i].prompt for i in rows]
        texts, ended = runtime.answers(prompts, adapters=adapters, seed=seed * 1_000_003 + attempt,
                                       temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                                       system_prompt=system_prompt)
        scores = [rule_reward(text, tasks[i].expected, reward, ended_with_eos=e, missing_eos_penalty=missing_eos_penalty)
                  for text, i, e in zip(texts, rows, ended)]
        for k in range(0, len(rows), 2):
            i = rows[k]
            (a, score_a), (b, score_b) = (texts[k], scores[k]), (texts[k + 1], scores[k + 1])
            if score_a == score_b or a.strip() == b.strip() or len(found[i]) >= pairs_per_task:
                continue
            found[i].append(Pair(tasks[i].prompt, a, b) if score_a > score_b else Pair(tasks[i].prompt, b, a))
    return [pair for per_task in found for pair in per_task]


def split_pairs(pairs: list[Pair], holdout: float, seed: int) -> tuple[list[Pair], list[Pair]]:
    """(train, held out): a seeded shuffle, then ``round(holdout · n)`` pairs held out (at
    least one when ``holdout`` > 0, and at least one left to train on)."""
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    n_held = 0 if holdout <= 0 else min(max(1, round(holdout * len(pairs))), len(pairs) - 1)
    held, train = order[:n_held], order[n_held:]
    return [pairs[i] for i in train], [pairs[i] for i in held]


# --- pairs as token batches ------------------------------------------------------------------
def response_token_ids(tokenizer, text: str, max_tokens: int, eos_id: int | None) -> list[int]:
    """An answer as the model would have produced it: its tokens, then EOS (unless cut at
    ``max_tokens``, as a sampled answer is cut at max_new_tokens)."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if eos_id is not None:
        ids = ids + [eos_id]
    return ids[:max_tokens] or ([eos_id] if eos_id is not None else ids[:1])


def batch_from_token_lists(prompt_ids: list[list[int]], response_ids: list[list[int]], pad_id: int,
                           device=None) -> RolloutBatch:
    """The rollout layout (prompts left-padded to P, responses right-padded to T) for given
    token lists, so a pair's answers go through the same passes as sampled ones."""
    prompts, prompt_mask = left_pad(prompt_ids, pad_id, device)  # (B, P)
    T = max(len(r) for r in response_ids)
    responses = torch.full((len(response_ids), T), pad_id, dtype=torch.long)
    response_mask = torch.zeros(len(response_ids), T)
    for row, ids in enumerate(response_ids):
        responses[row, :len(ids)] = torch.tensor(ids, dtype=torch.long)
        response_mask[row, :len(ids)] = 1.0
    responses, response_mask = responses.to(prompts.device), response_mask.to(prompts.device)
    return RolloutBatch(torch.cat([prompts, responses], 1), torch.cat([prompt_mask, response_mask.long()], 1),
                        prompts.shape[1], response_mask, torch.ones(len(response_ids), dtype=torch.bool,
                                                                    device=prompts.device))


class PairEncoder:
    """Token ids of pairs, computed once per text (prompts and answers repeat across pairs)."""

    def __init__(self, tokenizer, max_response_tokens: int, system_prompt: str | None = DEFAULT_SYSTEM_PROMPT):
        self.tokenizer = tokenizer
        self.max_response_tokens = max_response_tokens
        self.system_prompt = system_prompt
        self.eos_id = tokenizer.eos_token_id
        self._prompts: dict[str, list[int]] = {}
        self._answers: dict[str, list[int]] = {}

    def prompt(self, text: str) -> list[int]:
        if text not in self._prompts:
            self._prompts[text] = chat_prompt_ids(self.tokenizer, text, self.system_prompt)
        return self._prompts[text]

    def answer(self, text: str) -> list[int]:
        if text not in self._answers:
            self._answers[text] = response_token_ids(self.tokenizer, text, self.max_response_tokens, self.eos_id)
        return self._answers[text]

    def batch(self, pairs: list[Pair], device=None) -> RolloutBatch:
        """2n rows: the n chosen answers, then the n rejected ones (TRL's order too)."""
        prompts = [self.prompt(p.prompt) for p in pairs] * 2
        answers = [self.answer(p.chosen) for p in pairs] + [self.answer(p.rejected) for p in pairs]
        return batch_from_token_lists(prompts, answers, self.tokenizer.pad_token_id, device)


# --- the knobs ------------------------------------------------------------------------------
@dataclass
class RewardModelConfig:
    """How the reward model trains: its own LoRA on the shared base model, a scalar head on the
    last real token's hidden state, AdamW on the Bradley–Terry loss."""

    rm_lora_r: int = knob(8, "rank r of the reward model's own LoRA (separate from the policy's)", low=1, high=256,
                          group="reward_model", label="Reward model LoRA rank")
    rm_lora_alpha: float = knob(16.0, "alpha of the reward model's LoRA (scale alpha/r)", low=0.0, high=1024.0,
                                group="reward_model", label="Reward model LoRA alpha")
    rm_learning_rate: float = knob(3e-4, "AdamW step size for the reward model's LoRA and head", low=1e-8,
                                   high=1.0, group="reward_model", label="Reward model learning rate")
    rm_epochs: int = knob(4, "passes over the training pairs", low=1, high=1000, group="reward_model",
                          label="Reward model epochs")
    rm_batch_size: int = knob(4, "pairs per gradient step", low=1, high=512, group="reward_model",
                              label="Reward model batch (pairs)")
    rm_holdout: float = knob(0.25, "share of the pairs held out to measure pairwise accuracy on pairs the "
                             "reward model never trained on", low=0.0, high=0.9, group="reward_model",
                             label="Held-out share")
    rm_max_tokens: int = knob(64, "answers are cut to this many tokens (EOS included) before scoring",
                              low=1, high=2048, group="reward_model", label="Reward model max answer tokens")
    rm_seed: int = knob(0, "seed of the held-out split, the shuffles and the LoRA's init", low=0, high=2**31 - 1,
                        group="reward_model", label="Reward model seed")
    lora_targets: tuple = LORA_TARGETS_DEFAULT  # the same layers as the policy's default

    def validate(self) -> "RewardModelConfig":
        check_knobs(self, ConfigError)
        return self

    @classmethod
    def from_dict(cls, values: dict) -> "RewardModelConfig":
        return knobs_from_dict(cls, values).validate()


@dataclass
class DPOConfig:
    """DPO's own knob; the rest (LoRA, learning rate, steps, batch, sampling) is the run's
    :class:`~ppo_demo.config.TrainConfig`."""

    dpo_beta: float = knob(0.1, "β in −log σ(β[(log π(y_w) − log π_ref(y_w)) − (log π(y_l) − log π_ref(y_l))]): "
                           "how far from the reference the preferences may pull the policy (smaller = further)",
                           low=1e-4, high=100.0, group="dpo", label="DPO β")

    def validate(self) -> "DPOConfig":
        check_knobs(self, ConfigError)
        return self

    @classmethod
    def from_dict(cls, values: dict) -> "DPOConfig":
        return knobs_from_dict(cls, values).validate()

