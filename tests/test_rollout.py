"""Sampling, padding and masking: the places where PPO numbers silently go wrong."""

import pytest
import torch

from ppo_demo.policy import response_logits_and_hidden
from ppo_demo.ppo import logprobs_from_logits
from ppo_demo.rollout import (RolloutBatch, chat_prompt_ids, draw_with_uniforms, eos_token_ids, left_pad,
                              position_ids_from_mask, response_mask_from_tokens, sample_responses, top_p_filter)
from tolerances import EXACT_ATOL, EXACT_RTOL, float64_everywhere


def test_top_p_filter_hand_example():
    logits = torch.log(torch.tensor([[0.2, 0.5, 0.3]]))
    # sorted 0.5, 0.3, 0.2; mass before each: 0, 0.5, 0.8
    kept_07 = torch.isfinite(top_p_filter(logits, 0.7))
    assert kept_07.tolist() == [[False, True, True]]
    kept_05 = torch.isfinite(top_p_filter(logits, 0.5))
    assert kept_05.tolist() == [[False, True, False]]
    assert torch.equal(top_p_filter(logits, 1.0), logits)


@pytest.mark.parametrize("scale", [0.1, 1.0, 3.0, 10.0])  # flat (full-sort fallback) to peaked
@pytest.mark.parametrize("top_p", [0.3, 0.9, 0.99])
def test_top_p_candidate_shortcut_keeps_the_same_tokens_as_a_full_sort(scale, top_p):
    generator = torch.Generator().manual_seed(int(scale * 10 + top_p * 100))
    logits = torch.randn(6, 5000, generator=generator) * scale
    full_sort = torch.isfinite(top_p_filter(logits, top_p, candidates=logits.shape[-1]))
    shortcut = torch.isfinite(top_p_filter(logits, top_p, candidates=64))
    assert torch.equal(shortcut, full_sort)
    two_stage = torch.isfinite(top_p_filter(logits, top_p, candidates=(64, 1024)))
    assert torch.equal(two_stage, full_sort)
    if scale >= 10.0:  # these cases really take the shortcut: every nucleus is within the top 64
        assert int(full_sort.sum(-1).max()) <= 64


def draw(probs, generator):
    """One token per row from ``probs`` (B, V), as the sampler draws it: one uniform per row."""
    from ppo_demo.rollout import uniforms

    return draw_with_uniforms(probs, uniforms(probs.shape[0], generator, probs.device))


def test_draw_matches_the_probabilities_and_never_draws_a_zero():
    probs = torch.tensor([[0.0, 0.5, 0.0, 0.3, 0.2, 0.0]]).repeat(4000, 1)  # (4000, 6)
    generator = torch.Generator().manual_seed(0)
    tokens = draw(probs, generator)
    counts = torch.bincount(tokens, minlength=6).float() / len(tokens)
    assert counts[[0, 2, 5]].sum() == 0  # probability 0: never
    # binomial standard error at n=4000 is <= 0.008; 0.03 is ~4 sigma
    assert torch.allclose(counts, probs[0], atol=0.03), counts
    # the last token with mass is reachable, and a row's draw depends only on its own row
    edge = draw(torch.tensor([[0.0, 0.0, 1.0, 0.0]]), generator)
    assert edge.tolist() == [2]


def test_response_mask_keeps_first_eos_only():
    eos = torch.tensor([9])
    response = torch.tensor([[5, 9, 7, 9], [1, 2, 3, 4], [9, 9, 9, 9]])
    assert response_mask_from_tokens(response, eos).tolist() == [[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]]


def test_position_ids_count_real_tokens_only():
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    assert position_ids_from_mask(mask).tolist() == [[0, 0, 0, 1, 2], [0, 1, 2, 3, 4]]


def test_left_pad():
    ids, mask = left_pad([[1, 2, 3], [4]], pad_id=0, device="cpu")
    assert ids.tolist() == [[1, 2, 3], [0, 0, 4]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]


def _prompts(tok):
    return [chat_prompt_ids(tok, p) for p in ["hi", "a much longer prompt than the first", "x y z"]]


def test_sampling_is_reproducible_and_masks_after_eos(tiny):
    tok, model = tiny.tokenizer, tiny.model
    eos = eos_token_ids(tok, model)
    kwargs = dict(pad_id=tok.pad_token_id, eos_ids=eos, max_new_tokens=12, temperature=1.0, top_p=1.0)
    a = sample_responses(model, _prompts(tok), generator=torch.Generator().manual_seed(3), **kwargs)
    b = sample_responses(model, _prompts(tok), generator=torch.Generator().manual_seed(3), **kwargs)
    assert torch.equal(a.input_ids, b.input_ids)
    assert a.response_ids.shape[1] <= 12
    # after the first EOS every token is padding and masked
    for row, mask in zip(a.response_ids, a.response_mask):
        n = int(mask.sum())
        assert torch.all(mask[:n] == 1) and torch.all(mask[n:] == 0)
        assert torch.all(row[n:] == tok.pad_token_id)


def test_eos_masking_with_a_forced_eos(tiny):
    """Make EOS certain after the first token: every response must then be exactly 2 tokens."""
    tok, model = tiny.tokenizer, tiny.model
    eos_id = tok.eos_token_id
    calls = {"n": 0}

    def force_eos(module, args, output):
        calls["n"] += 1
        if calls["n"] >= 2:  # from the second decoding step on, EOS wins
            output.logits[..., :] = -1e4
            output.logits[..., eos_id] = 0.0
        return output

    handle = model.register_forward_hook(force_eos)
    try:
        batch = sample_responses(model, _prompts(tok), pad_id=tok.pad_token_id, eos_ids=[eos_id],
                                 max_new_tokens=8, generator=torch.Generator().manual_seed(0))
    finally:
        handle.remove()
    assert batch.response_lengths.tolist() == [2, 2, 2]
    assert batch.ended_with_eos.tolist() == [True, True, True]
    assert batch.response_ids.shape[1] == 2  # stopped once every row had ended


def test_batched_logprobs_equal_unbatched_despite_padding(tiny64):
    """Left padding and position ids must make a row's numbers independent of its batch
    (float64: equal up to rounding on any CPU, see tests/tolerances.py)."""
    tok, model = tiny64.tokenizer, tiny64.model
    batch = sample_responses(model, _prompts(tok), pad_id=tok.pad_token_id, eos_ids=eos_token_ids(tok, model),
                             max_new_tokens=10, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        logits, hidden = response_logits_and_hidden(model, batch, temperature=0.7)
        batched = logprobs_from_logits(logits, batch.response_ids)
        for row in range(batch.input_ids.shape[0]):
            alone = batch.rows(slice(row, row + 1)).trimmed()  # no padding left at all
            n = int(alone.response_mask.sum())
            logits1, hidden1 = response_logits_and_hidden(model, alone, temperature=0.7)
            single = logprobs_from_logits(logits1, alone.response_ids)
            torch.testing.assert_close(batched[row, :n], single[0, :n], rtol=EXACT_RTOL, atol=EXACT_ATOL)
            torch.testing.assert_close(hidden[row, :n], hidden1[0, :n], rtol=EXACT_RTOL, atol=EXACT_ATOL)


def test_temperature_is_applied_to_logprobs(tiny):
    tok, model = tiny.tokenizer, tiny.model
    batch = sample_responses(model, _prompts(tok)[:1], pad_id=tok.pad_token_id, eos_ids=eos_token_ids(tok, model),
                             max_new_tokens=4, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        logits_t1, _ = response_logits_and_hidden(model, batch, temperature=1.0)
        logits_t2, _ = response_logits_and_hidden(model, batch, temperature=2.0)
    assert torch.allclose(logits_t1 / 2.0, logits_t2, atol=1e-6)


def test_trimmed_batch_keeps_response_alignment():
    ids = torch.tensor([[0, 0, 5, 6, 7, 0], [0, 3, 4, 8, 0, 0]])
    attn = torch.tensor([[0, 0, 1, 1, 1, 0], [0, 1, 1, 1, 0, 0]])
    batch = RolloutBatch(ids, attn, prompt_len=3, response_mask=torch.tensor([[1., 1., 0.], [1., 0., 0.]]),
                         ended_with_eos=torch.tensor([True, True]))
    trimmed = batch.trimmed()
    assert trimmed.prompt_len == 2  # one all-padding column dropped on the left
    assert trimmed.response_ids.tolist() == [[6, 7], [8, 0]]  # one all-padding column dropped on the right


@pytest.mark.parametrize("temperature,top_p", [(0.5, 1.0), (1.7, 0.8)])
def test_sampler_draws_from_the_tempered_nucleus(tiny, temperature, top_p):
    """The sampler makes one uniform draw per row and step, so with the same generator seed the
    tokens it must pick can be predicted from softmax(top_p_filter(logits / T)) exactly."""
    tok, model = tiny.tokenizer, tiny.model
    # Sharpen the random model's near-uniform logits, so temperature and top-p change a lot.
    model.get_output_embeddings().register_forward_hook(lambda module, args, logits: logits * 8)
    prompts = _prompts(tok)[:1] * 64
    batch = sample_responses(model, prompts, pad_id=tok.pad_token_id, eos_ids=eos_token_ids(tok, model),
                             max_new_tokens=1, temperature=temperature, top_p=top_p,
                             generator=torch.Generator().manual_seed(11))
    with torch.no_grad():
        logits = model(input_ids=torch.tensor(prompts[:1])).logits[:, -1].float()  # (1, V)

    def predicted(t, p):
        probs = torch.softmax(top_p_filter(logits / t, p), dim=-1).expand(len(prompts), -1)
        return draw(probs, torch.Generator().manual_seed(11)).tolist()

    sampled = batch.response_ids[:, 0].tolist()
    assert sampled == predicted(temperature, top_p)
    assert sampled != predicted(1.0, 1.0)  # the check can fail: other settings, other tokens


def tiny_gpt2(tokenizer):
    """A 2-layer GPT-2: a learned embedding per absolute position, unlike Llama's rotary ones."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=len(tokenizer), n_positions=256, n_embd=32, n_layer=2, n_head=4,
                        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
                        pad_token_id=tokenizer.pad_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return GPT2LMHeadModel(config).eval()


def test_batched_equals_unbatched_with_absolute_positions(tiny):
    """Rotary positions are relative, so they forgive a row whose positions count its padding;
    GPT-2's absolute ones do not. Position ids from the attention mask make the padded rows of
    a batch give the numbers they give alone, and the check can fail: without them they differ."""
    tok = tiny.tokenizer
    model = float64_everywhere(tiny_gpt2(tok))  # float64: equal up to rounding on any CPU
    batch = sample_responses(model, _prompts(tok), pad_id=tok.pad_token_id, eos_ids=eos_token_ids(tok, model),
                             max_new_tokens=6, generator=torch.Generator().manual_seed(2))
    mask = batch.response_mask
    with torch.no_grad():
        logits, _ = response_logits_and_hidden(model, batch, temperature=1.0)
        batched = logprobs_from_logits(logits, batch.response_ids) * mask
        for row in range(batch.input_ids.shape[0]):
            alone = batch.rows(slice(row, row + 1)).trimmed()
            n = int(alone.response_mask.sum())
            single = logprobs_from_logits(response_logits_and_hidden(model, alone, 1.0)[0], alone.response_ids)
            torch.testing.assert_close(batched[row, :n], single[0, :n], rtol=EXACT_RTOL, atol=EXACT_ATOL)
        P = batch.prompt_len  # positions counted from column 0, padding included:
        naive = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits[:, P - 1:-1]
        naive = logprobs_from_logits(naive, batch.response_ids) * mask
    assert not torch.allclose(naive, batched, atol=1e-3)


def _shared_prompt_batch(tok):
    """Mixed-length prompts (so rows carry different left padding), some repeated."""
    texts = ["hi", "a much longer prompt than the first", "hi", "x y z", "a much longer prompt than the first", "hi"]
    return [chat_prompt_ids(tok, p) for p in texts]


@pytest.mark.parametrize("temperature,top_p,greedy", [(1.0, 1.0, False), (0.7, 0.9, False), (1.0, 1.0, True)])
def test_shared_prompts_and_dropping_finished_rows_sample_the_same_tokens(temperature, top_p, greedy):
    """Prefilling each distinct prompt once and dropping rows after their EOS must not change
    a single sampled token for the same seed (on a model whose rows end at different lengths)."""
    from varied_lengths import tiny_with_varied_lengths

    loaded = tiny_with_varied_lengths()
    tok, model = loaded.tokenizer, loaded.model
    prompts = _shared_prompt_batch(tok)

    def sample(share, drop):
        return sample_responses(model, prompts, pad_id=tok.pad_token_id, eos_ids=eos_token_ids(tok, model),
                                max_new_tokens=10, temperature=temperature, top_p=top_p, greedy=greedy,
                                generator=torch.Generator().manual_seed(11), share_prompts=share, drop_finished=drop)

    plain = sample(False, False)
    if not greedy:  # guard: rows end at different steps, so dropping rows is exercised
        assert len(set(plain.response_lengths.tolist())) > 1
    for share, drop in [(True, False), (False, True), (True, True)]:
        fast = sample(share, drop)
        assert torch.equal(fast.input_ids, plain.input_ids), (share, drop)
        assert torch.equal(fast.attention_mask, plain.attention_mask)
        assert torch.equal(fast.response_mask, plain.response_mask)
        assert torch.equal(fast.ended_with_eos, plain.ended_with_eos)


def test_shared_prefill_runs_each_distinct_prompt_once_and_finished_rows_leave(tiny):
    from varied_lengths import tiny_with_varied_lengths

    loaded = tiny_with_varied_lengths()
    tok, model = loaded.tokenizer, loaded.model
    rows_per_call = []
    handle = model.register_forward_pre_hook(lambda m, a, kw: rows_per_call.append(kw["input_ids"].shape[0]),
                                             with_kwargs=True)
    try:
        batch = sample_responses(model, _shared_prompt_batch(tok), pad_id=tok.pad_token_id,
                                 eos_ids=eos_token_ids(tok, model), max_new_tokens=10,
                                 generator=torch.Generator().manual_seed(11))
    finally:
        handle.remove()
    assert rows_per_call[0] == 3  # "hi", the long prompt, "x y z"
    lengths = batch.response_lengths.tolist()
    # the decode call that sampled token t ran exactly the rows whose response was still open
    for t, rows in enumerate(rows_per_call[1:], start=1):
        assert rows == sum(n > t for n in lengths), t


def test_distinct_rows():
    from ppo_demo.rollout import distinct_rows

    assert distinct_rows([[1, 2], [3], [1, 2], [3], [4]]) == ([0, 1, 4], [0, 1, 0, 1, 2])
    assert distinct_rows([[5]]) == ([0], [0])


@pytest.mark.parametrize("scale,top_p", [(1.0, 0.9), (4.0, 0.9), (8.0, 0.5), (0.3, 0.95), (4.0, 1.0)])
def test_sampling_from_the_candidates_draws_the_token_the_full_vocabulary_draw_would(scale, top_p):
    """sample_next_tokens skips the vocabulary-wide mask and CDF when the nucleus lies among the
    top-k; for the same uniforms it must pick the very token the full construction picks.
    scale 0.3 makes nuclei wider than 256 candidates (the 4096 and full-sort paths)."""
    from ppo_demo.rollout import draw_with_uniforms, sample_next_tokens, uniforms

    torch.manual_seed(1)
    logits = torch.randn(64, 5000) * scale
    for seed in range(20):
        u = uniforms(64, torch.Generator().manual_seed(seed), "cpu")
        full = draw_with_uniforms(torch.softmax(top_p_filter(logits / 0.7, top_p), dim=-1), u)
        assert torch.equal(sample_next_tokens(logits, 0.7, top_p, u), full)


@pytest.mark.parametrize("temperature,top_p", [(1.0, 1.0), (0.7, 0.9)])
def test_scores_kept_from_sampling_equal_a_separate_scoring_pass(temperature, top_p):
    """The sampling pass's own log-probs (full tempered softmax, not the top-p-truncated one) and
    hidden states equal a separate no-grad forward over the finished batch (compared in float64,
    so up to rounding on any CPU); the tokens are those sample_responses draws for the same seed."""
    from varied_lengths import tiny_with_varied_lengths

    from ppo_demo.rollout import sample_and_score

    loaded = tiny_with_varied_lengths(float64=True)
    tok, model = loaded.tokenizer, loaded.model
    kwargs = dict(pad_id=tok.pad_token_id, eos_ids=eos_token_ids(tok, model), max_new_tokens=10,
                  temperature=temperature, top_p=top_p)
    prompts = _shared_prompt_batch(tok)
    batch, scores = sample_and_score(model, prompts, generator=torch.Generator().manual_seed(11), **kwargs)
    plain = sample_responses(model, prompts, generator=torch.Generator().manual_seed(11), **kwargs)
    assert torch.equal(batch.input_ids, plain.input_ids)
    assert len(set(batch.response_lengths.tolist())) > 1  # padding after EOS is exercised
    mask = batch.response_mask
    with torch.no_grad():
        logits, hidden = response_logits_and_hidden(model, batch, temperature)
    expected = logprobs_from_logits(logits, batch.response_ids) * mask
    torch.testing.assert_close(scores.logprobs, expected, rtol=EXACT_RTOL, atol=EXACT_ATOL)
    torch.testing.assert_close(scores.hidden, hidden * mask.unsqueeze(-1), rtol=EXACT_RTOL, atol=EXACT_ATOL)
    assert (scores.logprobs[mask == 0] == 0).all() and (scores.logprobs[mask == 1] < 0).all()
