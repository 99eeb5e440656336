"""PPO on the rule vs PPO on a learnt reward model vs DPO, after the same wall time.

1. Sample pairs of the base model's answers to the English tasks and rank each pair by the rule
   reward (the gold); train a reward model on them (held-out share from its knob).
2. From the same base model, run each method for ``--budget`` seconds of training:
   PPO with reward_source=rule, PPO with reward_source=reward_model, DPO on the same pairs.
3. Measure each final policy the same way: ``--eval-samples`` answers per task (the run's
   sampling knobs), their gold success and score (the rule), the reward model's normalised score,
   KL to the reference per token (k1, on those answers), and answer length.

Run: OMP_NUM_THREADS=2 python benchmarks/preference_compare.py --budget 150 \
         --md benchmarks/results/preference_compare.md
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from _common import cpu_name, machine_info, write_report  # noqa: E402 (puts the repo on sys.path)

import torch  # noqa: E402

from ppo_demo import ppo  # noqa: E402
from ppo_demo.config import DEFAULT_PRESET, preset_config  # noqa: E402
from ppo_demo.cpu_tuning import configure_cpu_runtime  # noqa: E402
from ppo_demo.dpo import DPOTrainer  # noqa: E402
from ppo_demo.models import load_model  # noqa: E402
from ppo_demo.policy import PolicyRuntime, autocast_context, response_scores  # noqa: E402
from ppo_demo.preferences import DPOConfig, RewardModelConfig, rule_ranked_pairs  # noqa: E402
from ppo_demo.reward import RewardConfig, is_hit, rule_reward  # noqa: E402
from ppo_demo.reward_model import RewardModelTrainer  # noqa: E402
from ppo_demo.tasks import TASK_PRESET_MATCH_MODE, TASK_PRESETS  # noqa: E402
from ppo_demo.trainer import PPOTrainer  # noqa: E402


@torch.no_grad()
def measure(runtime, tasks, reward, config, reward_model, samples_per_task: int, seed: int) -> dict:
    """Gold success and score, RM score, KL per token and length of fresh answers of the policy."""
    rows = [i for i in range(len(tasks)) for _ in range(samples_per_task)]
    prompts = [runtime.prompt_ids(tasks[i].prompt) for i in rows]
    batch, logprobs, _ = runtime.sample_and_score(prompts, max_new_tokens=config.max_new_tokens,
                                                  temperature=config.temperature, top_p=config.top_p, seed=seed)
    mask = batch.response_mask
    with runtime.reference() as ref_model, autocast_context(runtime.device):
        ref_logprobs = response_scores(ref_model, batch, config.temperature).logprobs * mask
    kl = ppo.kl_per_token(logprobs, ref_logprobs, "k1") * mask
    texts = runtime.decode(batch)
    ended = batch.ended_with_eos.tolist()
    gold = [rule_reward(t, tasks[i].expected, reward, ended_with_eos=e, missing_eos_penalty=config.missing_eos_penalty)
            for t, i, e in zip(texts, rows, ended)]
    hits = [is_hit(t, tasks[i].expected, reward) for t, i in zip(texts, rows)]
    return {"gold_success": sum(hits) / len(hits), "gold_score": sum(gold) / len(gold),
            "rm_score": float(reward_model.normalized_scores(batch).mean()),
            "kl_per_token": float(ppo.masked_mean(kl, mask)), "kl_per_answer": float(kl.sum(-1).mean()),
            "answer_length": float(batch.response_lengths.float().mean()), "examples": texts[::samples_per_task]}


def run_for(trainer, budget: float) -> tuple[int, float]:
    """Train until ``budget`` seconds have passed (a step that started finishes)."""
    start, steps = time.perf_counter(), 0
    for _ in trainer.train(steps=10_000):
        steps += 1
        if time.perf_counter() - start >= budget:
            break
    return steps, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--pairs-per-task", type=int, default=8)
    parser.add_argument("--budget", type=float, default=150.0, help="training seconds per method")
    parser.add_argument("--eval-samples", type=int, default=8, help="answers per task in the final measurement")
    parser.add_argument("--dpo-beta", type=float, default=DPOConfig().dpo_beta)
    parser.add_argument("--json", default=None)
    parser.add_argument("--md", default=None)
    args = parser.parse_args()

    configure_cpu_runtime()
    loaded = load_model(args.model, device="cpu")
    tasks = TASK_PRESETS["english"]
    reward = RewardConfig(match_mode=TASK_PRESET_MATCH_MODE["english"])
    config = preset_config(DEFAULT_PRESET)
    info = {**machine_info(), "cpu": cpu_name(), "model": args.model, "preset": DEFAULT_PRESET,
            "budget_seconds": args.budget, "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}

    # 1. Pairs ranked by the rule, and the reward model.
    t0 = time.perf_counter()
    with PolicyRuntime.for_config(loaded, config) as runtime:
        pairs = rule_ranked_pairs(runtime, tasks, reward, pairs_per_task=args.pairs_per_task, seed=0,
                                  temperature=config.temperature, top_p=config.top_p,
                                  max_new_tokens=config.max_new_tokens,
                                  missing_eos_penalty=config.missing_eos_penalty, adapters=False)
    pair_seconds = time.perf_counter() - t0
    rm_trainer = RewardModelTrainer(loaded, pairs, RewardModelConfig())
    t1 = time.perf_counter()
    for m in rm_trainer.train():
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in m.items()}), flush=True)
    rm_seconds = time.perf_counter() - t1
    reward_model = rm_trainer.reward_model
    rm_report = {**rm_trainer.last_eval, "pairs": len(pairs), "pair_sampling_seconds": pair_seconds,
                 "train_seconds": rm_seconds}
    print(json.dumps(rm_report), flush=True)

    # 2.-3. Each method for the same wall time, measured the same way.
    methods = {}
    for name in ("ppo_rule", "ppo_reward_model", "dpo"):
        if name == "dpo":
            trainer = DPOTrainer(loaded, config, pairs, DPOConfig(dpo_beta=args.dpo_beta), tasks=tasks, reward=reward,
                                 sample_every=0)
        else:
            source = "rule" if name == "ppo_rule" else "reward_model"
            trainer = PPOTrainer(loaded, config.replace(reward_source=source), tasks, reward, reward_model=reward_model)
        steps, seconds = run_for(trainer, args.budget)
        result = measure(trainer.runtime, tasks, reward, config, reward_model, args.eval_samples, seed=12345)
        methods[name] = {"steps": steps, "train_seconds": seconds, **result}
        print(name, json.dumps(methods[name], ensure_ascii=False), flush=True)
    base = PolicyRuntime.for_config(loaded, config)  # a fresh adapter: B = 0, the base model
    methods["base"] = {"steps": 0, "train_seconds": 0.0,
                       **measure(base, tasks, reward, config, reward_model, args.eval_samples, seed=12345)}

    report = {"machine": info, "reward_model": rm_report, "methods": methods}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, ensure_ascii=False))
    lines = [f"# PPO on the rule vs PPO on a reward model vs DPO ({args.model})", "",
             f"Machine: {info['cpu']}, {info['cpus']} CPUs, torch {info['torch']}, OMP_NUM_THREADS="
             f"{info['omp_num_threads']}, load average at start {info['loadavg_at_start']}.",
             f"Command: `python benchmarks/preference_compare.py --budget {args.budget:g} --pairs-per-task "
             f"{args.pairs_per_task} --eval-samples {args.eval_samples}`", "",
             f"Reward model: {len(pairs)} rule-ranked pairs (sampled in {pair_seconds:.0f} s), "
             f"{rm_report['train_pairs']} trained on, {rm_report['heldout_pairs']} held out; held-out pairwise "
             f"accuracy {rm_report['pairwise_accuracy']:.3f}, train accuracy {rm_report['train_accuracy']:.3f}; "
             f"trained in {rm_seconds:.0f} s.", "",
             f"Each method trained {args.budget:g} s from the base model ({DEFAULT_PRESET} knobs; DPO β "
             f"{args.dpo_beta:g}), then {args.eval_samples} answers per task measured:", "",
             "| method | steps | gold success | gold score | RM score | KL/token | KL/answer | answer length |",
             "|---|---|---|---|---|---|---|---|"]
    for name, m in methods.items():
        lines.append(f"| {name} | {m['steps']} | {m['gold_success']:.2f} | {m['gold_score']:+.3f} | "
                     f"{m['rm_score']:+.3f} | {m['kl_per_token']:+.4f} | {m['kl_per_answer']:+.3f} | "
                     f"{m['answer_length']:.1f} |")
    write_report("\n".join(lines), args.md)


if __name__ == "__main__":
    main()
