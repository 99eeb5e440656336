"""ScoredBatch keeps every field row-aligned when a mini-batch is cut out of it.

Run: .venv/bin/python -m pytest -q tests/test_scored_batch.py"""

from __future__ import annotations

import torch

from ppo_demo.rollout import RolloutBatch
from ppo_demo.scored_batch import ScoredBatch, micro_batch_rows


def _scored() -> ScoredBatch:
    # 3 rows, prompt width 2 (row 2 left-padded), response width 3; row 0 has 1 token, rows 1-2 have 2.
    input_ids = torch.tensor([[5, 6, 7, 0, 0], [5, 6, 7, 8, 0], [0, 6, 7, 8, 0]])
    attention_mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 0], [0, 1, 1, 1, 0]])
    response_mask = torch.tensor([[1., 0., 0.], [1., 1., 0.], [1., 1., 0.]])
    batch = RolloutBatch(input_ids, attention_mask, 2, response_mask, torch.tensor([True, True, False]))
    per_token = {name: torch.arange(9.).reshape(3, 3) + 100 * k for k, name in enumerate(ScoredBatch._PER_TOKEN)}
    return ScoredBatch(batch, ["a", "b", "c"], [0, 1, 0], torch.tensor([1., -1., 0.5]), **per_token)


def test_rows_select_the_same_rows_of_every_field():
    scored = _scored()
    picked = scored.rows(torch.tensor([2, 0]))
    assert picked.texts == ["c", "a"] and picked.task_indices == [0, 0]
    assert torch.equal(picked.scores, torch.tensor([0.5, 1.]))
    for name in ScoredBatch._PER_TOKEN:
        assert torch.equal(getattr(picked, name), getattr(scored, name)[[2, 0]]), name
    assert torch.equal(picked.response_mask, scored.response_mask[[2, 0]])
    assert scored.rows(slice(1, 3)).texts == ["b", "c"]


def test_trimmed_cuts_every_per_token_field_to_the_longest_response():
    scored = _scored().rows(torch.tensor([0]))  # one token long, no left padding
    trimmed = scored.trimmed()
    assert trimmed.response_mask.shape == (1, 1)
    assert trimmed.batch.input_ids.tolist() == [[5, 6, 7]]
    for name in ScoredBatch._PER_TOKEN:
        assert torch.equal(getattr(trimmed, name), getattr(scored, name)[:, :1]), name


def test_micro_batch_rows_split_by_the_token_budget():
    batch = _scored().batch
    rows = torch.arange(3)
    assert [c.tolist() for c in micro_batch_rows(batch, rows, 0)] == [[0, 1, 2]]
    # trimmed width is 2 prompt + 2 response = 4 tokens a row: a budget of 8 fits two rows
    assert [c.tolist() for c in micro_batch_rows(batch, rows, 8)] == [[0, 1], [2]]
    assert [c.tolist() for c in micro_batch_rows(batch, rows, 1)] == [[0], [1], [2]]


def test_packed_micro_batches_count_the_tokens_a_packed_pass_computes():
    batch = _scored().batch  # prompts: [5 6] (rows 0, 1) and [6] (row 2); answers of 1, 2, 2 tokens
    rows = torch.arange(3)
    # packed cost: row 0 = 2 prompt + 0 answer inputs, row 1 = 0 (same prompt) + 1, row 2 = 1 + 1
    assert [c.tolist() for c in micro_batch_rows(batch, rows, 4, packed=True)] == [[0, 1], [2]]
    assert [c.tolist() for c in micro_batch_rows(batch, rows, 5, packed=True)] == [[0, 1, 2]]
    # a new chunk pays for its prompt again: row 1 alone costs 2 + 1
    assert [c.tolist() for c in micro_batch_rows(batch, torch.tensor([0, 2, 1]), 4, packed=True)] == [[0, 2], [1]]
    assert [c.tolist() for c in micro_batch_rows(batch, rows, 1, packed=True)] == [[0], [1], [2]]
    assert [c.tolist() for c in micro_batch_rows(batch, rows, 0, packed=True)] == [[0, 1, 2]]
