"""Preferences, the reward model and DPO: errors and the knobs' Chinese."""

MESSAGES: dict[str, tuple[str, str]] = {
    # --- the pairs table and its CSV ---------------------------------------------------------
    "preferences.error.empty_cell": (
        "Pair row {row} has no {column}: every row needs a prompt, a chosen and a rejected answer.",
        "偏好对第 {row} 行缺少 {column}：每一行都需要提示词、较好的回答（chosen）和较差的回答（rejected）。"),
    "preferences.error.cell_too_long": (
        "Pair row {row}'s {column} is {n} characters; the limit is {limit}.",
        "偏好对第 {row} 行的 {column} 有 {n} 个字符，上限是 {limit}。"),
    "preferences.error.same_answer": (
        "Pair row {row} has the same text as chosen and rejected: a pair needs two different answers.",
        "偏好对第 {row} 行的 chosen 与 rejected 完全相同：一对偏好需要两个不同的回答。"),
    "preferences.error.empty_table": (
        "The pairs table is empty: add at least one row of prompt, chosen and rejected.",
        "偏好对表格是空的：请至少添加一行提示词、较好的回答和较差的回答。"),
    "preferences.error.too_many": (
        "There are {n} pairs; the limit is {limit}.",
        "共有 {n} 对偏好，上限是 {limit}。"),
    "preferences.error.bad_csv": (
        "The pairs file is not valid CSV: {detail}.",
        "偏好对文件不是有效的 CSV：{detail}。"),
    "preferences.error.empty_file": (
        "The pairs file is empty.",
        "偏好对文件是空的。"),
    "preferences.error.header": (
        "A pairs CSV needs the header 'prompt,chosen,rejected'; found {found!r}.",
        "偏好对 CSV 需要表头 “prompt,chosen,rejected”；实际是 {found!r}。"),
    "preferences.error.unreadable": (
        "Cannot read the pairs file {path}: {detail}.",
        "无法读取偏好对文件 {path}：{detail}。"),
    "preferences.error.not_utf8": (
        "The pairs file {name} is not UTF-8 text; save it as UTF-8 and try again.",
        "偏好对文件 {name} 不是 UTF-8 文本；请另存为 UTF-8 后重试。"),
    "preferences.error.no_ranked_pairs": (
        "Every pair of sampled answers got the same rule score, so no pair could be ranked. "
        "Try more attempts, a higher temperature or longer answers.",
        "每一对采样回答的规则得分都相同，无法排出偏好对。请增加尝试次数、提高温度或允许更长的回答。"),
    # --- the reward model --------------------------------------------------------------------
    "preferences.error.too_few_pairs": (
        "The reward model needs at least {need} pairs with this held-out share ({holdout}); there are {n}.",
        "在当前留出比例（{holdout}）下，奖励模型至少需要 {need} 对偏好；现在只有 {n} 对。"),
    "preferences.error.no_reward_model": (
        "The reward source '{source}' needs a trained reward model: train one first (or pass --reward-model DIR), "
        "or set the reward source back to 'rule'.",
        "奖励来源 “{source}” 需要一个训练好的奖励模型：请先训练一个（或传入 --reward-model DIR），"
        "或把奖励来源改回 “rule”。"),
    "preferences.error.rm_missing": (
        "{path} holds no reward model: expected {files}.",
        "{path} 中没有奖励模型：应包含 {files}。"),
    "preferences.error.rm_unreadable": (
        "The reward model in {path} cannot be read: {detail}.",
        "无法读取 {path} 中的奖励模型：{detail}。"),
    "preferences.error.rm_wrong_model": (
        "The reward model's head reads hidden states of size {saved}; this model's are {found}. "
        "Was it trained on another model?",
        "奖励模型的打分头读取大小为 {saved} 的隐藏状态，而当前模型的是 {found}。它是否在另一个模型上训练的？"),
}

KNOBS_ZH: dict[str, tuple[str, str]] = {
    "reward_source": ("奖励来源", "rule：规则奖励（与种子一致）；reward_model：由偏好训练出的奖励模型打分（标准化后）；"
                      "both：两者相加。分数都加在最后一个真实 token 上"),
    "rm_lora_r": ("奖励模型 LoRA 秩", "奖励模型自己的 LoRA 的秩 r（与策略的 LoRA 分开）"),
    "rm_lora_alpha": ("奖励模型 LoRA alpha", "奖励模型 LoRA 的 alpha（缩放为 alpha/r）"),
    "rm_learning_rate": ("奖励模型学习率", "奖励模型的 LoRA 和打分头的 AdamW 步长"),
    "rm_epochs": ("奖励模型轮数", "遍历训练偏好对的次数"),
    "rm_batch_size": ("奖励模型批大小（对）", "每次梯度更新使用的偏好对数"),
    "rm_holdout": ("留出比例", "留出不参与训练的偏好对比例，用来衡量奖励模型在没见过的对上的成对准确率"),
    "rm_max_tokens": ("奖励模型回答最大 token 数", "打分前把回答截断到这么多 token（含 EOS）"),
    "rm_seed": ("奖励模型随机种子", "留出划分、打乱顺序和 LoRA 初始化所用的种子"),
    "dpo_beta": ("DPO β", "−log σ(β[(log π(y_w) − log π_ref(y_w)) − (log π(y_l) − log π_ref(y_l))]) 中的 β："
                 "偏好能把策略拉离参考策略多远（越小拉得越远）"),
}
