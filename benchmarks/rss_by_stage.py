"""Where the peak RSS of a PPO step comes from: the highest resident set size seen during each
stage of ``PPOTrainer.step`` (sampling, scoring passes, PPO epochs, the rest), sampled every
20 ms from /proc/self/statm by a background thread.

    python benchmarks/rss_by_stage.py --steps 2                 # seed knobs: batch 8, 48 tokens
    python benchmarks/rss_by_stage.py --steps 2 --no-packing    # sampling without packed weights

The stages are marked by wrapping the runtime's sampling call and the trainer's scoring and
update methods (they only set a label; nothing computed changes). Linux only.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-packing", action="store_true", help="sample without oneDNN-packed weight copies")
    args = parser.parse_args(argv)

    import torch

    from ppo_demo import policy
    from ppo_demo.config import TrainConfig
    from ppo_demo.cpu_tuning import configure_cpu_runtime
    from ppo_demo.models import load_model
    from ppo_demo.reward import RewardConfig
    from ppo_demo.tasks import TASK_PRESET_MATCH_MODE, TASK_PRESETS
    from ppo_demo.trainer import PPOTrainer

    configure_cpu_runtime()
    torch.set_num_threads(args.threads)
    peaks: dict[str, float] = {}
    stage = ["load"]
    done = threading.Event()

    def sample_rss():
        while not done.is_set():
            peaks[stage[0]] = max(peaks.get(stage[0], 0.0), current_rss_mb())
            time.sleep(0.02)

    threading.Thread(target=sample_rss, daemon=True).start()
    loaded = load_model(args.model, device="cpu")
    stage[0] = "after load"
    time.sleep(0.05)
    if args.no_packing:
        packed = policy.packed_linears
        policy.packed_linears = lambda model, enabled=True: packed(model, False)
    config = TrainConfig().replace(batch_size=args.batch_size, max_new_tokens=args.max_new_tokens, seed=42)
    trainer = PPOTrainer(loaded, config, TASK_PRESETS["english"],
                         RewardConfig(match_mode=TASK_PRESET_MATCH_MODE["english"]))

    def labelled(owner, name, label):
        fn = getattr(owner, name)

        def wrapper(*a, **kw):
            before, stage[0] = stage[0], label
            try:
                return fn(*a, **kw)
            finally:
                stage[0] = before
        setattr(owner, name, wrapper)

    labelled(trainer.runtime, "sample_and_score", "sampling")
    labelled(trainer.runtime, "sample", "sampling")
    labelled(trainer, "_logprobs_and_values", "scoring passes")
    labelled(trainer, "_update", "PPO epochs")
    for i in range(args.steps):
        stage[0] = "rest of the step"
        m = trainer.step().metrics
        print(f"step {i + 1}: {m['response_tokens']} tokens, {m['step_seconds']:.1f} s", flush=True)
    done.set()
    time.sleep(0.05)
    print(json.dumps({"packing": not args.no_packing, "peak_rss_mb_by_stage": {k: round(v) for k, v in peaks.items()},
                      "ru_maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
