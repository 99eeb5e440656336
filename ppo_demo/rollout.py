"""Turning prompts into a padded batch of sampled responses.

Layout of a rollout batch (P = longest prompt, T = longest response)::

    input_ids       [pad pad p p p p | a a a EOS pad pad]     (B, P + T)
    attention_mask  [ 0   0  1 1 1 1 | 1 1 1  1   0   0 ]
    response_mask                     [1 1 1  1   0   0 ]     (B, T)

Prompts are left-padded so every response starts at column P. Tokens after the first EOS
are replaced by padding and masked: they get no reward, KL, advantage or loss. Position ids
are derived from the attention mask (an exclusive cumulative sum) so a padded row sees the
same positions as it would alone.

Sampling is a plain KV-cached loop rather than ``model.generate``: every logits processor
is visible here (temperature, then top-p), and nothing from a checkpoint's
``generation_config`` (repetition penalty, top-k...) silently changes the distribution that
the PPO log-probabilities must match.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."


@dataclass
class RolloutBatch:
    input_ids: torch.Tensor  # (B, P+T) prompt + response, pad after EOS
    attention_mask: torch.Tensor  # (B, P+T) 1 on real prompt and response tokens
    prompt_len: int  # P: responses start at this column
    response_mask: torch.Tensor  # (B, T) float, 1 up to and including the first EOS
    ended_with_eos: torch.Tensor  # (B,) bool: False if cut at max_new_tokens

    @property
    def response_ids(self) -> torch.Tensor:  # (B, T)
        return self.input_ids[:, self.prompt_len:]

    @property
    def position_ids(self) -> torch.Tensor:  # (B, P+T)
        return position_ids_from_mask(self.attention_mask)

    @property
    def response_lengths(self) -> torch.Tensor:  # (B,)
        return self.response_mask.sum(-1).long()

    def trimmed(self) -> "RolloutBatch":
        """Drop columns that are padding in every row (left of the longest prompt, right of the
        longest response): less compute for a mini-batch, same numbers for every real token.
        The response keeps starting at column ``prompt_len`` of the trimmed batch."""
        prompt_has_token = self.attention_mask[:, :self.prompt_len].any(0)  # (P,)
        first = int(prompt_has_token.long().argmax()) if bool(prompt_has_token.any()) else 0
        longest = max(int(self.response_mask.sum(-1).max()), 1)
        end = self.prompt_len + longest
        return RolloutBatch(self.input_ids[:, first:end], self.attention_mask[:, first:end],
                            self.prompt_len - first, self.response_mask[:, :longest], self.ended_with_eos)

    def rows(self, index: torch.Tensor | slice) -> "RolloutBatch":
        """A mini-batch: the selected rows, with the same columns (so P is unchanged)."""
        return RolloutBatch(self.input_ids[index], self.attention_mask[index], self.prompt_len,
                            self.response_mask[index], self.ended_with_eos[index])


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """0, 1, 2... counted over real tokens only; padding gets 0. (B, L) -> (B, L)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp_min(0)


def chat_prompt_ids(tokenizer, prompt: str, system_prompt: str | None = DEFAULT_SYSTEM_PROMPT) -> list[int]:
    """The chat-formatted prompt (system + user + assistant header) as token ids."""
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages.append({"role": "user", "content": prompt})
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def left_pad(sequences: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad token id lists to one length: -> input_ids, attention_mask, both (B, P)."""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        if seq:
            ids[row, width - len(seq):] = torch.tensor(seq, dtype=torch.long)
            mask[row, width - len(seq):] = 1
    return ids.to(device), mask.to(device)


def top_p_filter(logits: torch.Tensor, top_p: float, candidates: tuple[int, ...] | int = (256, 4096)) -> torch.Tensor:
    """Set to -inf every token outside the smallest set whose probability reaches ``top_p``.

    logits (B, V) -> (B, V). The most likely token always survives.

    Why ``candidates``: sorting a 49k vocabulary for every generated token cost ~12 ms of a
    ~100 ms decode step on 2 cores. The nucleus almost always lies within the few hundred most
    likely tokens, so those are found with ``topk`` and their probabilities taken against the
    full softmax normaliser; if some row's nucleus is wider, a few thousand; only then the
    full sort. The result is the same set either way.
    """
    if top_p >= 1.0:
        return logits
    log_norm = torch.logsumexp(logits, dim=-1, keepdim=True)  # (B, 1)
    for k in (candidates,) if isinstance(candidates, int) else candidates:
        if k >= logits.shape[-1]:
            break
        top_logits, top_index = torch.topk(logits, k, dim=-1)  # (B, k), descending
        probs = torch.exp(top_logits - log_norm)
        mass_before = probs.cumsum(-1) - probs
        if bool((mass_before[:, -1] + probs[:, -1] >= top_p).all()):  # every nucleus fits
            keep = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, top_index, mass_before < top_p)
            return logits.masked_fill(~keep, float("-inf"))
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(sorted_logits, dim=-1)
    mass_before = probs.cumsum(-1) - probs  # probability of the tokens ranked above this one
    drop_sorted = mass_before >= top_p
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def draw_from(probs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One token per row from ``probs`` (B, V) -> (B,), by inverting the cumulative distribution.

    Why not ``torch.multinomial``: it draws an exponential variate for every vocabulary entry
    (6 ms per call for 8 x 49k on 2 cores, 6 % of a step); this is one uniform per row and a
    binary search. The CDF is summed in float64 so rounding does not shift mass between
    tokens, and u lies in (0, 1] so a token of probability 0 is never drawn.
    """
    cdf = probs.double().cumsum(-1)  # (B, V)
    u = 1.0 - torch.rand(probs.shape[0], 1, generator=generator, device=probs.device, dtype=torch.float64)
    token = torch.searchsorted(cdf, u * cdf[:, -1:])  # first index whose CDF reaches u·total
    return token.squeeze(-1).clamp_max(probs.shape[-1] - 1)


def eos_token_ids(tokenizer, model=None) -> list[int]:
    """Every id that ends a turn: the tokenizer's EOS plus any the model's config lists."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    config_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(config_eos, int):
        ids.add(config_eos)
    elif config_eos:
        ids.update(config_eos)
    if not ids:
        raise ValueError("The tokenizer has no EOS token, so responses could never end.")
    return sorted(ids)


@torch.no_grad()
def sample_responses(model, prompt_ids: list[list[int]], *, pad_id: int, eos_ids: list[int],
                     max_new_tokens: int, temperature: float = 1.0, top_p: float = 1.0,
                     greedy: bool = False, generator: torch.Generator | None = None) -> RolloutBatch:
    """Sample one response per prompt with a KV cache, all rows in one batch.

    The distribution sampled from is softmax(top_p_filter(logits / temperature)); the trainer
    scores tokens with log_softmax(logits / temperature), which equals it when top_p = 1.
    """
    device = next(model.parameters()).device
    input_ids, prompt_mask = left_pad(prompt_ids, pad_id, device)  # (B, P)
    batch, prompt_len = input_ids.shape
    eos = torch.tensor(eos_ids, device=device)
    attention_mask = prompt_mask
    positions = position_ids_from_mask(prompt_mask)
    step_input, step_positions = input_ids, positions
    past = None
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    new_tokens = []
    # Only the last position's logits are needed; for the prompt pass this skips the LM head
    # (576 x 49k for SmolLM2) on every prompt token.
    last_only = {"logits_to_keep": 1} if _accepts(model, "logits_to_keep") else {}
    for _ in range(max_new_tokens):
        out = model(input_ids=step_input, attention_mask=attention_mask, position_ids=step_positions,
                    past_key_values=past, use_cache=True, **last_only)
        past = out.past_key_values
        logits = out.logits[:, -1, :].float()  # (B, V): next-token logits
        if greedy:
            token = logits.argmax(-1)
        else:
            probs = torch.softmax(top_p_filter(logits / temperature, top_p), dim=-1)
            token = draw_from(probs, generator)
        token = torch.where(finished, torch.full_like(token, pad_id), token)  # rows already done
        new_tokens.append(token)
        finished |= torch.isin(token, eos)
        if bool(finished.all()):
            break
        # Finished rows keep feeding padding; what they compute is masked out later.
        attention_mask = torch.cat([attention_mask, attention_mask.new_ones(batch, 1)], dim=-1)
        step_positions = step_positions[:, -1:] + 1
        step_input = token.unsqueeze(-1)
    response = torch.stack(new_tokens, dim=1)  # (B, T)
    response_mask = response_mask_from_tokens(response, eos)
    response = torch.where(response_mask.bool(), response, torch.full_like(response, pad_id))
    full_ids = torch.cat([input_ids, response], dim=1)
    full_mask = torch.cat([prompt_mask, response_mask.long()], dim=1)
    ended = (torch.isin(response, eos) & response_mask.bool()).any(-1)
    return RolloutBatch(full_ids, full_mask, prompt_len, response_mask, ended)


def _accepts(model, argument: str) -> bool:
    try:
        return argument in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


def response_mask_from_tokens(response: torch.Tensor, eos: torch.Tensor) -> torch.Tensor:
    """1 up to and including each row's first EOS, 0 after; all 1 if there is no EOS.

    response (B, T) -> float mask (B, T).
    """
    is_eos = torch.isin(response, eos).long()
    eos_seen_before = is_eos.cumsum(-1) - is_eos  # EOS tokens strictly before position t
    return (eos_seen_before == 0).float()
