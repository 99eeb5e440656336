"""The page's own messages: gr.Error toasts and warnings about bad input."""

MESSAGES: dict[str, tuple[str, str]] = {
    "error.model_not_offered": (
        "Model '{name}' is not available on this server. Choose one of: {choices}.",
        "此服务器不提供模型 '{name}'。可选：{choices}。"),
    "error.full_finetune_off": (
        "Full fine-tuning is switched off on this server (each visitor would need gigabytes of memory); use LoRA mode.",
        "此服务器已关闭全参数微调（每位访客都需要数 GB 内存）；请使用 LoRA 模式。"),
    "error.ended_before_start": ("The run ended before it started.", "训练在开始前就结束了。"),
    "error.choose_model": ("Choose a model.", "请选择一个模型。"),
    "error.server_limit": (
        "{label} is limited to {cap} on this server; got {value}.",
        "{label} 在本服务器上最多为 {cap}；当前为 {value}。"),
    "error.match_mode": ("Match mode must be one of {choices}; got {value}.", "匹配方式必须是 {choices} 之一；当前为 {value}。"),
    "error.length_penalty": ("Length penalty must be a number; got {value}.", "长度惩罚必须是数字；当前为 {value}。"),
    "error.other_model": (
        "Your adapter was trained on '{trained}', not '{model}'. Switch the model back, or press Reset to start over on the new model.",
        "你的适配器是在“{trained}”上训练的，不是“{model}”。请切换回原模型，或按“重置”在新模型上重新开始。"),
    "error.setup": ("Could not set up the policy: {error}", "无法建立策略模型：{error}"),
    "error.already_running": ("A run is already going in this tab. Press Stop first.", "这个标签页已经在训练。请先按“停止”。"),
    "error.still_finishing": ("The run is still finishing its step; try again in a moment.", "训练还在完成当前这一步；请稍后再试。"),
    "error.no_prompt": ("Type a prompt or pick a task to compare.", "请输入提示词或选择一个任务来对比。"),
    "error.prompt_too_long": ("The prompt is {n} characters; the limit is {limit}.", "提示词有 {n} 个字符；上限是 {limit}。"),
    "error.running_compare": (
        "Training is running in this tab. Press Stop first, then Compare.",
        "这个标签页正在训练。请先按“停止”，再对比。"),
    "error.running_evaluate": (
        "Training is running in this tab. Press Stop first, then Evaluate.",
        "这个标签页正在训练。请先按“停止”，再评估。"),
    "error.running_other": ("Training is running in this tab. Press Stop first.", "这个标签页正在训练。请先按“停止”。"),
    "error.samples_whole": ("Samples per task must be a whole number; got {value}.", "每个任务的采样数必须是整数；当前为 {value}。"),
    "error.samples_range": (
        "Samples per task must be between 1 and {limit}; got {value}.",
        "每个任务的采样数必须在 1 到 {limit} 之间；当前为 {value}。"),
    "error.file_too_large": (
        "{name} is larger than this server's upload limit ({mb} MB).",
        "{name} 超过本服务器的上传上限（{mb} MB）。"),
    "error.zip_member_too_large": ("{name} in the zip is too large.", "压缩包里的 {name} 太大。"),
    "error.bad_zip": ("{name} is not a readable zip file.", "{name} 不是可读取的 zip 文件。"),
    "error.adapter_files": (
        "{name}: upload the .zip from Download, or the adapter's files ({weights} and {config}).",
        "{name}：请上传下载得到的 .zip，或适配器的文件（{weights} 和 {config}）。"),
    "error.choose_adapter": ("Choose the adapter .zip (or its two files) first.", "请先选择适配器 .zip（或它的两个文件）。"),
    "error.adapter_model": (
        "This adapter was trained on '{model}'; select that model first.",
        "这个适配器是在“{model}”上训练的；请先选择那个模型。"),
    "error.adapter_settings": ("The adapter's settings are invalid: {error}", "适配器的设置无效：{error}"),
    "error.unknown_task_preset": (
        "Unknown task preset '{name}'. Choose one of: {choices}.",
        "未知的任务预设“{name}”。请从以下选择：{choices}。"),
    "error.unknown_preset": ("Unknown preset '{name}'. Choose one of: {choices}.", "未知的预设“{name}”。请从以下选择：{choices}。"),
    "error.max_tasks": ("The limit is {limit} tasks.", "最多 {limit} 个任务。"),
    "error.max_runs": (
        "This tab keeps at most {limit} runs (they hold their adapters in memory). Delete a run on the Runs tab, then press Train again.",
        "每个标签页最多保留 {limit} 个运行（它们的适配器都在内存中）。请在“运行”页删除一个运行，然后再按“训练”。"),
    "error.max_runs_plan": (
        "The KL demo needs {need} free run slots and this tab has {free} (at most {limit} runs are kept). Delete runs on the Runs tab first.",
        "KL 演示需要 {need} 个空位，这个标签页只剩 {free} 个（最多保留 {limit} 个运行）。请先在“运行”页删除一些运行。"),
    "error.no_such_run": ("There is no run {number} any more; pick another one.", "运行 {number} 已不存在；请选择其他运行。"),
    "error.delete_running": ("{run} is training. Press Stop first, then delete it.", "{run} 正在训练。请先按“停止”，再删除。"),
    "error.pick_run": ("Pick a run to delete.", "请选择要删除的运行。"),
    "warning.tasks_changed": (
        "The tasks changed: {run} continues with the new tasks, and its per-task reward curves start over. Press Reset first to keep the two apart.",
        "任务已更改：{run} 用新任务继续训练，各任务的奖励曲线重新开始。若要分开比较，请先按“重置”。"),
    "warning.knobs_changed": (
        "{run} continues with {changes}. To see the effect side by side, press Reset first: a new run starts from the base model.",
        "{run} 将以 {changes} 继续训练。若要并排比较效果，请先按“重置”：新的运行会从基座模型开始。"),
}
