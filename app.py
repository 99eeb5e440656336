"""PPO-LoRA Lab: ``python app.py`` serves the Gradio app (also the Hugging Face Space entry point).

Environment: PPO_DEMO_MODEL picks the base model loaded at start (default: the embedded
SmolLM2-135M-Instruct); GRADIO_SERVER_NAME / GRADIO_SERVER_PORT the address; the PPO_DEMO_*
limits are described in ``ppo_demo/ui/limits.py``.
"""

from __future__ import annotations

import sys

from ppo_demo.ui.limits import LimitsError, limits_from_env


def main() -> None:
    try:
        limits = limits_from_env()
    except LimitsError as exc:  # a bad deployment setting: one clear line, no traceback
        sys.exit(f"error: {exc}")
    from ppo_demo.cpu_tuning import configure_cpu_runtime
    from ppo_demo.ui.layout import build_demo, launch_kwargs
    from ppo_demo.ui.session import ModelRegistry

    configure_cpu_runtime()  # process-wide allocator and thread settings, once at start-up
    registry = ModelRegistry()
    registry.preload(limits.start_model)  # in the background: the page is usable at once
    demo = build_demo(limits, registry)
    # Model events set their own limit (they take fair turns at the model); this one covers the light events.
    demo.queue(default_concurrency_limit=8, max_size=limits.queue_size)
    # Gradio reads GRADIO_SERVER_NAME / GRADIO_SERVER_PORT itself; max_file_size makes its upload
    # route refuse a file over PPO_DEMO_MAX_UPLOAD_MB while it arrives.
    demo.launch(**launch_kwargs(), **limits.launch_kwargs())


if __name__ == "__main__":
    main()
