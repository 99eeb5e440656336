"""How the project's PPO step time scales with batch size and with response length.

Two sweeps of ``PPOTrainer`` with its default config (the seed's knobs):

* batch size in ``--batches`` (default 1,2,4,8,16,32) at max_new_tokens ``--fixed-tokens`` (48);
* max_new_tokens in ``--tokens`` (default 16,32,64,128) at batch ``--fixed-batch`` (8).

Each point: ``--warmup`` untimed steps, then ``--steps`` timed steps; step, sampling and update
seconds (the trainer's own split) are averaged. By default responses are forced to full length:
the benchmark gives its trainer instance an EOS id that never occurs (``trainer.runtime.eos_ids = [-1]``),
so every response is exactly max_new_tokens long and points are comparable (otherwise EOS ends
responses early, the batch runs until its longest row ends, and lengths vary between points).
``--natural-eos`` measures the normal behaviour instead. The mean response length is reported
either way. The model is loaded once; each point builds a fresh trainer on it.

Writes ``<out>/scaling.csv`` and ``<out>/scaling.png``.

    python benchmarks/scaling.py --model tiny-random --batches 1,2 --tokens 8,16 --steps 1
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, machine_info, mean, peak_rss_mb, stdev, write_json  # noqa: E402

FIELDS = ["sweep", "batch_size", "max_new_tokens", "forced_full_length", "timed_steps", "step_s", "step_s_std",
          "sample_s", "update_s", "samples_per_s", "tokens_per_s", "mean_response_tokens", "s_per_sample",
          "ms_per_token", "peak_rss_mb", "peak_rss_mb_so_far"]


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def start_point_memory() -> None:
    """Give freed heap back to the OS and reset the kernel's peak-RSS mark (VmHWM), so each
    point's peak is its own rather than the largest point's so far."""
    import gc

    from ppo_demo.cpu_tuning import release_freed_memory

    gc.collect()
    release_freed_memory()
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def point_peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def measure(loaded, tasks, reward, batch_size, max_new_tokens, steps, warmup, force_full, seed) -> dict:
    from ppo_demo.config import TrainConfig
    from ppo_demo.trainer import PPOTrainer

    start_point_memory()

    config = TrainConfig().replace(batch_size=batch_size, max_new_tokens=max_new_tokens, seed=seed)
    trainer = PPOTrainer(loaded, config, tasks, reward)
    if force_full:
        trainer.runtime.eos_ids = [-1]  # no token ever ends a response: all rows run to max_new_tokens
    rows = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        m = trainer.step().metrics
        seconds = time.perf_counter() - t0
        if i >= warmup:
            rows.append((seconds, m["sample_seconds"], m["update_seconds"], m["samples"], m["response_tokens"]))
    total = sum(r[0] for r in rows)
    samples = sum(r[3] for r in rows)
    tokens = sum(r[4] for r in rows)
    return {"batch_size": batch_size, "max_new_tokens": max_new_tokens, "forced_full_length": force_full,
            "timed_steps": len(rows), "step_s": mean(r[0] for r in rows), "step_s_std": stdev(r[0] for r in rows),
            "sample_s": mean(r[1] for r in rows), "update_s": mean(r[2] for r in rows),
            "samples_per_s": samples / total, "tokens_per_s": tokens / total,
            "mean_response_tokens": tokens / samples, "s_per_sample": total / samples,
            "ms_per_token": 1000 * total / tokens,
            "peak_rss_mb": point_peak_rss_mb(),  # this point's own peak (Linux), model included
            "peak_rss_mb_so_far": peak_rss_mb()}  # process peak: the largest point so far


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, sweep, xkey, xlabel in ((axes[0], "batch", "batch_size", "batch size (responses per step)"),
                                    (axes[1], "tokens", "max_new_tokens", "max_new_tokens")):
        pts = sorted((r for r in rows if r["sweep"] == sweep), key=lambda r: r[xkey])
        if not pts:
            ax.set_visible(False)
            continue
        xs = [r[xkey] for r in pts]
        ax.errorbar(xs, [r["step_s"] for r in pts], yerr=[r["step_s_std"] for r in pts], marker="o", label="step")
        ax.plot(xs, [r["sample_s"] for r in pts], marker="s", label="sampling")
        ax.plot(xs, [r["update_s"] for r in pts], marker="^", label="scoring + update")
        for r in pts:  # each point's own peak memory, model included
            ax.annotate(f"{r['peak_rss_mb'] / 1024:.1f} GB", (r[xkey], r["step_s"]), textcoords="offset points",
                        xytext=(0, 7), ha="center", fontsize=7, color="tab:blue")
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [str(x) for x in xs])
        ax.set_xlabel(xlabel)
        ax.set_ylabel("seconds per PPO step")
        ax.grid(alpha=0.3)
        ax2 = ax.twinx()
        ax2.plot(xs, [r["samples_per_s"] for r in pts], color="grey", ls="--", marker=".", label="samples/s")
        ax2.set_ylabel("PPO samples/s (dashed)")
        fixed = (f"max_new_tokens {pts[0]['max_new_tokens']}" if sweep == "batch" else f"batch {pts[0]['batch_size']}")
        lens = ", ".join(f"{r['mean_response_tokens']:.0f}" for r in pts)
        ax.set_title(f"{fixed}; mean response tokens: {lens}", fontsize=9)
        ax.legend(loc="upper left", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--batches", type=ints, default=[1, 2, 4, 8, 16, 32])
    parser.add_argument("--fixed-tokens", type=int, default=48, help="max_new_tokens of the batch sweep")
    parser.add_argument("--tokens", type=ints, default=[16, 32, 64, 128])
    parser.add_argument("--fixed-batch", type=int, default=8, help="batch size of the tokens sweep")
    parser.add_argument("--steps", type=int, default=2, help="timed steps per point")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--natural-eos", action="store_true", help="let EOS end responses (lengths vary)")
    parser.add_argument("--tasks", default="english")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default=str(RESULTS), help="directory for scaling.csv / scaling.png")
    parser.add_argument("--name", default="scaling", help="file stem of the outputs")
    args = parser.parse_args(argv)

    import torch

    from ppo_demo.cpu_tuning import configure_cpu_runtime, usable_cpus
    from ppo_demo.models import load_model
    from ppo_demo.reward import RewardConfig
    from ppo_demo.tasks import TASK_PRESET_MATCH_MODE, TASK_PRESETS

    configure_cpu_runtime()
    torch.set_num_threads(args.threads or usable_cpus())
    loaded = load_model(args.model, device="cpu", dtype=torch.float32)
    tasks = TASK_PRESETS[args.tasks]
    reward = RewardConfig(match_mode=TASK_PRESET_MATCH_MODE[args.tasks])
    force = not args.natural_eos
    points = [("batch", b, args.fixed_tokens) for b in args.batches]
    points += [("tokens", args.fixed_batch, t) for t in args.tokens]
    rows = []
    for sweep, b, t in points:
        row = {"sweep": sweep, **measure(loaded, tasks, reward, b, t, args.steps, args.warmup, force, args.seed)}
        rows.append(row)
        print(f"{sweep:6s} batch={b:3d} max_new_tokens={t:4d}: {row['step_s']:.2f}s/step "
              f"(sampling {row['sample_s']:.2f}s, scoring+update {row['update_s']:.2f}s), "
              f"{row['samples_per_s']:.2f} samples/s, {row['tokens_per_s']:.0f} tokens/s, "
              f"mean length {row['mean_response_tokens']:.1f}, peak RSS {row['peak_rss_mb']:.0f} MB", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / f"{args.name}.csv"
    with csv_path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: (f"{r[k]:.4f}" if isinstance(r[k], float) else r[k]) for k in FIELDS})
    print(f"wrote {csv_path}")
    info = machine_info()
    write_json(out / f"{args.name}_meta.json", {"args": vars(args), "machine": info, "peak_rss_mb": peak_rss_mb()})
    plot(rows, out / f"{args.name}.png",
         f"PPOTrainer step time, {args.model}, {info['torch_threads']} threads, "
         f"{'full-length responses (EOS disabled)' if force else 'natural EOS'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
