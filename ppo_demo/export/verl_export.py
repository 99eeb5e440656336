"""veRL bundle: ``data/train.parquet`` + ``data/val.parquet``, ``reward.py`` (``compute_score``) and
``run_verl.sh``: ``python3 -m verl.trainer.main_ppo`` with the run's knobs as Hydra overrides.

Checked against verl 0.9.1: every key below exists in its packaged ``ppo_trainer.yaml`` (the
test composes the overrides with Hydra), and the reward file loads through
``verl.utils.import_utils.load_extern_object``, as ``reward.custom_reward_function`` does.
veRL is actor-critic PPO with GAE like the lab, but its critic is a separate copy of the model
(the lab's value head shares the policy's trunk).
"""

from __future__ import annotations

import math
from pathlib import Path

from ..tasks import training_tasks
from .run_record import ExportError, RunRecord

SCRIPT = "run_verl.sh"
DATA_SOURCE = "ppo_lora_lab"
# The lab's estimators -> veRL's algorithm.adv_estimator.
ESTIMATORS = {"gae": "gae", "grpo": "grpo", "rloo": "rloo", "reinforce": "reinforce_plus_plus"}
# The lab's k1/k2/k3 -> veRL's names (algorithm.kl_penalty and actor.kl_loss_type alike).
KL_ESTIMATORS = {"k1": "kl", "k2": "mse", "k3": "low_var_kl"}
# The lab's metric names -> what veRL logs for the same number (None: veRL logs no such number).
# veRL's actor/pg_clipfrac is clip_frac_low + clip_frac_high; the lab's clip_frac (CleanRL's,
# whatever A's sign) has no veRL counterpart.
METRIC_NAMES = {"clip_frac_low": None, "clip_frac_high": None, "clip_frac": None,
                "entropy": "actor/entropy", "kl_exact": None, "frac_reward_zero_std": None,
                "approx_kl": "actor/ppo_kl (veRL's is the k1 form)"}


def _group_size(knobs) -> int:
    estimator = getattr(knobs, "advantage_estimator", "gae")
    if estimator == "gae":
        return 1
    return max(2, int(getattr(knobs, "group_size", 0) or 2))


def prompts_per_step(knobs) -> int:
    return max(1, knobs.batch_size // _group_size(knobs))


def verl_overrides(record: RunRecord, here: str = "$HERE") -> list[str]:
    """Hydra overrides (key=value) for main_ppo; ``here`` is the bundle folder."""
    k = record.knobs
    estimator = ESTIMATORS.get(getattr(k, "advantage_estimator", "gae"), "gae")
    overrides = _algorithm_overrides(k, estimator) + _actor_overrides(record)
    overrides += _rollout_data_trainer_overrides(record, here)
    if estimator == "gae":
        overrides += _critic_overrides(record)
    if k.mode == "lora":
        overrides += _lora_overrides(k, with_critic=estimator == "gae")
    return overrides


def _algorithm_overrides(k, estimator: str) -> list[str]:
    """The advantage estimator, GAE's gamma and lambda, and where the KL goes."""
    kl_in_reward = getattr(k, "kl_in", "reward") != "loss"
    return [
        f"algorithm.adv_estimator={estimator}",
        f"algorithm.gamma={k.gamma}",
        f"algorithm.lam={k.gae_lambda}",
        f"algorithm.use_kl_in_reward={kl_in_reward}",
        f"algorithm.kl_penalty={KL_ESTIMATORS[k.kl_estimator]}",
        "algorithm.kl_ctrl.type=fixed",
        f"algorithm.kl_ctrl.kl_coef={k.kl_coef}",
        f"actor_rollout_ref.actor.use_kl_loss={not kl_in_reward}",
        f"actor_rollout_ref.actor.kl_loss_coef={k.kl_coef}",
        f"actor_rollout_ref.actor.kl_loss_type={KL_ESTIMATORS[getattr(k, 'kl_loss_estimator', 'k3')]}",
        f"algorithm.norm_adv_by_std_in_grpo={getattr(k, 'grpo_std_norm', True)}",
    ]


def _actor_overrides(record: RunRecord) -> list[str]:
    """The clipped policy update: clip, epochs, mini-batches, entropy, gradient clip, lr."""
    k = record.knobs
    mini = max(1, prompts_per_step(k) // k.num_minibatches)
    clip_high = getattr(k, "clip_eps_high", None)
    loss_agg_mode = getattr(k, "loss_agg_mode", "token-mean")
    overrides = [
        f"actor_rollout_ref.actor.clip_ratio={k.clip_eps}",
        f"actor_rollout_ref.actor.clip_ratio_low={k.clip_eps}",
        f"actor_rollout_ref.actor.clip_ratio_high={k.clip_eps if clip_high is None else clip_high}",
        f"actor_rollout_ref.actor.loss_agg_mode={loss_agg_mode}",
        f"actor_rollout_ref.actor.ppo_epochs={k.ppo_epochs}",
        f"actor_rollout_ref.actor.ppo_mini_batch_size={mini}",
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=1",
        f"actor_rollout_ref.actor.entropy_coeff={k.ent_coef}",
        f"actor_rollout_ref.actor.grad_clip={k.max_grad_norm}",
        f"actor_rollout_ref.actor.optim.lr={k.learning_rate}",
        f"actor_rollout_ref.model.path={record.base_model}",
        f"actor_rollout_ref.model.enable_gradient_checkpointing={k.gradient_checkpointing}",
    ]
    if loss_agg_mode == "seq-mean-token-sum-norm":  # the lab's constant L is max_new_tokens
        overrides.append(f"actor_rollout_ref.actor.loss_scale_factor={k.max_new_tokens}")
    return overrides


def _rollout_data_trainer_overrides(record: RunRecord, here: str) -> list[str]:
    """Sampling (vLLM, temperature, top-p, answers per prompt), the data files, the reward
    function and the trainer's schedule."""
    k = record.knobs
    return [
        "actor_rollout_ref.rollout.name=vllm",
        f"actor_rollout_ref.rollout.temperature={k.temperature}",
        f"actor_rollout_ref.rollout.top_p={k.top_p}",
        f"actor_rollout_ref.rollout.n={_group_size(k)}",
        "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=1",
        "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=1",
        f"data.train_files={here}/data/train.parquet",
        f"data.val_files={here}/data/val.parquet",
        f"data.train_batch_size={prompts_per_step(k)}",
        "data.max_prompt_length=512",
        f"data.max_response_length={k.max_new_tokens}",
        f"data.seed={k.seed}",
        f"reward.custom_reward_function.path={here}/reward.py",
        "reward.custom_reward_function.name=compute_score",
        f"trainer.total_training_steps={k.steps}",
        f"trainer.total_epochs={k.steps}",
        "trainer.project_name=ppo-lora-lab",
        "trainer.experiment_name=export",
        "trainer.logger=[console]",
        "trainer.n_gpus_per_node=1",
        "trainer.nnodes=1",
        "trainer.val_before_train=False",
        "trainer.test_freq=-1",
        "trainer.save_freq=-1",
    ]


def _critic_overrides(record: RunRecord) -> list[str]:
    """veRL's critic: a separate copy of the model (the lab's value head shares the trunk)."""
    k = record.knobs
    return [
        f"critic.model.path={record.base_model}",
        f"critic.optim.lr={k.learning_rate}",
        f"critic.cliprange_value={k.value_clip_eps}",
        f"critic.grad_clip={k.max_grad_norm}",
        "critic.ppo_micro_batch_size_per_gpu=1",
    ]


def _lora_overrides(k, with_critic: bool) -> list[str]:
    """Rank, alpha and targets for the actor, and for the critic when there is one."""
    targets = "[" + ",".join(k.lora_targets) + "]"
    alpha = _number(k.lora_alpha)
    overrides = [f"actor_rollout_ref.model.lora_rank={k.lora_r}",
                 f"actor_rollout_ref.model.lora_alpha={alpha}",
                 f"actor_rollout_ref.model.target_modules={targets}"]
    if with_critic:
        overrides += [f"critic.model.lora_rank={k.lora_r}", f"critic.model.lora_alpha={alpha}",
                      f"critic.model.target_modules={targets}"]
    return overrides


def _number(value: float):
    """16.0 -> 16: veRL's config types lora_alpha as an int; a fractional alpha stays a float."""
    return int(value) if float(value).is_integer() else value


def unmapped_notes(record: RunRecord) -> list[str]:
    k = record.knobs
    notes = [
        f"vf_coef={k.vf_coef}: veRL's critic is a separate model with its own optimizer (critic.optim.lr), "
        "so there is no weight of the value loss in a shared loss.",
        f"whiten={k.whiten}: veRL's GAE always whitens advantages over the batch.",
        f"lora_dropout={k.lora_dropout}: veRL's model config has no LoRA dropout.",
        f"dropout_in_ppo={k.dropout_in_ppo}: veRL has no switch for it.",
        f"missing_eos_penalty={record.missing_eos_penalty}: compute_score sees the response decoded without "
        "special tokens, so it cannot tell a cut answer; not applied (reward.reward_manager.name=dapo has an "
        "overlong penalty of another shape).",
        f"micro_batch_tokens={k.micro_batch_tokens}: use actor_rollout_ref.actor.use_dynamic_bsz=True and "
        "ppo_max_token_len_per_gpu for a token budget.",
        f"max_bad_updates={k.max_bad_updates}: no equivalent.",
        f"exact_kl={getattr(k, 'exact_kl', False)}: a lab diagnostic; veRL's kl_penalty=full is not implemented.",
        "dual-clip: veRL also bounds the loss of a token with A < 0 at -3·A (actor.clip_ratio_c=3.0); the lab "
        "has no dual-clip (the same wherever rho < 3).",
        "grpo: veRL divides by std + 1e-6, the lab by std + 1e-4 (TRL's).",
        "metrics: clip_frac_low + clip_frac_high = actor/pg_clipfrac; entropy = actor/entropy; frac_reward_zero_std "
        "and kl_exact have no veRL counterpart.",
    ]
    if getattr(k, "reward_source", "rule") != "rule":
        notes.append(f"reward_source={k.reward_source}: compute_score is the rule only; the lab's reward model is not "
                     "in this bundle (veRL takes one as reward_model.model.path: a full model, so its LoRA must be "
                     "merged first).")
    return notes


def write_parquet_files(record: RunRecord, data_dir: Path) -> list[Path]:
    """veRL's RL dataset rows: data_source, prompt (chat messages), ability, reward_model
    {style, ground_truth}, extra_info. The training file repeats the tasks so one step's batch
    (train_batch_size prompts, drop_last) always fills."""
    try:
        import pandas as pd
        import pyarrow  # noqa: F401  (pandas writes parquet with it)
    except ImportError:
        raise ExportError("The veRL export writes parquet files, which needs pyarrow: pip install pyarrow") from None

    def rows(split: str, repeats: int, tasks) -> list[dict]:
        out = []
        for r in range(repeats):
            for i, t in enumerate(tasks):
                out.append({
                    "data_source": DATA_SOURCE,
                    "prompt": [{"role": "system", "content": record.system_prompt},
                               {"role": "user", "content": t.prompt}],
                    "ability": "instruction-following",
                    "reward_model": {"style": "rule", "ground_truth": t.expected},
                    "extra_info": {"split": split, "index": i, "match_mode": record.reward.match_mode,
                                   "held_out": t.held_out},
                })
        return out

    data_dir.mkdir(parents=True, exist_ok=True)
    train_tasks = training_tasks(record.tasks)  # held-out tasks are never trained on; val has them all
    repeats = math.ceil(prompts_per_step(record.knobs) / len(train_tasks))
    train, val = data_dir / "train.parquet", data_dir / "val.parquet"
    pd.DataFrame(rows("train", repeats, train_tasks)).to_parquet(train, index=False)
    pd.DataFrame(rows("test", 1, record.tasks)).to_parquet(val, index=False)
    return [train, val]


def write_verl_bundle(record: RunRecord, out: Path) -> list[Path]:
    files = write_parquet_files(record, out / "data")
    notes = "\n".join(f"# - {n}" for n in unmapped_notes(record))
    lines = " \\\n    ".join(f'"{o}"' for o in verl_overrides(record))
    script = f"""#!/usr/bin/env bash
# Train the exported PPO-LoRA Lab run with veRL (checked against verl 0.9.1), one node, one GPU.
# Needs veRL with its GPU stack (vllm, ray, flash-attn...): see veRL's install guide.
# More GPUs: raise trainer.n_gpus_per_node / trainer.nnodes.
#
# Knobs with no counterpart in veRL:
{notes}
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
python3 -m verl.trainer.main_ppo \\
    {lines} \\
    "$@"
"""
    (out / SCRIPT).write_text(script, encoding="utf-8")
    (out / SCRIPT).chmod(0o755)
    return [out / SCRIPT, *files]
