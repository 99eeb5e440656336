"""TRL bundle: ``train_grpo.py`` (GRPOTrainer + peft LoRA), ``data/train.jsonl`` and ``reward.py``.

TRL has no PPO trainer with a critic any more (its PPOTrainer was removed; GRPOTrainer and
RLOOTrainer remain), so the export is GRPO: no value head, the advantage of a response is its
reward relative to the other responses to the same prompt. Every knob that has a counterpart
is set in GRPOConfig; each one that has none is a comment in the script saying why.
Checked against trl 1.16.0 (GRPOConfig fields, the reward-function contract).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..tasks import held_out_tasks, training_tasks
from .run_record import RunRecord

SCRIPT = "train_grpo.py"
# The lab's loss_agg_mode -> GRPOConfig.loss_type (TRL 1.16's aggregation of the per-token loss):
# grpo = per-response token mean, then the mean; bnpo = token mean over the local batch;
# dr_grpo = sum / (responses · max_completion_length). seq-mean-token-sum has none.
LOSS_TYPES = {"token-mean": "bnpo", "seq-mean-token-mean": "grpo", "seq-mean-token-sum-norm": "dr_grpo"}
# The lab's metric names -> TRL's GRPOTrainer logs (None: TRL logs no such number).
METRIC_NAMES = {"clip_frac_low": "clip_ratio/low_mean", "clip_frac_high": "clip_ratio/high_mean",
                "clip_frac": None, "frac_reward_zero_std": "frac_reward_zero_std", "entropy": "entropy",
                "kl_exact": None, "kl_mean": "kl (TRL's: the k3 estimate)"}


def grpo_batch_shape(knobs) -> dict:
    """GRPO needs groups of >= 2 completions per prompt and a generation batch made of whole
    groups: (num_generations, per_device_train_batch_size, steps_per_generation)."""
    group = int(getattr(knobs, "group_size", 0) or 0)
    batch = max(2, knobs.batch_size + knobs.batch_size % 2)  # even, >= 2
    if group < 2:
        group = next(g for g in (8, 4, 2) if batch % g == 0 and g <= batch)
    batch += (-batch) % group  # whole groups
    minibatches = knobs.num_minibatches if batch % knobs.num_minibatches == 0 else 1
    return {"num_generations": group, "per_device_train_batch_size": batch // minibatches,
            "steps_per_generation": minibatches}


def grpo_settings(record: RunRecord) -> list[tuple[str, object, str]]:
    """(GRPOConfig field, value, where it comes from) for every mapped knob."""
    k = record.knobs
    shape = grpo_batch_shape(k)
    scale = {"batch": "batch", "sequence": "group", "none": "none"}[k.whiten]
    if getattr(k, "advantage_estimator", "grpo") == "grpo":  # the lab's GRPO divides by the group std
        scale = "group" if getattr(k, "grpo_std_norm", True) else "none"
    clip_high = getattr(k, "clip_eps_high", None)
    mode = getattr(k, "loss_agg_mode", "token-mean")
    return [
        ("max_steps", k.steps, "steps"),
        ("learning_rate", k.learning_rate, "learning_rate"),
        ("lr_scheduler_type", "constant", "the lab keeps the step size constant"),
        ("warmup_steps", 0, "no warm-up in the lab"),
        ("num_generations", shape["num_generations"], "group_size (GRPO needs >= 2 answers per prompt)"),
        ("per_device_train_batch_size", shape["per_device_train_batch_size"],
         f"batch_size {k.batch_size} / num_minibatches (on N GPUs: divide by N)"),
        ("steps_per_generation", shape["steps_per_generation"], "num_minibatches: gradient steps per batch of rollouts"),
        ("num_iterations", k.ppo_epochs, "ppo_epochs: passes over each batch"),
        ("max_completion_length", k.max_new_tokens, "max_new_tokens"),
        ("temperature", k.temperature, "temperature (TRL also divides logits by it when scoring)"),
        ("top_p", k.top_p, "top_p"),
        ("top_k", 0, "no top-k, as in the lab"),
        ("epsilon", k.clip_eps, "clip_eps (ε_low)"),
        ("epsilon_high", k.clip_eps if clip_high is None else clip_high, "clip_eps_high (DAPO clip-higher)"),
        ("beta", k.kl_coef, "kl_coef; TRL puts the KL (k3) in the loss, not in the per-token reward"),
        ("entropy_coef", k.ent_coef, "ent_coef"),
        ("max_grad_norm", k.max_grad_norm, "max_grad_norm"),
        ("scale_rewards", scale, f"grpo_std_norm={getattr(k, 'grpo_std_norm', True)} for grpo, else whiten={k.whiten} "
         "(GRPO scales rewards, not token advantages; none = Dr. GRPO)"),
        ("disable_dropout", not k.dropout_in_ppo, "dropout_in_ppo off => dropout disabled"),
        ("gradient_checkpointing", k.gradient_checkpointing, "gradient_checkpointing"),
        ("seed", k.seed, "seed"),
        ("loss_type", LOSS_TYPES.get(mode, "grpo"), f"loss_agg_mode={mode}"),
    ]


def unmapped_notes(record: RunRecord) -> list[str]:
    k = record.knobs
    notes = [
        f"gamma={k.gamma}, gae_lambda={k.gae_lambda}: no critic, no GAE in TRL's GRPO (the advantage is the "
        "group-normalised reward).",
        f"vf_coef={k.vf_coef}, value_clip_eps={k.value_clip_eps}: no value head to train.",
        f"kl_estimator={k.kl_estimator}, kl_loss_estimator={getattr(k, 'kl_loss_estimator', 'k3')}: GRPOTrainer "
        "always uses k3 as a loss term (beta above).",
        f"exact_kl={getattr(k, 'exact_kl', False)}: a lab diagnostic, no counterpart.",
        "metrics: the lab's clip_frac_low/high are TRL's clip_ratio/low_mean and clip_ratio/high_mean; "
        "frac_reward_zero_std and entropy keep their names; kl_exact has none.",
        f"micro_batch_tokens={k.micro_batch_tokens}: no token budget; lower per_device_train_batch_size and raise "
        "steps_per_generation instead.",
        f"max_bad_updates={k.max_bad_updates}: no equivalent (the Trainer does not stop on non-finite losses).",
        f"missing_eos_penalty={record.missing_eos_penalty}: applied in reward.py from completion_ids "
        "(mask_truncated_completions would instead drop truncated answers from the loss).",
    ]
    if getattr(k, "reward_source", "rule") != "rule":
        notes.append(f"reward_source={k.reward_source}: reward.py is the rule only; the lab's reward model (a PEFT "
                     "SEQ_CLS adapter, 'reward-model --out') is not in this bundle. GRPOTrainer takes one as a "
                     "reward_funcs entry (a sequence-classification model).")
    if getattr(k, "loss_agg_mode", "token-mean") not in LOSS_TYPES:
        notes.append(f"loss_agg_mode={k.loss_agg_mode}: GRPOConfig has no per-response token sum without the "
                     "constant; exported as loss_type='grpo'.")
    estimator = getattr(k, "advantage_estimator", None)
    if estimator and estimator not in ("grpo",):
        notes.append(f"advantage_estimator={estimator}: exported as GRPO (TRL's RLOOTrainer is the other option).")
    return notes


_SCRIPT = '''\
"""Train the exported PPO-LoRA Lab run with TRL's GRPOTrainer and a peft LoRA.

    pip install "trl==1.16.0" "peft==0.21.2"   # the versions this export was checked with
    python train_grpo.py                        # one GPU; multi-GPU: accelerate launch train_grpo.py

TRL has no PPO trainer with a critic any more (PPOTrainer was removed from TRL), so this is
GRPO: no value head; each answer's advantage is its reward relative to the other answers to
the same prompt. The lab's knobs are mapped below; the ones with no counterpart are listed
at the end with the reason.
"""

import argparse
import json
from pathlib import Path

import torch
from datasets import Dataset
from peft import LoraConfig
from trl import GRPOConfig, GRPOTrainer

import reward as lab_reward

HERE = Path(__file__).resolve().parent
BASE_MODEL = {base_model!r}
LORA = {lora}  # None: full fine-tuning


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=BASE_MODEL, help="hub id or local path of the base model")
    parser.add_argument("--output-dir", default=str(HERE / "grpo-output"))
    parser.add_argument("--max-steps", type=int, default=None, help="override the run's step count")
    parser.add_argument("--report-to", default="none", help="none, trackio, wandb, tensorboard...")
    args = parser.parse_args()

    rows = [json.loads(line) for line in (HERE / "data" / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    # "prompt" is a chat (system + user); "expected" reaches the reward function as a keyword.
    dataset = Dataset.from_list(rows)

    config = GRPOConfig(
        output_dir=args.output_dir,
{settings}
        bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
        logging_steps=1,
        report_to=args.report_to,
        save_strategy="no",
    )
    if args.max_steps is not None:
        config.max_steps = args.max_steps

    peft_config = None
    if LORA is not None:
        peft_config = LoraConfig(r=LORA["r"], lora_alpha=LORA["alpha"],  # scaling alpha/r, as in the lab
                                 lora_dropout=LORA["dropout"], target_modules=LORA["targets"],
                                 bias="none", task_type="CAUSAL_LM")

    trainer = GRPOTrainer(model=args.model, reward_funcs=[rule_reward], args=config,
                          train_dataset=dataset, peft_config=peft_config)
    # The ids GRPOTrainer itself cuts completions at (the tokenizer's EOS and the model's).
    rule_reward.eos_token_ids = set(trainer.eos_token_ids)
    trainer.train()
    trainer.save_model(args.output_dir)


def rule_reward(prompts, completions, completion_ids=None, expected=None, **kwargs):
    """The lab's rule reward (reward.py); an answer cut at max_completion_length pays the
    missing-EOS penalty (its last id is not EOS)."""
    return lab_reward.trl_reward(prompts, completions, completion_ids, expected,
                                 eos_token_ids=rule_reward.eos_token_ids)


rule_reward.eos_token_ids = set()

# Knobs with no counterpart in TRL's GRPO:
{notes}

if __name__ == "__main__":
    main()
'''


def write_trl_bundle(record: RunRecord, out: Path) -> list[Path]:
    data = out / "data"
    data.mkdir(parents=True, exist_ok=True)
    def rows(tasks):
        return [{"prompt": [{"role": "system", "content": record.system_prompt}, {"role": "user", "content": t.prompt}],
                 "expected": t.expected} for t in tasks]

    def write(path, tasks):
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows(tasks)), encoding="utf-8")

    # Held-out tasks are never trained on: they go to a file of their own, for evaluation.
    write(data / "train.jsonl", training_tasks(record.tasks))
    held_out = held_out_tasks(record.tasks)
    if held_out:
        write(data / "heldout.jsonl", held_out)
    k = record.knobs
    lora = None if k.mode != "lora" else {"r": k.lora_r, "alpha": k.lora_alpha, "dropout": k.lora_dropout,
                                          "targets": list(k.lora_targets)}
    settings = "\n".join(f"        {name}={value!r},  # {source}" for name, value, source in grpo_settings(record))
    notes = "\n".join(f"# - {note}" for note in unmapped_notes(record))
    script = _SCRIPT.format(base_model=record.base_model, lora=repr(lora), settings=settings, notes=notes)
    (out / SCRIPT).write_text(script, encoding="utf-8")
    return [out / SCRIPT, data / "train.jsonl"] + ([data / "heldout.jsonl"] if held_out else [])
