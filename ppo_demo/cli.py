"""Command line: ``python -m ppo_demo train --model NAME --steps N [knobs...]``,
``python -m ppo_demo export --run DIR --to trl|verl|openrlhf --out DIR2``, and learning from
preferences: ``reward-model``, ``dpo`` and ``train --reward-model DIR`` (:mod:`ppo_demo.preference_cli`).

Every knob of :class:`ppo_demo.config.TrainConfig` is an option (``--learning-rate``,
``--kl-coef``...), with its help text from the one definition. Bad input prints one line
starting with ``error:`` and exits with code 2.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import sys
from pathlib import Path

from .config import DEFAULT_PRESET, PRESETS, ConfigError, TrainConfig, knob_fields, preset_config
from .reward import RewardConfig, RewardError
from .tasks import TASK_PRESET_MATCH_MODE, TASK_PRESETS, TaskError, load_tasks_file
from .text import LocalizedError

EXIT_USAGE = 2
STEP_KEYS = ("step", "samples", "response_tokens", "reward_mean", "reward_std", "success_rate", "kl_mean",
             "policy_loss", "value_loss", "entropy", "approx_kl", "clip_frac", "explained_variance",
             "response_length_mean", "step_seconds", "tokens_per_second", "skipped_updates", "kl_coef", "kl_loss",
             "kl_exact", "clip_frac_low", "clip_frac_high", "frac_reward_zero_std")
SCORE_PART_KEYS = ("gold_score_mean", "rm_score_mean")  # the rule's score and the reward model's, when there is one


class CliError(Exception):
    """Bad input from the command line: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one clear line, no usage dump
        raise CliError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m ppo_demo", description="Token-level PPO with a hand-written LoRA.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    train = sub.add_parser("train", help="train on a task list and report every step")
    train.add_argument("--model", default="smollm2-135m-instruct",
                       help="smollm2-135m-instruct (embedded, offline), qwen2-0.5b-instruct, tiny-random, a hub id or a local dir")
    train.add_argument("--preset", choices=sorted(PRESETS), default=DEFAULT_PRESET,
                       help=f"start from a preset's knobs (seed = the notebook's; default {DEFAULT_PRESET}, as the app)")
    train.add_argument("--tasks", help="task file: CSV with header prompt,expected or a JSON list of {prompt, expected}")
    train.add_argument("--task-preset", choices=sorted(TASK_PRESETS), default="english",
                       help="built-in tasks when --tasks is not given (default: english)")
    train.add_argument("--eval-samples", type=int, default=0, help="after training, K sampled answers per task from base and adapted model")
    train.add_argument("--out", help="directory for the adapter (PEFT format), run.json (tasks, reward, knobs: "
                       "what 'export' reads) and metrics.csv")
    train.add_argument("--trackio", metavar="PROJECT",
                       help="also log every step to trackio (local, off by default; needs pip install trackio)")
    train.add_argument("--jsonl", action="store_true", help="print one JSON object per step (and one for the evaluation)")
    train.add_argument("--device", help="cpu, cuda, cuda:1... (default: cuda if available)")
    train.add_argument("--dtype", choices=("float32", "bfloat16", "float16"),
                       help="weights' dtype (default: bf16 on CUDA, fp32 on CPU, or PPO_DEMO_DTYPE)")
    preset = PRESETS[DEFAULT_PRESET]
    for f in knob_fields():
        _add_knob_option(train, f, f"default {preset[f.name] if f.name in preset else _field_default(f)}")
    for f in knob_fields(RewardConfig):
        default = "the task preset's, else contains" if f.name == "match_mode" else f"default {f.default}"
        _add_knob_option(train, f, default)
    probe = sub.add_parser("probe", help="check the reward before training: K answers per task, scored, with flags")
    probe.add_argument("--model", default="smollm2-135m-instruct", help="as for train")
    probe.add_argument("--preset", choices=sorted(PRESETS), default=DEFAULT_PRESET,
                       help=f"the knobs of the run to check (sampling settings, missing-EOS penalty; default {DEFAULT_PRESET})")
    probe.add_argument("--tasks", help="task file, as for train")
    probe.add_argument("--task-preset", choices=sorted(TASK_PRESETS), default="english",
                       help="built-in tasks when --tasks is not given (default: english)")
    probe.add_argument("--samples", type=int, default=8, help="K: answers sampled per task (default 8)")
    probe.add_argument("--adapter", help="a 'train --out' folder: probe its adapter instead of the base model")
    probe.add_argument("--seed", type=int, default=1234, help="sampling seed (default 1234)")
    probe.add_argument("--jsonl", action="store_true", help='one JSON object per task: {"event": "probe", "task": i, ...}')
    probe.add_argument("--device", help="as for train")
    probe.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), help="as for train")
    for name in ("temperature", "top_p", "max_new_tokens", "missing_eos_penalty"):
        f = next(f for f in knob_fields() if f.name == name)
        _add_knob_option(probe, f, "default: the preset's")
    for f in knob_fields(RewardConfig):
        default = "the task preset's, else contains" if f.name == "match_mode" else f"default {f.default}"
        _add_knob_option(probe, f, default)
    export = sub.add_parser("export", help="turn a 'train --out' folder into a TRL, veRL or OpenRLHF bundle")
    export.add_argument("--run", required=True, help="a folder written by 'train --out'")
    export.add_argument("--to", required=True, choices=("trl", "verl", "openrlhf"), help="the tool to export to")
    export.add_argument("--out", required=True, help="folder for the bundle (created)")
    # Learning from preferences: PPO against a reward model, the reward model itself, DPO.
    train.add_argument("--reward-model", metavar="DIR",
                       help="a folder written by 'reward-model --out': PPO against its score (see --reward-source; "
                            "reward_model when not given)")
    from .preference_cli import add_commands
    add_commands(sub, _add_knob_option, _field_default)
    return parser


def _field_default(f: dataclasses.Field):
    return f.default if f.default is not dataclasses.MISSING else ",".join(f.default_factory())


def _add_knob_option(parser, f: dataclasses.Field, default_text: str) -> None:
    """``--knob-name`` with the knob's help and range; None when not given (the default then
    comes from the preset or the task preset)."""
    meta = f.metadata
    help_text = meta["help"] + (f" [{meta['low']}..{meta['high']}]" if meta.get("low") is not None else "")
    help_text += f" ({default_text})"
    help_text = help_text.replace("%", "%%")  # argparse %-formats help: a knob's "20%" broke --help
    option = "--" + f.name.replace("_", "-")
    if meta.get("choices"):
        parser.add_argument(option, dest=f.name, choices=meta["choices"], help=help_text)
    else:
        parser.add_argument(option, dest=f.name, metavar=f.name.upper(), help=help_text)


def _reward_model(args, loaded):
    """``train --reward-model DIR``: the reward model PPO scores against (None without it)."""
    if not getattr(args, "reward_model", None):
        return None
    from .preference_cli import load_reward_model_arg

    return load_reward_model_arg(args.reward_model, loaded, CliError)


def _config_from_args(args) -> TrainConfig:
    if getattr(args, "reward_model", None) and args.reward_source is None:
        args.reward_source = "reward_model"  # --reward-model alone means: PPO against it
    overrides = {f.name: getattr(args, f.name) for f in knob_fields() if getattr(args, f.name, None) is not None}
    return preset_config(args.preset, **overrides)


def _tasks_and_reward(args):
    """The task list and the reward from --tasks/--task-preset, --match-mode, --length-penalty."""
    if args.tasks:
        tasks = load_tasks_file(args.tasks)
        match_mode = args.match_mode or "contains"
    else:
        tasks = TASK_PRESETS[args.task_preset]
        match_mode = args.match_mode or TASK_PRESET_MATCH_MODE[args.task_preset]
    reward = RewardConfig.from_dict({"match_mode": match_mode, **({} if args.length_penalty is None else
                                                                  {"length_penalty": args.length_penalty})})
    return tasks, reward


def _print_step(metrics: dict, total: int, jsonl: bool) -> None:
    if jsonl:
        print(json.dumps({k: _json_number(metrics.get(k)) for k in STEP_KEYS} |
                         {k: _json_number(metrics[k]) for k in SCORE_PART_KEYS if k in metrics} |
                         {k: _json_number(v) for k, v in metrics.items()
                          if k.startswith("task_reward/") or k == "heldout_success_rate"}), flush=True)
        return
    m = metrics
    print(f"step {m['step']:>4}/{total}  reward {m['reward_mean']:+.3f}  success {m['success_rate']:.2f}  "
          f"kl {m['kl_mean']:+.4f}  beta {m['kl_coef']:.4g}  policy {m['policy_loss']:+.4f}  "
          f"value {_or_na(m['value_loss'], '.4f')}  "
          f"approx_kl {m['approx_kl']:.4f}  clip {m['clip_frac']:.2f}  len {m['response_length_mean']:.1f}  "
          f"{m['step_seconds']:.1f}s" + (f"  held-out success {m['heldout_success_rate']:.2f}"
                                         if "heldout_success_rate" in m else "")
          + (f"  rm {m['rm_score_mean']:+.3f} gold {m['gold_score_mean']:+.3f}" if "rm_score_mean" in m else ""),
          flush=True)


def _print_warnings(warnings, jsonl: bool) -> None:
    """Health warnings that fired at this step: a JSON line each, or a line on stderr."""
    for warning in warnings:
        if jsonl:
            print(json.dumps(warning.to_json(), ensure_ascii=False), flush=True)
        else:
            print(f"warning [{warning.name}] {warning.message()}", file=sys.stderr, flush=True)


def _or_na(value: float, spec: str) -> str:
    """A number, or n/a where there is none (e.g. the value loss of a run without a critic)."""
    return format(value, spec) if math.isfinite(value) else "n/a"


def _json_number(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN
    return value


def _write_metrics_csv(rows: list[dict], path: Path) -> None:
    keys = sorted({k for row in rows for k in row}, key=lambda k: (k != "step", k))
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


def run_train(args) -> int:
    from .cpu_tuning import configure_cpu_runtime
    from .evaluation import evaluate
    from .health import new_warnings
    from .models import ModelLoadError, load_model, parse_dtype
    from .lora import LoRAError
    from .policy import AdapterError
    from .trainer import PPOTrainer, TrainingError

    config = _config_from_args(args)
    tasks, reward = _tasks_and_reward(args)
    if args.eval_samples < 0:
        raise CliError("--eval-samples must be 0 or more.")
    out_dir = Path(args.out) if args.out else None

    configure_cpu_runtime()
    if not args.jsonl:
        print(f"loading {args.model} ...", file=sys.stderr, flush=True)
    try:
        loaded = load_model(args.model, device=args.device, dtype=parse_dtype(args.dtype) if args.dtype else None)
        trainer = PPOTrainer(loaded, config, tasks, reward, reward_model=_reward_model(args, loaded))
    except (ModelLoadError, LoRAError, AdapterError) as exc:
        raise CliError(str(exc)) from None
    sink = None
    if args.trackio:
        from .tracking import TrackingError, TrackioSink
        try:
            sink = TrackioSink(args.trackio, config={"model": loaded.name, **config.to_dict()})
        except TrackingError as exc:
            raise CliError(str(exc)) from None
    history = []
    try:
        for result in trainer.train():
            history.append(result.metrics)
            _print_step(result.metrics, config.steps, args.jsonl)
            _print_warnings(new_warnings(history, config.max_new_tokens), args.jsonl)
            if sink is not None:
                sink.log(result.metrics)
    except TrainingError as exc:
        print(f"error: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print("interrupted: keeping the adapter trained so far", file=sys.stderr)
    finally:
        if sink is not None:
            sink.finish()
    if out_dir is not None:
        _save_run(trainer, loaded, tasks, reward, config, out_dir)
        if history:
            _write_metrics_csv(history, out_dir / "metrics.csv")
        if not args.jsonl:
            print(f"saved adapter and metrics to {out_dir}", file=sys.stderr)
    if args.eval_samples:
        _print_eval(evaluate(trainer.runtime, tasks, reward, config, samples_per_task=args.eval_samples), args.jsonl)
    return 0


def _print_eval(report, jsonl: bool) -> None:
    if jsonl:
        print(json.dumps({
            "event": "eval", "samples_per_task": report.samples_per_task,
            "base_success": report.base_success, "adapted_success": report.adapted_success,
            "heldout_base_success": report.held_out_base_success,
            "heldout_adapted_success": report.held_out_adapted_success,
            "tasks": [{"prompt": t.prompt, "expected": t.expected, "held_out": t.held_out,
                       "base_success": t.base_success,
                       "adapted_success": t.adapted_success, "base_reward": t.base_reward,
                       "adapted_reward": t.adapted_reward} for t in report.tasks],
        }, ensure_ascii=False), flush=True)
        return
    print(f"evaluation, {report.samples_per_task} samples per task (base -> adapted success):")
    for t in report.tasks:
        print(f"  {t.base_success:.2f} -> {t.adapted_success:.2f}  {'[held out] ' if t.held_out else ''}{t.prompt[:60]}")
    print(f"  training tasks {report.base_success:.2f} -> {report.adapted_success:.2f}")
    if report.held_out_tasks:
        print(f"  held-out tasks {report.held_out_base_success:.2f} -> {report.held_out_adapted_success:.2f}")


def _save_run(trainer, loaded, tasks, reward, config, out_dir: Path) -> None:
    """The adapter (:func:`~ppo_demo.peft_format.save_adapter`: PEFT format in LoRA mode, the
    lab's own format for full fine-tuning, AdamW's state beside it) and run.json, which 'export'
    reads."""
    from .export import make_run_record, write_run_record
    from .peft_format import save_adapter

    state = trainer.state()
    save_adapter(state, out_dir)
    record = make_run_record(loaded.name, tasks, reward, config, eos_token=loaded.tokenizer.eos_token or "",
                             steps_trained=state.steps_trained)
    write_run_record(record, out_dir)


def run_probe(args) -> int:
    """K answers per task from the base model (or --adapter), scored with the run's reward."""
    from .cpu_tuning import configure_cpu_runtime
    from .models import ModelLoadError, load_model, parse_dtype
    from .peft_format import load_any_adapter
    from .policy import AdapterError, PolicyRuntime, hidden_size
    from .probe import format_report, probe

    config = _config_from_args(args)
    tasks, reward = _tasks_and_reward(args)
    if args.samples < 1:
        raise CliError("--samples must be 1 or more.")
    configure_cpu_runtime()
    if not args.jsonl:
        print(f"loading {args.model} ...", file=sys.stderr, flush=True)
    try:
        loaded = load_model(args.model, device=args.device, dtype=parse_dtype(args.dtype) if args.dtype else None)
        state = None
        if args.adapter:
            state = load_any_adapter(args.adapter, hidden_size(loaded.model))
            if state.lora:  # the adapter's own shape, whatever the preset says
                config = dataclasses.replace(config, mode=state.mode, lora_r=state.lora["r"],
                                             lora_alpha=state.lora["alpha"], lora_dropout=state.lora["dropout"],
                                             lora_targets=tuple(state.lora["targets"])).validate()
            else:
                config = dataclasses.replace(config, mode=state.mode).validate()
        with PolicyRuntime.for_config(loaded, config, state) as runtime:
            report = probe(runtime, tasks, reward, config, samples_per_task=args.samples,
                           adapters=state is not None, seed=args.seed)
    except (ModelLoadError, AdapterError, OSError) as exc:
        raise CliError(str(exc)) from None
    if args.jsonl:
        for task_probe in report.tasks:
            print(json.dumps(task_probe.to_json(config.missing_eos_penalty), ensure_ascii=False), flush=True)
    else:
        print(format_report(report, config.missing_eos_penalty))
    return 0


def run_export(args) -> int:
    from .export import ExportError, LAUNCH, export_run

    try:
        out = export_run(args.run, args.to, args.out)
    except ExportError as exc:
        raise CliError(str(exc)) from None
    print(f"exported to {out}; launch there with: {LAUNCH[args.to]}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.command == "train":
            return run_train(args)
        if args.command == "export":
            return run_export(args)
        if args.command == "probe":
            return run_probe(args)
        if args.command in ("reward-model", "dpo"):
            from . import preference_cli
            run = preference_cli.run_reward_model if args.command == "reward-model" else preference_cli.run_dpo
            return run(args, CliError)
    except (CliError, ConfigError, TaskError, RewardError, LocalizedError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return 0
