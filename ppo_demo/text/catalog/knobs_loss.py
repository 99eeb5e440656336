"""The loss variants: clip-higher, loss aggregation, Dr. GRPO, the KL estimators, the exact KL."""

MESSAGES: dict[str, tuple[str, str]] = {
    # chart series and heatmap views (the page's keys: series.<metric>, heat.<quantity>)
    "series.kl_exact": ("exact KL per token (whole vocabulary)", "每 token 精确 KL（整个词表）"),
    "series.clip_frac_low": ("clipped low (A<0, ρ<1−ε)", "下方裁剪（A<0，ρ<1−ε）"),
    "series.clip_frac_high": ("clipped high (A>0, ρ>1+ε_high)", "上方裁剪（A>0，ρ>1+ε_high）"),
    "series.frac_reward_zero_std": ("groups whose scores all tie", "得分全部相同的组"),
    "heat.kl_exact": ("exact KL_t = Σ_v π(v)(log π(v) − log π_ref(v)) over the whole vocabulary (never < 0)",
                      "精确 KL_t = Σ_v π(v)(log π(v) − log π_ref(v))，对整个词表求和（永不 < 0）"),
    "heat.kl_exact_off": ("The exact KL was not computed in this run (the Exact KL knob is off, or batch × "
                          "max new tokens × vocabulary needs more than 512 MB).",
                          "本次运行没有计算精确 KL（“精确 KL”开关已关闭，或者批大小 × 最大新词元数 × 词表所需内存超过 512 MB）。"),
    "knobs_loss.clip_eps_high_range": (
        "Clip ε high must be a number between 0 and 10 (leave it empty for the symmetric clip); got {value}.",
        "裁剪上界 ε_high 必须是 0 到 10 之间的数（留空即为对称裁剪）；收到的是 {value}。"),
}

KNOBS_ZH: dict[str, tuple[str, str]] = {
    "clip_eps_high": (
        "裁剪上界 ε_high",
        "Clip-higher（DAPO，Yu 等 2025）：上界变为 1+ε_high，即 min(ρA, clip(ρ, 1-ε, 1+ε_high)A)，"
        "让概率低的好词元在一步内能涨得更多；留空 = ε（对称裁剪）。DAPO 用 ε 0.2、ε_high 0.28"),
    "loss_agg_mode": (
        "损失聚合方式",
        "E_t 如何对逐词元损失求平均（沿用 veRL 的名称）：token-mean = Σ_i Σ_t l / Σ_i |y_i|；"
        "seq-mean-token-mean = 1/B Σ_i (1/|y_i|) Σ_t l；seq-mean-token-sum = 1/B Σ_i Σ_t l；"
        "seq-mean-token-sum-norm = 1/(B·L) Σ_i Σ_t l，L = 最大新词元数（Dr. GRPO：没有长度偏差）"),
    "kl_loss_estimator": (
        "KL 损失估计器",
        "KL 放在损失中时，损失项 β·E_t[KL_t] 里的 KL_t：k1 = log pi - log pi_ref；"
        "k2 = ½(log pi - log pi_ref)²（其梯度就是真实 KL 的梯度）；k3 = (q-1) - log q，q = pi_ref/pi（GRPO 所用）"),
    "exact_kl": (
        "精确 KL",
        "在每个回答词元处，对整个词表计算真实的 KL(pi || pi_ref) = Σ_v pi(v) (log pi(v) - log pi_ref(v))，"
        "用于曲线图和热力图（训练信号仍用所选估计器）；内存：批大小 × 最大新词元数 × V × 4 字节"
        "（SmolLM2 的 V = 49152：quick-CPU 约 38 MB）；超过 512 MB 时不计算"),
    "grpo_std_norm": (
        "GRPO 标准差归一化",
        "grpo：除以组内标准差，A = (G_0 - 均值)/(标准差 + eps)；关闭 = Dr. GRPO（Liu 等 2025），"
        "A = G_0 - 均值，几乎一致的组不会被放大到单位尺度"),
}
