"""The command line of learning from preferences (wired into :mod:`ppo_demo.cli`):

``python -m ppo_demo reward-model --pairs PAIRS.csv --out DIR --jsonl``
    trains a reward model on the pairs (or on ``--rule-pairs N`` pairs per task ranked by the
    rule reward); one line per step, then ``{"event": "eval", "pairwise_accuracy": ...}``.
``python -m ppo_demo dpo --pairs PAIRS.csv --jsonl``
    DPO on the pairs; step lines carry ``dpo_loss`` and, on the task prompts, what a PPO step
    reports (gold score, success, KL to the reference, answer length).
``python -m ppo_demo train --reward-model DIR ...``
    PPO against a reward model (``--reward-source`` rule | reward_model | both; reward_model
    when not given); handled by ``cli.run_train`` with :func:`load_reward_model_arg`.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from .config import DEFAULT_PRESET, PRESETS, knob_fields
from .preferences import DPOConfig, RewardModelConfig, load_pairs_file, pairs_to_csv, rule_ranked_pairs
from .reward import RewardConfig
from .tasks import TASK_PRESET_MATCH_MODE, TASK_PRESETS, load_tasks_file

RM_STEP_KEYS = ("step", "epoch", "loss", "accuracy", "margin_mean", "grad_norm", "pairs", "heldout_loss",
                "heldout_accuracy", "step_seconds")
DPO_STEP_KEYS = ("step", "dpo_loss", "chosen_reward", "rejected_reward", "reward_margin", "reward_accuracy",
                 "grad_norm", "pairs", "samples", "gold_score_mean", "success_rate", "kl_mean", "kl_sum_mean",
                 "response_length_mean", "rm_score_mean", "skipped_updates", "update_seconds", "step_seconds")
# The training knobs DPO reads (the PPO-only ones would do nothing, so they are not offered).
DPO_TRAIN_KNOBS = ("mode", "lora_r", "lora_alpha", "lora_dropout", "lora_targets", "learning_rate", "steps",
                   "batch_size", "max_new_tokens", "temperature", "top_p", "seed", "kl_estimator", "max_grad_norm",
                   "dropout_in_ppo", "missing_eos_penalty")


def add_commands(sub, add_knob_option, field_default) -> None:
    """The ``reward-model`` and ``dpo`` subcommands; ``add_knob_option`` and ``field_default``
    are cli's, so every knob reads the same on every command."""
    rm = sub.add_parser("reward-model", help="train a reward model (own LoRA + scalar head) on preference pairs")
    _add_model_options(rm)
    source = rm.add_mutually_exclusive_group(required=True)
    source.add_argument("--pairs", help="CSV with the header prompt,chosen,rejected")
    source.add_argument("--rule-pairs", type=int, metavar="N",
                        help="instead of a file: N pairs per task, two sampled answers ranked by the rule reward")
    _add_task_options(rm, "the tasks --rule-pairs samples answers to")
    rm.add_argument("--save-pairs", metavar="CSV", help="also write the pairs trained on (e.g. the rule-ranked ones)")
    rm.add_argument("--out", help="folder for the reward model: a PEFT SEQ_CLS adapter with its head, and ppo_lab.json")
    for f in knob_fields(RewardModelConfig):
        add_knob_option(rm, f, f"default {f.default}")

    dpo = sub.add_parser("dpo", help="DPO on preference pairs, reported like a PPO run")
    _add_model_options(dpo)
    dpo.add_argument("--pairs", required=True, help="CSV with the header prompt,chosen,rejected")
    dpo.add_argument("--preset", choices=sorted(PRESETS), default=DEFAULT_PRESET,
                     help=f"start from a preset's knobs (default {DEFAULT_PRESET})")
    _add_task_options(dpo, "the tasks whose prompts are sampled to measure the policy (gold score, KL, length)")
    dpo.add_argument("--sample-every", type=int, default=1,
                     help="sample answers to the task prompts every N steps to measure them (0 = never; default 1)")
    dpo.add_argument("--reward-model", metavar="DIR", help="also report this reward model's score of the answers")
    dpo.add_argument("--out", help="folder for the adapter (PEFT format) and metrics.csv")
    preset = PRESETS[DEFAULT_PRESET]
    fields = {f.name: f for f in knob_fields()}
    for name in DPO_TRAIN_KNOBS:
        f = fields[name]
        add_knob_option(dpo, f, f"default {preset[name] if name in preset else field_default(f)}")
    for f in knob_fields(DPOConfig):
        add_knob_option(dpo, f, f"default {f.default}")
    for f in knob_fields(RewardConfig):
        add_knob_option(dpo, f, "the task preset's, else contains" if f.name == "match_mode" else f"default {f.default}")


def _add_model_options(parser) -> None:
    parser.add_argument("--model", default="smollm2-135m-instruct",
                        help="smollm2-135m-instruct (embedded, offline), qwen2-0.5b-instruct, tiny-random, a hub id "
                             "or a local dir")
    parser.add_argument("--jsonl", action="store_true", help="print one JSON object per step (and one at the end)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1... (default: cuda if available)")
    parser.add_argument("--dtype", choices=("float32", "bfloat16", "float16"),
                        help="weights' dtype (default: bf16 on CUDA, fp32 on CPU, or PPO_DEMO_DTYPE)")


def _add_task_options(parser, what: str) -> None:
    parser.add_argument("--tasks", help=f"task file (CSV prompt,expected or JSON): {what}")
    parser.add_argument("--task-preset", choices=sorted(TASK_PRESETS), default="english",
                        help="built-in tasks when --tasks is not given (default: english)")


def _tasks_and_reward(args):
    if args.tasks:
        tasks, match_mode = load_tasks_file(args.tasks), "contains"
    else:
        tasks, match_mode = TASK_PRESETS[args.task_preset], TASK_PRESET_MATCH_MODE[args.task_preset]
    values = {"match_mode": getattr(args, "match_mode", None) or match_mode}
    if getattr(args, "length_penalty", None) is not None:
        values["length_penalty"] = args.length_penalty
    return tasks, RewardConfig.from_dict(values)


def _load(args, cli_error):
    from .cpu_tuning import configure_cpu_runtime
    from .models import ModelLoadError, load_model, parse_dtype

    configure_cpu_runtime()
    if not args.jsonl:
        print(f"loading {args.model} ...", file=sys.stderr, flush=True)
    try:
        return load_model(args.model, device=args.device, dtype=parse_dtype(args.dtype) if args.dtype else None)
    except ModelLoadError as exc:
        raise cli_error(str(exc)) from None


def load_reward_model_arg(directory: str, loaded, cli_error):
    """``--reward-model DIR`` on ``loaded``'s base model; a bad folder is one line."""
    from .lora import LoRAError
    from .preferences import PreferenceError
    from .reward_model import load_reward_model

    try:
        return load_reward_model(directory, loaded)
    except (PreferenceError, LoRAError) as exc:
        raise cli_error(str(exc)) from None


def _json(values: dict, keys) -> str:
    from .cli import _json_number

    return json.dumps({k: _json_number(values[k]) for k in keys if k in values}, ensure_ascii=False)


def run_reward_model(args, cli_error) -> int:
    from .lora import LoRAError
    from .policy import PolicyRuntime
    from .config import TrainConfig
    from .reward_model import RewardModelTrainer, save_reward_model

    config = RewardModelConfig.from_dict({f.name: getattr(args, f.name) for f in knob_fields(RewardModelConfig)
                                          if getattr(args, f.name) is not None})
    if args.rule_pairs is not None and args.rule_pairs < 1:
        raise cli_error("--rule-pairs must be 1 or more.")
    pairs = load_pairs_file(args.pairs) if args.pairs else None
    tasks, reward = _tasks_and_reward(args)
    loaded = _load(args, cli_error)
    t_start = time.perf_counter()
    if pairs is None:  # rule-ranked answers of the base model, sampled as the quick-cpu preset samples
        sampling = TrainConfig.from_dict(PRESETS[DEFAULT_PRESET])
        with PolicyRuntime.for_config(loaded, sampling) as runtime:
            pairs = rule_ranked_pairs(runtime, tasks, reward, pairs_per_task=args.rule_pairs, seed=config.rm_seed,
                                      temperature=sampling.temperature, top_p=sampling.top_p,
                                      max_new_tokens=sampling.max_new_tokens,
                                      missing_eos_penalty=sampling.missing_eos_penalty, adapters=False)
        if not pairs:
            from .preferences import PreferenceError
            raise PreferenceError("preferences.error.no_ranked_pairs")
        if not args.jsonl:
            print(f"{len(pairs)} rule-ranked pairs in {time.perf_counter() - t_start:.1f}s", file=sys.stderr)
    if args.save_pairs:
        Path(args.save_pairs).write_text(pairs_to_csv(pairs), encoding="utf-8")
    try:
        trainer = RewardModelTrainer(loaded, pairs, config)
    except LoRAError as exc:
        raise cli_error(str(exc)) from None
    t_train = time.perf_counter()
    try:
        for metrics in trainer.train():
            if args.jsonl:
                print(_json(metrics, RM_STEP_KEYS), flush=True)
            else:
                held = (f"  held-out loss {metrics['heldout_loss']:.4f} acc {metrics['heldout_accuracy']:.2f}"
                        if "heldout_accuracy" in metrics else "")
                print(f"step {metrics['step']:>4}/{trainer.total_steps}  epoch {metrics['epoch']}  "
                      f"loss {metrics['loss']:.4f}  acc {metrics['accuracy']:.2f}  "
                      f"margin {metrics['margin_mean']:+.3f}{held}  {metrics['step_seconds']:.2f}s", flush=True)
    except KeyboardInterrupt:
        print("interrupted: evaluating the reward model trained so far", file=sys.stderr)
        trainer.finish()
    report = {"event": "eval", **trainer.last_eval, "pairs": len(pairs), "train_seconds": time.perf_counter() - t_train}
    if args.out:
        save_reward_model(trainer.reward_model, args.out, loaded.name,
                          meta={"pairs": len(pairs), "steps_trained": trainer.steps_done,
                                "heldout_accuracy": report["pairwise_accuracy"], "config": _config_dict(config)})
        if not args.jsonl:
            print(f"saved the reward model to {args.out}", file=sys.stderr)
    if args.jsonl:
        print(_json(report, report), flush=True)
    else:
        print(f"held-out pairwise accuracy {report['pairwise_accuracy']:.2f} on {report['heldout_pairs']} pairs "
              f"(train {report['train_accuracy']:.2f} on {report['train_pairs']}), {report['train_seconds']:.1f}s")
    return 0


def _config_dict(config) -> dict:
    import dataclasses

    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


def run_dpo(args, cli_error) -> int:
    from .cli import _write_metrics_csv
    from .config import preset_config
    from .dpo import DPOTrainer
    from .lora import LoRAError
    from .peft_format import save_peft_adapter
    from .policy import AdapterError, save_policy_state

    overrides = {name: getattr(args, name) for name in DPO_TRAIN_KNOBS if getattr(args, name) is not None}
    config = preset_config(args.preset, **overrides)
    dpo = DPOConfig.from_dict({} if args.dpo_beta is None else {"dpo_beta": args.dpo_beta})
    if args.sample_every < 0:
        raise cli_error("--sample-every must be 0 or more.")
    pairs = load_pairs_file(args.pairs)
    tasks, reward = _tasks_and_reward(args)
    loaded = _load(args, cli_error)
    reward_model = load_reward_model_arg(args.reward_model, loaded, cli_error) if args.reward_model else None
    try:
        trainer = DPOTrainer(loaded, config, pairs, dpo, tasks=tasks, reward=reward, reward_model=reward_model,
                             sample_every=args.sample_every)
    except (LoRAError, AdapterError) as exc:
        raise cli_error(str(exc)) from None
    history = []
    try:
        for result in trainer.train():
            m = result.metrics
            history.append(m)
            if args.jsonl:
                print(_json(m, DPO_STEP_KEYS), flush=True)
                continue
            sampled = (f"  gold {m['gold_score_mean']:+.3f}  success {m['success_rate']:.2f}  kl {m['kl_mean']:+.4f}  "
                       f"len {m['response_length_mean']:.1f}" if "gold_score_mean" in m else "")
            print(f"step {m['step']:>4}/{config.steps}  dpo_loss {m['dpo_loss']:.4f}  "
                  f"margin {m['reward_margin']:+.3f}  acc {m['reward_accuracy']:.2f}{sampled}  "
                  f"{m['step_seconds']:.1f}s", flush=True)
    except KeyboardInterrupt:
        print("interrupted: keeping the adapter trained so far", file=sys.stderr)
    if args.out:
        out = Path(args.out)
        state = trainer.state()
        (save_peft_adapter if state.mode == "lora" else save_policy_state)(state, out)
        if history:
            _write_metrics_csv(history, out / "metrics.csv")
    return 0
