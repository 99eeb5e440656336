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

from .ppo import logprobs_from_logits, upcast

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

    def prompt_tokens(self, row: int) -> list[int]:
        """Row ``row``'s prompt token ids without its left padding."""
        P = self.prompt_len
        return self.input_ids[row, :P][self.attention_mask[row, :P].bool()].tolist()

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
    found = _nucleus_among_candidates(logits, top_p, candidates)
    if found is not None:
        top_index, keep, _ = found
        keep = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, top_index, keep)
        return logits.masked_fill(~keep, float("-inf"))
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(sorted_logits, dim=-1)
    mass_before = probs.cumsum(-1) - probs  # probability of the tokens ranked above this one
    drop_sorted = mass_before >= top_p
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def _nucleus_among_candidates(logits: torch.Tensor, top_p: float, candidates):
    """(top_index, keep, probs), each (B, k), if every row's nucleus lies within its k most
    likely tokens for one of the ``candidates`` sizes k; None if a full sort is needed.
    ``probs`` are the candidates' probabilities under the full softmax of ``logits``."""
    log_norm = torch.logsumexp(logits, dim=-1, keepdim=True)  # (B, 1)
    for k in (candidates,) if isinstance(candidates, int) else candidates:
        if k >= logits.shape[-1]:
            break
        top_logits, top_index = torch.topk(logits, k, dim=-1)  # (B, k), descending
        probs = torch.exp(top_logits - log_norm)
        mass_before = probs.cumsum(-1) - probs
        if bool((mass_before[:, -1] + probs[:, -1] >= top_p).all()):  # every nucleus fits
            return top_index, mass_before < top_p, probs
    return None


def sample_next_tokens(logits: torch.Tensor, temperature: float, top_p: float, u: torch.Tensor) -> torch.Tensor:
    """One token per row from softmax(top_p_filter(logits / temperature)), using the uniforms
    ``u`` (B, 1): (B, V) -> (B,).

    The same token as ``draw_with_uniforms(softmax(top_p_filter(...)), u)`` (up to float
    rounding at a CDF boundary), without building a vocabulary-wide mask, softmax and float64
    CDF: when the nucleus lies among the top-k candidates, the draw walks the kept candidates
    in vocabulary order, which is the order the full CDF runs in (the dropped tokens add zero
    to it). On the embedded model this cut the sampler from ~13 to ~3 ms per decode step at
    top-p 0.9 (batch 8, one thread).
    """
    scaled = logits / temperature
    if top_p < 1.0:
        found = _nucleus_among_candidates(scaled, top_p, (256, 4096))
        if found is not None:
            top_index, keep, probs = found
            vocab_index, order = top_index.sort(dim=-1)  # candidates in vocabulary order
            kept = (probs * keep).gather(-1, order)  # (B, k): dropped candidates weigh 0
            position = draw_with_uniforms(kept, u)  # (B,)
            return vocab_index.gather(-1, position.unsqueeze(-1)).squeeze(-1)
    return draw_with_uniforms(torch.softmax(top_p_filter(scaled, top_p), dim=-1), u)


def uniforms(rows: int, generator: torch.Generator | None, device) -> torch.Tensor:
    """(rows, 1) float64 draws in (0, 1]: the randomness :func:`draw_with_uniforms` consumes."""
    return 1.0 - torch.rand(rows, 1, generator=generator, device=device, dtype=torch.float64)


def draw_with_uniforms(probs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """The token whose cumulative probability first reaches u·total, per row: (B, V), (B, 1) -> (B,).

    Why not ``torch.multinomial``: it draws an exponential variate for every vocabulary entry
    (6 ms per call for 8 x 49k on 2 cores, 6 % of a step); this is one uniform per row and a
    binary search. The CDF is summed in float64 so rounding does not shift mass between
    tokens, and u lies in (0, 1] so a token of probability 0 is never drawn.
    """
    cdf = probs.double().cumsum(-1)  # (B, V)
    token = torch.searchsorted(cdf, u * cdf[:, -1:])
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


@dataclass
class SampledScores:
    """What the sampling pass already computed about each token it drew, kept so that PPO's
    old log-probs and values need no second forward of the policy over the batch.

    logprobs are log softmax(logits / temperature)[y_t] over the FULL vocabulary (not the
    top-p-truncated distribution sampled from): the same quantity the scoring pass computes.
    """

    logprobs: torch.Tensor  # (B, T) 0 past each response's EOS
    hidden: torch.Tensor  # (B, T, H) last hidden state at the position predicting y_t, 0 past EOS
    # (B, T, V) the whole tempered log-softmax at each position (for the exact KL), when asked for
    log_probs: torch.Tensor | None = None


def sample_responses(model, prompt_ids: list[list[int]], *, pad_id: int, eos_ids: list[int],
                     max_new_tokens: int, temperature: float = 1.0, top_p: float = 1.0,
                     greedy: bool = False, generator: torch.Generator | None = None,
                     share_prompts: bool = True, drop_finished: bool = True) -> RolloutBatch:
    """Sample one response per prompt with a KV cache, all rows in one batch.

    The distribution sampled from is softmax(top_p_filter(logits / temperature)); the trainer
    scores tokens with log_softmax(logits / temperature), which equals it when top_p = 1.

    Two savings that leave every row's distribution and random draws as they were:

    * ``share_prompts``: each distinct prompt (same token ids) is run once and its keys and
      values are copied to every row that continues it; a step that samples G answers per
      prompt pays 1/G of the prompt pass.
    * ``drop_finished``: a row that has emitted EOS leaves the batch (and the KV cache), so the
      remaining decode steps only compute the rows still running. Every row's uniform draw is
      still taken from the generator each step, so the other rows see the same random numbers.

    Both change which rows share a matrix multiplication, so logits may differ from the
    unshared, undropped path by float rounding (~1e-6); tokens differ only if a draw lands
    that close to a boundary of the cumulative distribution.
    """
    return _sample(model, prompt_ids, pad_id=pad_id, eos_ids=eos_ids, max_new_tokens=max_new_tokens,
                   temperature=temperature, top_p=top_p, greedy=greedy, generator=generator,
                   share_prompts=share_prompts, drop_finished=drop_finished, keep_scores=False)[0]


def sample_and_score(model, prompt_ids: list[list[int]], *, pad_id: int, eos_ids: list[int],
                     max_new_tokens: int, temperature: float = 1.0, top_p: float = 1.0,
                     generator: torch.Generator | None = None, share_prompts: bool = True,
                     drop_finished: bool = True, keep_distribution: bool = False) -> tuple[RolloutBatch, SampledScores]:
    """:func:`sample_responses` (the same tokens for the same seed) plus each drawn token's
    log-probability and the hidden state the critic reads, from the very forward passes that
    sampled it. They equal a separate scoring pass over the batch up to float rounding (the
    cached decode multiplies one position at a time, a scoring pass all at once).
    ``keep_distribution``: also keep the whole log-softmax at each position (B, T, V), which
    the sampling pass computes anyway, for the exact KL to pi_ref."""
    return _sample(model, prompt_ids, pad_id=pad_id, eos_ids=eos_ids, max_new_tokens=max_new_tokens,
                   temperature=temperature, top_p=top_p, greedy=False, generator=generator,
                   share_prompts=share_prompts, drop_finished=drop_finished, keep_scores=True,
                   keep_distribution=keep_distribution)


@torch.no_grad()
def _sample(model, prompt_ids, *, pad_id, eos_ids, max_new_tokens, temperature, top_p, greedy, generator,
            share_prompts, drop_finished, keep_scores,
            keep_distribution=False) -> tuple[RolloutBatch, SampledScores | None]:
    device = next(model.parameters()).device
    input_ids, prompt_mask = left_pad(prompt_ids, pad_id, device)  # (B, P)
    batch, prompt_len = input_ids.shape
    eos = torch.tensor(eos_ids, device=device)
    step = _NextToken(model, keep_scores)

    logits, hidden, past = _prefill(step, input_ids, prompt_mask, share_prompts)  # (B, V), (B, H) | None
    # Response columns are all 1 for rows still running: one buffer, sliced as it grows,
    # instead of a torch.cat of the whole mask per token.
    attention_mask = torch.cat([prompt_mask, prompt_mask.new_ones(batch, max_new_tokens)], dim=-1)
    step_positions = position_ids_from_mask(prompt_mask)[:, -1:]  # (B, 1)
    running = torch.arange(batch, device=device)  # rows of the batch still in the forward pass
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    response = torch.full((batch, max_new_tokens), pad_id, dtype=torch.long, device=device)
    if keep_scores:
        logprobs = torch.zeros(batch, max_new_tokens, device=device, dtype=logits.dtype)  # fp32 (fp64 in exact tests)
        hiddens = torch.zeros(batch, max_new_tokens, hidden.shape[-1], device=device, dtype=hidden.dtype)
    distribution = (torch.zeros(batch, max_new_tokens, logits.shape[-1], device=device, dtype=logits.dtype)  # (B, T, V)
                    if keep_scores and keep_distribution else None)
    steps = 0
    for t in range(max_new_tokens):
        draws = None if greedy else uniforms(batch, generator, device)  # every row's, finished or not
        if greedy:
            token = logits.argmax(-1)
        else:
            token = sample_next_tokens(logits, temperature, top_p, draws[running])
        token = torch.where(finished[running], torch.full_like(token, pad_id), token)  # rows already done
        response[running, t] = token
        if keep_scores:
            _keep_token_scores(logits, token, temperature, running, t, logprobs, distribution)
            hiddens[running, t] = hidden
        finished[running] |= torch.isin(token, eos)
        steps = t + 1
        if bool(finished.all()) or t + 1 == max_new_tokens:
            break
        step_input = token.unsqueeze(-1)
        if drop_finished and bool(finished[running].any()):
            keep = (~finished[running]).nonzero().squeeze(-1)  # positions within ``running``
            running, step_input = running[keep], step_input[keep]
            attention_mask, step_positions = attention_mask[keep], step_positions[keep]
            past.reorder_cache(keep)
        # Finished rows still in the batch (drop_finished off) feed padding, masked out later.
        step_positions = step_positions + 1
        logits, hidden, past = step(input_ids=step_input, attention_mask=attention_mask[:, :prompt_len + t + 1],
                                    position_ids=step_positions, past_key_values=past)
    rollout = _rollout_batch(input_ids, prompt_mask, response[:, :steps], eos, pad_id)
    if not keep_scores:
        return rollout, None
    response_mask = rollout.response_mask  # (B, T)
    return rollout, SampledScores(logprobs[:, :steps] * response_mask,
                                  hiddens[:, :steps] * response_mask.unsqueeze(-1).to(hiddens.dtype),
                                  distribution[:, :steps] if distribution is not None else None)


def _keep_token_scores(logits, token, temperature, running, t, logprobs, distribution) -> None:
    """Write log pi(y_t) over the full tempered softmax, as the scoring pass computes it, into
    ``logprobs[running, t]`` (and the whole log-softmax into ``distribution`` when it is kept).
    logits (b, V) and token (b,) for the ``running`` rows."""
    if distribution is not None:
        log_p = torch.log_softmax(upcast(logits) / temperature, dim=-1)  # (b, V)
        distribution[running, t] = log_p
        logprobs[running, t] = log_p.gather(-1, token.unsqueeze(-1))[:, 0]
    else:
        logprobs[running, t] = logprobs_from_logits((logits / temperature).unsqueeze(1), token.unsqueeze(1))[:, 0]


def _rollout_batch(input_ids, prompt_mask, response, eos, pad_id) -> RolloutBatch:
    """Prompts (B, P) and sampled responses (B, T) -> a RolloutBatch: everything after the
    first EOS becomes padding and leaves the mask."""
    response_mask = response_mask_from_tokens(response, eos)  # (B, T)
    response = torch.where(response_mask.bool(), response, torch.full_like(response, pad_id))
    full_ids = torch.cat([input_ids, response], dim=1)
    full_mask = torch.cat([prompt_mask, response_mask.long()], dim=1)
    ended = (torch.isin(response, eos) & response_mask.bool()).any(-1)
    return RolloutBatch(full_ids, full_mask, input_ids.shape[1], response_mask, ended)


# Config attributes of architectures whose LM head is more than a Linear (soft-capping, scaling):
# for those the model's own forward is run instead of trunk + head.
LOGIT_POSTPROCESSING_ATTRS = ("final_logit_softcapping", "logit_scale", "logits_scaling")


def has_plain_lm_head(model) -> bool:
    """True if logits = output_embeddings(last hidden state), so trunk and head can run apart."""
    return hasattr(model, "get_decoder") and not any(getattr(model.config, a, None) for a in LOGIT_POSTPROCESSING_ATTRS)


class _NextToken:
    """One cached forward: (next-token logits (rows, V) fp32, last hidden state (rows, H) or
    None, cache). Only the last position goes through the LM head; for the prompt pass that
    skips the head (576 x 49k for SmolLM2) on every prompt token."""

    def __init__(self, model, keep_hidden: bool):
        self.model = model
        self.keep_hidden = keep_hidden
        self.split = keep_hidden and has_plain_lm_head(model)
        self.last_only = {"logits_to_keep": 1} if _accepts(model, "logits_to_keep") else {}

    def __call__(self, **inputs):
        if self.split:
            out = self.model.get_decoder()(**inputs, use_cache=True)
            hidden = out.last_hidden_state[:, -1]  # (rows, H)
            return upcast(self.model.get_output_embeddings()(hidden)), hidden, out.past_key_values
        out = self.model(**inputs, use_cache=True, output_hidden_states=self.keep_hidden, **self.last_only)
        hidden = out.hidden_states[-1][:, -1] if self.keep_hidden else None
        return upcast(out.logits[:, -1, :]), hidden, out.past_key_values


def distinct_rows(prompt_ids: list[list[int]]) -> tuple[list[int], list[int]]:
    """The first row of each distinct prompt, and for every row the position of its prompt among
    those: ``[[1], [2], [1]] -> ([0, 1], [0, 1, 0])``. "Same prompt" means the same token ids,
    wherever the rows sit in the batch."""
    position: dict[tuple[int, ...], int] = {}
    firsts, index = [], []
    for row, ids in enumerate(prompt_ids):
        key = tuple(ids)
        if key not in position:
            position[key] = len(firsts)
            firsts.append(row)
        index.append(position[key])
    return firsts, index


def _prefill(step: _NextToken, input_ids, prompt_mask, share_prompts: bool):
    """The prompt pass: next-token logits (B, V), last hidden states (B, H) or None, and the
    KV cache for all B rows. With ``share_prompts``, each distinct prompt is computed once and
    its rows repeated."""
    rows = input_ids.shape[0]
    index = None
    if share_prompts:
        firsts, inverse = distinct_rows(input_ids.tolist())  # left-padded rows: equal iff same prompt
        if len(firsts) < rows:
            pick = torch.tensor(firsts, device=input_ids.device)
            index = torch.tensor(inverse, device=input_ids.device)
            input_ids, prompt_mask = input_ids[pick], prompt_mask[pick]
    logits, hidden, past = step(input_ids=input_ids, attention_mask=prompt_mask,
                                position_ids=position_ids_from_mask(prompt_mask))
    if index is not None:
        logits = logits[index]
        hidden = hidden[index] if hidden is not None else None
        past.reorder_cache(index)
    return logits, hidden, past


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
