"""English and Simplified Chinese strings for the page (``gr.I18n``: the browser's language picks).

English knob labels and help come from the one definition in :mod:`ppo_demo.config`; only their
Chinese versions are written here. Status lines and error messages stay English: they are
built on the server, which does not know the browser's language.
"""

from __future__ import annotations

import gradio as gr

from ..config import all_knob_fields

FORMULAS_EN = r"""
**LoRA** on each target Linear ($W$ frozen; only $A$ and $B$ train; $B$ starts at 0, so at first $\pi_\theta = \pi_{\mathrm{ref}}$):
$$y = xW^\top + \tfrac{\alpha}{r}\,\mathrm{dropout}(x)\,A^\top B^\top \qquad A \in \mathbb{R}^{r \times d_{\mathrm{in}}},\ B \in \mathbb{R}^{d_{\mathrm{out}} \times r}$$

**Log-probability** of a sampled token, at the sampling temperature $\tau$ (logits $z_t$):
$$\log\pi_\theta(y_t) = \log\mathrm{softmax}(z_t / \tau)[y_t]$$

**Per-token reward** (score $s$ from the rule reward, added at the last real token $T$):
$$r_t = -\beta\,\mathrm{KL}_t + [t = T]\,s$$

**KL estimators**, per sampled token $y_t$, with $q_t = \pi_{\mathrm{ref}}(y_t) / \pi_\theta(y_t)$:
$$k_1 = \log\pi_\theta(y_t) - \log\pi_{\mathrm{ref}}(y_t) = -\log q_t \qquad k_3 = (q_t - 1) - \log q_t \;\ge 0$$

**GAE** (right to left over the response, $V_{T+1} = 0$):
$$\delta_t = r_t + \gamma V_{t+1} - V_t \qquad A_t = \delta_t + \gamma\lambda A_{t+1} \qquad R_t = A_t + V_t$$

**Ratio** of the new policy to the one that sampled:
$$\rho_t(\theta) = \exp\big(\log\pi_\theta(y_t) - \log\pi_{\theta_{\mathrm{old}}}(y_t)\big)$$

**Clipped policy objective** (minimised, so with a minus sign):
$$L_{\mathrm{policy}} = -\,\mathbb{E}_t\Big[\min\big(\rho_t A_t,\ \mathrm{clip}(\rho_t, 1-\epsilon, 1+\epsilon)\,A_t\big)\Big]$$

**Clipped value loss** ($V^{\mathrm{old}}$ from the sampling pass):
$$L_V = \tfrac12\,\mathbb{E}_t\Big[\max\big((V_t - R_t)^2,\ (V^{\mathrm{old}}_t + \mathrm{clip}(V_t - V^{\mathrm{old}}_t, -\epsilon_V, \epsilon_V) - R_t)^2\big)\Big]$$

**Whitening** of the advantages before the update (batch: $\mu, \sigma$ over every real token of the batch; sequence: per response, as the seed; none: $A_t$ as is):
$$\hat A_t = (A_t - \mu_A) / \sigma_A$$

**Total loss**:
$$L = L_{\mathrm{policy}} + c_V\,L_V - c_{\mathrm{ent}}\,H[\pi_\theta]$$

**Advantages without a critic** (*Advantage estimator* grpo, rloo or reinforce: no $V$, so $c_V = 0$ and the value head is not trained). $G$ answers to one prompt form a group $g(i)$; $G_t$ is the return-to-go, the score plus the KL rewards still ahead:
$$G_t = \sum_{t' \ge t} \gamma^{\,t'-t}\, r_{t'} \qquad A_{i,t} = \frac{G_{i,t} - b_i}{s_i}$$

**GRPO** (group-relative: baseline the group's mean, scale its standard deviation, unbiased as in TRL, $\varepsilon = 10^{-4}$; a group whose returns $G_{j,0}$ are all equal gets $A = 0$, but tiny differences such as the length penalty are scaled up to unit size):
$$b_i = \operatorname{mean}_{j \in g(i)} G_{j,0} \qquad s_i = \operatorname{std}_{j \in g(i)} G_{j,0} + \varepsilon$$

**RLOO** (leave-one-out: the baseline is the mean of the other $G - 1$ answers to the same prompt, so it never contains the answer it judges):
$$b_i = \frac{1}{G-1} \sum_{j \in g(i),\, j \ne i} G_{j,0} \qquad s_i = 1$$

**REINFORCE** (the plain return; with the baseline option $b$ is the batch's mean return, otherwise 0):
$$b_i = \frac{1}{B} \sum_{j=1}^{B} G_{j,0} \qquad s_i = 1$$

**KL in the loss** instead of the reward (*KL in* = loss, as GRPO: $r_t$ keeps only the score, so with $\gamma = 1$ every token of an answer gets the same $A$):
$$L = L_{\mathrm{policy}} + c_V\,L_V - c_{\mathrm{ent}}\,H[\pi_\theta] + \beta\,\mathbb{E}_t\big[k_{3,t}\big] \qquad \frac{\partial k_3}{\partial \log\pi_\theta} = 1 - q_t$$

**Adaptive KL coefficient** (Ziegler et al. 2019, as TRL's former controller; on when a target KL is set. KL is the step's mean KL per answer, $n$ the answers in the step, $H$ the horizon):
$$e = \operatorname{clip}\big(\mathrm{KL} / \mathrm{KL}_{\mathrm{target}} - 1,\ -0.2,\ 0.2\big) \qquad \beta \leftarrow \beta\,(1 + e\, n / H)$$

**The six cases of the clip** ($\min(\rho_t A_t, \mathrm{clip}(\rho_t, 1-\epsilon, 1+\epsilon) A_t)$ per token; the heatmap colours them):

| | $\rho_t < 1-\epsilon$ | $1-\epsilon \le \rho_t \le 1+\epsilon$ | $\rho_t > 1+\epsilon$ |
|---|---|---|---|
| $A_t > 0$ | ① pushes up (a good token became less likely) | ② pushes up | ③ **clipped**: gradient 0 (already likelier enough) |
| $A_t < 0$ | ④ **clipped**: gradient 0 (already less likely enough) | ⑤ pushes down | ⑥ pushes down (a bad token became likelier) |

Only ③ and ④ stop: the token has already moved by more than $\epsilon$ in the direction $A_t$ asks for. In ① and ⑥ the unclipped $\rho_t A_t$ is the smaller term, so the clip never stops a correction. $A_t = 0$ pushes nowhere (white in the heatmap; clipped tokens are grey).

**Diagnostics** on the plots (means over real response tokens, then over every mini-batch update of the step, as TRL logs them; the first update sees $\rho_t = 1$):
$$\text{approx KL} = \mathbb{E}_t\big[(\rho_t - 1) - \log\rho_t\big] \qquad \text{clip fraction} = \mathbb{E}_t\big[\,|\rho_t - 1| > \epsilon\,\big] \qquad \text{explained variance} = 1 - \frac{\mathrm{Var}[R - V]}{\mathrm{Var}[R]}$$
"""

FORMULAS_ZH = (FORMULAS_EN
               .replace("**Per-token reward** (score $s$ from the rule reward, added at the last real token $T$):",
                        "**逐 token 奖励**（规则奖励的得分 $s$ 加在最后一个真实 token $T$ 上）：")
               .replace("**KL estimators**, per sampled token $y_t$, with", "**KL 估计量**（对每个采样 token $y_t$），其中")
               .replace("**GAE** (right to left over the response, $V_{T+1} = 0$):",
                        "**GAE**（在回答上从右往左计算，$V_{T+1} = 0$）：")
               .replace("**Ratio** of the new policy to the one that sampled:", "**概率比**（新策略 / 采样时的策略）：")
               .replace("**Clipped policy objective** (minimised, so with a minus sign):",
                        "**裁剪的策略目标**（作为损失最小化，所以带负号）：")
               .replace("**Clipped value loss** ($V^{\\mathrm{old}}$ from the sampling pass):",
                        "**裁剪的价值损失**（$V^{\\mathrm{old}}$ 来自采样时）：")
               .replace("**Total loss**:", "**总损失**：")
               .replace("**LoRA** on each target Linear ($W$ frozen; only $A$ and $B$ train; $B$ starts at 0, so at "
                        "first $\\pi_\\theta = \\pi_{\\mathrm{ref}}$):",
                        "**LoRA**（作用在每个目标 Linear 上；$W$ 冻结，只训练 $A$、$B$；$B$ 初始为 0，"
                        "所以一开始 $\\pi_\\theta = \\pi_{\\mathrm{ref}}$）：")
               .replace("**Log-probability** of a sampled token, at the sampling temperature $\\tau$ (logits $z_t$):",
                        "**采样 token 的对数概率**（与采样相同的温度 $\\tau$，logits 为 $z_t$）：")
               .replace("**Whitening** of the advantages before the update (batch: $\\mu, \\sigma$ over every real "
                        "token of the batch; sequence: per response, as the seed; none: $A_t$ as is):",
                        "**优势白化**（batch：在整批所有真实 token 上求 $\\mu, \\sigma$；sequence：每条回答单独，"
                        "同原教程；none：不白化）：")
               .replace("**Diagnostics** on the plots (means over real response tokens, then over every mini-batch "
                        "update of the step, as TRL logs them; the first update sees $\\rho_t = 1$):",
                        "**图中的诊断量**（先在回答的真实 token 上平均，再对本步的所有 mini-batch 更新平均，与 TRL 相同；第一次更新时 $\\rho_t = 1$）：")
               .replace('**Advantages without a critic** (*Advantage estimator* grpo, rloo or reinforce: no $V$, so $c_V = 0$ and the value head is not trained). $G$ answers to one prompt form a group $g(i)$; $G_t$ is the return-to-go, the score plus the KL rewards still ahead:',
                        '**无价值网络的优势**（*优势估计方法* 为 grpo、rloo 或 reinforce：没有 $V$，所以 $c_V = 0$，价值头不训练）。同一提示词的 $G$ 个回答构成一组 $g(i)$；$G_t$ 是从 $t$ 起的回报：得分加上之后各 token 的 KL 奖励：')
               .replace("**GRPO** (group-relative: baseline the group's mean, scale its standard deviation, unbiased as in TRL, $\\varepsilon = 10^{-4}$; a group whose returns $G_{j,0}$ are all equal gets $A = 0$, but tiny differences such as the length penalty are scaled up to unit size):",
                        '**GRPO**（组内相对：基线为组内均值，尺度为组内标准差，与 TRL 一样用无偏估计，$\\varepsilon = 10^{-4}$；组内回报 $G_{j,0}$ 全部相等时 $A = 0$，但长度惩罚这类微小差异会被放大到单位大小）：')
               .replace('**RLOO** (leave-one-out: the baseline is the mean of the other $G - 1$ answers to the same prompt, so it never contains the answer it judges):',
                        '**RLOO**（留一法：基线是同一提示词其余 $G - 1$ 个回答的均值，因此不包含被评判的回答本身）：')
               .replace("**REINFORCE** (the plain return; with the baseline option $b$ is the batch's mean return, otherwise 0):",
                        '**REINFORCE**（直接用回报；开启基线时 $b$ 为整批的平均回报，否则为 0）：')
               .replace('**KL in the loss** instead of the reward (*KL in* = loss, as GRPO: $r_t$ keeps only the score, so with $\\gamma = 1$ every token of an answer gets the same $A$):',
                        '**KL 放进损失**而不是奖励（*KL 位置* = loss，同 GRPO：$r_t$ 只剩得分，所以 $\\gamma = 1$ 时同一回答的每个 token 优势相同）：')
               .replace("**Adaptive KL coefficient** (Ziegler et al. 2019, as TRL's former controller; on when a target KL is set. KL is the step's mean KL per answer, $n$ the answers in the step, $H$ the horizon):",
                        '**自适应 KL 系数**（Ziegler 等 2019，与 TRL 旧版控制器相同；设置目标 KL 时启用。KL 为本步每个回答的平均 KL，$n$ 为本步回答数，$H$ 为时间尺度）：')
               .replace('**The six cases of the clip** ($\\min(\\rho_t A_t, \\mathrm{clip}(\\rho_t, 1-\\epsilon, 1+\\epsilon) A_t)$ per token; the heatmap colours them):',
                        '**裁剪的六种情况**（每个 token 的 $\\min(\\rho_t A_t, \\mathrm{clip}(\\rho_t, 1-\\epsilon, 1+\\epsilon) A_t)$；热力图按此着色）：')
               .replace('| $A_t > 0$ | ① pushes up (a good token became less likely) | ② pushes up | ③ **clipped**: gradient 0 (already likelier enough) |',
                        '| $A_t > 0$ | ① 向上推（好 token 变得更不可能） | ② 向上推 | ③ **被裁剪**：梯度为 0（已经足够更可能） |')
               .replace('| $A_t < 0$ | ④ **clipped**: gradient 0 (already less likely enough) | ⑤ pushes down | ⑥ pushes down (a bad token became likelier) |',
                        '| $A_t < 0$ | ④ **被裁剪**：梯度为 0（已经足够不可能） | ⑤ 向下推 | ⑥ 向下推（坏 token 变得更可能） |')
               .replace('Only ③ and ④ stop: the token has already moved by more than $\\epsilon$ in the direction $A_t$ asks for. In ① and ⑥ the unclipped $\\rho_t A_t$ is the smaller term, so the clip never stops a correction. $A_t = 0$ pushes nowhere (white in the heatmap; clipped tokens are grey).',
                        '只有 ③ 和 ④ 停止：该 token 已经朝 $A_t$ 要求的方向移动超过 $\\epsilon$。在 ① 和 ⑥ 中未裁剪的 $\\rho_t A_t$ 更小，所以裁剪从不阻止纠正。$A_t = 0$ 不推动任何方向（热力图中为白色；被裁剪的 token 为灰色）。'))

EN = {
    "lab.title": "PPO-LoRA Lab",
    "lab.subtitle": "Edit toy tasks, tune the knobs, press **Train** and watch a chat model learn with "
                "token-level PPO through a hand-written LoRA. Then compare its answers with the base model's.",
    "lab.model": "Base model",
    "lab.model_info": "Loaded once and shared by everyone; each browser tab trains its own adapter.",
    "lab.custom_model": "Custom model (hub id or local path)",
    "lab.custom_model_info": "Overrides the list when filled in.",
    "lab.tab_tasks": "1 · Tasks & reward",
    "lab.tab_knobs": "2 · Knobs",
    "lab.tab_train": "3 · Train",
    "lab.tab_compare": "4 · Compare",
    "lab.tab_files": "5 · Save & load",
    "lab.tasks_table": "Tasks: a prompt and the answer that earns the reward",
    "lab.add_row": "+ Add row",
    "lab.remove_row": "− Remove last row",
    "lab.task_preset": "Task preset",
    "lab.load_preset": "Load preset",
    "lab.upload_csv": "Upload CSV / JSON",
    "lab.download_csv": "Download CSV",
    "lab.reward_settings": "Reward",
    "lab.reward_formula": "score = (+1 if the answer matches, else −1) − length penalty × characters − missing-EOS penalty",
    "lab.presets": "Presets: set every knob at once",
    "lab.preset_seed": "Seed notebook",
    "lab.preset_quick": "Quick CPU",
    "lab.group_lora": "What is trained",
    "lab.group_rollout": "Rollouts (sampling)",
    "lab.group_ppo": "PPO update",
    "lab.formulas": "The formulas",
    "lab.formulas_md": FORMULAS_EN,
    "lab.train": "▶ Train",
    "lab.stop": "■ Stop",
    "lab.reset": "↺ Reset",
    "lab.status": "Status",
    "lab.plot_reward": "Reward (mean, success rate, per task)",
    "lab.plot_kl": "KL to the reference model",
    "lab.plot_policy": "Policy: loss and entropy",
    "lab.plot_critic": "Critic: value loss and explained variance",
    "lab.plot_health": "Clip fraction and approx KL",
    "lab.rollouts": "Latest rollouts",
    "lab.heatmap": "Tokens of one rollout",
    "lab.heat_index": "Rollout #",
    "lab.heat_quantity": "Colour by",
    "lab.compare_task": "Pick a task",
    "lab.compare_prompt": "Prompt",
    "lab.compare_btn": "Compare base vs adapted",
    "lab.compare_note": "Both answers use the same seed and sampling settings (seed, temperature, top-p, max new tokens from the knobs).",
    "lab.base_output": "Base model (adapters off)",
    "lab.adapted_output": "Adapted model (your LoRA)",
    "lab.eval_samples": "Samples per task (K)",
    "lab.eval_btn": "Evaluate all tasks",
    "lab.eval_table": "Success rate and mean reward per task",
    "lab.download_adapter": "⬇ Adapter (.zip)",
    "lab.download_metrics": "⬇ Metrics (.csv)",
    "lab.files_note": "The adapter zip is a PEFT adapter (adapter_config.json + adapter_model.safetensors; load it with "
                  "peft's PeftModel.from_pretrained) plus the value head (value_head.safetensors), the lab's settings "
                  "(ppo_lab.json) and optimizer.safetensors (AdamW's moments and step count). Upload it, an adapter made "
                  "with peft, or an older adapter.safetensors + adapter_config.json, to compare later or to continue "
                  "training; with optimizer.safetensors training continues exactly where it stopped, without it with a "
                  "fresh optimizer.",
    "lab.export_note": "Take the run further on GPUs: one zip with a bundle each for TRL (GRPO), veRL and OpenRLHF (PPO): "
                   "the tasks in the tool's format, the reward as a standalone reward.py, a launch script with the knobs "
                   "on this page, and the adapter. See each bundle's README.",
    "lab.export_run": "Export run (TRL / veRL / OpenRLHF)",
    "lab.export_file": "Exported run (.zip)",
    "lab.upload_adapter": "Upload a saved adapter",
    "lab.load_adapter": "Load adapter",
}

ZH = {
    "lab.title": "PPO-LoRA 实验室",
    "lab.subtitle": "编辑小任务、调整参数、按下 **训练**，看一个对话模型如何通过手写的 LoRA 用逐 token 的 PPO 学习；"
                "然后把它的回答和基座模型对比。",
    "lab.model": "基座模型",
    "lab.model_info": "只加载一次，所有人共享；每个浏览器标签页训练自己的适配器。",
    "lab.custom_model": "自定义模型（Hub ID 或本地路径）",
    "lab.custom_model_info": "填写后优先于列表。",
    "lab.tab_tasks": "1 · 任务与奖励",
    "lab.tab_knobs": "2 · 参数",
    "lab.tab_train": "3 · 训练",
    "lab.tab_compare": "4 · 对比",
    "lab.tab_files": "5 · 保存与加载",
    "lab.tasks_table": "任务：提示词与得到奖励的答案",
    "lab.add_row": "+ 添加一行",
    "lab.remove_row": "− 删除最后一行",
    "lab.task_preset": "任务预设",
    "lab.load_preset": "加载预设",
    "lab.upload_csv": "上传 CSV / JSON",
    "lab.download_csv": "下载 CSV",
    "lab.reward_settings": "奖励",
    "lab.reward_formula": "得分 = （答案匹配 +1，否则 −1）− 长度惩罚 × 字符数 − 缺少 EOS 惩罚",
    "lab.presets": "预设：一次设置所有参数",
    "lab.preset_seed": "原教程设置",
    "lab.preset_quick": "CPU 快速",
    "lab.group_lora": "训练什么",
    "lab.group_rollout": "采样（rollout）",
    "lab.group_ppo": "PPO 更新",
    "lab.formulas": "公式",
    "lab.formulas_md": FORMULAS_ZH,
    "lab.train": "▶ 训练",
    "lab.stop": "■ 停止",
    "lab.reset": "↺ 重置",
    "lab.status": "状态",
    "lab.plot_reward": "奖励（均值、成功率、各任务）",
    "lab.plot_kl": "与参考模型的 KL",
    "lab.plot_policy": "策略：损失与熵",
    "lab.plot_critic": "价值网络：价值损失与解释方差",
    "lab.plot_health": "裁剪比例与近似 KL",
    "lab.rollouts": "最新的采样",
    "lab.heatmap": "单条采样的 token",
    "lab.heat_index": "采样编号",
    "lab.heat_quantity": "着色依据",
    "lab.compare_task": "选择任务",
    "lab.compare_prompt": "提示词",
    "lab.compare_btn": "对比基座与适配后",
    "lab.compare_note": "两个回答使用相同的随机种子和采样设置（种子、温度、top-p、最大新 token 数取自参数页）。",
    "lab.base_output": "基座模型（关闭适配器）",
    "lab.adapted_output": "适配后的模型（你的 LoRA）",
    "lab.eval_samples": "每个任务的采样数（K）",
    "lab.eval_btn": "评估所有任务",
    "lab.eval_table": "各任务的成功率与平均奖励",
    "lab.download_adapter": "⬇ 适配器（.zip）",
    "lab.download_metrics": "⬇ 指标（.csv）",
    "lab.files_note": "适配器压缩包是 PEFT 格式（adapter_config.json + adapter_model.safetensors，可用 peft 的 "
                  "PeftModel.from_pretrained 加载），另附价值头（value_head.safetensors）、本实验的设置（ppo_lab.json）和 "
                  "optimizer.safetensors（AdamW 的动量与步数）。上传它、用 peft 制作的适配器，或旧格式的 adapter.safetensors + "
                  "adapter_config.json，即可稍后对比或继续训练；有 optimizer.safetensors 时从停下处精确地继续，没有时使用新的优化器。",
    "lab.export_note": "在 GPU 上继续：一个压缩包，内含 TRL（GRPO）、veRL 与 OpenRLHF（PPO）各一套：该工具格式的任务、独立的 "
                   "reward.py 奖励、按本页参数生成的启动脚本，以及适配器。详见各目录的 README。",
    "lab.export_run": "导出运行（TRL / veRL / OpenRLHF）",
    "lab.export_file": "导出的运行（.zip）",
    "lab.upload_adapter": "上传保存的适配器",
    "lab.load_adapter": "加载适配器",
}

KNOBS_ZH = {
    "mode": ("微调方式", "lora：训练低秩适配器 B·A（+ 价值头），基座冻结；full：训练全部权重，π_ref 为冻结副本"),
    "lora_r": ("LoRA 秩 r", "更新 ΔW = (alpha/r)·B·A 的秩 r"),
    "lora_alpha": ("LoRA alpha", "LoRA 更新缩放 alpha/r 中的 alpha"),
    "lora_dropout": ("LoRA dropout", "LoRA 输入 x 上的 dropout（仅在开启“PPO 更新时使用 dropout”时于更新计算中生效）"),
    "lora_targets": ("LoRA 目标模块", "加适配器的 Linear 层名称（按后缀匹配，逗号分隔）"),
    "learning_rate": ("学习率", "可训练参数的 AdamW 步长"),
    "steps": ("步数", "PPO 步数：每步采样一批、打分、然后更新"),
    "batch_size": ("批大小", "每个 PPO 步采样的回答数（原教程为 1）"),
    "max_new_tokens": ("最大新 token 数", "最长回答 T；没有输出 EOS 的回答在此截断"),
    "temperature": ("温度", "采样和计算 log π 时 logits 都除以它，两者用同一分布"),
    "top_p": ("Top-p", "核采样；小于 1 时采样略偏离策略，因为 log π 用完整 softmax"),
    "seed": ("随机种子", "相同的种子和参数得到相同的训练过程"),
    "ppo_epochs": ("PPO 轮数", "每批采样数据上的遍历次数"),
    "num_minibatches": ("小批数", "每轮把一批数据分成这么多次梯度更新"),
    "clip_eps": ("裁剪 ε", "min(ρA, clip(ρ, 1-ε, 1+ε)A) 中的 ε"),
    "value_clip_eps": ("价值裁剪 ε", "价值相对旧值最多移动这么远，超出后损失不再奖励它"),
    "vf_coef": ("价值系数 c_V", "总损失中价值损失的权重"),
    "ent_coef": ("熵系数 c_ent", "熵奖励的权重（越大越保持探索）"),
    "kl_coef": ("KL 系数 β", "逐 token 奖励 r_t = -β·KL_t（+ 最后一个 token 的得分）中的 β"),
    "kl_estimator": ("KL 估计量", "k1 = log π - log π_ref（无偏，可为负）；k3 = (q-1) - log q，q = π_ref/π（恒 ≥ 0）"),
    "gamma": ("折扣 γ", "GAE 中的折扣 γ"),
    "gae_lambda": ("GAE λ", "GAE 中的 λ：0 = 单步 TD，1 = 蒙特卡洛回报"),
    "whiten": ("优势白化", "优势标准化：整批所有真实 token、每条回答（原教程）或不做"),
    "max_grad_norm": ("最大梯度范数", "梯度整体范数被缩放到不超过此值"),
    "dropout_in_ppo": ("PPO 更新时使用 dropout", "更新计算时保持 dropout 开启，同原教程（采样和打分始终不用 dropout）："
                       "此时更新前 ratio 就不等于 1"),
    "missing_eos_penalty": ("缺少 EOS 惩罚", "从没有输出 EOS 的回答得分中扣除"),
    "match_mode": ("匹配方式", "contains：回答中包含答案（原教程）· exact：只能是答案 · regex：正则表达式"),
    "length_penalty": ("长度惩罚", "归一化回答每个字符扣除的奖励（原教程：0.002）"),
    "max_bad_updates": ("最多跳过更新数", "连续这么多次损失非有限值时停止训练"),
    "micro_batch_tokens": ("微批 token 数", "内存预算：前向/反向按约这么多 token 分块计算，梯度按 token 数加权累加，"
                           "更新结果不变；0 = 整个 mini-batch 一次算完"),
    "gradient_checkpointing": ("梯度检查点", "更新时每层只保留输入，反向传播时重算其余激活：内存大减，"
                               "更新约慢三分之一，梯度不变"),
    "kl_in": ("KL 位置", "reward：每个 token 的奖励 r_t = -β·KL_t（PPO，原教程）；loss：r_t 只有得分，β·E_t[k3_t] 加进损失（同 GRPO）"),
    "kl_target": ("目标 KL", "自适应 KL（Ziegler 等 2019）：每步之后把 β 朝这个每条回答的 KL（各 token 求和）调整；留空 = β 固定"),
    "kl_horizon": ("KL 时间尺度", "自适应 KL：β 大约变化 20% 所需的回答数（TRL 用 10000；一堂课的训练只有几百条）"),
    "advantage_estimator": ("优势估计方法", "gae：带价值网络 V 的 PPO；grpo：(r - 组均值) / 组标准差；rloo：r 减去同一提示词其他回答的均值；reinforce：直接用回报（减去整批均值）。后三种不训练价值网络"),
    "group_size": ("组大小 G", "每步抽 batch/G 个提示词，每个采样 G 次（grpo 和 rloo 比较这 G 个回答，需要 G ≥ 2）"),
    "reinforce_baseline": ("REINFORCE 基线", "reinforce：减去整批的平均回报（方差更小，梯度期望不变）"),
    "share_prompts": ("共享提示词", "打分和更新时每个不同的提示词只计算一次，回答共用它的键和值："
                      "结果（含梯度）只差浮点舍入；梯度检查点或更新时 dropout 开启时不使用"),
}


def text(key: str) -> gr.i18n.I18nData:
    """A page string by its short name. Keys are namespaced ("lab.") because Gradio's own
    translations already use names like "status", which would shadow ours."""
    return I18N(f"lab.{key}")


def knob_key(name: str, part: str) -> str:
    return f"knob.{name}.{part}"


def build_i18n() -> gr.I18n:
    en, zh = dict(EN), dict(ZH)
    for f in all_knob_fields():
        en[knob_key(f.name, "label")] = f.metadata.get("label") or f.name
        en[knob_key(f.name, "help")] = f.metadata["help"]
        label, help_text = KNOBS_ZH.get(f.name, (en[knob_key(f.name, "label")], f.metadata["help"]))
        zh[knob_key(f.name, "label")] = label
        zh[knob_key(f.name, "help")] = help_text
    return gr.I18n(en=en, **{"zh-CN": zh, "zh": zh})


I18N = build_i18n()
