"""PPO's critic (gae) against GRPO, RLOO and REINFORCE on the same tasks, equal time budgets.

For each estimator, ``time_to_learn.py --side project --keep-going`` trains the quick-cpu preset
on the English tasks for ``--cap`` training seconds (evaluating every ``--eval-every`` steps),
in its own process, one after the other. Only the estimator knobs change: grpo and rloo sample
each prompt ``--group-size`` times per step (default 3: batch 12 = 4 groups of 3, one per
task); gae and reinforce keep the preset's draw (each task 3 times, shuffled). The KL stays in
the reward with the preset's fixed beta for all four, so only the advantage differs.

Writes ``<out>.json``, ``<out>.md`` (time to target, final success, KL, s/step) and ``<out>.png``
(success vs training seconds, one curve per estimator).

    python benchmarks/compare_estimators.py --model tiny-random --cap 4 --eval-every 1 --eval-samples 2 --out /tmp/est
    python benchmarks/compare_estimators.py --cap 150 --out benchmarks/results/estimators
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_info, markdown_table, write_json  # noqa: E402

ESTIMATORS = ("gae", "grpo", "rloo", "reinforce")
GROUPED = ("grpo", "rloo")
SCRIPT = Path(__file__).resolve().parent / "time_to_learn.py"


def run_one(estimator: str, args) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
        out = Path(tmp.name)
    cmd = [sys.executable, str(SCRIPT), "--side", "project", "--keep-going", "--model", args.model,
           "--preset", args.preset, "--task-preset", args.task_preset, "--cap", str(args.cap),
           "--eval-every", str(args.eval_every), "--eval-samples", str(args.eval_samples),
           "--target", str(args.target), "--seed", str(args.seed), "--advantage-estimator", estimator,
           "--json", str(out)]
    if estimator in GROUPED:
        cmd += ["--group-size", str(args.group_size)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if args.max_steps:
        cmd += ["--max-steps", str(args.max_steps)]
    print(f"[{estimator}] {' '.join(cmd[1:])}", flush=True)
    subprocess.run(cmd, check=True)
    try:
        return json.loads(out.read_text())["sides"]["project"]
    finally:
        out.unlink(missing_ok=True)


def summary_row(name: str, run: dict) -> list:
    last_eval = run["evals"][-1]
    tasks = last_eval["tasks"]
    final = sum(t["adapted_success"] for t in tasks) / len(tasks)
    worst = min(t["adapted_success"] for t in tasks)
    last_steps = run["step_log"][-3:]  # the KL at the end of the run, smoothed over 3 steps
    kl_token = sum(s["kl_mean"] for s in last_steps) / len(last_steps)
    kl_response = sum(s["kl_sum_mean"] for s in last_steps) / len(last_steps)
    config = run["config"]
    G = config.get("group_size", 1)
    first = next((e["step"] for e in run["evals"] if e["all_reached"]), None)
    return [name, G if name in GROUPED else "-",
            run["time_to_target"] if run["reached"] else f"not in {run['train_seconds']:.0f}",
            first if first is not None else f"not in {run['steps']}",
            final, worst, kl_token, kl_response, run["train_seconds"] / run["steps"], run["steps"],
            run["train_seconds"]]


HEADER = ["estimator", "G", "time to target s", "steps to target", "final success (mean of tasks)", "final success (worst task)",
          "KL per token (last 3 steps)", "KL per response", "s/step", "steps", "training s"]


def plot(runs: dict, path: Path, target: float, model: str) -> None:
    """Success (mean over tasks) against training seconds, and against steps: on a shared
    machine the seconds carry the load of other work, the steps do not."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"gae": "#0072B2", "grpo": "#D55E00", "rloo": "#009E73", "reinforce": "#CC79A7"}
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), dpi=120, sharey=True)
    for name, run in runs.items():
        first = run["evals"][0]["tasks"]
        base = sum(t["base_success"] for t in first) / len(first)
        ys = [base] + [sum(t["adapted_success"] for t in e["tasks"]) / len(e["tasks"]) for e in run["evals"]]
        label = name + (f" (G={run['config'].get('group_size')})" if name in GROUPED else "")
        for ax, key in zip(axes, ("train_seconds", "step")):
            xs = [0] + [e[key] for e in run["evals"]]
            ax.plot(xs, ys, marker="o", markersize=3, label=label, color=colours.get(name))
    for ax, xlabel in zip(axes, ("training seconds (evaluation excluded)", "PPO steps (12 answers each)")):
        ax.axhline(target, color="grey", linestyle=":", linewidth=1)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("success rate, mean over the tasks")
    axes[0].set_ylim(-0.02, 1.02)
    axes[1].legend(loc="lower right")
    fig.suptitle(f"English tasks, {model}, quick-cpu preset: one curve per advantage estimator", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    print(f"wrote {path}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--preset", default="quick-cpu")
    parser.add_argument("--task-preset", default="english")
    parser.add_argument("--estimators", default=",".join(ESTIMATORS))
    parser.add_argument("--group-size", type=int, default=3, help="G for grpo and rloo")
    parser.add_argument("--cap", type=float, default=150.0, help="training seconds per estimator")
    parser.add_argument("--eval-every", type=int, default=2)
    parser.add_argument("--eval-samples", type=int, default=8)
    parser.add_argument("--target", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--max-steps", type=int, default=None,
                        help="stop each run after this many steps (equal step budgets; a busy machine makes "
                             "equal time budgets unequal in work)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per run (1 is much faster than 2 on a machine busy with other work)")
    parser.add_argument("--out", default="benchmarks/results/estimators", help="path prefix for .json/.md/.png")
    parser.add_argument("--from-json", default=None, help="only redraw the table and plot of an earlier run")
    args = parser.parse_args(argv)

    out = Path(args.out)
    if args.from_json:
        runs = json.loads(Path(args.from_json).read_text())["runs"]
    else:
        runs = {name: run_one(name, args) for name in args.estimators.split(",")}
        write_json(out.with_suffix(".json"), {"args": vars(args), "machine": machine_info(), "runs": runs})
    table = markdown_table(HEADER, [summary_row(name, run) for name, run in runs.items()])
    print()
    print(table)
    out.with_suffix(".md").write_text(table + "\n")
    plot(runs, out.with_suffix(".png"), args.target, args.model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
