"""Plot titles, legends, axes and series names."""

MESSAGES: dict[str, tuple[str, str]] = {
    "series.reward_mean": ("mean reward", "平均奖励"),
    "series.success_rate": ("success rate", "成功率"),
    "series.kl_mean": ("KL per token", "每 token KL"),
    "series.kl_sum_mean": ("KL per response", "每条回答 KL"),
    "series.policy_loss": ("policy loss", "策略损失"),
    "series.entropy": ("entropy", "熵"),
    "series.value_loss": ("value loss", "价值损失"),
    "series.explained_variance": ("explained variance", "解释方差"),
    "series.clip_frac": ("clip fraction", "裁剪比例"),
    "series.approx_kl": ("approx KL (old→new)", "近似 KL（旧→新）"),
    "series.response_length_mean": ("mean response length (tokens)", "平均回答长度（token）"),
    "series.eos_rate": ("share ending with EOS", "以 EOS 结束的比例"),
    "series.kl_coef": ("β (KL coef)", "β（KL 系数）"),
    "series.no_critic": ("n/a: no critic (grpo, rloo, reinforce)", "无：没有价值网络（grpo、rloo、reinforce）"),
    "series.task": ("task {number} ({answer})", "任务 {number}（{answer}）"),
    "axis.step": ("step", "步"),
    "axis.value": ("value", "数值"),
}
