"""Status lines of a run, what the next Train press does, and the waiting toasts."""

MESSAGES: dict[str, tuple[str, str]] = {
    "status.base": ("Base model, no adapter yet. Press Train.", "基座模型，还没有适配器。按“训练”开始。"),
    "status.adapter": ("Adapter on {model}: {describe}.", "{model} 上的适配器：{describe}。"),
    "status.model_loading": (
        "Loading {model}… the page works meanwhile (the first start converts the embedded model, about 30 s).",
        "正在加载 {model}……页面可以先用（内置模型第一次启动需要转换，约 30 秒）。"),
    "status.model_failed": ("The model {model} could not be loaded: {error}", "模型 {model} 加载失败：{error}"),
    "status.waiting_turn": (
        "Waiting for the model: {ahead} ahead of you. Visitors take turns, one training step each ({done}/{total} steps done).",
        "等待模型：前面还有 {ahead} 个。访客轮流使用模型，每人一次一个训练步（已完成 {done}/{total} 步）。"),
    "toast.waiting_turn": (
        "Waiting for the model: {ahead} ahead of you. Visitors take turns, one training step each.",
        "等待模型：前面还有 {ahead} 个。访客轮流使用模型，每人一次一个训练步。"),
    "status.stopped_before_start": ("Stopped before the first step.", "在第一步之前已停止。"),
    "status.budget": (
        "Stopped after {done} of {total} steps ({run}): this server's compute budget per Train press ({budget}) is used up. The adapter is kept; press Train to continue.",
        "{run} 在 {total} 步中的第 {done} 步后停止：本服务器每次按“训练”的计算预算（{budget}）已用完。适配器已保留；按“训练”继续。"),
    "status.sampling": ("Sampling step {step}/{total} ({run})…", "正在采样第 {step}/{total} 步（{run}）……"),
    "status.step": (
        "Step {done}/{total} · {run} · {per_step:.1f} s/step · ETA {eta} · reward {reward:+.3f} · success {success:.0%} · KL/token {kl:+.4f} · {trained} in total",
        "第 {done}/{total} 步 · {run} · {per_step:.1f} 秒/步 · 预计还需 {eta} · 奖励 {reward:+.3f} · 成功率 {success:.0%} · 每 token KL {kl:+.4f} · {trained}"),
    "status.stopping_prefix": ("Stopping… ", "正在停止…… "),
    "status.stopping": ("Stopping after the current step…", "当前这一步结束后停止……"),
    "status.nothing_running": ("Nothing is running.", "没有正在进行的训练。"),
    "status.stopped": (
        "Stopped after {done} of {total} steps ({run}); the adapter is kept.",
        "在第 {done}/{total} 步停止（{run}）；适配器已保留。"),
    "status.error_end": ("Run ended with an error after {done} step(s): {error}", "训练在 {done} 步后因错误结束：{error}"),
    "status.reset": (
        "Reset: back to the base model. {run} is kept on the Runs tab; Train starts a new run.",
        "已重置：回到基座模型。{run} 保留在“运行”页；按“训练”开始新的运行。"),
    "status.reset_empty": ("Reset: back to the base model, no adapter.", "已重置：回到基座模型，没有适配器。"),
    "status.loaded_adapter": ("Loaded adapter: {describe}. Train continues from it.", "已加载适配器：{describe}。训练将从它继续。"),
    "status.queued": (
        "Queued {n} runs: {names}. Press Train to run them one after another.",
        "已排队 {n} 个运行：{names}。按“训练”依次运行。"),
    "eta.unknown": ("?", "?"),
    "eta.minutes": ("{m}m {s:02d}s", "{m} 分 {s:02d} 秒"),
    "eta.seconds": ("{s}s", "{s} 秒"),
    "next.plan": ("Train runs the {n} queued runs: {names}.", "“训练”将依次运行排队的 {n} 个运行：{names}。"),
    "next.running": ("Training {run}… Stop ends it after the current step.", "正在训练 {run}……“停止”会在当前这一步结束后停止。"),
}
