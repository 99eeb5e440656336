"""Preferences, the reward model, PPO against it and DPO, on tiny-random.
Run: OMP_NUM_THREADS=1 python -m pytest tests/test_preferences.py -q"""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ppo_demo.config import preset_config
from ppo_demo.dpo import DPOTrainer
from ppo_demo.lora import adapters_disabled, inject_lora, lora_layers
from ppo_demo.preference_losses import LOG_2
from ppo_demo.preferences import (PRESET_PAIRS, DPOConfig, Pair, PairEncoder, PreferenceError, RewardModelConfig,
                                  batch_from_token_lists, labelled_pair, load_pairs_file, pairs_from_rows,
                                  pairs_to_csv, parse_pairs_csv, rule_ranked_pairs, split_pairs)
from ppo_demo.policy import PolicyRuntime
from ppo_demo.reward import RewardConfig, rule_reward
from ppo_demo.reward_model import (RewardModel, RewardModelTrainer, last_real_index, load_reward_model,
                                   save_reward_model)
from ppo_demo.tasks import Task
from ppo_demo.trainer import PPOTrainer

ROOT = Path(__file__).resolve().parents[1]
TASKS = [Task("say a", "a"), Task("say b", "b")]


# --- the table -----------------------------------------------------------------------------
def test_csv_round_trip_keeps_commas_quotes_newlines_and_chinese():
    pairs = PRESET_PAIRS + [Pair('He said "hi, you"', "line one\nline two", "你好，世界")]
    assert parse_pairs_csv(pairs_to_csv(pairs)) == pairs


def test_csv_columns_in_any_order_and_blank_rows_dropped():
    text = "rejected,prompt,chosen\nbad,q,good\n,,\n"
    assert parse_pairs_csv(text) == [Pair("q", "good", "bad")]


@pytest.mark.parametrize("text,key", [
    ("prompt,expected\nq,a\n", "preferences.error.header"),
    ("prompt,chosen,rejected\nq,good,\n", "preferences.error.empty_cell"),
    ("prompt,chosen,rejected\nq,same,same\n", "preferences.error.same_answer"),
    ("prompt,chosen,rejected\n", "preferences.error.empty_table"),
    ("", "preferences.error.empty_file"),
])
def test_bad_csv_names_the_problem_in_both_languages(text, key):
    with pytest.raises(PreferenceError) as info:
        parse_pairs_csv(text)
    assert info.value.key == key
    assert info.value.in_lang("zh") != str(info.value)  # a real Chinese sentence


def test_the_row_is_named_and_limits_hold(tmp_path):
    with pytest.raises(PreferenceError, match="row 2 has no rejected"):
        pairs_from_rows([("q", "a", "b"), ("q", "a", "")])
    with pytest.raises(PreferenceError, match="limit is 1"):
        pairs_from_rows([("q", "a", "b"), ("q", "c", "d")], max_pairs=1)
    latin1 = tmp_path / "pairs.csv"
    latin1.write_bytes("prompt,chosen,rejected\nq,caf\xe9,tea\n".encode("latin-1"))
    with pytest.raises(PreferenceError, match="not UTF-8"):
        load_pairs_file(latin1)
    with pytest.raises(PreferenceError, match="Cannot read"):
        load_pairs_file(tmp_path / "missing.csv")


def test_labelled_pair_follows_the_click():
    assert labelled_pair("q", "x", "y", "a") == Pair("q", "x", "y")
    assert labelled_pair("q", "x", "y", "b") == Pair("q", "y", "x")
    assert labelled_pair("q", "x", "y", "tie") is None
    assert labelled_pair("q", "x", "x ", "a") is None


def test_split_holds_out_a_share_and_never_everything():
    pairs = [Pair(f"q{i}", "a", "b") for i in range(8)]
    train, held = split_pairs(pairs, 0.25, seed=0)
    assert len(held) == 2 and len(train) == 6 and set(train) | set(held) == set(pairs)
    assert split_pairs(pairs, 0.25, seed=0) == (train, held)  # seeded
    assert len(split_pairs(pairs[:2], 0.9, seed=0)[0]) == 1  # one left to train on
    assert split_pairs(pairs, 0.0, seed=0)[1] == []


def test_rule_ranked_pairs_put_the_higher_rule_score_first(tiny):
    config = preset_config("quick-cpu", max_new_tokens=6)
    reward = RewardConfig()
    with PolicyRuntime.for_config(tiny, config) as runtime:
        pairs = rule_ranked_pairs(runtime, TASKS, reward, pairs_per_task=3, seed=0, max_new_tokens=6)
    assert pairs and all(p.prompt in {t.prompt for t in TASKS} for p in pairs)
    assert sum(p.prompt == "say a" for p in pairs) <= 3
    expected = {t.prompt: t.expected for t in TASKS}
    for pair in pairs:  # missing-EOS penalty 0: the text alone decides, so the order is checkable
        assert rule_reward(pair.chosen, expected[pair.prompt], reward) > rule_reward(pair.rejected, expected[pair.prompt], reward)


def test_token_batch_has_the_rollout_layout():
    batch = batch_from_token_lists([[5, 6, 7], [8]], [[1, 2], [3, 4, 9]], pad_id=0)
    assert batch.prompt_len == 3
    assert batch.input_ids.tolist() == [[5, 6, 7, 1, 2, 0], [0, 0, 8, 3, 4, 9]]
    assert batch.response_mask.tolist() == [[1, 1, 0], [1, 1, 1]]
    assert last_real_index(batch.attention_mask).tolist() == [4, 5]


# --- the reward model ----------------------------------------------------------------------
def _pairs_batch(tiny, pairs):
    return PairEncoder(tiny.tokenizer, 16).batch(pairs)


def test_fresh_reward_model_scores_zero_and_leaves_the_model_as_it_was(tiny):
    batch = _pairs_batch(tiny, PRESET_PAIRS[:3])
    decoder = tiny.model.get_decoder()
    before = decoder(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
    rm = RewardModel(tiny.model, r=4, alpha=8.0, init_seed=0)
    assert rm.raw_scores(batch).abs().max() == 0  # zero head
    with torch.no_grad():
        rm.head.weight.normal_()
        for adapter in rm.adapters:
            adapter.lora_B.normal_()
    assert rm.raw_scores(batch).abs().max() > 0  # the test can fail: a live head does score
    after = decoder(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
    assert torch.equal(before, after)  # hooks gone once it has scored


def test_reward_model_equals_an_injected_lora_and_ignores_the_policy_adapters(tiny):
    """The hooks compute what a LoRALinear with the same A, B would; the policy's own
    adapters are off while the reward model scores."""
    batch = _pairs_batch(tiny, PRESET_PAIRS[:2])
    rm = RewardModel(tiny.model, r=4, alpha=8.0, init_seed=0)
    with torch.no_grad():
        rm.head.weight.normal_()
        for adapter in rm.adapters:
            adapter.lora_B.normal_(std=0.1)
    scores = rm.raw_scores(batch)
    # a policy LoRA with random B on the same model: the RM's scores must not move
    inject_lora(tiny.model, ["q_proj", "v_proj"], r=2, alpha=4.0, dropout=0.0)
    with torch.no_grad():
        for _, layer in lora_layers(tiny.model):
            layer.lora_B.normal_()
    assert torch.allclose(rm.raw_scores(batch), scores, atol=1e-5)
    # the same update by hand: a second model with the RM's A, B injected as the policy's
    other = type(tiny.model)(tiny.model.config).eval()
    other.load_state_dict({k.replace(".base.", "."): v for k, v in tiny.model.state_dict().items()
                           if "lora_" not in k})
    inject_lora(other, list(rm.lora["targets"]), r=4, alpha=8.0, dropout=0.0)
    with torch.no_grad():
        layers = dict(lora_layers(other))
        for name, adapter in zip(rm.names, rm.adapters):
            layers[name].lora_A.copy_(adapter.lora_A)
            layers[name].lora_B.copy_(adapter.lora_B)
        hidden = other.get_decoder()(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                                     position_ids=batch.position_ids).last_hidden_state
        by_hand = rm.head(hidden[torch.arange(hidden.shape[0]), last_real_index(batch.attention_mask)]).squeeze(-1)
    assert torch.allclose(scores, by_hand, atol=1e-5)


def test_reward_model_training_lowers_the_loss_and_saves_and_loads(tiny, tmp_path):
    config = RewardModelConfig(rm_epochs=8, rm_batch_size=2, rm_learning_rate=3e-3, rm_holdout=0.25)
    trainer = RewardModelTrainer(tiny, PRESET_PAIRS, config)
    steps = list(trainer.train())
    assert len(steps) == trainer.total_steps == 8 * 3
    assert steps[0]["loss"] == pytest.approx(LOG_2, abs=1e-6)  # zero head: every pair ties
    first_epoch = [s["loss"] for s in steps if s["epoch"] == 1]
    last_epoch = [s["loss"] for s in steps if s["epoch"] == 8]
    assert sum(last_epoch) / len(last_epoch) < sum(first_epoch) / len(first_epoch) - 0.05
    assert all("heldout_accuracy" in s for s in steps if s["step"] % 3 == 0)
    report = trainer.last_eval
    assert report["train_loss"] < LOG_2 and report["heldout_pairs"] == 2
    assert report["score_std"] > 0

    save_reward_model(trainer.reward_model, tmp_path / "rm", tiny.name)
    config_json = json.loads((tmp_path / "rm" / "adapter_config.json").read_text())
    assert config_json["task_type"] == "SEQ_CLS" and config_json["modules_to_save"] == ["score"]
    batch = _pairs_batch(tiny, PRESET_PAIRS)
    loaded = load_reward_model(tmp_path / "rm", tiny)
    assert torch.allclose(loaded.raw_scores(batch), trainer.reward_model.raw_scores(batch), atol=1e-6)
    assert loaded.score_mean == pytest.approx(trainer.reward_model.score_mean)
    with pytest.raises(PreferenceError, match="no reward model"):
        load_reward_model(tmp_path, tiny)


def test_saved_reward_model_is_a_peft_sequence_classifier(tiny, tmp_path):
    """What a TRL user does with the folder: a LlamaForSequenceClassification (num_labels 1)
    on the base weights, PeftModel.from_pretrained on it; its score is ours."""
    peft = pytest.importorskip("peft")
    from transformers import LlamaForSequenceClassification

    rm = RewardModel(tiny.model, r=4, alpha=8.0, init_seed=0)
    with torch.no_grad():
        rm.head.weight.normal_()
        for adapter in rm.adapters:
            adapter.lora_B.normal_(std=0.1)
    save_reward_model(rm, tmp_path / "rm", tiny.name)
    batch = _pairs_batch(tiny, [PRESET_PAIRS[0]])
    row = batch.input_ids[0][batch.attention_mask[0].bool()].unsqueeze(0)  # one unpadded sequence
    config = tiny.model.config
    # HF's classifier reads the last token that is not padding; tiny-random pads with EOS, which
    # would make it read the token before the answer's EOS. A pad id the text never uses:
    config.num_labels, config.pad_token_id = 1, 0  # byte 0: never in the text
    assert 0 not in row.tolist()[0]
    classifier = LlamaForSequenceClassification(config).eval()
    missing, _ = classifier.load_state_dict(tiny.model.state_dict(), strict=False)  # all but lm_head
    assert missing == ["score.weight"]
    classifier = peft.PeftModel.from_pretrained(classifier, str(tmp_path / "rm")).eval()
    with torch.no_grad():
        theirs = classifier(input_ids=row).logits.squeeze()
    ours = rm.raw_scores(batch)[0]
    assert float(theirs) == pytest.approx(float(ours), abs=1e-4)


# --- PPO against the reward model ----------------------------------------------------------
class _FixedScores:
    """A stand-in reward model whose normalised score of every answer is ``value``."""

    def __init__(self, value):
        self.value = value

    def normalized_scores(self, batch):
        return torch.full((batch.input_ids.shape[0],), self.value)


@pytest.mark.parametrize("source", ["rule", "reward_model", "both"])
def test_reward_source_decides_the_score(tiny, source):
    config = preset_config("quick-cpu", steps=1, batch_size=2, num_minibatches=1, max_new_tokens=4,
                           missing_eos_penalty=0.0, reward_source=source)
    trainer = PPOTrainer(tiny, config, TASKS, reward_model=_FixedScores(0.75))
    result = next(trainer.train())
    m = result.metrics
    assert m["rm_score_mean"] == pytest.approx(0.75)
    expected = {"rule": m["gold_score_mean"], "reward_model": 0.75, "both": m["gold_score_mean"] + 0.75}[source]
    assert m["reward_mean"] == pytest.approx(expected, abs=1e-6)
    gold = [rule_reward(r.response, r.expected, RewardConfig()) for r in result.rollouts]
    assert m["gold_score_mean"] == pytest.approx(sum(gold) / len(gold), abs=1e-6)


def test_a_reward_model_source_without_a_reward_model_is_a_clear_error(tiny):
    config = preset_config("quick-cpu", steps=1, batch_size=2, reward_source="both")
    with pytest.raises(PreferenceError, match="needs a trained reward model"):
        PPOTrainer(tiny, config, TASKS)


# --- DPO -------------------------------------------------------------------------------------
def test_dpo_starts_at_log_2_and_learns_the_pairs(tiny):
    config = preset_config("quick-cpu", steps=12, batch_size=4, learning_rate=5e-3, max_new_tokens=4)
    trainer = DPOTrainer(tiny, config, PRESET_PAIRS[:4], DPOConfig(dpo_beta=0.5), tasks=TASKS, sample_every=4)
    results = list(trainer.train())
    first, last = results[0].metrics, results[-1].metrics
    assert first["dpo_loss"] == pytest.approx(LOG_2, abs=1e-5)  # pi == pi_ref before the first update
    assert last["dpo_loss"] < first["dpo_loss"] - 0.1
    assert last["reward_accuracy"] == 1.0 and last["reward_margin"] > 0
    sampled = [r.metrics for r in results if "kl_mean" in r.metrics]
    assert [m["step"] for m in sampled] == [4, 8, 12]
    for m in sampled:
        assert math.isfinite(m["kl_mean"]) and 0 <= m["success_rate"] <= 1 and m["response_length_mean"] > 0
    # the reference was taken with the adapters off: it equals the base model's log-probs
    with adapters_disabled(tiny.model):
        ref_chosen, _ = trainer._pair_logps(tiny.model, PRESET_PAIRS[:4])
    assert torch.allclose(ref_chosen.detach(), trainer.ref_chosen, atol=1e-5)
    # the pair's shared prompt computed once gives the padded pass's log-probs
    with torch.no_grad():
        shared = trainer._pair_logps(tiny.model, PRESET_PAIRS[:4])
        trainer.config = trainer.config.replace(share_prompts=False)
        plain = trainer._pair_logps(tiny.model, PRESET_PAIRS[:4])
    assert all(torch.allclose(a, b, atol=1e-4) for a, b in zip(shared, plain))


# --- the command line --------------------------------------------------------------------------
def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "ppo_demo", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_cli_reward_model_then_ppo_against_it_then_dpo(tmp_path):
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(pairs_to_csv(PRESET_PAIRS), encoding="utf-8")
    rm_dir = tmp_path / "rm"
    proc = run_cli("reward-model", "--model", "tiny-random", "--pairs", str(pairs), "--out", str(rm_dir), "--jsonl",
                   "--rm-epochs", "2")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [line["step"] for line in lines[:-1]] == [1, 2, 3, 4]
    assert lines[-1]["event"] == "eval" and 0.0 <= lines[-1]["pairwise_accuracy"] <= 1.0
    assert (rm_dir / "adapter_model.safetensors").exists()

    proc = run_cli("train", "--model", "tiny-random", "--reward-model", str(rm_dir), "--steps", "2", "--batch-size",
                   "2", "--max-new-tokens", "4", "--jsonl")
    assert proc.returncode == 0, proc.stderr
    steps = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [s["step"] for s in steps] == [1, 2]
    assert all(math.isfinite(s["rm_score_mean"]) and "gold_score_mean" in s for s in steps)

    proc = run_cli("dpo", "--model", "tiny-random", "--pairs", str(pairs), "--steps", "2", "--batch-size", "2",
                   "--max-new-tokens", "4", "--jsonl", "--out", str(tmp_path / "dpo"))
    assert proc.returncode == 0, proc.stderr
    steps = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [s["step"] for s in steps] == [1, 2]
    assert steps[0]["dpo_loss"] == pytest.approx(LOG_2, abs=1e-5) and "kl_mean" in steps[0]
    assert (tmp_path / "dpo" / "adapter_model.safetensors").exists()


@pytest.mark.parametrize("args,message", [
    (["reward-model", "--model", "tiny-random", "--pairs", "/no/such.csv"], "Cannot read the pairs file"),
    (["reward-model", "--model", "tiny-random"], "one of the arguments --pairs --rule-pairs is required"),
    (["reward-model", "--model", "tiny-random", "--pairs", "PAIRS", "--rm-holdout", "2"], "between 0.0 and 0.9"),
    (["dpo", "--model", "tiny-random", "--pairs", "PAIRS", "--dpo-beta", "0"], "DPO β must be between"),
    (["train", "--model", "tiny-random", "--reward-source", "both", "--steps", "1"], "needs a trained reward model"),
    (["train", "--model", "tiny-random", "--reward-model", "/no/such/dir", "--steps", "1"], "holds no reward model"),
])
def test_bad_preference_arguments_give_one_line_and_exit_2(args, message, capsys, tmp_path):
    from ppo_demo.cli import main

    pairs = tmp_path / "pairs.csv"
    pairs.write_text(pairs_to_csv(PRESET_PAIRS[:2]), encoding="utf-8")
    assert main([str(pairs) if a == "PAIRS" else a for a in args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert "Traceback" not in err and len([line for line in err.splitlines() if line.startswith("error:")]) == 1


def test_export_bundles_say_they_do_not_carry_the_reward_model():
    from ppo_demo.export import openrlhf_export, trl_export, verl_export
    from ppo_demo.export.run_record import make_run_record

    for source in ("rule", "reward_model"):
        record = make_run_record("tiny-random", TASKS, RewardConfig(), preset_config("quick-cpu", reward_source=source))
        for module in (trl_export, openrlhf_export, verl_export):
            said = any("reward_source=" in note for note in module.unmapped_notes(record))
            assert said == (source != "rule"), (module.__name__, source)


def test_cli_reward_model_on_rule_ranked_pairs_saves_them(tmp_path, capsys):
    from ppo_demo.cli import main

    saved = tmp_path / "ranked.csv"
    assert main(["reward-model", "--model", "tiny-random", "--rule-pairs", "2", "--rm-epochs", "1", "--jsonl",
                 "--save-pairs", str(saved)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[-1]["event"] == "eval" and lines[-1]["pairs"] == len(load_pairs_file(saved)) >= 2


def test_sample_answer_pair_gives_two_reproducible_answers(tiny):
    from ppo_demo.preferences import sample_answer_pair

    with PolicyRuntime.for_config(tiny, preset_config("quick-cpu")) as runtime:
        first = sample_answer_pair(runtime, "say a", seed=3, max_new_tokens=6)
        again = sample_answer_pair(runtime, "say a", seed=3, max_new_tokens=6)
    assert first == again and len(first) == 2 and first[0] != first[1]


def test_packed_reward_pass_equals_the_plain_pass_with_gradients(tiny):
    """The packed pass (each prompt once, a slot after each answer) scores as the padded pass."""
    from ppo_demo.prefix_sharing import can_pack

    assert can_pack(tiny.model)
    pairs = PRESET_PAIRS[:3] + [Pair(PRESET_PAIRS[0].prompt, "four", "2+2 is 4, I think")]
    batch = _pairs_batch(tiny, pairs).trimmed()
    rm = RewardModel(tiny.model, r=4, alpha=8.0, init_seed=0)
    with torch.no_grad():
        rm.head.weight.normal_()
        for adapter in rm.adapters:
            adapter.lora_B.normal_(std=0.1)
    results = []
    for packed in (True, False):
        rm.packed = packed
        rm.zero_grad(set_to_none=True)
        scores = rm(batch)
        scores.square().sum().backward()
        results.append((scores.detach(), rm.adapters[0].lora_A.grad.clone(), rm.head.weight.grad.clone()))
    (s1, ga1, gh1), (s2, ga2, gh2) = results
    assert s1.abs().max() > 0.1  # a live model, so the comparison can fail
    assert torch.allclose(s1, s2, atol=1e-5)
    assert torch.allclose(ga1, ga2, atol=1e-5, rtol=1e-4) and torch.allclose(gh1, gh2, atol=1e-5, rtol=1e-4)


def test_the_page_keeps_the_reward_source_on_the_rule_until_it_can_load_a_reward_model():
    from ppo_demo.ui.layout import build_demo

    demo = build_demo()
    component = demo.blocks[next(k for k, b in demo.blocks.items()
                                 if getattr(b, "elem_id", None) == "knob-reward-source")]
    assert component.visible is False and component.value == "rule"
