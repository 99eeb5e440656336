"""The token heatmap: quantities, the clip cases and their meaning."""

MESSAGES: dict[str, tuple[str, str]] = {
    "heat.empty": ("Train a step to see its tokens here.", "训练一步后，这里显示它的 token。"),
    "heat.advantage": ("advantage A_t (GAE)", "优势 A_t（GAE）"),
    "heat.train_advantage": ("advantage in the loss (after whitening)", "损失中使用的优势（白化后）"),
    "heat.kl": ("KL_t to the reference", "与参考模型的 KL_t"),
    "heat.ratio": (
        "π_θ/π_ref = exp(log π − log π_ref) (to the reference; not PPO's ρ)",
        "π_θ/π_ref = exp(log π − log π_ref)（相对参考模型；不是 PPO 的 ρ）"),
    "heat.reward": ("per-token reward r_t", "逐 token 奖励 r_t"),
    "heat.value": ("value V(s_t)", "价值 V(s_t)"),
    "heat.score": ("rule score s = {score:+.3f}", "规则得分 s = {score:+.3f}"),
    "heat.no_eos": ("no EOS", "没有 EOS"),
    "heat.ppo_ratio": (
        "PPO's ρ_t = π_new/π_old at the last update pass (centred on 1)",
        "PPO 的 ρ_t = π_new/π_old（最后一次更新时；以 1 为中心）"),
    "heat.clip_case": (
        "clip case: which tokens still push the gradient and which the clip stopped",
        "裁剪情况：哪些 token 仍在推动梯度，哪些已被裁剪停下"),
    "heat.no_update": ("No update ran in this step, so there is no ratio to show.", "这一步没有进行更新，所以没有比率可显示。"),
    "heat.clip_legend": (
        "Each token's term min(ρA, clip(ρ, 1−ε, 1+ε)A) at the last update pass. Only ③ and ④ are clipped (zero gradient): the token already moved more than ε the way A asks.",
        "每个 token 在最后一次更新时的项 min(ρA, clip(ρ, 1−ε, 1+ε)A)。只有 ③ 和 ④ 被裁剪（梯度为 0）：该 token 已经朝 A 要求的方向移动超过 ε。"),
    "heat.case.0": ("① A>0, ρ<1−ε: pushed up", "① A>0，ρ<1−ε：向上推"),
    "heat.case.1": ("② A>0, ρ in range: pushed up", "② A>0，ρ 在范围内：向上推"),
    "heat.case.2": ("③ A>0, ρ>1+ε: clipped, no gradient", "③ A>0，ρ>1+ε：被裁剪，无梯度"),
    "heat.case.3": ("④ A<0, ρ<1−ε: clipped, no gradient", "④ A<0，ρ<1−ε：被裁剪，无梯度"),
    "heat.case.4": ("⑤ A<0, ρ in range: pushed down", "⑤ A<0，ρ 在范围内：向下推"),
    "heat.case.5": ("⑥ A<0, ρ>1+ε: pushed down", "⑥ A<0，ρ>1+ε：向下推"),
    "heat.case.6": ("A=0: no push", "A=0：不推动"),
    "heat.case_why.0": (
        "a good token that became less likely: rho·A is the smaller term, it is pushed back up",
        "好 token 变得更不可能：rho·A 是较小的项，它被推回上去"),
    "heat.case_why.1": ("a good token, ratio in range: pushed up", "好 token，比率在范围内：向上推"),
    "heat.case_why.2": (
        "a good token already made likelier by more than eps: clipped, gradient 0",
        "好 token 的概率已提高超过 eps：被裁剪，梯度为 0"),
    "heat.case_why.3": (
        "a bad token already made less likely by more than eps: clipped, gradient 0",
        "坏 token 的概率已降低超过 eps：被裁剪，梯度为 0"),
    "heat.case_why.4": ("a bad token, ratio in range: pushed down", "坏 token，比率在范围内：向下推"),
    "heat.case_why.5": (
        "a bad token that became likelier: rho·A is the smaller term, it is pushed back down",
        "坏 token 变得更可能：rho·A 是较小的项，它被推回下去"),
    "heat.case_why.6": (
        "no advantage: nothing to push (e.g. every answer in the group scored the same)",
        "没有优势：无需推动（例如组内每个回答得分相同）"),
}
