"""Live health warnings while training: what each means and one thing to try."""

MESSAGES: dict[str, tuple[str, str]] = {
    "health.status.one": ("⚠ {n} health warning", "⚠ {n} 条健康警告"),
    "health.status.other": ("⚠ {n} health warnings", "⚠ {n} 条健康警告"),
    "health.list": ("{count}:", "{count}："),
    "health.latest": ("{count}; the latest, {line}", "{count}；最新一条：{line}"),
    "health.axis": ("warning", "警告"),
    "health.line": ("step {step}: {meaning} Try: {advice}", "第 {step} 步：{meaning} 可以试试：{advice}"),
    "health.table.header": (
        "| warning | metric | fires when | threshold | warm-up (steps) | window (steps) | what it means | one thing to try |",
        "| 警告 | 指标 | 触发条件 | 阈值 | 预热（步） | 窗口（步） | 含义 | 可以试试 |"),
    "health.kl_high.meaning": (
        "The KL per token to the reference stays high: the policy has moved far from the base model "
        "and may be losing what it knew.",
        "每个 token 的 KL 一直很高：策略已经远离基础模型，可能正在丢掉原有的能力。"),
    "health.kl_high.try": ("raise the KL coefficient β, or lower the learning rate.",
                           "调高 KL 系数 β，或者调低学习率。"),
    "health.kl_growing.meaning": (
        "The KL keeps growing without levelling off: nothing is holding the policy near the reference.",
        "KL 一直在涨、没有趋稳：没有什么力量把策略拉在参考模型附近。"),
    "health.kl_growing.try": ("raise β or set a target KL (adaptive β).",
                              "调高 β，或者设置目标 KL（自适应 β）。"),
    "health.entropy_collapse.meaning": (
        "The entropy collapsed before the tasks were solved: the policy repeats one answer and stops "
        "exploring, so it can no longer find a better one.",
        "任务还没学会，熵就塌缩了：策略反复给出同一个回答、不再探索，也就找不到更好的回答。"),
    "health.entropy_collapse.try": ("lower the learning rate or add an entropy bonus (ent_coef).",
                                    "调低学习率，或者加一点熵奖励（ent_coef）。"),
    "health.clip_high.meaning": (
        "Many tokens are clipped step after step: each update moves the policy further than the trust "
        "region allows, so much of the gradient is thrown away.",
        "一步接一步地有大量 token 被裁剪：每次更新都想把策略推得比信任域允许的更远，很多梯度被丢掉了。"),
    "health.clip_high.try": ("lower the learning rate, or use fewer PPO epochs.",
                             "调低学习率，或者减少 PPO 轮数。"),
    "health.value_nonfinite.meaning": (
        "The value loss is not a number: the critic diverged, so GAE's advantages are meaningless.",
        "价值损失不是有限数：critic 发散了，GAE 算出的优势没有意义。"),
    "health.value_nonfinite.try": ("lower the learning rate or the value coefficient c_V.",
                                   "调低学习率或价值系数 c_V。"),
    "health.explained_variance_low.meaning": (
        "The critic's predictions are far worse than a constant: its values add noise to the advantages "
        "instead of removing it.",
        "critic 的预测远不如一个常数：它的价值估计给优势加了噪声，而不是减少噪声。"),
    "health.explained_variance_low.try": (
        "lower the learning rate, or try GRPO or RLOO, which need no critic.",
        "调低学习率，或者改用不需要 critic 的 GRPO 或 RLOO。"),
    "health.reward_gamed.meaning": (
        "The reward rises while the success rate does not: the policy may be gaming a side term of the "
        "reward (length, EOS) instead of answering better.",
        "奖励在涨而成功率没有涨：策略可能在钻奖励里次要项（长度、EOS）的空子，而不是答得更好。"),
    "health.reward_gamed.try": ("read the latest answers; lower the length penalty if they only got shorter.",
                                "读一读最近的回答；如果它们只是变短了，调低长度惩罚。"),
    "health.length_to_cap.meaning": (
        "The answers drift to max new tokens: they stop ending, and the missing-EOS penalty takes over.",
        "回答越来越长，顶到了 max new tokens：它们不再结束，缺少 EOS 的惩罚占了上风。"),
    "health.length_to_cap.try": ("raise the missing-EOS penalty or the length penalty, or lower the learning rate.",
                                 "调高缺少 EOS 的惩罚或长度惩罚，或者调低学习率。"),
    "health.no_reward_variance.meaning": (
        "Every answer in a batch got the same reward: all advantages are zero and the step taught nothing.",
        "一个批次里每个回答的奖励都相同：优势全为 0，这一步什么也没学到。"),
    "health.no_reward_variance.try": ("check the task with 'Check the reward'; raise the temperature for more varied answers.",
                                      "用“检查奖励”看看这个任务；调高温度，让回答更多样。"),
}
