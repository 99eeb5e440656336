"""The reward probe (check the reward before training) and held-out tasks."""

MESSAGES: dict[str, tuple[str, str]] = {
    "probe.flag.already_solved": (
        "Already solved: every answer hits, so there is nothing to learn. Make the task harder or drop it.",
        "已经会了：每个回答都命中，没有可学的东西。把任务改难一些，或者删掉它。"),
    "probe.flag.never_solved": (
        "Never solved in the sample: no answer hits, so the reward gives no direction (with GRPO or RLOO "
        "every group ties and every advantage is 0). Loosen the expected answer, or reword the prompt.",
        "抽样中从未答对：没有一个回答命中，奖励给不出方向（用 GRPO 或 RLOO 时每组奖励都一样，优势全为 0）。"
        "放宽期望答案，或者改写提示。"),
    "probe.flag.no_reward_variance": (
        "The reward does not vary: every answer scores the same, so every advantage is 0 and PPO has "
        "nothing to push on.",
        "奖励没有差别：每个回答得分相同，优势全为 0，PPO 无从用力。"),
    "probe.flag.no_eos": (
        "The answers never end: most are cut at max new tokens, so the missing-EOS penalty ({penalty}) "
        "will dominate the reward. Raise max new tokens or ask for a shorter answer.",
        "回答停不下来：大多被 max new tokens 截断，缺少 EOS 的惩罚（{penalty}）会主导奖励。"
        "调高 max new tokens，或者要求更短的回答。"),
    "probe.flag.matches_everything": (
        "The pattern matches everything: it also hits unrelated text, so any answer is rewarded. "
        "Make the expected answer more specific.",
        "模式什么都匹配：连无关的文字也命中，任何回答都会得奖。把期望答案写得更具体。"),
    "probe.flag.matches_nothing": (
        "The pattern matches nothing the model says (no answer, line or word of one). Check its spelling, "
        "anchors (^ $) and escaping against the answers shown.",
        "模式匹配不到模型说的任何内容（整段、任一行或任一词都不行）。对照下面的回答检查拼写、锚点（^ $）和转义。"),
    "probe.header": (
        "Reward probe: {k} answers per task from the {policy}",
        "奖励检查：每个任务从{policy}采样 {k} 个回答"),
    "probe.policy.base": ("base model", "基础模型"),
    "probe.policy.adapter": ("current adapter", "当前适配器"),
    "probe.held_out_tag": (" [held out]", " [留出]"),
    "probe.task_line": (
        "task {index}{tag}: {prompt!r} -> {expected!r}\n    hit {hit:.2f}  reward {mean:+.3f} ± {std:.3f}  "
        "length {length:.1f} tokens  ended with EOS {eos:.2f}",
        "任务 {index}{tag}：{prompt!r} -> {expected!r}\n    命中率 {hit:.2f}  奖励 {mean:+.3f} ± {std:.3f}  "
        "长度 {length:.1f} 个 token  以 EOS 结尾 {eos:.2f}"),
    "probe.summary.train": ("training tasks: mean hit rate {hit:.2f}", "训练任务：平均命中率 {hit:.2f}"),
    "probe.summary.held_out": ("held-out tasks: mean hit rate {hit:.2f}", "留出任务：平均命中率 {hit:.2f}"),
    "probe.md.table_header": (
        "| task | prompt | expected | hit rate | reward (mean ± std) | length (tokens) | ended with EOS | flags |",
        "| 任务 | 提示词 | 期望答案 | 命中率 | 奖励（均值 ± 标准差） | 长度（token） | 以 EOS 结尾 | 标记 |"),
    "probe.md.tasks": ("tasks {tasks}", "任务 {tasks}"),
    "probe.md.answers": ("Task {index}: the {k} answers", "任务 {index}：{k} 个回答"),
    "probe.md.answers_header": ("| reward | hit | ended | answer |", "| 奖励 | 命中 | 结束 | 回答 |"),
    # the page (Tasks tab, Evaluate, the success chart)
    "lab.probe_btn": ("Check the reward", "检查奖励"),
    "lab.probe_info": (
        "Samples a few answers per task from the current policy (the base model before training) and scores "
        "them with this reward: a task that cannot teach anything is flagged before you train.",
        "从当前策略（训练前即基础模型）为每个任务采样几个回答，并用这里的奖励打分：学不到东西的任务会在训练前被标出来。"),
    "error.running_probe": ("Wait for the run to finish (or stop it) before checking the reward.",
                            "请等训练结束（或先停止）再检查奖励。"),
    "header.held_out": ("held out", "留出"),
    "header.training_tasks": ("training tasks", "训练任务"),
    "header.held_out_tasks": ("held-out tasks", "留出任务"),
    "series.heldout_success_rate": ("held-out success", "留出任务成功率"),
    "tasks.held_out_bad": (
        "Task row {row}'s held_out value {value!r} is neither true nor false (use true/false, yes/no or 1/0).",
        "第 {row} 行任务的 held_out 值 {value!r} 既不是真也不是假（请用 true/false、yes/no 或 1/0）。"),
    "tasks.all_held_out": (
        "Every task is held out, so there is nothing to train on: clear held_out on at least one task.",
        "所有任务都是留出任务，没有可训练的内容：至少把一个任务的 held_out 取消。"),
}
