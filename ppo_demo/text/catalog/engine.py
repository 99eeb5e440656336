"""The engine's errors about bad input (knobs, tasks, the reward): the CLI prints the English,
the page shows them in its language. ``{label}`` is the knob's label in the message's language
(the error carries the knob's name, see :class:`ppo_demo.text.LocalizedError`)."""

MESSAGES: dict[str, tuple[str, str]] = {
    # knobs (config.py)
    "config.not_choice": ("{label} must be one of {choices}; got {value}.", "{label} 必须是 {choices} 之一；当前为 {value}。"),
    "config.out_of_range": (
        "{label} must be between {low} and {high}; got {value}.", "{label} 必须在 {low} 到 {high} 之间；当前为 {value}。"),
    "config.not_number": ("{label} must be a number; got {value}.", "{label} 必须是数字；当前为 {value}。"),
    "config.not_int": ("{label} must be a whole number; got {value}.", "{label} 必须是整数；当前为 {value}。"),
    "config.not_bool": ("{label} must be true or false; got {value}.", "{label} 必须是 true 或 false；当前为 {value}。"),
    "config.not_kind": ("{label} must be {kind}; got {value}.", "{label} 必须是 {kind} 类型；当前为 {value}。"),
    "config.unknown_settings": ("Unknown setting(s): {names}.", "未知的设置：{names}。"),
    "config.unknown_preset": ("Unknown preset '{name}'. Choose one of: {choices}.", "未知的预设 '{name}'。可选：{choices}。"),
    "config.lora_targets": (
        "LoRA target modules must be a non-empty list of layer names.", "LoRA 目标模块必须是非空的层名称列表。"),
    "config.minibatches": (
        "Mini-batches ({n}) cannot exceed the batch size ({batch}).", "小批数（{n}）不能超过批大小（{batch}）。"),
    "config.group_too_small": (
        "{name} compares the answers to one prompt, so it needs a group size G of at least 2; got {value}. "
        "Try G = 4 with a batch of 8 or 12.",
        "{name} 比较同一提示词的多个回答，所以组大小 G 至少为 2；当前为 {value}。可以试试 G = 4、批大小 8 或 12。"),
    "config.batch_not_multiple": (
        "The batch size ({batch}) must be a multiple of the group size G ({group}): a step draws batch/G prompts "
        "and samples each G times.",
        "批大小（{batch}）必须是组大小 G（{group}）的倍数：每步抽 batch/G 个提示词，每个采样 G 次。"),
    "config.kl_target_number": ("Target KL must be a number; got {value}.", "目标 KL 必须是数字；当前为 {value}。"),
    "config.kl_target_positive": (
        "Target KL must be above 0 (leave it empty to keep β fixed); got {value}.",
        "目标 KL 必须大于 0（留空则 β 固定）；当前为 {value}。"),
    # tasks (tasks.py)
    "task.no_prompt": (
        "Task row {row} has an expected answer but no prompt.", "任务第 {row} 行有期望答案，但没有提示词。"),
    "task.no_expected": ("Task row {row} ('{prompt}') has no expected answer.", "任务第 {row} 行（'{prompt}'）没有期望答案。"),
    "task.prompt_too_long": (
        "Task row {row}'s prompt is {n} characters; the limit is {limit}.", "任务第 {row} 行的提示词有 {n} 个字符；上限是 {limit}。"),
    "task.empty_table": (
        "The task table is empty: add at least one prompt with its expected answer.",
        "任务表是空的：请至少添加一个提示词及其期望答案。"),
    "task.too_many": ("There are {n} tasks; the limit is {limit}.", "共有 {n} 个任务；上限是 {limit}。"),
    "task.bad_json": ("The task file is not valid JSON: {error} (line {line}).", "任务文件不是有效的 JSON：{error}（第 {line} 行）。"),
    "task.json_shape": (
        "A JSON task file must be a list of {shape} objects.", "JSON 任务文件必须是 {shape} 对象的列表。"),
    "task.bad_csv": ("The task file is not valid CSV: {error}.", "任务文件不是有效的 CSV：{error}。"),
    "task.empty_file": ("The task file is empty.", "任务文件是空的。"),
    "task.csv_header": (
        "A CSV task file needs the header 'prompt,expected'; found {found}.", "CSV 任务文件需要表头 'prompt,expected'；实际为 {found}。"),
    "task.unreadable": ("Cannot read the task file {path}: {error}.", "无法读取任务文件 {path}：{error}。"),
    "task.not_utf8": (
        "The task file {name} is not UTF-8 text; save it as UTF-8 and try again.", "任务文件 {name} 不是 UTF-8 文本；请另存为 UTF-8 后再试。"),
    # the reward (reward.py; RE2's own explanation stays as RE2 wrote it)
    "reward.bad_regex": (
        "The expected answer {answer} is not a valid regular expression: {error}.",
        "期望答案 {answer} 不是有效的正则表达式：{error}。"),
    "reward.re2_refuses": ("The expected answer {answer} {reason}", "期望答案 {answer} 无法使用（RE2）：{reason}"),
}
