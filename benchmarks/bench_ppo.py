"""PPO throughput: the seed notebook's loop (baseline) against the project's PPOTrainer.

One invocation runs each side in its own subprocess (so each has its own peak RSS and
allocator state), loads the model, runs ``--warmup`` untimed steps, then times ``--steps``
steps (at least 8 per side; the seed loop answers one prompt per step, so it times
``--baseline-steps``, by default twice as many), and prints a markdown table: PPO samples/s,
response tokens/s, s/step, both sides' mean answer lengths, peak RSS and the project/baseline
ratios, followed by where the time of a step goes on each side (the trainer's own stage timings).

Both sides answer the same prompts in the same proportions: the project draws every task
equally often per step, and the seed loop is handed the tasks in turn (the notebook's
``random.choice`` over 8 steps gives one task three times and another once, and the tasks'
natural answer lengths differ by 3x). If the two sides' mean answer lengths still differ by
more than 15 %, the report flags it: samples/s then measures the answers, not the engine, and
tokens/s is the figure to compare.

Both sides use the same model, task list, reward and max_new_tokens and the seed's knobs
(LoRA r=8 alpha=16 dropout 0.05 on 7 projections, lr 1e-4, T=1.0, top-p 0.9, 2 PPO epochs,
clip 0.2, vf 0.5, KL 0.05, gamma 1, lambda 0.95); the project runs its default config
(batch 8, one mini-batch, dropout off in PPO passes, batch-wide whitening).

    python benchmarks/bench_ppo.py --model tiny-random --steps 2          # smoke test
    python benchmarks/bench_ppo.py --steps 5 --json benchmarks/results/bench_ppo.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (add_child_options, cpu_name, finish_as_child, machine_info, markdown_table, mean,  # noqa: E402
                     peak_rss_mb, run_child, stdev, strip_options, torch_profile, write_json)

VARIANT_LABELS = {"project": "project (PPOTrainer, defaults)",
                  "project_lean": "project lean (1 response per chunk + gradient checkpointing)",
                  "project_bf16": "project in bf16 (not equal precision: AMX bf16 matmuls)"}
LEAN_OPTIONS = ["--micro-batch-tokens", "1", "--gradient-checkpointing"]
BF16_OPTIONS = ["--dtype", "bfloat16"]
BASELINE_STAGES = ("sample", "score_policy", "score_ref", "gae", "update", "other")
# The project's stages, from the trainer's own step metrics (PPOTrainer reports them).
PROJECT_STAGES = ("sample", "score", "epochs", "other")
STAGE_HELP = {
    "sample": "generation: batched KV-cached sampling, which also yields old log-probs and values (sample_seconds)",
    "score": "decoding, rule reward, scoring passes, KL, GAE (update_seconds - epochs_seconds)",
    "epochs": "PPO epochs: forwards, backward, clipping, AdamW (epochs_seconds)",
    "other": "metrics and per-token records",
}
MIN_TIMED_STEPS = 8
LENGTH_MISMATCH = 0.15  # flag when the sides' mean answer lengths differ by more than this


def _setup_threads(threads: int | None) -> None:
    import torch

    from ppo_demo.cpu_tuning import usable_cpus

    torch.set_num_threads(threads or usable_cpus())


def _tasks_and_reward(args):
    from ppo_demo.reward import RewardConfig
    from ppo_demo.tasks import TASK_PRESET_MATCH_MODE, TASK_PRESETS, training_tasks

    return training_tasks(TASK_PRESETS[args.tasks]), RewardConfig(match_mode=args.match_mode or TASK_PRESET_MATCH_MODE[args.tasks])


def _load(args):
    from ppo_demo.models import load_model, parse_dtype

    t0 = time.perf_counter()
    loaded = load_model(args.model, device="cpu", dtype=parse_dtype(args.dtype))
    return loaded, time.perf_counter() - t0


def child_project(args) -> dict:
    _setup_threads(args.threads)
    from ppo_demo.config import TrainConfig
    from ppo_demo.cpu_tuning import configure_cpu_runtime
    from ppo_demo.trainer import PPOTrainer

    configure_cpu_runtime()  # what the app and the CLI do at start-up
    tasks, reward = _tasks_and_reward(args)
    loaded, load_s = _load(args)
    rss_loaded = peak_rss_mb()
    memory_knobs = {"gradient_checkpointing": args.gradient_checkpointing}
    if args.no_share_prompts:  # only passed when asked: older checkouts have no such knob
        memory_knobs["share_prompts"] = False
    if args.micro_batch_tokens is not None:
        memory_knobs["micro_batch_tokens"] = args.micro_batch_tokens
    if args.preset:
        from ppo_demo.config import preset_config

        config = preset_config(args.preset, seed=args.seed, **memory_knobs)
    else:
        config = TrainConfig().replace(batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                                       seed=args.seed, **memory_knobs)
    trainer = PPOTrainer(loaded, config, tasks, reward)
    if args.force_full_length:
        # no token ends a response: every row runs to max_new_tokens (older checkouts keep the
        # EOS ids on the trainer, newer ones on the policy runtime)
        owner = trainer.runtime if hasattr(trainer.runtime, "eos_ids") else trainer
        owner.eos_ids = [-1]
    steps = []
    for i in range(args.warmup + args.steps):
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        result = trainer.step()
        total = time.perf_counter() - t0
        m = result.metrics
        stages = {"sample": m["sample_seconds"]}
        if "epochs_seconds" in m:  # older checkouts (--compare-to) report sampling and the rest only
            stages.update(score=m["update_seconds"] - m["epochs_seconds"], epochs=m["epochs_seconds"])
        stages["other"] = total - sum(stages.values())
        rec = {"seconds": total, "cpu_seconds": time.process_time() - cpu0, "samples": m["samples"], "response_tokens": m["response_tokens"],
               "success_rate": m["success_rate"], "reward_mean": m["reward_mean"],
               "lengths_by_task": _lengths_by_task(result.rollouts),
               "stages": stages, "warmup": i < args.warmup, "peak_rss_mb_so_far": peak_rss_mb()}
        steps.append(rec)
        print(f"[project] step {i + 1}{' (warm-up)' if rec['warmup'] else ''}: {total:.2f}s, "
              f"{m['samples']} samples, {m['response_tokens']} tokens", flush=True)
    peak = peak_rss_mb()  # before the optional profiled step, which has overheads of its own
    if args.torch_profile:
        with torch_profile(Path(args.torch_profile)):
            trainer.step()
    return {"side": "project", "config": config.to_dict(), "load_seconds": load_s, "steps": steps,
            "peak_rss_mb": peak, "rss_after_load_mb": rss_loaded,
            "malloc_tuning": os.environ.get("PPO_DEMO_NO_MALLOC_TUNING") != "1",
            "code_root": str(Path(sys.modules["ppo_demo"].__file__).resolve().parents[1]), "machine": machine_info()}


def child_baseline(args) -> dict:
    _setup_threads(args.threads)
    if args.baseline_malloc_tuning:
        from ppo_demo.cpu_tuning import tune_glibc_malloc

        tune_glibc_malloc()
    from seed_baseline import SeedPPO, seed_knobs

    tasks, reward = _tasks_and_reward(args)
    loaded, load_s = _load(args)
    knobs = seed_knobs(max_new_tokens=args.max_new_tokens, seed=args.seed, top_k=args.baseline_top_k,
                       min_new_tokens=args.max_new_tokens if args.force_full_length else None)
    rss_loaded = peak_rss_mb()
    ppo = SeedPPO(loaded, tasks, reward, knobs)
    steps = []
    n = baseline_steps(args, len(tasks))
    for i in range(args.warmup + n):
        cpu0 = time.process_time()
        out = ppo.step(tasks[i % len(tasks)])  # the tasks in turn: the same mix as the project's batches
        cpu_seconds = time.process_time() - cpu0
        stages = {k: out["timings"].get(k, 0.0) for k in BASELINE_STAGES if k != "other"}
        stages["other"] = out["step_seconds"] - sum(stages.values())
        rec = {"seconds": out["step_seconds"], "cpu_seconds": cpu_seconds, "samples": out["samples"], "response_tokens": out["response_tokens"],
               "success_rate": float(out.get("hit", 0.0)), "reward_mean": out.get("rm_reward"),
               "lengths_by_task": {out["task"]: [out["response_tokens"]]} if out.get("task") else {},
               "stages": stages, "warmup": i < args.warmup, "peak_rss_mb_so_far": peak_rss_mb()}
        steps.append(rec)
        print(f"[baseline] step {i + 1}{' (warm-up)' if rec['warmup'] else ''}: {out['step_seconds']:.2f}s, "
              f"{out['samples']} sample, {out['response_tokens']} tokens", flush=True)
    return {"side": "baseline", "config": {**knobs.__dict__, "batch_size": 1, "whiten": "sequence",
                                           "dropout_in_ppo": True}, "load_seconds": load_s, "steps": steps,
            "peak_rss_mb": peak_rss_mb(), "rss_after_load_mb": rss_loaded, "malloc_tuning": bool(args.baseline_malloc_tuning),
            "machine": machine_info()}


def baseline_steps(args, n_tasks: int) -> int:
    """Timed seed-loop steps: as asked, else twice the project's, rounded up to a multiple of
    the number of tasks (so every task is answered equally often)."""
    if args.baseline_steps is not None:
        return args.baseline_steps
    n = max(2 * args.steps, MIN_TIMED_STEPS)
    return -(-n // n_tasks) * n_tasks


def _lengths_by_task(rollouts) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for r in rollouts:
        out.setdefault(r.prompt, []).append(len(r.tokens))
    return out


def length_mismatch(a: dict, b: dict) -> float:
    """Relative difference of two summaries' mean answer lengths, |a - b| / min(a, b)."""
    la, lb = a["mean_response_tokens"], b["mean_response_tokens"]
    return abs(la - lb) / min(la, lb) if min(la, lb) > 0 else float("nan")


def summarize(side: dict) -> dict:
    timed = [s for s in side["steps"] if not s["warmup"]]
    seconds = sum(s["seconds"] for s in timed)
    samples = sum(s["samples"] for s in timed)
    tokens = sum(s["response_tokens"] for s in timed)
    stage_names = sorted({k for s in timed for k in s["stages"]})
    stages = {k: mean(s["stages"].get(k, 0.0) for s in timed) for k in stage_names}
    by_task: dict[str, list[int]] = {}
    for s in timed:
        for task, lengths in s.get("lengths_by_task", {}).items():
            by_task.setdefault(task, []).extend(lengths)
    return {"mean_tokens_by_task": {t: mean(v) for t, v in sorted(by_task.items())},
            "answers_by_task": {t: len(v) for t, v in sorted(by_task.items())},"timed_steps": len(timed), "seconds": seconds, "samples": samples, "response_tokens": tokens,
            "samples_per_second": samples / seconds if seconds else float("nan"),
            "tokens_per_second": tokens / seconds if seconds else float("nan"),
            "seconds_per_step": mean(s["seconds"] for s in timed),
            "cpu_seconds_per_step": mean(s.get("cpu_seconds", float("nan")) for s in timed),
            "cpu_seconds_per_sample": (sum(s.get("cpu_seconds", float("nan")) for s in timed) / samples
                                       if samples else float("nan")), "seconds_per_step_std": stdev(s["seconds"] for s in timed),
            "samples_per_step": samples / len(timed) if timed else float("nan"),
            "mean_response_tokens": tokens / samples if samples else float("nan"),
            "peak_rss_mb": side["peak_rss_mb"], "rss_after_load_mb": side.get("rss_after_load_mb", float("nan")),
            "load_seconds": side["load_seconds"],
            "stages_seconds_per_step": stages,
            "stages_seconds_per_sample": {k: v * len(timed) / samples for k, v in stages.items()} if samples else {}}


def _ratio_columns(s: dict, reference: str, variants: list[str]) -> tuple[list[str], list]:
    header = ["metric", SIDE_LABELS[reference]]
    for k in variants:
        header += [SIDE_LABELS[k], f"{SIDE_SHORT[k]} / {SIDE_SHORT[reference]}"]

    def row(name, key=None, fn=None):
        get = fn or (lambda side: side[key])
        cells = [name, get(s[reference])]
        for k in variants:
            value = get(s[k])
            cells += [value, value / cells[1] if cells[1] else float("nan")]
        return cells
    return header, row


def report_scenario(sides: dict) -> str:
    """The tables of one scenario: throughput and memory of every side against the first of
    (baseline, main), then the project's step profile and the per-sample stage comparison."""
    s = {k: v["summary"] for k, v in sides.items()}
    out = []
    reference = next((k for k in ("baseline", "main") if k in s), None)
    variants = [k for k in ("project", "main", "project_lean", "project_bf16") if k in s and k != reference]
    if reference and variants:
        header, row = _ratio_columns(s, reference, variants)
        out.append(markdown_table(header, [
            row("PPO samples/s", "samples_per_second"), row("response tokens/s", "tokens_per_second"),
            row("s/step", "seconds_per_step"), row("CPU s/step (all threads)", "cpu_seconds_per_step"),
            row("CPU s/sample", "cpu_seconds_per_sample"), row("samples/step", "samples_per_step"),
            row("s/sample", fn=lambda side: 1 / side["samples_per_second"]),
            row("mean response tokens", "mean_response_tokens"), row("peak RSS MB", "peak_rss_mb"),
            row("RSS after model load MB", "rss_after_load_mb"),
            row("model load s", "load_seconds"), row("timed steps", "timed_steps")]))
        for k in variants:
            if s[k]["timed_steps"] < MIN_TIMED_STEPS or s[reference]["timed_steps"] < MIN_TIMED_STEPS:
                out.append(f"\n**Not a measurement**: fewer than {MIN_TIMED_STEPS} timed steps on a side.")
            gap = length_mismatch(s[k], s[reference])
            if gap > LENGTH_MISMATCH:
                out.append(f"\n**Answer lengths differ by {100 * gap:.0f} %** ({SIDE_SHORT[k]} "
                           f"{s[k]['mean_response_tokens']:.1f} vs {SIDE_SHORT[reference]} "
                           f"{s[reference]['mean_response_tokens']:.1f} tokens, over {LENGTH_MISMATCH:.0%}): "
                           "samples/s measures the answers here, compare tokens/s.")
        tasks = sorted({t for side in s.values() for t in side.get("mean_tokens_by_task", {})})
        if tasks:
            sides = [reference] + variants
            out.append("\nMean answer tokens by task (answers):\n")
            out.append(markdown_table(["task"] + [SIDE_SHORT[k] for k in sides], [
                [t[:48]] + [f"{s[k]['mean_tokens_by_task'].get(t, float('nan')):.1f} "
                            f"({s[k]['answers_by_task'].get(t, 0)})" for k in sides] for t in tasks]))
        if "main" in s and "project" in s and reference != "main":
            p, m = s["project"], s["main"]
            out.append(f"\nproject against the other checkout: s/step {p['seconds_per_step']:.3g} vs "
                       f"{m['seconds_per_step']:.3g} ({100 * (p['seconds_per_step'] / m['seconds_per_step'] - 1):+.0f} %), "
                       f"samples/s x{p['samples_per_second'] / m['samples_per_second']:.2f}")
    else:
        side = next(iter(s))
        v = s[side]
        out.append(markdown_table(["metric", side], [
            ["PPO samples/s", v["samples_per_second"]], ["response tokens/s", v["tokens_per_second"]],
            ["s/step", v["seconds_per_step"]], ["peak RSS MB", v["peak_rss_mb"]]]))
    for side in ("project", "main"):
        if side not in s:
            continue
        p = s[side]
        st = p["stages_seconds_per_step"]
        total = p["seconds_per_step"]
        out.append(f"\n{SIDE_LABELS[side]}: step profile (mean per timed step):\n")
        out.append(markdown_table(["stage", "s/step", "share", "what"],
                                  [[k, st.get(k, 0.0), f"{100 * st.get(k, 0.0) / total:.1f}%", STAGE_HELP[k]]
                                   for k in PROJECT_STAGES if k in st]))
    if "baseline" in s:
        b = s["baseline"]
        st = b["stages_seconds_per_step"]
        total = b["seconds_per_step"]
        out.append("\nBaseline step profile (mean per timed step, one sample per step):\n")
        out.append(markdown_table(["stage", "s/step", "share"],
                                  [[k, st.get(k, 0.0), f"{100 * st.get(k, 0.0) / total:.1f}%"] for k in BASELINE_STAGES]))
    if "baseline" in s and "project" in s:
        b, p = s["baseline"]["stages_seconds_per_sample"], s["project"]["stages_seconds_per_sample"]
        groups = {"sampling": (["sample"], ["sample"]),
                  "scoring passes (old + ref)": (["score_policy", "score_ref"], ["score"]),
                  "update fwd+bwd+opt": (["update"], ["epochs"]),
                  "rest": (["gae", "other"], ["other"])}
        rows = []
        for name, (bk, pk) in groups.items():
            bv, pv = sum(b.get(k, 0.0) for k in bk), sum(p.get(k, 0.0) for k in pk)
            rows.append([name, bv, pv, bv / pv if pv else float("nan")])
        out.append("\nSeconds per PPO sample by stage (speed-up = baseline / project):\n")
        out.append(markdown_table(["stage", "baseline s/sample", "project s/sample", "speed-up"], rows))
    return "\n".join(out)


def report(results: dict) -> str:
    out = []
    for name, scenario in results["scenarios"].items():
        out.append(f"\n### {scenario['title']}\n")
        out.append(f"load average before: {scenario['loadavg_before']}, after: {scenario['loadavg_after']}\n")
        out.append(report_scenario(scenario["sides"]))
    return "\n".join(out)


SIDE_LABELS = {"baseline": "baseline (seed loop)", "main": "other checkout (PPOTrainer, defaults)", **VARIANT_LABELS}
SIDE_SHORT = {"baseline": "baseline", "main": "main", "project": "project", "project_lean": "lean",
              "project_bf16": "bf16"}
# Options this script adds after the comparison checkout was made: never forwarded to a child
# that runs another checkout's code (its children only understand the common ones).
SCENARIO_OPTIONS = ("--json", "--md", "--side", "--compare-to", "--lengths", "--quick-cpu-steps")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--steps", type=int, default=MIN_TIMED_STEPS,
                        help=f"timed project steps (after the warm-up); fewer than {MIN_TIMED_STEPS} is flagged")
    parser.add_argument("--baseline-steps", type=int, default=None,
                        help="timed steps of the seed loop, 1 sample each (default: twice --steps, at least 8, a multiple of the task count)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--baseline-top-k", type=int, default=50,
                        help="the seed loop's top-k: 50 is HF generate's default, which the notebook runs "
                             "with; 0 samples from the nucleus alone, as the project does")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=8, help="the project's batch (the seed's is 1)")
    parser.add_argument("--tasks", default="english", help="task preset (english, seed-zh)")
    parser.add_argument("--match-mode", default=None, help="default: the task preset's")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--lengths", default="natural,forced",
                        help="which response-length scenarios to run, in order: natural (EOS ends a "
                             "response, as users run it) and/or forced (every response exactly "
                             "--max-new-tokens long on both sides: equal work per sample)")
    parser.add_argument("--force-full-length", action="store_true",
                        help="same as --lengths forced")
    parser.add_argument("--quick-cpu-steps", type=int, default=0,
                        help="after the length scenarios, time this many steps of the app's quick-cpu "
                             "preset (project, and the other checkout with --compare-to); 0 = skip")
    parser.add_argument("--compare-to", default=None, metavar="CHECKOUT",
                        help="another checkout of this repository (e.g. a worktree of an older commit): its "
                             "PPOTrainer runs as one more column, in its own process, with this script's "
                             "timers and settings")
    parser.add_argument("--preset", default=None, help=argparse.SUPPRESS)  # set by the quick-cpu scenario
    parser.add_argument("--code-root", default=None, help=argparse.SUPPRESS)  # the child imports ppo_demo here
    parser.add_argument("--micro-batch-tokens", type=int, default=None,
                        help="the project's token budget per forward/backward chunk (default: the config's)")
    parser.add_argument("--no-share-prompts", action="store_true",
                        help="the project computes every row's prompt itself (share_prompts off), to measure "
                             "what sharing saves")
    parser.add_argument("--gradient-checkpointing", action="store_true",
                        help="the project recomputes layer activations in backward (less memory)")
    parser.add_argument("--lean", action="store_true",
                        help="also run the project with its memory knobs (one response per forward/backward "
                             "chunk, gradient checkpointing) as a further column")
    parser.add_argument("--bf16", action="store_true",
                        help="also run the project with bf16 weights (a CPU with AMX/avx512_bf16 multiplies "
                             "them much faster; not equal precision, so reported apart)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"), help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=None, help="torch threads in both (default: usable CPUs)")
    parser.add_argument("--side", choices=("both", "project", "baseline"), default="both")
    parser.add_argument("--no-malloc-tuning", action="store_true",
                        help="run the project without its glibc malloc tuning (PPO_DEMO_NO_MALLOC_TUNING=1)")
    parser.add_argument("--baseline-malloc-tuning", action="store_true",
                        help="give the baseline the project's malloc tuning too")
    parser.add_argument("--torch-profile", default=None,
                        help="after the timed steps, profile one more project step with torch.profiler; "
                             "top ops are printed and written to this file")
    parser.add_argument("--json", default=None, help="write raw per-step numbers and the summary here")
    parser.add_argument("--md", default=None, help="write the markdown tables here")
    add_child_options(parser)
    args = parser.parse_args(argv)

    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    if args.code_root:  # another checkout's ppo_demo, imported by the child functions
        sys.path.insert(0, str(Path(args.code_root).resolve()))
    if finish_as_child(args, child_project, child_baseline):
        return 0

    lengths = [x.strip() for x in args.lengths.split(",") if x.strip()]
    if args.force_full_length:
        lengths = ["forced"]
    if not set(lengths) <= {"natural", "forced"}:
        parser.error("--lengths takes natural and/or forced")
    if args.compare_to and not (Path(args.compare_to) / "ppo_demo" / "trainer.py").is_file():
        parser.error(f"--compare-to {args.compare_to}: not a checkout of this repository (no ppo_demo/trainer.py)")
    forwarded = strip_options(list(argv if argv is not None else sys.argv[1:]), SCENARIO_OPTIONS)
    forwarded = [a for a in forwarded if a not in ("--lean", "--bf16", "--force-full-length")]
    env = {"PPO_DEMO_NO_MALLOC_TUNING": "1"} if args.no_malloc_tuning else {}
    results = {"args": vars(args), "machine": machine_info(), "scenarios": {}}

    scenarios = []
    for length in lengths:
        forced = ["--force-full-length"] if length == "forced" else []
        title = (f"{'Forced' if forced else 'Natural'} length: seed knobs, batch {args.batch_size}, "
                 f"max {args.max_new_tokens} new tokens, "
                 + ("every response exactly that long (EOS suppressed)" if forced else
                    "EOS on, each side samples its own answers"))
        scenarios.append((length, title, forced, {
            "baseline": args.side in ("baseline", "both"), "project": args.side in ("project", "both"),
            "main": bool(args.compare_to) and args.side != "baseline",
            "project_lean": args.lean and args.side != "baseline",
            "project_bf16": args.bf16 and args.side != "baseline"}))
    if args.quick_cpu_steps > 0:
        scenarios.append(("quick_cpu", "Quick-CPU preset (the app's: batch 12, 16 new tokens, 3 mini-batches), "
                                       "English tasks, EOS on",
                          ["--preset", "quick-cpu", "--steps", str(args.quick_cpu_steps)],
                          {"project": True, "main": bool(args.compare_to)}))

    for name, title, extra_args, runs in scenarios:
        scenario = {"title": title, "loadavg_before": _load_average(), "sides": {}}
        for side, wanted in runs.items():
            if not wanted:
                continue
            child = ["--child", "baseline"] if side == "baseline" else ["--child", "project"]
            extra = {"project_lean": LEAN_OPTIONS, "project_bf16": BF16_OPTIONS}.get(side, [])
            if side == "main":
                extra = ["--code-root", str(Path(args.compare_to).resolve())]
            data = run_child(Path(__file__), forwarded + extra_args + extra + child,
                             env_extra=env if side != "baseline" else {}, label=f"{name}/{side}")
            data["summary"] = summarize(data)
            scenario["sides"][side] = data
        scenario["loadavg_after"] = _load_average()
        results["scenarios"][name] = scenario
        print(f"\n### {title}\n")  # each scenario's tables as soon as it is done
        print(report_scenario(scenario["sides"]), flush=True)

    text = (f"model={args.model} tasks={args.tasks} threads={args.threads or 'all'} seed={args.seed}, "
            f"machine: {results['machine']['cpus']} CPUs, {cpu_name()}; kernels: {results['machine']['kernels']}\n"
            + report(results))
    print()
    print(text)
    if args.json:
        write_json(args.json, results)
    if args.md:
        Path(args.md).parent.mkdir(parents=True, exist_ok=True)
        Path(args.md).write_text(text + "\n")
        print(f"wrote {args.md}")
    return 0


def _load_average() -> list[float] | None:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


if __name__ == "__main__":
    sys.exit(main())
