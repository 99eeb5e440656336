"""Reward-model training time on the embedded model: the packed pass (each prompt once, no
padding) vs the plain padded pass, on the same rule-ranked pairs, alternating whole trainings
so that a change in the machine's load falls on both.

Run: OMP_NUM_THREADS=1 python benchmarks/reward_model_speed.py --rounds 1 --md benchmarks/results/reward_model_speed.md
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from _common import cpu_name, machine_info, write_report  # noqa: E402 (puts the repo on sys.path)

from ppo_demo.config import DEFAULT_PRESET, preset_config  # noqa: E402
from ppo_demo.cpu_tuning import configure_cpu_runtime  # noqa: E402
from ppo_demo.models import load_model  # noqa: E402
from ppo_demo.policy import PolicyRuntime  # noqa: E402
from ppo_demo.preferences import RewardModelConfig, rule_ranked_pairs  # noqa: E402
from ppo_demo.reward import RewardConfig  # noqa: E402
from ppo_demo.reward_model import RewardModel, RewardModelTrainer  # noqa: E402
from ppo_demo.tasks import TASK_PRESETS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--pairs-per-task", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--md", default=None)
    args = parser.parse_args()
    configure_cpu_runtime()
    info = machine_info()
    loaded = load_model(args.model, device="cpu")
    config = preset_config(DEFAULT_PRESET)
    with PolicyRuntime.for_config(loaded, config) as runtime:
        pairs = rule_ranked_pairs(runtime, TASK_PRESETS["english"], RewardConfig(), pairs_per_task=args.pairs_per_task,
                                  seed=0, max_new_tokens=config.max_new_tokens,
                                  missing_eos_penalty=config.missing_eos_penalty, adapters=False)
    times: dict[str, list[float]] = {"packed": [], "plain": []}
    accuracy: dict[str, float] = {}
    for _ in range(args.rounds):
        for name in times:
            RewardModel.packed = name == "packed"
            trainer = RewardModelTrainer(loaded, pairs, RewardModelConfig())
            start = time.perf_counter()
            for _step in trainer.train():
                pass
            times[name].append(time.perf_counter() - start)
            accuracy[name] = trainer.last_eval["pairwise_accuracy"]
            print(name, f"{times[name][-1]:.1f}s", f"held-out accuracy {accuracy[name]:.3f}", flush=True)
    lines = [f"# Reward-model training time ({args.model}, {len(pairs)} rule-ranked pairs, default knobs)", "",
             f"Machine: {cpu_name()}, {info['cpus']} CPUs, torch {info['torch']}, OMP_NUM_THREADS="
             f"{os.environ.get('OMP_NUM_THREADS')}, load average at start {info['loadavg_at_start']}.",
             f"Command: `python benchmarks/reward_model_speed.py --rounds {args.rounds} --pairs-per-task "
             f"{args.pairs_per_task}`", "",
             "| pass | trainings | median seconds (train + held-out evaluations + μ, σ) | each | held-out accuracy |",
             "|---|---|---|---|---|"]
    for name, values in times.items():
        lines.append(f"| {name} | {len(values)} | {statistics.median(values):.1f} | "
                     f"{', '.join(f'{v:.1f}' for v in values)} | {accuracy[name]:.3f} |")
    write_report("\n".join(lines), args.md)


if __name__ == "__main__":
    main()
