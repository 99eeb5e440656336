"""The parity table: each formula of ours against veRL 0.9.1's core_algos, max |difference| seen.

Random ragged batches (groups of 2-4 answers, 1-12 columns, every row 1..T real tokens), float64,
seeded; the same comparisons as tests/test_parity_verl.py, many more draws, one row per formula.

    OMP_NUM_THREADS=1 python benchmarks/parity_verl.py --draws 500 --md docs/parity_table.md
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_name, write_report  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--md", default=None)
    args = parser.parse_args(argv)

    from verl.trainer.config import AlgoConfig
    from verl.trainer.ppo import core_algos as C
    from verl.workers.config import ActorConfig

    from ppo_demo import ppo

    rng = random.Random(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    worst: dict[str, float] = {}

    def seen(name, ours, theirs, mask=None):
        diff = (ours - theirs).abs() if mask is None else ((ours - theirs).abs() * mask)
        worst[name] = max(worst.get(name, 0.0), float(diff.max()))

    def randn(*shape, scale=1.0):
        return torch.randn(*shape, generator=g, dtype=torch.float64) * scale

    def actor(low, high, L):
        c = ActorConfig(strategy="fsdp", rollout_n=2, clip_ratio=low, clip_ratio_low=low, clip_ratio_high=high,
                        clip_ratio_c=1e9, ppo_mini_batch_size=2, ppo_micro_batch_size_per_gpu=1,
                        use_dynamic_bsz=False)
        c.global_batch_info["loss_scale_factor"] = L
        return c

    for _ in range(args.draws):
        G = rng.randint(2, 4)
        B, T = G * rng.randint(1, 4), rng.randint(1, 12)
        mask = torch.tensor([[1.0] * n + [0.0] * (T - n) for n in (rng.randint(1, T) for _ in range(B))],
                            dtype=torch.float64)
        scores = torch.tensor([rng.choice([-1.0, 0.0, 0.5, 1.0]) for _ in range(B)], dtype=torch.float64)
        index = np.array([i // G for i in range(B)])
        L = T + rng.randint(0, 4)
        for kl_in in (False, True):
            kl = randn(B, T, scale=0.5) * mask if kl_in else torch.zeros_like(mask)
            r = ppo.per_token_rewards(scores, kl, mask, 0.1 if kl_in else 0.0)
            tag = "KL in the reward" if kl_in else "outcome only"
            for std in (True, False):
                theirs, _ = C.compute_grpo_outcome_advantage(r, mask, index, epsilon=1e-6, norm_adv_by_std_in_grpo=std)
                seen(f"GRPO{'' if std else ' (Dr. GRPO, no std)'}, {tag}",
                     ppo.grpo_advantages(r, mask, G, eps=1e-6, std_norm=std)[0], theirs, mask)
            seen(f"RLOO, {tag}", ppo.rloo_advantages(r, mask, G)[0], C.compute_rloo_outcome_advantage(r, mask, index)[0], mask)
            gamma = rng.uniform(0.5, 1.0)
            adv, ret = C.compute_reinforce_plus_plus_outcome_advantage(r, mask, config=AlgoConfig(gamma=gamma))
            ours, ours_ret = ppo.reinforce_advantages(r, mask, gamma)
            seen("REINFORCE return-to-go", ours_ret, ret, mask)
            if mask.sum() > 1 and float(ppo.masked_var(ours_ret, mask)) > 1e-6:
                seen("REINFORCE whitened = REINFORCE++", ppo.masked_whiten(ours, mask), adv, mask)
        values = randn(B, T) * mask
        gamma, lam = rng.uniform(0.5, 1.0), rng.uniform(0.0, 1.0)
        r = ppo.per_token_rewards(scores, randn(B, T, scale=0.5) * mask, mask, 0.1)
        adv, ret = C.compute_gae_advantage_return(r, values, mask, gamma, lam)
        ours_adv, ours_ret = ppo.gae(r, values, mask, gamma, lam)
        seen("GAE returns", ours_ret, ret, mask)
        if mask.sum() > 1:
            seen("GAE advantages, whitened", ppo.masked_whiten(ours_adv, mask), adv, mask)
        old = randn(B, T) - 2.0
        new = old + randn(B, T, scale=0.3)
        a = randn(B, T)
        for mode in ppo.LOSS_AGG_MODES:
            loss_mat = randn(B, T)
            seen(f"agg_loss {mode}", ppo.agg_loss(loss_mat, mask, mode, L), C.agg_loss(loss_mat, mask, mode, loss_scale_factor=L))
            for low, high in ((0.2, 0.2), (0.2, 0.28)):
                theirs, m = C.compute_policy_loss_vanilla(old, new, a, mask, loss_agg_mode=mode, config=actor(low, high, L))
                ours, stats = ppo.ppo_policy_loss(new, old, a, mask, low, high, mode, L)
                kind = "symmetric" if low == high else "clip-higher"
                seen(f"policy loss, {kind}, {mode}", ours, theirs)
                seen("clip_frac_low + clip_frac_high = pg_clipfrac", stats["clip_frac_low"] + stats["clip_frac_high"],
                     torch.tensor(m["actor/pg_clipfrac"], dtype=torch.float64))
            v_old, v_ret = randn(B, T), randn(B, T)
            v = v_old + randn(B, T, scale=0.5)
            theirs, frac = C.compute_value_loss(v, v_ret, v_old, mask, 0.2, loss_agg_mode=mode, loss_scale_factor=L)
            ours, vstats = ppo.ppo_value_loss(v, v_old, v_ret, mask, 0.2, mode, L)
            seen(f"value loss, {mode}", ours, theirs)
            seen("value_clip_frac", vstats["value_clip_frac"], frac)
        logp = randn(B, T) - 2.0
        ref = logp + (torch.rand(B, T, generator=g, dtype=torch.float64) * 4 - 2)
        for ours_name, verl_name in (("k1", "kl"), ("k2", "mse"), ("k3", "low_var_kl")):
            theirs = C.kl_penalty(logp, ref, verl_name)
            seen(f"KL {ours_name} = veRL {verl_name}", ppo.kl_per_token(logp, ref, ours_name), theirs, mask)
            mode = rng.choice(ppo.LOSS_AGG_MODES)
            seen(f"KL loss {ours_name}", ppo.kl_penalty_loss(logp, ref, mask, ours_name, mode, L),
                 C.agg_loss(theirs, mask, mode, loss_scale_factor=L))

    lines = [f"# Parity with veRL 0.9.1 core_algos: max |ours - veRL| over {args.draws} random ragged batches",
             "", f"Machine: {cpu_name()}. Command: `OMP_NUM_THREADS=1 python benchmarks/parity_verl.py "
             f"--draws {args.draws} --seed {args.seed}`. float64; per-token quantities on real tokens only.", "",
             "| comparison | max difference |", "|---|---:|"]
    lines += [f"| {name} | {value:.1e} |" for name, value in worst.items()]
    write_report("\n".join(lines), args.md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
