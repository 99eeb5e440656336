"""Scoring and training on a batch whose rows share prompts, computing each prompt once.

A PPO step samples several answers to the same prompt, and every later pass (old log-probs,
reference log-probs, each PPO epoch) used to run the whole prompt again for every answer. Here
a pass runs in two parts over one KV cache:

    prompt part     each DISTINCT prompt once              (U, P)  -> keys/values (U, ..., P, ...)
    expand          copy the cache rows to every answer    index_select -> (B, ..., P, ...)
    response part   every row's response tokens            (B, T)  attending to its prompt's keys

The response part sees exactly the keys and values it would see in one full pass, so the
numbers are the same up to float rounding. With gradients on, ``index_select`` is
differentiable: the gradient flowing back into a shared prompt is the sum over the answers that
continue it, which is what the unshared pass computes too (same math, not an approximation).

"Same prompt" means the same token ids and padding in the (left-padded) batch, found by value,
so it works for any grouping of prompts, not only fixed groups of G answers.

Not used when it would change the math or cannot work: dropout active (one dropout mask would
be shared by every answer to a prompt), gradient checkpointing (recomputing a layer would
append to the cache a second time), and models whose LM head is more than a Linear (their own
forward is run instead, see :func:`ppo_demo.policy.response_logits_and_hidden`).
"""

from __future__ import annotations

import torch

from .rollout import RolloutBatch, distinct_rows


def prompt_groups(batch: RolloutBatch) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(first row of each distinct prompt (U,), each row's prompt among those (B,)), or None when
    every row has its own prompt (nothing to share)."""
    P = batch.prompt_len
    key = torch.cat([batch.input_ids[:, :P], batch.attention_mask[:, :P].long()], dim=-1)  # (B, 2P)
    firsts, index = distinct_rows(key.tolist())
    if len(firsts) == key.shape[0]:
        return None
    device = batch.input_ids.device
    return torch.tensor(firsts, device=device), torch.tensor(index, device=device)


def shared_prompt_logits_and_hidden(model, batch: RolloutBatch, temperature: float,
                                    groups: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Like :func:`ppo_demo.policy.response_logits_and_hidden` (logits / temperature (B, T, V)
    and last hidden states (B, T, H) at the positions predicting each response token), with
    each distinct prompt of ``groups`` (from :func:`prompt_groups`) computed once."""
    firsts, index = groups
    P = batch.prompt_len
    trunk = model.get_decoder()
    positions = batch.position_ids  # (B, P+T)
    prompt_mask = batch.attention_mask[firsts, :P]
    prompt = trunk(input_ids=batch.input_ids[firsts, :P], attention_mask=prompt_mask,
                   position_ids=positions[firsts, :P], use_cache=True)
    cache = prompt.past_key_values
    cache.reorder_cache(index)  # (U, ...) -> (B, ...): index_select, so gradients sum over the answers
    response = trunk(input_ids=batch.input_ids[:, P:], attention_mask=batch.attention_mask,
                     position_ids=positions[:, P:], past_key_values=cache, use_cache=True)
    # Column P-1 (the prompt's last token) predicts response token 0; response column t-1 predicts t.
    last_prompt_hidden = prompt.last_hidden_state[:, -1:][index]  # (B, 1, H)
    hidden = torch.cat([last_prompt_hidden, response.last_hidden_state[:, :-1]], dim=1)  # (B, T, H)
    logits = model.get_output_embeddings()(hidden)  # (B, T, V)
    return logits.float() / temperature, hidden


def rows_grouped_by_prompt(batch: RolloutBatch, rows: torch.Tensor) -> torch.Tensor:
    """``rows`` reordered so that rows with the same prompt are adjacent (stable otherwise): then
    a split into micro-batches keeps an answer with the others to its prompt. Reordering rows
    inside a mini-batch changes no number: its gradient is a token-weighted sum over rows."""
    P = batch.prompt_len
    key = torch.cat([batch.input_ids[rows, :P], batch.attention_mask[rows, :P].long()], dim=-1)
    _, index = distinct_rows(key.tolist())
    order = sorted(range(len(index)), key=lambda i: index[i])  # by first appearance of the prompt
    return rows[torch.tensor(order, dtype=torch.long, device=rows.device)]
