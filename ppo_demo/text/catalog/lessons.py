"""Lessons: questions, arm labels, what is expected, the verdict's sentences, errors."""

MESSAGES: dict[str, tuple[str, str]] = {
    # --- the verdict's frame ---
    "lesson.verdict.expected": ("Expected:", "预期："),
    "lesson.verdict.measured": ("Measured in these runs:", "本次运行测得："),
    "lesson.verdict.spread": ("Across seeds (mean, min … max):", "多个随机种子（均值，最小 … 最大）："),
    "lesson.verdict.seen": ("Verdict: the expected signal was seen.", "结论：看到了预期的信号。"),
    "lesson.verdict.not_seen": ("Verdict: the expected signal was NOT seen in these runs.",
                                "结论：这几次运行中没有看到预期的信号。"),
    "lesson.verdict.title": ("Lesson: {question}", "课程：{question}"),
    "lesson.verdict.runs": ("Runs", "运行"),
    "lesson.verdict.wall": ("Wall time: {seconds} s on {model}.", "耗时：{seconds} 秒，模型 {model}。"),
    "lesson.reason.too_few_steps": ("Only {steps} steps ran in the shortest run: too few for the effect to build up.",
                                    "最短的一次运行只跑了 {steps} 步：效应来不及显现。"),
    "lesson.reason.seed_noise": ("The arms' ranges over the seeds overlap: the difference is within seed-to-seed noise.",
                                 "各组在不同随机种子下的取值范围相互重叠：差异没有超出种子间的噪声。"),
    "lesson.reason.one_seed": ("One seed per run cannot separate a small effect from noise: repeat with other seeds.",
                               "每组只有一个随机种子，无法把小效应与噪声区分开：换几个种子重复。"),
    "lesson.reason.noise": ("A batch of a dozen samples is noisy and a few steps are short; "
                            "the effect may need more steps or seeds, or may not hold for these tasks.",
                            "十来个样本的批次噪声很大，几步也很短；这个效应可能需要更多步数或种子，也可能对这些任务不成立。"),
    # --- the Lessons tab ---
    "lab.tab_lessons": ("Lessons", "课程"),
    "lab.lessons_note": ("A question every PPO class asks, answered by an experiment: a control run and treatments "
                         "with the same seed. The runs appear on the Runs tab; the verdict is computed from their "
                         "numbers.", "每堂 PPO 课都会问到的问题，用一次实验来回答：一个对照运行加若干处理组，随机种子相同。"
                         "这些运行会出现在“运行”标签页；结论由它们的数字算出。"),
    "lab.lesson_picker": ("Lesson", "课程"),
    "lab.lesson_run": ("Run lesson", "运行课程"),
    "lab.lesson_download": ("⬇ Verdict (.md)", "⬇ 结论（.md）"),
    "lesson.ui.running": ("Running the lesson's runs; the verdict follows when they end.",
                          "正在运行本课的各次运行；结束后给出结论。"),
    "lesson.ui.done": ("The lesson's runs ended; the verdict is on the Lessons tab.",
                       "本课的运行已结束；结论在“课程”标签页。"),
    # --- errors ---
    "lesson.error.unknown": ("Unknown lesson '{name}'. Choose one of: {names}.",
                             "没有名为“{name}”的课程。可选：{names}。"),
    "lesson.error.needs_knob": ("The lesson '{lesson}' needs the setting(s) {knobs}, which this version of the lab "
                                "does not have yet.", "课程“{lesson}”需要设置 {knobs}，当前版本的实验室还没有。"),
    "lesson.error.seeds": ("Seeds must be distinct whole numbers from 0 to 2147483647, separated by commas; got '{value}'.",
                           "随机种子必须是 0 到 2147483647 之间互不相同的整数，用逗号分隔；收到的是“{value}”。"),
    "lesson.error.steps": ("Steps must be at least 1; got {steps}.", "步数至少为 1；收到的是 {steps}。"),
    "lesson.error.no_name": ("Name a lesson (see --list).", "请给出课程名（见 --list）。"),
    # --- What does beta do? ---
    "lesson.beta.question": ("What does β do?", "β 有什么作用？"),
    "lesson.beta.expected": ("without the KL penalty (β = 0) the policy's KL to the reference, averaged over the last "
                             "three steps, ends higher than with a large β, for every seed (the lowest β = 0 run above "
                             "the highest β = 0.5 run).",
                             "没有 KL 惩罚（β = 0）时，策略相对参考模型的 KL（最后三步平均）最终高于大 β 的运行，且对每个随机种子都成立"
                             "（β = 0 最低的一次高于 β = 0.5 最高的一次）。"),
    "lesson.arm.beta_zero": ("β = 0", "β = 0"),
    "lesson.arm.beta_large": ("β = 0.5", "β = 0.5"),
    "lesson.beta.check.kl": ("KL per token, last steps: {zero} {a} vs {large} {b}",
                             "每个 token 的 KL（最后几步）：{zero} 为 {a}，{large} 为 {b}"),
    "lesson.beta.note.reward": ("mean reward, last steps: {zero} {a}, {large} {b}",
                                "平均奖励（最后几步）：{zero} 为 {a}，{large} 为 {b}"),
    # --- Why clip? ---
    "lesson.clip.question": ("Why clip?", "为什么要裁剪（clip）？"),
    "lesson.clip.expected": ("with one PPO epoch on one mini-batch the ratio stays 1 (approx KL below 1e-4, clip "
                             "fraction 0); with 8 epochs the policy moves away from the one that sampled, and the "
                             "largest approx KL old→new is higher without the clip (ε = 10) than with it (ε = 0.2).",
                             "只做 1 轮 PPO 更新、1 个小批时比率恒为 1（近似 KL 低于 1e-4，裁剪比例为 0）；"
                             "做 8 轮更新时策略会偏离采样时的策略，且不裁剪（ε = 10）时旧→新的最大近似 KL "
                             "高于裁剪（ε = 0.2）时。"),
    "lesson.arm.one_epoch": ("1 epoch, 1 mini-batch", "1 轮更新，1 个小批"),
    "lesson.arm.clipped": ("8 epochs, ε = 0.2", "8 轮更新，ε = 0.2"),
    "lesson.arm.unclipped": ("8 epochs, ε = 10 (no clip)", "8 轮更新，ε = 10（不裁剪）"),
    "lesson.clip.check.one_epoch": ("{arm}: largest approx KL {kl}, largest clip fraction {clip}",
                                    "{arm}：最大近似 KL 为 {kl}，最大裁剪比例为 {clip}"),
    "lesson.clip.check.kl": ("largest approx KL old→new: {free} {a} vs {clipped} {b}",
                             "旧→新的最大近似 KL：{free} 为 {a}，{clipped} 为 {b}"),
    "lesson.clip.note.clip_frac": ("{clipped}: mean clip fraction {c}", "{clipped}：平均裁剪比例 {c}"),
    "lesson.clip.note.success": ("success rate, last steps: {free} {a}, {clipped} {b}",
                                 "成功率（最后几步）：{free} 为 {a}，{clipped} 为 {b}"),
    # --- Why is the KL negative? ---
    "lesson.kl_negative.question": ("Why is the KL negative?", "为什么 KL 会是负的？"),
    "lesson.kl_negative.expected": ("once the policy has moved, k1 = log π − log π_ref is below zero on some sampled "
                                    "tokens (a sample estimate, not the KL itself), while k3 = (q − 1) − log q is never "
                                    "below zero (up to rounding, 1e-4).",
                                    "策略一旦更新，k1 = log π − log π_ref 在部分采样 token 上小于零（它是样本估计，不是 KL 本身）；"
                                    "而 k3 = (q − 1) − log q 永远不小于零（舍入误差 1e-4 以内）。"),
    "lesson.arm.k_one": ("KL estimator k1", "KL 估计量 k1"),
    "lesson.arm.k_three": ("KL estimator k3", "KL 估计量 k3"),
    "lesson.kl_negative.check.k_one": ("{arm}: fraction of tokens with a negative KL_t: {frac}; the lowest KL_t: {low}",
                                       "{arm}：KL_t 为负的 token 比例为 {frac}；最小的 KL_t 为 {low}"),
    "lesson.kl_negative.check.k_three": ("{arm}: the lowest KL_t: {low}", "{arm}：最小的 KL_t 为 {low}"),
    "lesson.kl_negative.note.step": ("{arm}: the lowest per-step mean KL: {low}",
                                     "{arm}：各步平均 KL 的最小值为 {low}"),
    "lesson.kl_negative.note.exact": ("{arm}: the lowest exact KL (summed over the vocabulary): {low}",
                                      "{arm}：精确 KL（对整个词表求和）的最小值为 {low}"),
    # --- What is the critic for? ---
    "lesson.critic.question": ("What is the critic for?", "价值网络（critic）有什么用？"),
    "lesson.critic.expected": ("with GAE and a learned value V the advantages the loss multiplies are smaller (root "
                               "mean square, last three steps) than REINFORCE's raw returns without a baseline, and "
                               "the critic explains part of the returns (explained variance above 0).",
                               "使用 GAE 和学到的价值 V 时，损失所乘的优势（最后三步的均方根）小于不带基线的 REINFORCE "
                               "直接使用的回报，并且 critic 能解释一部分回报（解释方差大于 0）。"),
    "lesson.arm.gae": ("GAE with a critic", "GAE（带 critic）"),
    "lesson.arm.reinforce": ("REINFORCE, no baseline", "REINFORCE（无基线）"),
    "lesson.critic.check.rms": ("advantage size (RMS): {gae} {a} vs {raw} {b}",
                                "优势的大小（均方根）：{gae} 为 {a}，{raw} 为 {b}"),
    "lesson.critic.check.ev": ("{gae}: explained variance {ev}", "{gae}：解释方差 {ev}"),
    "lesson.critic.note.mean": ("mean advantage: {gae} {a}, {raw} {b}", "平均优势：{gae} 为 {a}，{raw} 为 {b}"),
    # --- Why does GRPO sometimes learn nothing? ---
    "lesson.grpo_zero.question": ("Why does GRPO sometimes learn nothing?", "为什么 GRPO 有时什么也学不到？"),
    "lesson.grpo_zero.expected": ("on tasks the model never solves, the four answers to a prompt all get the same "
                                  "reward, so more groups tie and more advantages are exactly 0 than on tasks it "
                                  "sometimes solves.",
                                  "在模型从来答不对的任务上，同一个提示的四个回答得到相同的奖励，因此比起它有时能答对的任务，"
                                  "会有更多组打平、更多优势恰好为 0。"),
    "lesson.arm.mixed": ("tasks it sometimes solves", "有时能答对的任务"),
    "lesson.arm.never": ("tasks it never solves", "从来答不对的任务"),
    "lesson.grpo_zero.check.tied": ("fraction of tied groups: {never} {a} vs {mixed} {b}",
                                    "打平的组所占比例：{never} 为 {a}，{mixed} 为 {b}"),
    "lesson.grpo_zero.check.zero": ("fraction of tokens with advantage 0: {never} {a} vs {mixed} {b}",
                                    "优势为 0 的 token 比例：{never} 为 {a}，{mixed} 为 {b}"),
    "lesson.grpo_zero.note.kl": ("largest approx KL old→new (how far an update moved the policy): {never} {a}, "
                                 "{mixed} {b}", "旧→新的最大近似 KL（一次更新让策略移动了多远）：{never} 为 {a}，{mixed} 为 {b}"),
    # --- Reward hacking ---
    "lesson.reward_hacking.question": ("Reward hacking: can the reward rise while the answers get no better?",
                                       "奖励投机：奖励上升，答案却没有变好？"),
    "lesson.reward_hacking.expected": ("with a heavy length penalty (0.5 per character) the reward is a proxy the "
                                       "policy can game by saying less: from the first two steps to the last three "
                                       "the mean reward rises while the success rate does not.",
                                       "长度惩罚很重（每个字符 0.5）时，奖励成了可以靠少说话来投机的代理指标：从前两步到最后三步，"
                                       "平均奖励上升，而成功率没有上升。"),
    "lesson.arm.honest": ("length penalty 0.002", "长度惩罚 0.002"),
    "lesson.arm.hacked": ("length penalty 0.5", "长度惩罚 0.5"),
    "lesson.reward_hacking.check.proxy": ("{arm}: change of the mean reward (the proxy): {d}",
                                          "{arm}：平均奖励（代理指标）的变化 {d}"),
    "lesson.reward_hacking.check.truth": ("{arm}: change of the success rate (the truth): {d}",
                                          "{arm}：成功率（真实目标）的变化 {d}"),
    "lesson.reward_hacking.note.length": ("{arm}: change of the response length in tokens: {d}",
                                          "{arm}：回答长度（token 数）的变化 {d}"),
    "lesson.reward_hacking.note.honest": ("{arm}: change of the success rate: {d}", "{arm}：成功率的变化 {d}"),
    # --- Why must dropout be off? ---
    "lesson.dropout.question": ("Why is dropout off in the PPO update?", "为什么 PPO 更新时要关掉 dropout？"),
    "lesson.dropout.expected": ("with one epoch on one mini-batch and dropout off, the update recomputes exactly the "
                                "policy that sampled (approx KL below 1e-4); with LoRA dropout on, the ratio moves "
                                "away from 1 before the weights change and approx KL is higher.",
                                "只做 1 轮更新、1 个小批 且关闭 dropout 时，更新时算出的正是采样时的策略"
                                "（近似 KL 低于 1e-4）；打开 LoRA dropout 后，权重还没变比率就偏离了 1，近似 KL 更高。"),
    "lesson.arm.no_dropout": ("dropout off in the update", "更新时关闭 dropout"),
    "lesson.arm.dropout": ("LoRA dropout on in the update", "更新时打开 LoRA dropout"),
    "lesson.dropout.check.off": ("{arm}: largest approx KL {kl}", "{arm}：最大近似 KL 为 {kl}"),
    "lesson.dropout.check.on": ("largest approx KL: {on} {a} vs {off} {b}", "最大近似 KL：{on} 为 {a}，{off} 为 {b}"),
    "lesson.dropout.note.clip": ("{arm}: largest clip fraction {c}", "{arm}：最大裁剪比例 {c}"),
    # --- Length bias ---
    "lesson.length_bias.question": ("Does the loss's averaging bias the length?", "损失的平均方式会让长度产生偏差吗？"),
    "lesson.length_bias.expected": ("averaged per sequence, a long wrong answer's tokens share the penalty, so "
                                    "responses grow more (or shrink less) than with the mean over all tokens.",
                                    "按序列平均时，一个长的错误回答的各个 token 分摊惩罚，因此回答会比按所有 token 平均时"
                                    "变得更长（或缩短得更少）。"),
    "lesson.arm.token_mean": ("loss: mean over all tokens", "损失：对所有 token 求平均"),
    "lesson.arm.seq_mean": ("loss: mean per sequence", "损失：先在每个序列内平均"),
    "lesson.length_bias.check.length": ("change of the response length in tokens: {seq} {a} vs {tok} {b}",
                                        "回答长度（token 数）的变化：{seq} 为 {a}，{tok} 为 {b}"),
    "lesson.length_bias.note.last": ("response length, last steps: {seq} {a}, {tok} {b}",
                                     "回答长度（最后几步）：{seq} 为 {a}，{tok} 为 {b}"),
}
