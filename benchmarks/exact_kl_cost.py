"""What the exact KL (full-vocabulary KL(pi || pi_ref) at every token) costs a training step.

Paired and interleaved: before each measured step the trainer's state is saved; the step runs
once with ``exact_kl`` on and once with it off, each from that same state (so the same seed,
the same samples, the same update: only the exact KL differs), alternating which goes first.
The run then continues from the state after the step. Default: the quick-CPU preset on the
embedded model, 2 warm-up pairs, 8 measured pairs.

Both wall-clock and CPU seconds (this process's, ``time.process_time``) are reported: on a
shared machine the wall clock of a step swings by 2x with the neighbours' load, while with one
thread the CPU time is the work the step did, so the verdict is read from the CPU time.

    OMP_NUM_THREADS=1 python benchmarks/exact_kl_cost.py --md benchmarks/results/exact_kl_cost.md
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_name, machine_info, write_report  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--preset", default="quick-cpu")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--md", default=None, help="also write the report here")
    args = parser.parse_args(argv)

    from ppo_demo.config import preset_config
    from ppo_demo.cpu_tuning import configure_cpu_runtime
    from ppo_demo.models import load_model
    from ppo_demo.reward import RewardConfig
    from ppo_demo.tasks import TASK_PRESET_MATCH_MODE, TASK_PRESETS
    from ppo_demo.trainer import PPOTrainer

    configure_cpu_runtime()
    loaded = load_model(args.model, device="cpu")
    tasks = TASK_PRESETS["english"]
    reward = RewardConfig(match_mode=TASK_PRESET_MATCH_MODE["english"])
    configs = {flag: preset_config(args.preset, exact_kl=flag) for flag in (True, False)}
    state = PPOTrainer(loaded, configs[False], tasks, reward).state()
    load_start = os.getloadavg()
    rows = []  # (pair, on seconds, off seconds, response tokens, kl_exact, kl_mean, on cpu s, off cpu s)
    for pair in range(args.warmup + args.pairs):
        order = (True, False) if pair % 2 == 0 else (False, True)
        seconds, cpu, metrics, after = {}, {}, {}, None
        for flag in order:
            trainer = PPOTrainer(loaded, configs[flag], tasks, reward, state=state)
            t0, c0 = time.perf_counter(), time.process_time()
            result = trainer.step()
            seconds[flag], cpu[flag] = time.perf_counter() - t0, time.process_time() - c0
            metrics[flag] = result.metrics
            if not flag:
                after = trainer.state()
            trainer.runtime.release()
        assert metrics[True]["response_tokens"] == metrics[False]["response_tokens"], "the pair sampled differently"
        state = after
        if pair >= args.warmup:
            rows.append((pair - args.warmup + 1, seconds[True], seconds[False], metrics[True]["response_tokens"],
                         metrics[True]["kl_exact"], metrics[True]["kl_mean"], cpu[True], cpu[False]))
        print(f"pair {pair + 1}: on {seconds[True]:.2f} s ({cpu[True]:.2f} cpu), off {seconds[False]:.2f} s "
              f"({cpu[False]:.2f} cpu)", file=sys.stderr, flush=True)
    load_end = os.getloadavg()
    on = [r[1] for r in rows]
    off = [r[2] for r in rows]
    ratios = [a / b for a, b in zip(on, off)]
    cpu_on, cpu_off = [r[6] for r in rows], [r[7] for r in rows]
    cpu_ratios = [a / b for a, b in zip(cpu_on, cpu_off)]
    info = machine_info()
    lines = [
        f"# Exact KL: cost per training step ({args.preset}, {args.model})",
        "",
        f"Machine: {cpu_name()}, {info['cpus']} usable CPUs, torch {info['torch']} ({info['torch_threads']} threads); "
        f"load average {load_start[0]:.2f} at start, {load_end[0]:.2f} at the end (a shared machine: other jobs ran).",
        f"Command: `OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '?')} python benchmarks/exact_kl_cost.py "
        f"--preset {args.preset} --warmup {args.warmup} --pairs {args.pairs}`",
        "",
        "Each pair: the same step (same state, seed, samples and update) with the exact KL on and off, "
        "interleaved, alternating which runs first.",
        "",
        "| pair | CPU on (s) | CPU off (s) | CPU on/off | wall on (s) | wall off (s) | wall on/off "
        "| response tokens | kl_exact | kl_mean (k1) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (n, a, b, tokens, exact, k1, ca, cb), ratio, cratio in zip(rows, ratios, cpu_ratios):
        lines.append(f"| {n} | {ca:.2f} | {cb:.2f} | {cratio:.3f} | {a:.2f} | {b:.2f} | {ratio:.3f} | {tokens} "
                     f"| {exact:.5f} | {k1:+.5f} |")
    lines += [
        "",
        f"CPU time: median on/off **{statistics.median(cpu_ratios):.3f}** (min {min(cpu_ratios):.3f}, "
        f"max {max(cpu_ratios):.3f}); total on {sum(cpu_on):.2f} s, off {sum(cpu_off):.2f} s "
        f"({(sum(cpu_on) / sum(cpu_off) - 1) * 100:+.1f} %).",
        f"Wall clock: median on/off {statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f}); "
        f"total on {sum(on):.2f} s, off {sum(off):.2f} s ({(sum(on) / sum(off) - 1) * 100:+.1f} %).",
    ]
    write_report("\n".join(lines), args.md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
