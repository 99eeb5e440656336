"""The Runs tab: run names, the differences between runs, the KL demo."""

MESSAGES: dict[str, tuple[str, str]] = {
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
    "choice.current_run": ("the current run", "当前运行"),
}
