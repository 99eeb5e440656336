"""OpenRLHF bundle: ``data/prompts.jsonl``, ``reward.py`` (``reward_func(queries, prompts, labels)``)
and ``run_openrlhf.sh``: ``python3 -m openrlhf.cli.train_ppo_ray`` with the run's knobs.

The flag names are openrlhf 0.11.2's dotted groups (``--actor.eps_clip``, ``--algo.kl.init_coef``,
``--ds.lora.rank``...; the flat names such as ``--init_kl_coef`` were renamed in 2026); the
test parses them with the parser built by openrlhf's own ``train_ppo_ray.py``. OpenRLHF is
actor-critic PPO with GAE like the lab; its critic is a separate model.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..tasks import held_out_tasks, training_tasks
from .run_record import RunRecord

SCRIPT = "run_openrlhf.sh"
ESTIMATORS = {"gae": "gae", "grpo": "group_norm", "rloo": "rloo", "reinforce": "reinforce_baseline"}
# OpenRLHF's --actor.loss_agg_mode has two of the lab's four modes.
LOSS_AGG_MODES = ("token-mean", "seq-mean-token-mean")


def _estimator(knobs) -> str:
    """grpo without std normalisation is OpenRLHF's dr_grpo estimator."""
    lab = getattr(knobs, "advantage_estimator", "gae")
    if lab == "grpo" and not getattr(knobs, "grpo_std_norm", True):
        return "dr_grpo"
    return ESTIMATORS.get(lab, "gae")


def _group_size(knobs) -> int:
    if getattr(knobs, "advantage_estimator", "gae") == "gae":
        return 1
    return max(2, int(getattr(knobs, "group_size", 0) or 2))


def openrlhf_prompts_per_step(knobs) -> int:
    return max(1, knobs.batch_size // _group_size(knobs))


def openrlhf_args(record: RunRecord, here: str = "$HERE") -> list[str]:
    """The argument list after ``python3 -m openrlhf.cli.train_ppo_ray``."""
    k = record.knobs
    estimator = _estimator(k)
    group = _group_size(k)
    samples = openrlhf_prompts_per_step(k) * group
    args = [
        "--actor.model_name_or_path", record.base_model,
        "--reward.remote_url", f"{here}/reward.py",
        "--data.prompt_dataset", f"{here}/data/prompts.jsonl",
        "--data.input_key", "input",
        "--data.label_key", "label",
        "--data.apply_chat_template",
        "--rollout.batch_size", str(openrlhf_prompts_per_step(k)),
        "--rollout.n_samples_per_prompt", str(group),
        "--train.batch_size", str(max(1, samples // k.num_minibatches)),
        "--train.max_epochs", str(k.ppo_epochs),
        "--train.num_episodes", "1",
        "--rollout.max_new_tokens", str(k.max_new_tokens),
        "--rollout.temperature", str(k.temperature),
        "--rollout.top_p", str(k.top_p),
        "--actor.eps_clip", str(k.clip_eps),
        "--algo.advantage.estimator", estimator,
        "--algo.advantage.gamma", str(k.gamma),
        "--algo.advantage.lambd", str(k.gae_lambda),
        "--algo.kl.init_coef", str(k.kl_coef),
        # one estimator for wherever the KL goes: the lab's for the place it is in
        "--algo.kl.estimator", (getattr(k, "kl_loss_estimator", "k3") if getattr(k, "kl_in", "reward") == "loss"
                                else k.kl_estimator),
        "--actor.entropy_coef", str(k.ent_coef),
        "--actor.adam.lr", str(k.learning_rate),
        "--actor.lr_scheduler", "constant",
        "--actor.lr_warmup_ratio", "0",
        "--actor.max_norm", str(k.max_grad_norm),
        "--train.seed", str(k.seed),
        "--ckpt.output_dir", f"{here}/openrlhf-output",
        "--ckpt.save_hf",
        "--actor.num_gpus_per_node", "1",
        "--ref.num_gpus_per_node", "1",
        "--vllm.num_engines", "1",
        "--train.colocate_all",
    ]
    args += _loss_variant_args(k)
    if estimator == "gae":
        args += ["--critic.value_clip", str(k.value_clip_eps), "--critic.adam.lr", str(k.learning_rate),
                 "--critic.lr_scheduler", "constant", "--critic.lr_warmup_ratio", "0",
                 "--critic.max_norm", str(k.max_grad_norm), "--critic.num_gpus_per_node", "1"]
    if k.mode == "lora":
        # OpenRLHF's --ds.lora.alpha is an int: a fractional alpha is rounded (noted in the script).
        args += ["--ds.lora.rank", str(k.lora_r), "--ds.lora.alpha", str(round(k.lora_alpha)),
                 "--ds.lora.dropout", str(k.lora_dropout), "--ds.lora.target_modules", *k.lora_targets]
    if k.gradient_checkpointing:
        args.append("--actor.gradient_checkpointing_enable")
    if k.whiten == "none":
        args.append("--algo.advantage.no_std_norm")
    return args


def _loss_variant_args(k) -> list[str]:
    """Where the KL goes, clip-higher and the loss aggregation (when OpenRLHF has the mode)."""
    args = ["--algo.kl.use_loss"] if getattr(k, "kl_in", "reward") == "loss" else []
    clip_high = getattr(k, "clip_eps_high", None)
    if clip_high is not None:
        args += ["--actor.eps_clip_low_high", str(k.clip_eps), str(clip_high)]
    if getattr(k, "loss_agg_mode", "token-mean") in LOSS_AGG_MODES:
        args += ["--actor.loss_agg_mode", getattr(k, "loss_agg_mode", "token-mean")]
    return args


def unmapped_notes(record: RunRecord) -> list[str]:
    k = record.knobs
    notes = [
        f"vf_coef={k.vf_coef}: OpenRLHF's critic is a separate model with its own optimizer.",
        f"whiten={k.whiten}: OpenRLHF whitens GAE advantages over the batch (no_std_norm keeps only the mean); "
        "there is no per-response whitening.",
        f"dropout_in_ppo={k.dropout_in_ppo}: no switch.",
        f"micro_batch_tokens={k.micro_batch_tokens}: see --train.dynamic_batch_enable / --train.max_tokens_per_gpu.",
        f"max_bad_updates={k.max_bad_updates}: no equivalent.",
        f"missing_eos_penalty={record.missing_eos_penalty}: applied in reward.py (OpenRLHF passes the text "
        "with special tokens, so a missing EOS is visible).",
        f"steps={k.steps}: prompts.jsonl repeats the tasks so that one episode is {k.steps} rollout batches.",
        f"exact_kl={getattr(k, 'exact_kl', False)}: a lab diagnostic, no counterpart.",
        "metrics: the lab's clip_frac_low/high, frac_reward_zero_std and kl_exact have no OpenRLHF counterpart.",
    ]
    if getattr(k, "reward_source", "rule") != "rule":
        notes.append(f"reward_source={k.reward_source}: reward.py is the rule only; the lab's reward model is not in "
                     "this bundle (OpenRLHF takes one as --reward_pretrain: a full model, so its LoRA must be merged "
                     "first).")
    mode = getattr(k, "loss_agg_mode", "token-mean")
    if mode not in LOSS_AGG_MODES:
        notes.append(f"loss_agg_mode={mode}: OpenRLHF aggregates by token-mean or seq-mean-token-mean only; "
                     "left at its default token-mean.")
    if getattr(k, "kl_in", "reward") == "loss" and k.kl_estimator != "k1":
        notes.append(f"kl_estimator={k.kl_estimator}: OpenRLHF has one estimator; with the KL in the loss it is "
                     "set to kl_loss_estimator.")
    elif getattr(k, "kl_in", "reward") != "loss" and getattr(k, "kl_loss_estimator", "k3") != "k3":
        notes.append(f"kl_loss_estimator={k.kl_loss_estimator}: unused with the KL in the reward.")
    if k.mode == "lora" and k.lora_alpha != round(k.lora_alpha):
        notes.append(f"lora_alpha={k.lora_alpha}: OpenRLHF takes an integer alpha; rounded to {round(k.lora_alpha)}, "
                     f"so the LoRA scale is {round(k.lora_alpha) / k.lora_r:g} instead of {k.lora_alpha / k.lora_r:g}.")
    return notes


def write_openrlhf_bundle(record: RunRecord, out: Path) -> list[Path]:
    data = out / "data"
    data.mkdir(parents=True, exist_ok=True)
    k = record.knobs
    needed = k.steps * openrlhf_prompts_per_step(k)
    def line(t):
        return json.dumps({"input": [{"role": "system", "content": record.system_prompt},
                                     {"role": "user", "content": t.prompt}], "label": t.expected}, ensure_ascii=False)

    train = training_tasks(record.tasks)  # held-out tasks are never trained on
    lines = [line(train[i % len(train)]) for i in range(needed)]
    (data / "prompts.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    held_out = held_out_tasks(record.tasks)
    if held_out:  # kept for evaluation, apart
        (data / "heldout.jsonl").write_text("\n".join(line(t) for t in held_out) + "\n", encoding="utf-8")
    notes = "\n".join(f"# - {n}" for n in unmapped_notes(record))
    argv = openrlhf_args(record)
    rendered, i = [], 0
    while i < len(argv):  # one flag (with its values) per line
        j = i + 1
        while j < len(argv) and not argv[j].startswith("--"):
            j += 1
        rendered.append(" ".join(f'"{a}"' for a in argv[i:j]))
        i = j
    body = " \\\n    ".join(rendered)
    script = f"""#!/usr/bin/env bash
# Train the exported PPO-LoRA Lab run with OpenRLHF (flags checked against openrlhf 0.11.2).
# Needs OpenRLHF with its GPU stack (ray, vllm, deepspeed): see its install guide. Start ray
# first (ray start --head). As written, every model shares one GPU (--train.colocate_all);
# on a cluster raise the *.num_gpus_per_node / *.num_nodes flags and --vllm.num_engines.
#
# Knobs with no counterpart in OpenRLHF:
{notes}
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
python3 -m openrlhf.cli.train_ppo_ray \\
    {body} \\
    "$@"
"""
    (out / SCRIPT).write_text(script, encoding="utf-8")
    (out / SCRIPT).chmod(0o755)
    return [out / SCRIPT, data / "prompts.jsonl"]
