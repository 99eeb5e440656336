"""Scoring and training on a batch whose rows share prompts, computing each prompt once.

A PPO step samples several answers to the same prompt, and every later pass (old log-probs,
reference log-probs, each PPO epoch) used to run the whole prompt again for every answer. Two
ways to avoid that live here. The packed pass (bottom of this module; used wherever the model
takes a custom attention mask, see :func:`can_pack`) runs each token once in one sequence, the
answers without their padding. The two-part pass (the fallback) runs over one KV cache:

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
forward is run instead, see :func:`ppo_demo.scoring.response_logits_and_hidden`).
"""

from __future__ import annotations

import torch

from .ppo import upcast
from .rollout import RolloutBatch, distinct_rows, has_plain_lm_head


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
    """Like :func:`ppo_demo.scoring.response_logits_and_hidden` (logits / temperature (B, T, V)
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
    return upcast(logits) / temperature, hidden


def rows_grouped_by_prompt(batch: RolloutBatch, rows: torch.Tensor) -> torch.Tensor:
    """``rows`` reordered so that rows with the same prompt are adjacent (stable otherwise): then
    a split into micro-batches keeps an answer with the others to its prompt. Reordering rows
    inside a mini-batch changes no number: its gradient is a token-weighted sum over rows."""
    P = batch.prompt_len
    key = torch.cat([batch.input_ids[rows, :P], batch.attention_mask[rows, :P].long()], dim=-1)
    _, index = distinct_rows(key.tolist())
    order = sorted(range(len(index)), key=lambda i: index[i])  # by first appearance of the prompt
    return rows[torch.tensor(order, dtype=torch.long, device=rows.device)]


# --- packed pass: one sequence, each token once -----------------------------------------------
# The shared pass above still runs the responses as a (B, T) rectangle: at natural length
# (answers ending anywhere between 2 and 48 tokens) most of it is padding past EOS, computed
# through every layer and the LM head for nothing; and every distinct prompt repeats the chat
# template's system turn. The packed pass lays out one sequence (1, N) holding each token once:
#
#     [ common prefix | prompt 0's rest | prompt 1's rest | ... | row 0's answer | row 1's ... ]
#       (the system       each distinct prompt after        each row's real response tokens
#        turn, shared)    the common prefix                 (not its last: it predicts nothing)
#
# and a block mask lets a token attend exactly the keys it has in its own padded row: the common
# prefix, its prompt's rest, its own earlier answer tokens, at the same positions. So the numbers
# are the same up to float rounding, and gradients reaching a shared token are summed over every
# row that attends to it, as in the unshared pass.

def can_pack(model) -> bool:
    """Whether the packed pass applies: a plain LM head, an attention implementation that takes
    a custom 4-D mask (sdpa, eager; not flash-attention-2), and no sliding-window layers (the
    block mask would not apply the window)."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    if getattr(config, "_attn_implementation", None) not in ("sdpa", "eager"):
        return False
    layer_types = getattr(config, "layer_types", None) or []
    if any(kind != "full_attention" for kind in layer_types):
        return False
    if getattr(config, "use_sliding_window", False) and getattr(config, "sliding_window", None):
        return False
    return has_plain_lm_head(model)


def common_prefix_length(sequences: list[list[int]]) -> int:
    """Length of the longest prefix every sequence starts with: ``[[1, 2, 3], [1, 2, 4]] -> 2``."""
    shortest = min(len(s) for s in sequences)
    for i in range(shortest):
        if any(s[i] != sequences[0][i] for s in sequences[1:]):
            return i
    return shortest


def packed_block_mask(prompt_of: torch.Tensor, row_of: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """The attention mask (1, 1, N, N) of a packed sequence, True where attending is allowed.

    Per packed token (N,) each: ``prompt_of`` its distinct prompt (-1: the common prefix),
    ``row_of`` its response row (-1: a prompt token), ``positions`` its position id. Query i
    may attend key j iff j is in i's lineage (the common prefix; i's prompt; i's own response)
    and not later (position j <= position i)."""
    same_prompt = (prompt_of.unsqueeze(0) == -1) | (prompt_of.unsqueeze(0) == prompt_of.unsqueeze(1))  # (N, N)
    same_row = (row_of.unsqueeze(0) == -1) | (row_of.unsqueeze(0) == row_of.unsqueeze(1))
    return (same_prompt & same_row & (positions.unsqueeze(0) <= positions.unsqueeze(1)))[None, None]


def packed_response_hidden(model, batch: RolloutBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The last hidden state at the position predicting each REAL response token, from one
    packed pass (see above): (N, H) in row-major order of the response mask, with those
    tokens' rows and columns (N,) each. Nothing is computed for padding, a shared prompt runs
    once, and the prefix common to all prompts (the system turn) runs once."""
    P = batch.prompt_len
    B, T = batch.response_mask.shape
    device = batch.input_ids.device
    groups = prompt_groups(batch)
    firsts, row_prompt = groups if groups is not None else (torch.arange(B, device=device),) * 2
    prompts = [batch.prompt_tokens(row) for row in firsts.tolist()]  # each distinct prompt, unpadded
    shared = common_prefix_length(prompts)
    # The packed layout, part by part: ids, position ids, owning prompt, owning row.
    ids, positions, prompt_of, row_of = [prompts[0][:shared]], [list(range(shared))], [[-1] * shared], [[-1] * shared]
    prompt_end = []  # packed index of each prompt's last token (it predicts the first answer token)
    length = shared
    for u, prompt in enumerate(prompts):
        rest = prompt[shared:]
        ids.append(rest)
        positions.append(list(range(shared, len(prompt))))
        prompt_of.append([u] * len(rest))
        row_of.append([-1] * len(rest))
        length += len(rest)
        prompt_end.append(length - 1 if rest else shared - 1)  # a prompt may be the common prefix itself
    real = batch.response_mask.bool()  # (B, T)
    rows, cols = real.nonzero(as_tuple=True)  # (N,) the tokens to predict
    is_input = torch.cat([real[:, 1:], real.new_zeros(B, 1)], dim=1)  # token t is an input iff t+1 is real
    in_rows, in_cols = is_input.nonzero(as_tuple=True)
    to_tensor = lambda parts: torch.tensor([x for part in parts for x in part], dtype=torch.long, device=device)  # noqa: E731
    ids = torch.cat([to_tensor(ids), batch.input_ids[in_rows, P + in_cols]])
    positions = torch.cat([to_tensor(positions), batch.position_ids[in_rows, P + in_cols]])
    prompt_of = torch.cat([to_tensor(prompt_of), row_prompt[in_rows]])
    row_of = torch.cat([to_tensor(row_of), in_rows])
    mask = packed_block_mask(prompt_of, row_of, positions)
    if model.config._attn_implementation == "eager":  # eager attention adds the mask to its scores
        dtype = model.get_output_embeddings().weight.dtype
        mask = torch.zeros(mask.shape, dtype=dtype, device=device).masked_fill_(~mask, torch.finfo(dtype).min)
    out = model.get_decoder()(input_ids=ids.unsqueeze(0), position_ids=positions.unsqueeze(0), attention_mask=mask,
                              use_cache=False)
    hidden = out.last_hidden_state[0]  # (length + N_in, H)
    # Row b's token t is predicted by its prompt's last token (t = 0), else by its own token t-1.
    input_index = torch.full((B, T), -1, dtype=torch.long, device=device)
    input_index[in_rows, in_cols] = length + torch.arange(len(in_rows), device=device)
    prompt_end = torch.tensor(prompt_end, dtype=torch.long, device=device)
    source = torch.where(cols == 0, prompt_end[row_prompt[rows]], input_index[rows, (cols - 1).clamp_min(0)])
    return hidden[source], rows, cols
