"""Time to learn: training wall-clock seconds until every task is answered right.

Project side: ``preset_config("quick-cpu")`` on the English task preset with its match mode
(both read by name at run time, so a retuned preset is what gets measured). Every
``--eval-every`` steps, ``evaluation.evaluate(..., samples_per_task=K)`` samples K answers per task
from the base and the adapted policy; the run stops when every task's adapted success rate
is >= ``--target`` (0.9) or when the training clock passes ``--cap`` seconds.

Baseline side: the seed notebook's loop (``seed_baseline.SeedPPO``, the seed's knobs: one
response per step, lr 1e-4, max_new_tokens 48...) on the same tasks and reward, evaluated with
the seed's ``chat`` (K answers per task, temperature 0.7, top-p 0.9) every
``--baseline-eval-every`` steps (default: as many samples as the project's interval holds).

The training clock counts only training steps; evaluation time is measured separately, and
the wall time of the whole run is reported too. Each side runs in its own subprocess.

``--advantage-estimator`` (with ``--group-size``, ``--kl-in``, ``--kl-target``, ``--kl-horizon``)
overrides the preset's knobs on the project side; ``--keep-going`` trains for the whole cap
even after the target is reached (equal time budgets, for ``compare_estimators.py``).

    python benchmarks/time_to_learn.py --model tiny-random --cap 3 --eval-every 2 --eval-samples 2
    python benchmarks/time_to_learn.py --json benchmarks/results/time_to_learn.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (add_child_options, finish_as_child, machine_info, markdown_table, peak_rss_mb,  # noqa: E402
                     run_child, strip_options, write_json)


def _common_setup(args):
    import torch

    from ppo_demo.cpu_tuning import usable_cpus
    from ppo_demo.models import load_model
    from ppo_demo.reward import RewardConfig
    from ppo_demo.tasks import TASK_PRESET_MATCH_MODE, TASK_PRESETS, training_tasks

    torch.set_num_threads(args.threads or usable_cpus())
    tasks = training_tasks(TASK_PRESETS[args.task_preset])  # what both sides train on and are timed on
    reward = RewardConfig(match_mode=args.match_mode or TASK_PRESET_MATCH_MODE[args.task_preset])
    t0 = time.perf_counter()
    loaded = load_model(args.model, device="cpu", dtype=torch.float32)
    return loaded, tasks, reward, time.perf_counter() - t0


def _run_loop(side, step_fn, eval_fn, eval_every, cap, target, max_steps, keep_going=False):
    """Train until every task's adapted success >= target (checked every ``eval_every`` steps)
    or the training clock reaches ``cap`` (with ``keep_going``, always until the cap; the time
    to target is then the first evaluation that reached it). Returns the run's record."""
    wall0 = time.perf_counter()
    train_s = eval_s = train_cpu_s = 0.0
    steps = samples = 0
    rewards, evals = [], []
    reached = False
    time_to_target = None
    while True:
        t0, c0 = time.perf_counter(), time.process_time()
        info = step_fn()
        train_s += time.perf_counter() - t0
        train_cpu_s += time.process_time() - c0  # CPU seconds (all threads): less hit by a shared machine
        steps += 1
        samples += info["samples"]
        rewards.append({"step": steps, "train_seconds": train_s, **info})
        out_of_time = train_s >= cap or steps >= max_steps
        if steps % eval_every == 0 or out_of_time:
            t1 = time.perf_counter()
            tasks = eval_fn()
            eval_s += time.perf_counter() - t1
            ok = all(t["adapted_success"] >= target for t in tasks)
            evals.append({"step": steps, "samples": samples, "train_seconds": train_s, "train_cpu_seconds": train_cpu_s,
                          "tasks": tasks,
                          "all_reached": ok})
            worst = min(t["adapted_success"] for t in tasks)
            print(f"[{side}] step {steps} ({samples} samples, {train_s:.1f}s training, {eval_s:.1f}s eval): "
                  + ", ".join(f"{t['expected']}={t['adapted_success']:.2f}" for t in tasks)
                  + f" (min {worst:.2f})", flush=True)
            if ok and not reached:
                reached, time_to_target = True, train_s
            if ok and not keep_going:
                break
        if out_of_time:
            break
    return {"side": side, "reached": reached, "train_seconds": train_s, "train_cpu_seconds": train_cpu_s,
            "eval_seconds": eval_s, "loadavg_at_end": os.getloadavg(),
            "wall_seconds": time.perf_counter() - wall0, "steps": steps, "samples": samples,
            "time_to_target": time_to_target, "cap_seconds": cap, "target": target,
            "evals": evals, "step_log": rewards, "peak_rss_mb": peak_rss_mb(), "machine": machine_info()}


ESTIMATOR_KNOBS = ("advantage_estimator", "group_size", "kl_in", "kl_target", "kl_horizon")


def child_project(args) -> dict:
    from ppo_demo.config import preset_config
    from ppo_demo.cpu_tuning import configure_cpu_runtime
    from ppo_demo.evaluation import evaluate
    from ppo_demo.trainer import PPOTrainer

    configure_cpu_runtime()  # what the app and the CLI do at start-up
    loaded, tasks, reward, load_s = _common_setup(args)
    overrides = {name: getattr(args, name) for name in ESTIMATOR_KNOBS if getattr(args, name) is not None}
    config = preset_config(args.preset, seed=args.seed, **overrides)
    trainer = PPOTrainer(loaded, config, tasks, reward)

    def step_fn():
        m = trainer.step().metrics
        return {"samples": m["samples"], "reward_mean": m["reward_mean"], "success_rate": m["success_rate"],
                "response_tokens": m["response_tokens"], "kl_mean": m["kl_mean"], "kl_sum_mean": m["kl_sum_mean"],
                "kl_coef": m.get("kl_coef"), "clip_frac": m["clip_frac"], "step_seconds": m["step_seconds"]}

    def eval_fn():
        report = evaluate(trainer.runtime, tasks, reward, config, samples_per_task=args.eval_samples)
        return [{"prompt": t.prompt, "expected": t.expected, "base_success": t.base_success,
                 "adapted_success": t.adapted_success, "adapted_samples": t.adapted_samples[:3]}
                for t in report.tasks]

    out = _run_loop("project", step_fn, eval_fn, args.eval_every, args.cap, args.target,
                    args.max_steps, keep_going=args.keep_going)
    out.update(config=config.to_dict(), preset=args.preset, load_seconds=load_s,
               match_mode=reward.match_mode, eval_every_steps=args.eval_every)
    return out


def child_baseline(args) -> dict:
    from seed_baseline import SeedPPO, seed_knobs

    loaded, tasks, reward, load_s = _common_setup(args)
    knobs = seed_knobs(max_new_tokens=args.baseline_max_new_tokens, seed=args.seed)
    ppo = SeedPPO(loaded, tasks, reward, knobs)

    def step_fn():
        out = ppo.step()
        return {"samples": out["samples"], "reward_mean": out.get("rm_reward"),
                "success_rate": float(out.get("hit", 0.0)), "response_tokens": out["response_tokens"]}

    def eval_fn():
        report = ppo.evaluate(samples_per_task=args.eval_samples)
        return [{"prompt": t["prompt"], "expected": t["expected"], "base_success": t["base_success"],
                 "adapted_success": t["adapted_success"], "adapted_samples": t["adapted_samples"][:3]}
                for t in report["tasks"]]

    every = args.baseline_eval_every or args.eval_every * args.project_batch_hint
    cap = args.baseline_cap if args.baseline_cap is not None else args.cap
    out = _run_loop("baseline", step_fn, eval_fn, every, cap, args.target, args.max_steps)
    out.update(config={**knobs.__dict__, "batch_size": 1}, load_seconds=load_s, match_mode=reward.match_mode,
               eval_every_steps=every)
    return out


def report(results: dict) -> str:
    sides = results["sides"]
    rows = []
    for name, r in sides.items():
        rows.append([name, "yes" if r["reached"] else "no",
                     r["time_to_target"] if r["reached"] else f"> {r['cap_seconds']:.0f}",
                     r["train_seconds"], r.get("train_cpu_seconds", float("nan")), r["steps"], r["samples"],
                     r["eval_seconds"], r["wall_seconds"], r["machine"].get("loadavg_at_start"), r.get("loadavg_at_end")])
    out = [markdown_table(["side", "target reached", "time to target s (training)", "training s", "training CPU s",
                           "steps", "samples", "eval s", "wall s", "load avg at start", "at end"], rows)]
    for name, r in sides.items():
        last = r["evals"][-1]
        out.append(f"\n{name}: success per task at the last evaluation (step {last['step']}, "
                   f"K={results['args']['eval_samples']}):\n")
        out.append(markdown_table(["task", "expected", "base", "adapted"],
                                  [[t["prompt"][:50], t["expected"], t["base_success"], t["adapted_success"]]
                                   for t in last["tasks"]]))
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--side", choices=("both", "project", "baseline"), default="both")
    parser.add_argument("--preset", default="quick-cpu", help="the project's config preset")
    parser.add_argument("--task-preset", default="english")
    parser.add_argument("--match-mode", default=None, help="default: the task preset's")
    parser.add_argument("--target", type=float, default=0.9, help="every task's adapted success must reach this")
    parser.add_argument("--eval-samples", type=int, default=8, help="K answers per task per evaluation")
    parser.add_argument("--eval-every", type=int, default=5, help="project steps between evaluations")
    parser.add_argument("--baseline-eval-every", type=int, default=None,
                        help="baseline steps between evaluations (default: eval-every x 8, the same samples)")
    parser.add_argument("--project-batch-hint", type=int, default=8, help=argparse.SUPPRESS)
    parser.add_argument("--cap", type=float, default=180.0, help="training-seconds cap (project)")
    parser.add_argument("--baseline-cap", type=float, default=None, help="training-seconds cap (baseline; default --cap)")
    parser.add_argument("--baseline-max-new-tokens", type=int, default=48)
    parser.add_argument("--max-steps", type=int, default=100000)
    parser.add_argument("--keep-going", action="store_true",
                        help="train until the cap even after the target is reached (equal time budgets)")
    parser.add_argument("--advantage-estimator", choices=("gae", "grpo", "rloo", "reinforce"), default=None,
                        help="project side: override the preset's advantage estimator")
    parser.add_argument("--group-size", type=int, default=None, help="project side: G answers per prompt")
    parser.add_argument("--kl-in", choices=("reward", "loss"), default=None, help="project side: where the KL goes")
    parser.add_argument("--kl-target", type=float, default=None, help="project side: adaptive KL target")
    parser.add_argument("--kl-horizon", type=int, default=None, help="project side: adaptive KL horizon")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", default=None)
    parser.add_argument("--md", default=None)
    add_child_options(parser)
    args = parser.parse_args(argv)
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)

    if finish_as_child(args, child_project, child_baseline):
        return 0

    if args.baseline_eval_every is None:
        from ppo_demo.config import preset_config

        args.project_batch_hint = preset_config(args.preset).batch_size
    forwarded = strip_options(list(argv if argv is not None else sys.argv[1:]), ("--json", "--md", "--side"))
    forwarded += ["--project-batch-hint", str(args.project_batch_hint)]
    results = {"args": vars(args), "sides": {}}
    for side in ("project", "baseline"):
        if args.side in (side, "both"):
            results["sides"][side] = run_child(Path(__file__), forwarded + ["--child", side], label=side)
    text = report(results)
    print()
    print(text)
    if args.json:
        write_json(args.json, results)
    if args.md:
        Path(args.md).parent.mkdir(parents=True, exist_ok=True)
        Path(args.md).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
