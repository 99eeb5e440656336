"""English and Simplified Chinese strings for the page (``gr.I18n``: the browser's language picks).

English knob labels and help come from the one definition in :mod:`ppo_demo.config`; only their
Chinese versions are written here. What the server writes (status lines, toasts, table headers,
legends) is in :data:`MESSAGES`: the server reads the browser's language from each request
(:func:`lang_of`) and picks the sentence with :func:`t`.
"""

from __future__ import annotations

import re

import gradio as gr

from ..config import all_knob_fields
from ..text import knobs_zh

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
    "lab.tab_runs": "4 · Runs",
    "lab.tab_compare": "5 · Compare",
    "lab.tab_files": "6 · Save & load",
    "lab.tasks_table": "Tasks: a prompt and the answer that earns the reward",
    "lab.add_row": "+ Add row",
    "lab.remove_row": "− Remove selected row",
    "lab.remove_row_info": "Click a cell of the row to remove first; without one, the last row goes.",
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
    "lab.plot_success": "Success rate (share of answers that match)",
    "lab.runs_note": "Each run goes from the base model to its latest step. **Reset** starts a new run (this one is "
                     "kept), **Train** after **Stop** continues the current one. A run is named by what differs "
                     "from the run before it. To see what the KL coefficient β does: press **KL demo**, then "
                     "**Train**, and compare the runs' reward and KL here.",
    "lab.runs_table": "Runs",
    "lab.runs_plot": "Runs side by side",
    "lab.runs_show": "Show runs",
    "lab.runs_metric": "Metric",
    "lab.runs_pick": "Run",
    "lab.runs_delete": "✕ Delete run",
    "lab.runs_download": "⬇ All runs' metrics (.csv)",
    "lab.kl_demo": "KL demo: queue β = 0, 0.05, 0.5",
    "lab.compare_run": "Adapter of run",
    "lab.compare_run_info": "Compare and Evaluate use this run's adapter (the current run by default).",
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
    "lab.tab_runs": "4 · 运行",
    "lab.tab_compare": "5 · 对比",
    "lab.tab_files": "6 · 保存与加载",
    "lab.tasks_table": "任务：提示词与得到奖励的答案",
    "lab.add_row": "+ 添加一行",
    "lab.remove_row": "− 删除选中的行",
    "lab.remove_row_info": "先点击要删除那一行的任一单元格；没有选中时删除最后一行。",
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
    "lab.plot_success": "成功率（回答匹配的比例）",
    "lab.runs_note": "每个运行从基座模型开始，到它最新的一步为止。**重置** 开始新的运行（当前运行会保留），**停止** 后再按 "
                     "**训练** 则继续当前运行。运行的名字写出它与上一个运行的不同之处。想看 KL 系数 β 的作用：按 **KL 演示**，"
                     "再按 **训练**，然后在这里比较各运行的奖励和 KL。",
    "lab.runs_table": "运行",
    "lab.runs_plot": "并排比较运行",
    "lab.runs_show": "显示的运行",
    "lab.runs_metric": "指标",
    "lab.runs_pick": "运行",
    "lab.runs_delete": "✕ 删除运行",
    "lab.runs_download": "⬇ 所有运行的指标（.csv）",
    "lab.kl_demo": "KL 演示：排队 β = 0、0.05、0.5",
    "lab.compare_run": "使用哪个运行的适配器",
    "lab.compare_run_info": "对比和评估使用这个运行的适配器（默认是当前运行）。",
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
    "match_mode": ("匹配方式", "包含：回答中出现答案（原教程）· 完全一致：回答只有答案 · 正则表达式：答案是一个模式"),
    "length_penalty": ("长度惩罚", "归一化回答每个字符扣除的奖励（原教程：0.002）"),
    "max_bad_updates": ("最多跳过更新数", "连续这么多次损失非有限值时停止训练"),
    "micro_batch_tokens": ("微批 token 数", "内存预算：前向/反向按约这么多实际计算的 token 分块（共享的提示词和打包的回答只算一次），梯度按 token 数加权累加，"
                           "更新结果不变；0 = 整个 mini-batch 一次算完"),
    "gradient_checkpointing": ("梯度检查点", "更新时每层只保留输入，反向传播时重算其余激活：内存大减，"
                               "更新约慢三分之一，梯度不变；采样也不再使用打包的权重副本"),
    "kl_in": ("KL 位置", "reward：每个 token 的奖励 r_t = -β·KL_t（PPO，原教程）；loss：r_t 只有得分，β·E_t[k3_t] 加进损失（同 GRPO）"),
    "kl_target": ("目标 KL", "自适应 KL（Ziegler 等 2019）：每步之后把 β 朝这个每条回答的 KL（各 token 求和）调整；留空 = β 固定"),
    "kl_horizon": ("KL 时间尺度", "自适应 KL：β 大约变化 20% 所需的回答数（TRL 用 10000；一堂课的训练只有几百条）"),
    "advantage_estimator": ("优势估计方法", "gae：带价值网络 V 的 PPO；grpo：(r - 组均值) / 组标准差；rloo：r 减去同一提示词其他回答的均值；reinforce：直接用回报（减去整批均值）。后三种不训练价值网络"),
    "group_size": ("组大小 G", "每步抽 batch/G 个提示词，每个采样 G 次（grpo 和 rloo 比较这 G 个回答，需要 G ≥ 2）"),
    "reinforce_baseline": ("REINFORCE 基线", "reinforce：减去整批的平均回报（方差更小，梯度期望不变）"),
    "share_prompts": ("共享提示词", "打分和更新时每个不同的提示词只计算一次，回答共用它的键和值，回答打包在一起、不计算 EOS 之后的填充："
                      "结果（含梯度）只差浮点舍入；梯度检查点或更新时 dropout 开启时不使用"),
}
# Knobs whose Chinese lives in a ppo_demo.text catalogue module (the one mechanism going forward).
KNOBS_ZH.update(knobs_zh())


def text(key: str) -> gr.i18n.I18nData:
    """A page string by its short name. Keys are namespaced ("lab.") because Gradio's own
    translations already use names like "status", which would shadow ours."""
    return I18N(f"lab.{key}")


def knob_key(name: str, part: str) -> str:
    return f"knob.{name}.{part}"


# Gradio 6.31's own zh-CN strings lack a few keys its front end uses, which then show raw: the
# status tracker's "common.complete" after every event (a screen-reader line, but readable in the
# page's text, e.g. under the evaluation table) and the queue's "status.queue_position" while a
# tab waits for the model. Gradio merges these into its own dictionary for the page's language.
GRADIO_ZH = {
    "common.complete": "完成",
    "common.progress": "进度",
    "common.download_all": "全部下载",
    "status.queue_position": "排队中：第 {position} 位，共 {size} 位",
}


def build_i18n() -> gr.I18n:
    en, zh = dict(EN), {**ZH, **GRADIO_ZH}
    for f in all_knob_fields():
        en[knob_key(f.name, "label")] = f.metadata.get("label") or f.name
        en[knob_key(f.name, "help")] = f.metadata["help"]
        label, help_text = KNOBS_ZH.get(f.name, (en[knob_key(f.name, "label")], f.metadata["help"]))
        zh[knob_key(f.name, "label")] = label
        zh[knob_key(f.name, "help")] = help_text
    return gr.I18n(en=en, **{"zh-CN": zh, "zh": zh})


I18N = build_i18n()


# --- strings the server builds: status lines, toasts, headers, legends -----------------------
# gr.I18n translates only what the page itself renders (labels, buttons). Everything the server
# writes into a component (the status line, a gr.Error toast, a table's headers, a plot's
# legend, a radio's choice names) is a plain string, so the server must pick the language
# itself: it reads the browser's Accept-Language from the request (:func:`lang_of`) and looks
# the sentence up here (:func:`t`). Each entry is (English, Chinese) side by side, so a missing
# or stale translation shows in review; placeholders are str.format names.
LANGS = ("en", "zh")

MESSAGES: dict[str, tuple[str, str]] = {
    # status line
    "status.base": ("Base model, no adapter yet. Press Train.", "基座模型，还没有适配器。按“训练”开始。"),
    "status.adapter": ("Adapter on {model}: {describe}.", "{model} 上的适配器：{describe}。"),
    "status.model_loading": ("Loading {model}… the page works meanwhile (the first start converts the embedded "
                             "model, about 30 s).",
                             "正在加载 {model}……页面可以先用（内置模型第一次启动需要转换，约 30 秒）。"),
    "status.model_failed": ("The model {model} could not be loaded: {error}",
                            "模型 {model} 加载失败：{error}"),
    "status.waiting_turn": ("Waiting for the model: {ahead} ahead of you. Visitors take turns, one training step each "
                            "({done}/{total} steps done).",
                            "等待模型：前面还有 {ahead} 个。访客轮流使用模型，每人一次一个训练步（已完成 {done}/{total} 步）。"),
    "toast.waiting_turn": ("Waiting for the model: {ahead} ahead of you. Visitors take turns, one training step each.",
                           "等待模型：前面还有 {ahead} 个。访客轮流使用模型，每人一次一个训练步。"),
    "status.stopped_before_start": ("Stopped before the first step.", "在第一步之前已停止。"),
    "status.budget": ("Stopped after {done} of {total} steps ({run}): this server's compute budget per Train press "
                      "({budget}) is used up. The adapter is kept; press Train to continue.",
                      "{run} 在 {total} 步中的第 {done} 步后停止：本服务器每次按“训练”的计算预算（{budget}）已用完。"
                      "适配器已保留；按“训练”继续。"),
    "status.sampling": ("Sampling step {step}/{total} ({run})…", "正在采样第 {step}/{total} 步（{run}）……"),
    "status.step": ("Step {done}/{total} · {run} · {per_step:.1f} s/step · ETA {eta} · reward {reward:+.3f} · "
                    "success {success:.0%} · KL/token {kl:+.4f} · {trained} steps trained in total",
                    "第 {done}/{total} 步 · {run} · {per_step:.1f} 秒/步 · 预计还需 {eta} · 奖励 {reward:+.3f} · "
                    "成功率 {success:.0%} · 每 token KL {kl:+.4f} · 共训练 {trained} 步"),
    "status.stopping_prefix": ("Stopping… ", "正在停止…… "),
    "status.stopping": ("Stopping after the current step…", "当前这一步结束后停止……"),
    "status.nothing_running": ("Nothing is running.", "没有正在进行的训练。"),
    "status.stopped": ("Stopped after {done} of {total} steps ({run}); the adapter is kept.",
                       "在第 {done}/{total} 步停止（{run}）；适配器已保留。"),
    "status.done": ("Done: {done} steps ({run}).", "完成：{done} 步（{run}）。"),
    "status.error_end": ("Run ended with an error after {done} step(s): {error}",
                         "训练在 {done} 步后因错误结束：{error}"),
    "status.reset": ("Reset: back to the base model. {run} is kept on the Runs tab; Train starts a new run.",
                     "已重置：回到基座模型。{run} 保留在“运行”页；按“训练”开始新的运行。"),
    "status.reset_empty": ("Reset: back to the base model, no adapter.", "已重置：回到基座模型，没有适配器。"),
    "status.loaded_adapter": ("Loaded adapter: {describe}. Train continues from it.",
                              "已加载适配器：{describe}。训练将从它继续。"),
    "status.queued": ("Queued {n} runs: {names}. Press Train to run them one after another.",
                      "已排队 {n} 个运行：{names}。按“训练”依次运行。"),
    "eta.unknown": ("?", "?"),
    "eta.minutes": ("{m}m {s:02d}s", "{m} 分 {s:02d} 秒"),
    "eta.seconds": ("{s}s", "{s} 秒"),
    # what the next Train press will do
    "next.start": ("Train starts {run}: {steps} steps from the base model.",
                   "“训练”将开始 {run}：从基座模型训练 {steps} 步。"),
    "next.continue": ("Train continues {run}: {steps} more steps (steps {first}–{last}).",
                      "“训练”将继续 {run}：再训练 {steps} 步（第 {first}–{last} 步）。"),
    "next.plan": ("Train runs the {n} queued runs: {names}.", "“训练”将依次运行排队的 {n} 个运行：{names}。"),
    "next.running": ("Training {run}… Stop ends it after the current step.",
                     "正在训练 {run}……“停止”会在当前这一步结束后停止。"),
    # runs
    "run.name": ("run {number}", "运行 {number}"),
    "run.start_settings": ("start settings", "初始设置"),
    "run.tasks_changed": ("tasks changed", "任务已改"),
    "run.model": ("model {model}", "模型 {model}"),
    "run.more": ("+{n} more", "另有 {n} 项"),
    "run.changed_at": ("{changes} from step {step}", "第 {step} 步起 {changes}"),
    "run.none": ("No runs yet: press Train.", "还没有运行：按“训练”开始。"),
    "run.base": ("base model (no adapter)", "基座模型（无适配器）"),
    "run.current": ("current", "当前"),
    "run.on": ("on", "开"),
    "run.off": ("off", "关"),
    "run.kl_demo_name": ("KL demo", "KL 演示"),
    # toasts (gr.Error / gr.Warning)
    "error.choose_model": ("Choose a model.", "请选择一个模型。"),
    "error.server_limit": ("{label} is limited to {cap} on this server; got {value}.",
                           "{label} 在本服务器上最多为 {cap}；当前为 {value}。"),
    "error.match_mode": ("Match mode must be one of {choices}; got {value}.", "匹配方式必须是 {choices} 之一；当前为 {value}。"),
    "error.length_penalty": ("Length penalty must be a number; got {value}.", "长度惩罚必须是数字；当前为 {value}。"),
    "error.other_model": ("Your adapter was trained on '{trained}', not '{model}'. Switch the model back, or press "
                          "Reset to start over on the new model.",
                          "你的适配器是在“{trained}”上训练的，不是“{model}”。请切换回原模型，或按“重置”在新模型上重新开始。"),
    "error.setup": ("Could not set up the policy: {error}", "无法建立策略模型：{error}"),
    "error.already_running": ("A run is already going in this tab. Press Stop first.",
                              "这个标签页已经在训练。请先按“停止”。"),
    "error.still_finishing": ("The run is still finishing its step; try again in a moment.",
                              "训练还在完成当前这一步；请稍后再试。"),
    "error.no_prompt": ("Type a prompt or pick a task to compare.", "请输入提示词或选择一个任务来对比。"),
    "error.prompt_too_long": ("The prompt is {n} characters; the limit is {limit}.",
                              "提示词有 {n} 个字符；上限是 {limit}。"),
    "error.running_compare": ("Training is running in this tab. Press Stop first, then Compare.",
                              "这个标签页正在训练。请先按“停止”，再对比。"),
    "error.running_evaluate": ("Training is running in this tab. Press Stop first, then Evaluate.",
                               "这个标签页正在训练。请先按“停止”，再评估。"),
    "error.running_other": ("Training is running in this tab. Press Stop first.", "这个标签页正在训练。请先按“停止”。"),
    "error.samples_whole": ("Samples per task must be a whole number; got {value}.",
                            "每个任务的采样数必须是整数；当前为 {value}。"),
    "error.samples_range": ("Samples per task must be between 1 and {limit}; got {value}.",
                            "每个任务的采样数必须在 1 到 {limit} 之间；当前为 {value}。"),
    "error.file_too_large": ("{name} is larger than this server's upload limit ({mb} MB).",
                             "{name} 超过本服务器的上传上限（{mb} MB）。"),
    "error.zip_member_too_large": ("{name} in the zip is too large.", "压缩包里的 {name} 太大。"),
    "error.bad_zip": ("{name} is not a readable zip file.", "{name} 不是可读取的 zip 文件。"),
    "error.adapter_files": ("{name}: upload the .zip from Download, or the adapter's files ({weights} and {config}).",
                            "{name}：请上传下载得到的 .zip，或适配器的文件（{weights} 和 {config}）。"),
    "error.choose_adapter": ("Choose the adapter .zip (or its two files) first.", "请先选择适配器 .zip（或它的两个文件）。"),
    "error.adapter_model": ("This adapter was trained on '{model}'; select that model first.",
                            "这个适配器是在“{model}”上训练的；请先选择那个模型。"),
    "error.adapter_settings": ("The adapter's settings are invalid: {error}", "适配器的设置无效：{error}"),
    "error.unknown_task_preset": ("Unknown task preset '{name}'. Choose one of: {choices}.",
                                  "未知的任务预设“{name}”。请从以下选择：{choices}。"),
    "error.unknown_preset": ("Unknown preset '{name}'. Choose one of: {choices}.", "未知的预设“{name}”。请从以下选择：{choices}。"),
    "error.max_tasks": ("The limit is {limit} tasks.", "最多 {limit} 个任务。"),
    "error.max_runs": ("This tab keeps at most {limit} runs (they hold their adapters in memory). Delete a run on "
                       "the Runs tab, then press Train again.",
                       "每个标签页最多保留 {limit} 个运行（它们的适配器都在内存中）。请在“运行”页删除一个运行，然后再按“训练”。"),
    "error.max_runs_plan": ("The KL demo needs {need} free run slots and this tab has {free} (at most {limit} runs are "
                            "kept). Delete runs on the Runs tab first.",
                            "KL 演示需要 {need} 个空位，这个标签页只剩 {free} 个（最多保留 {limit} 个运行）。请先在“运行”页删除一些运行。"),
    "error.no_such_run": ("There is no run {number} any more; pick another one.", "运行 {number} 已不存在；请选择其他运行。"),
    "error.delete_running": ("{run} is training. Press Stop first, then delete it.", "{run} 正在训练。请先按“停止”，再删除。"),
    "error.pick_run": ("Pick a run to delete.", "请选择要删除的运行。"),
    "warning.tasks_changed": ("The tasks changed: {run} continues with the new tasks, and its per-task reward "
                              "curves start over. Press Reset first to keep the two apart.",
                              "任务已更改：{run} 用新任务继续训练，各任务的奖励曲线重新开始。若要分开比较，请先按“重置”。"),
    "warning.knobs_changed": ("{run} continues with {changes}. To see the effect side by side, press Reset first: "
                              "a new run starts from the base model.",
                              "{run} 将以 {changes} 继续训练。若要并排比较效果，请先按“重置”：新的运行会从基座模型开始。"),
    # table headers
    "header.prompt": ("prompt", "提示词"),
    "header.expected": ("expected", "期望答案"),
    "header.task": ("task", "任务"),
    "header.base_success": ("base success", "基座成功率"),
    "header.adapted_success": ("adapted success", "适配后成功率"),
    "header.base_reward": ("base reward", "基座奖励"),
    "header.adapted_reward": ("adapted reward", "适配后奖励"),
    "header.all_tasks": ("all tasks", "全部任务"),
    "header.rollout": ("#", "#"),
    "header.response": ("response", "回答"),
    "header.reward": ("reward", "奖励"),
    "header.hit": ("hit", "命中"),
    "header.kl_sum": ("KL (sum)", "KL（总和）"),
    "header.tokens": ("tokens", "token 数"),
    "header.run": ("run", "运行"),
    "choice.current_run": ("the current run", "当前运行"),
    "header.differs": ("what differs", "不同之处"),
    "header.steps": ("steps", "步数"),
    "header.final_reward": ("final reward", "最终奖励"),
    "header.final_success": ("success rate", "成功率"),
    "header.final_kl": ("KL/token", "每 token KL"),
    "header.seconds": ("seconds", "秒"),
    # match modes (radio choice names; the value stays the English key)
    "match.contains": ("contains", "包含"),
    "match.exact": ("exact", "完全一致"),
    "match.regex": ("regex", "正则表达式"),
    # plot legends and axes
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
    # heatmap
    "heat.empty": ("Train a step to see its tokens here.", "训练一步后，这里显示它的 token。"),
    "heat.advantage": ("advantage A_t (GAE)", "优势 A_t（GAE）"),
    "heat.train_advantage": ("advantage in the loss (after whitening)", "损失中使用的优势（白化后）"),
    "heat.kl": ("KL_t to the reference", "与参考模型的 KL_t"),
    "heat.ratio": ("π_θ/π_ref = exp(log π − log π_ref) (to the reference; not PPO's ρ)",
                   "π_θ/π_ref = exp(log π − log π_ref)（相对参考模型；不是 PPO 的 ρ）"),
    "heat.reward": ("per-token reward r_t", "逐 token 奖励 r_t"),
    "heat.value": ("value V(s_t)", "价值 V(s_t)"),
    "heat.score": ("rule score s = {score:+.3f}", "规则得分 s = {score:+.3f}"),
    "heat.no_eos": ("no EOS", "没有 EOS"),
    "heat.ppo_ratio": ("PPO's ρ_t = π_new/π_old at the last update pass (centred on 1)",
                       "PPO 的 ρ_t = π_new/π_old（最后一次更新时；以 1 为中心）"),
    "heat.clip_case": ("clip case: which tokens still push the gradient and which the clip stopped",
                       "裁剪情况：哪些 token 仍在推动梯度，哪些已被裁剪停下"),
    "heat.no_update": ("No update ran in this step, so there is no ratio to show.",
                       "这一步没有进行更新，所以没有比率可显示。"),
    "heat.clip_legend": ("Each token's term min(ρA, clip(ρ, 1−ε, 1+ε)A) at the last update pass. "
                         "Only ③ and ④ are clipped (zero gradient): the token already moved more than ε the way A asks.",
                         "每个 token 在最后一次更新时的项 min(ρA, clip(ρ, 1−ε, 1+ε)A)。"
                         "只有 ③ 和 ④ 被裁剪（梯度为 0）：该 token 已经朝 A 要求的方向移动超过 ε。"),
    # the clip cases (short label; what it means: in English the sentence of ppo.CLIP_CASES)
    "heat.case.0": ("① A>0, ρ<1−ε: pushed up", "① A>0，ρ<1−ε：向上推"),
    "heat.case.1": ("② A>0, ρ in range: pushed up", "② A>0，ρ 在范围内：向上推"),
    "heat.case.2": ("③ A>0, ρ>1+ε: clipped, no gradient", "③ A>0，ρ>1+ε：被裁剪，无梯度"),
    "heat.case.3": ("④ A<0, ρ<1−ε: clipped, no gradient", "④ A<0，ρ<1−ε：被裁剪，无梯度"),
    "heat.case.4": ("⑤ A<0, ρ in range: pushed down", "⑤ A<0，ρ 在范围内：向下推"),
    "heat.case.5": ("⑥ A<0, ρ>1+ε: pushed down", "⑥ A<0，ρ>1+ε：向下推"),
    "heat.case.6": ("A=0: no push", "A=0：不推动"),
    "heat.case_why.0": ("a good token that became less likely: rho·A is the smaller term, it is pushed back up",
                        "好 token 变得更不可能：rho·A 是较小的项，它被推回上去"),
    "heat.case_why.1": ("a good token, ratio in range: pushed up", "好 token，比率在范围内：向上推"),
    "heat.case_why.2": ("a good token already made likelier by more than eps: clipped, gradient 0",
                        "好 token 的概率已提高超过 eps：被裁剪，梯度为 0"),
    "heat.case_why.3": ("a bad token already made less likely by more than eps: clipped, gradient 0",
                        "坏 token 的概率已降低超过 eps：被裁剪，梯度为 0"),
    "heat.case_why.4": ("a bad token, ratio in range: pushed down", "坏 token，比率在范围内：向下推"),
    "heat.case_why.5": ("a bad token that became likelier: rho·A is the smaller term, it is pushed back down",
                        "坏 token 变得更可能：rho·A 是较小的项，它被推回下去"),
    "heat.case_why.6": ("no advantage: nothing to push (e.g. every answer in the group scored the same)",
                        "没有优势：无需推动（例如组内每个回答得分相同）"),
}


def lang_of(request) -> str:
    """'zh' or 'en': the browser's most preferred language we have, from Accept-Language.

    ``request`` is a ``gr.Request`` (or anything with ``.headers``); no request (a direct call,
    a test) means English. 'zh-CN,zh;q=0.9,en;q=0.8' -> 'zh'; 'en-US,zh;q=0.5' -> 'en'.
    """
    headers = getattr(request, "headers", None) or {}
    header = headers.get("accept-language", "") if hasattr(headers, "get") else ""
    best, best_q = "en", -1.0
    for position, part in enumerate(str(header).split(",")):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in LANGS:
            continue
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if q > best_q:  # ties keep the earlier entry: the browser lists its favourite first
            best, best_q = primary, q
    return best


def t(key: str, lang: str = "en", **values) -> str:
    """The sentence ``key`` in ``lang`` ('en' or 'zh'), with ``values`` filled in.

    An unknown key is a programming error (KeyError; tests check every key used exists); an
    unknown language falls back to English.
    """
    english, chinese = MESSAGES[key]
    template = chinese if lang == "zh" else english
    return template.format(**values) if values else template


def knob_label(name: str, lang: str = "en") -> str:
    """A knob's short label in ``lang``: from the config's metadata (English) or KNOBS_ZH."""
    if lang == "zh" and name in KNOBS_ZH:
        return KNOBS_ZH[name][0]
    fields = {f.name: f for f in all_knob_fields()}
    if name in fields:
        return fields[name].metadata.get("label") or name
    return name


# --- the engine's own messages -------------------------------------------------------------
# The engine (config, tasks, reward) raises errors with English sentences for the CLI and the
# UI alike, and knows nothing of languages. Their sentences follow a few templates, so the UI
# translates them by pattern: (English pattern, Chinese template); a group named "label" holds a
# knob's English label and is translated too. A sentence no pattern knows stays English. The
# tests raise each error for real, so a reworded engine message fails a test, not silently.
ENGINE_PATTERNS: list[tuple[str, str]] = [
    (r"(?P<label>.+) must be one of (?P<choices>.+); got (?P<value>.+)\.", "{label} 必须是 {choices} 之一；当前为 {value}。"),
    (r"(?P<label>.+) must be between (?P<low>\S+) and (?P<high>\S+); got (?P<value>.+)\.",
     "{label} 必须在 {low} 到 {high} 之间；当前为 {value}。"),
    (r"(?P<label>.+) must be a whole number; got (?P<value>.+)\.", "{label} 必须是整数；当前为 {value}。"),
    (r"(?P<label>.+) must be a number; got (?P<value>.+)\.", "{label} 必须是数字；当前为 {value}。"),
    (r"(?P<label>.+) must be true or false; got (?P<value>.+)\.", "{label} 必须是 true 或 false；当前为 {value}。"),
    (r"Mini-batches \((?P<n>\d+)\) cannot exceed the batch size \((?P<batch>\d+)\)\.",
     "小批数（{n}）不能超过批大小（{batch}）。"),
    (r"LoRA target modules must be a non-empty list of layer names\.", "LoRA 目标模块必须是非空的层名称列表。"),
    (r"Task row (?P<row>\d+) has an expected answer but no prompt\.", "任务第 {row} 行有期望答案，但没有提示词。"),
    (r"Task row (?P<row>\d+) \((?P<prompt>'.*')\) has no expected answer\.", "任务第 {row} 行（{prompt}）没有期望答案。"),
    (r"Task row (?P<row>\d+)'s prompt is (?P<n>\d+) characters; the limit is (?P<limit>\d+)\.",
     "任务第 {row} 行的提示词有 {n} 个字符；上限是 {limit}。"),
    (r"The task table is empty: add at least one prompt with its expected answer\.",
     "任务表是空的：请至少添加一个提示词及其期望答案。"),
    (r"There are (?P<n>\d+) tasks; the limit is (?P<limit>\d+)\.", "共有 {n} 个任务；上限是 {limit}。"),
    (r"The task file is empty\.", "任务文件是空的。"),
    (r"A CSV task file needs the header 'prompt,expected'; found (?P<found>.*)\.",
     "CSV 任务文件需要表头 'prompt,expected'；实际为 {found}。"),
    (r"The task file (?P<name>.+) is not UTF-8 text; save it as UTF-8 and try again\.",
     "任务文件 {name} 不是 UTF-8 文本；请另存为 UTF-8 后再试。"),
    (r"The expected answer (?P<answer>.+) is not a valid regular expression: (?P<error>.*)\.",
     "期望答案 {answer} 不是有效的正则表达式：{error}。"),
    (r"(?P<name>GRPO|RLOO|REINFORCE|GAE) compares the answers to one prompt, so it needs a group size G of at least 2; "
     r"got (?P<value>.+)\. Try G = 4 with a batch of 8 or 12\.",
     "{name} 比较同一提示词的多个回答，所以组大小 G 至少为 2；当前为 {value}。可以试试 G = 4、批大小 8 或 12。"),
    (r"The batch size \((?P<batch>\d+)\) must be a multiple of the group size G \((?P<group>\d+)\): "
     r"a step draws batch/G prompts and samples each G times\.",
     "批大小（{batch}）必须是组大小 G（{group}）的倍数：每步抽 batch/G 个提示词，每个采样 G 次。"),
    (r"Target KL must be above 0 \(leave it empty to keep β fixed\); got (?P<value>.+)\.",
     "目标 KL 必须大于 0（留空则 β 固定）；当前为 {value}。"),
    (r"The run ended before it started\.", "训练在开始前就结束了。"),
]
_ENGINE_COMPILED = [(re.compile(pattern, re.S), template) for pattern, template in ENGINE_PATTERNS]


def engine_message(message: str, lang: str = "en") -> str:
    """An engine error's English sentence in ``lang`` (unchanged if no pattern knows it)."""
    if lang != "zh":
        return message
    english_labels = {f.metadata.get("label") or f.name: f.name for f in all_knob_fields()}
    for pattern, template in _ENGINE_COMPILED:
        match = pattern.fullmatch(message.strip())
        if match:
            values = match.groupdict()
            if "label" in values and values["label"] in english_labels:
                values["label"] = knob_label(english_labels[values["label"]], "zh")
            return template.format(**values)
    return message
