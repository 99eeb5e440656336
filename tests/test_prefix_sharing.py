"""Each distinct prompt computed once, its keys/values shared by the answers that continue it:
log-probs, values, losses and LoRA gradients must equal the unshared pass. Compared in float64,
so "equal" holds up to float64 rounding whatever the CPU's kernels (see tests/tolerances.py)."""

import pytest
import torch

from ppo_demo.lora import inject_lora, lora_layers
from ppo_demo.policy import ActorCritic, response_logits_and_hidden, response_scores
from ppo_demo.ppo import logprobs_and_entropy_from_logits, masked_mean
from ppo_demo.prefix_sharing import (can_pack, common_prefix_length, packed_block_mask, packed_response_hidden, prompt_groups,
                                    rows_grouped_by_prompt, shared_prompt_logits_and_hidden)
from ppo_demo.rollout import RolloutBatch, chat_prompt_ids, eos_token_ids, sample_responses
from tolerances import EXACT_ATOL, EXACT_RTOL
from varied_lengths import tiny_with_varied_lengths

TEXTS = ["hi", "a much longer prompt than the first", "hi", "x y z", "a much longer prompt than the first", "hi"]


def _setup():
    """A LoRA policy with trained-looking adapters (B != 0) and a sampled batch: mixed-length,
    left-padded prompts, some repeated, responses ending at different lengths."""
    loaded = tiny_with_varied_lengths(float64=True)
    tok, model = loaded.tokenizer, loaded.model
    inject_lora(model, ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], r=4, alpha=8,
                dropout=0.0)
    torch.manual_seed(1)
    with torch.no_grad():
        for _, layer in lora_layers(model):
            torch.nn.init.normal_(layer.lora_B, std=0.05)
    actor = ActorCritic(model)
    with torch.no_grad():
        torch.nn.init.normal_(actor.value_head.weight, std=0.1)
    prompts = [chat_prompt_ids(tok, t) for t in TEXTS]
    batch = sample_responses(model, prompts, pad_id=tok.pad_token_id, eos_ids=eos_token_ids(tok, model),
                             max_new_tokens=8, temperature=1.0, generator=torch.Generator().manual_seed(4))
    # guards: padding, repeats and ragged responses are all present, so the test can fail
    assert (batch.attention_mask[:, :batch.prompt_len] == 0).any()
    assert len(set(batch.response_lengths.tolist())) > 1
    return actor, batch


def _loss(actor, logits, hidden, batch):
    mask = batch.response_mask
    logprobs, entropy = logprobs_and_entropy_from_logits(logits, batch.response_ids)
    values = actor.values(hidden)
    weights = torch.linspace(-1.0, 2.0, mask.numel()).view_as(mask)  # distinct per token: a sum would hide swaps
    loss = masked_mean(logprobs * weights, mask) + 0.5 * masked_mean((values - weights) ** 2, mask)
    return logprobs * mask, values * mask, entropy * mask, loss


def assert_same_scores_and_gradients(plain, plain_grads, other, other_grads):
    """(log-probs, values, entropy, loss) and the LoRA gradients equal to float64 rounding; the
    gradients must not all be zero, or equality would prove nothing."""
    for name, a, b in zip(("logprobs", "values", "entropy", "loss"), plain, other):
        torch.testing.assert_close(b, a, rtol=EXACT_RTOL, atol=EXACT_ATOL, msg=name)
    assert any(g.abs().sum() > 0 for g in plain_grads)
    for g_plain, g_other in zip(plain_grads, other_grads):
        torch.testing.assert_close(g_other, g_plain, rtol=EXACT_RTOL, atol=EXACT_ATOL)


def trunk_input_shapes(model, run):
    """The input_ids shape of every trunk call made by ``run()`` (no grad), and its result."""
    shapes = []
    handle = model.get_decoder().register_forward_pre_hook(
        lambda m, a, kw: shapes.append(tuple(kw["input_ids"].shape)), with_kwargs=True)
    try:
        with torch.no_grad():
            result = run()
    finally:
        handle.remove()
    return shapes, result


def test_groups_are_found_by_prompt_ids_and_padding():
    ids = torch.tensor([[0, 7, 8, 1], [0, 7, 8, 2], [5, 9, 3, 3], [0, 7, 8, 1], [0, 0, 8, 1]])
    mask = torch.tensor([[0, 1, 1, 1], [0, 1, 1, 1], [1, 1, 1, 1], [0, 1, 1, 1], [0, 0, 1, 1]])
    batch = RolloutBatch(ids, mask, 2, torch.ones(5, 2), torch.zeros(5, dtype=torch.bool))
    # prompts (columns 0-1): [pad 7], [pad 7], [5 9], [pad 7], and [pad pad] whose ids match
    # nothing else but whose mask differs from the [0 7]-style rows anyway
    firsts, index = prompt_groups(batch)
    assert firsts.tolist() == [0, 2, 4]
    assert index.tolist() == [0, 0, 1, 0, 2]
    distinct = RolloutBatch(ids[[0, 2, 4]], mask[[0, 2, 4]], 2, torch.ones(3, 2), torch.zeros(3, dtype=torch.bool))
    assert prompt_groups(distinct) is None  # three different prompts: nothing to share
    assert rows_grouped_by_prompt(batch, torch.tensor([4, 0, 2, 3, 1])).tolist() == [4, 0, 3, 1, 2]


def test_shared_prompts_give_the_same_logprobs_values_losses_and_lora_gradients():
    actor, batch = _setup()
    groups = prompt_groups(batch)
    assert groups is not None and len(groups[0]) == 3
    params = actor.trainable_parameters()

    def run(shared):
        actor.zero_grad(set_to_none=True)
        if shared:
            logits, hidden = shared_prompt_logits_and_hidden(actor.model, batch, 0.7, groups)
        else:
            logits, hidden = response_logits_and_hidden(actor.model, batch, 0.7)
        logprobs, values, entropy, loss = _loss(actor, logits, hidden, batch)
        loss.backward()
        return logprobs.detach(), values.detach(), entropy.detach(), loss.detach(), [p.grad.clone() for p in params]

    plain, shared = run(False), run(True)
    assert len(plain[4]) > 2
    assert_same_scores_and_gradients(plain[:4], plain[4], shared[:4], shared[4])


def test_the_prompt_part_runs_each_distinct_prompt_once():
    actor, batch = _setup()
    rows, _ = trunk_input_shapes(actor.model, lambda: shared_prompt_logits_and_hidden(actor.model, batch, 1.0,
                                                                                      prompt_groups(batch)))
    P, T = batch.prompt_len, batch.response_mask.shape[1]
    assert rows == [(3, P), (6, T)]


# --- packed responses: real tokens only -------------------------------------------------------

def _scores_and_grads(actor, batch, share):
    params = actor.trainable_parameters()
    actor.zero_grad(set_to_none=True)
    scores = response_scores(actor.model, batch, 0.7, share_prompts=share, entropy=True)
    mask = batch.response_mask
    values = actor.values(scores.hidden)
    weights = torch.linspace(-1.0, 2.0, mask.numel()).view_as(mask)  # distinct per token: a sum would hide swaps
    loss = (masked_mean(scores.logprobs * weights, mask) + 0.5 * masked_mean((values - weights) ** 2, mask)
            + 0.1 * masked_mean(scores.entropy, mask))
    loss.backward()
    return ([(scores.logprobs * mask).detach(), (values * mask).detach(), (scores.entropy * mask).detach(),
             loss.detach()], [p.grad.clone() for p in params])


@pytest.mark.parametrize("repeated_prompts", [True, False])
def test_packed_responses_give_the_same_logprobs_values_entropy_losses_and_lora_gradients(repeated_prompts):
    actor, batch = _setup()
    if not repeated_prompts:  # one answer per prompt: nothing shared, the packing alone
        batch = batch.rows(torch.tensor([0, 1, 3]))
    assert can_pack(actor.model)  # guard: the packed path is the one under test
    plain, plain_grads = _scores_and_grads(actor, batch, share=False)
    packed, packed_grads = _scores_and_grads(actor, batch, share=True)
    assert_same_scores_and_gradients(plain, plain_grads, packed, packed_grads)


def test_the_packed_pass_runs_every_token_once_and_no_padding():
    actor, batch = _setup()
    shapes, (hidden, rows, cols) = trunk_input_shapes(actor.model, lambda: packed_response_hidden(actor.model, batch))
    P = batch.prompt_len
    prompts = {tuple(ids[real.bool()].tolist()) for ids, real in zip(batch.input_ids[:, :P], batch.attention_mask[:, :P])}
    assert len(prompts) == 3  # six rows, three distinct prompts
    shared = common_prefix_length(sorted(prompts))
    assert shared > 5  # the chat template's system turn
    prompt_tokens = shared + sum(len(p) - shared for p in prompts)
    lengths = batch.response_lengths.tolist()  # e.g. [6, 3, 1, 5, 6, 4]: T = 6, so 36 cells hold 25 tokens
    answer_inputs = sum(n - 1 for n in lengths)  # each answer's last token predicts nothing
    assert shapes == [(1, prompt_tokens + answer_inputs)]
    assert hidden.shape[0] == len(rows) == sum(lengths)
    assert sum(lengths) < batch.response_mask.numel()  # guard: there was padding to skip


def test_one_token_answers_need_no_response_pass():
    actor, batch = _setup()
    one = batch.trimmed()
    one = type(one)(one.input_ids[:, :one.prompt_len + 1], one.attention_mask[:, :one.prompt_len + 1], one.prompt_len,
                    one.response_mask[:, :1], one.ended_with_eos)
    plain, _ = _scores_and_grads(actor, one, share=False)
    packed, _ = _scores_and_grads(actor, one, share=True)
    for a, b in zip(plain, packed):
        torch.testing.assert_close(b, a, rtol=EXACT_RTOL, atol=EXACT_ATOL)


def test_a_prompt_that_is_the_common_prefix_of_the_others():
    """Prompt 1 is prompt 0 cut short, and comes second: it has no tokens of its own past the
    common prefix, so its first answer token is predicted by the prefix's last token."""
    actor, _ = _setup()
    model = actor.model
    long_prompt, short_prompt = [5, 9, 4, 7, 3], [5, 9, 4]
    P, T = 5, 3
    ids = torch.tensor([long_prompt + [11, 12, 13], [0, 0] + short_prompt + [21, 22, 0]])
    mask = torch.tensor([[1] * 8, [0, 0, 1, 1, 1, 1, 1, 0]])
    batch = RolloutBatch(ids, mask, P, torch.tensor([[1., 1., 1.], [1., 1., 0.]]), torch.zeros(2, dtype=torch.bool))
    plain, plain_grads = _scores_and_grads(actor, batch, share=False)
    packed, packed_grads = _scores_and_grads(actor, batch, share=True)
    assert_same_scores_and_gradients(plain, plain_grads, packed, packed_grads)


def test_common_prefix_length():
    assert common_prefix_length([[1, 2, 3], [1, 2, 4], [1, 2, 3, 5]]) == 2
    assert common_prefix_length([[1, 2, 3]]) == 3
    assert common_prefix_length([[7, 2], [1, 2]]) == 0
    assert common_prefix_length([[1, 2], [1, 2, 3]]) == 2


def test_block_mask_by_hand():
    # Packed: common prefix [c0 c1] | prompt 0's rest [a] | prompt 1's rest [b0 b1] | row 0 (prompt 1)
    # answer inputs [r0 r1] | row 1 (prompt 0) answer input [s0].
    prompt_of = torch.tensor([-1, -1, 0, 1, 1, 1, 1, 0])
    row_of = torch.tensor([-1, -1, -1, -1, -1, 0, 0, 1])
    positions = torch.tensor([0, 1, 2, 2, 3, 4, 5, 3])
    allowed = packed_block_mask(prompt_of, row_of, positions)
    assert allowed.shape == (1, 1, 8, 8)
    #                               c0 c1  a b0 b1 r0 r1 s0
    assert allowed[0, 0].int().tolist() == [[1, 0, 0, 0, 0, 0, 0, 0],   # c0
                                            [1, 1, 0, 0, 0, 0, 0, 0],   # c1
                                            [1, 1, 1, 0, 0, 0, 0, 0],   # a
                                            [1, 1, 0, 1, 0, 0, 0, 0],   # b0: not a (another prompt, same position)
                                            [1, 1, 0, 1, 1, 0, 0, 0],   # b1
                                            [1, 1, 0, 1, 1, 1, 0, 0],   # r0
                                            [1, 1, 0, 1, 1, 1, 1, 0],   # r1
                                            [1, 1, 1, 0, 0, 0, 0, 1]]   # s0: its prompt (a), not b or row 0


def test_models_that_cannot_take_a_block_mask_are_not_packed():
    actor, _ = _setup()
    config = actor.model.config
    saved = config._attn_implementation
    try:
        config._attn_implementation = "flash_attention_2"
        assert not can_pack(actor.model)
    finally:
        config._attn_implementation = saved
    had, saved_types = hasattr(config, "layer_types"), getattr(config, "layer_types", None)
    config.layer_types = ["full_attention", "sliding_attention"]
    try:
        assert not can_pack(actor.model)
    finally:
        if had:
            config.layer_types = saved_types
        else:
            del config.layer_types
    assert can_pack(actor.model)
