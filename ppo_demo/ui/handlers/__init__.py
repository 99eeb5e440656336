"""The app's event functions, one file per feature: plain values in, plain values (or a
generator of them) out. The wiring (``ppo_demo.ui.wiring``) turns them into component updates;
the tests call them directly.

* ``common``  shared input checks (model, knobs, tasks, reward, the chosen run) and ``TrainView``
* ``train``   Train, Stop, Reset and the status lines of a run
* ``runs``    the Runs tab: next press, delete a run, the KL demo, the all-runs CSV
* ``compare`` Compare one prompt, Evaluate every task
* ``files``   adapter download / upload, metrics CSV, export for TRL, veRL and OpenRLHF
* ``tasks``   the task table, task presets, knob presets and the page's start values
* ``probe``   Check the reward: K answers per task, scored, flagged before training
"""

from .common import (SETUP_PREFIX, TrainView, build_config, build_reward, build_tasks, health_warnings, idle_status,
                     resolve_model, setup_message, table_rows)
from .compare import EVAL_HEADERS, EVAL_KEYS, check_compare, check_evaluate, compare, eval_headers, evaluate
from .files import ADAPTER_UPLOAD_FILES, export_adapter, export_metrics, export_run, import_adapter
from .probe import check_probe, probe, probe_samples
from .runs import delete_run, export_runs_csv, next_press, queue_kl_demo, rename_run
from .tasks import (changed_knobs, compare_pick, default_knobs, download_tasks, preset_knobs, preset_tasks,
                    start_settings, upload_tasks)
from .train import check_train, reset, step_status, stop, train, waiting_status

__all__ = [
    "ADAPTER_UPLOAD_FILES", "EVAL_HEADERS", "EVAL_KEYS", "SETUP_PREFIX", "TrainView", "build_config",
    "build_reward", "build_tasks", "changed_knobs", "check_compare", "check_evaluate", "check_probe", "check_train",
    "compare", "compare_pick", "default_knobs", "delete_run", "download_tasks", "eval_headers", "evaluate",
    "export_adapter", "export_metrics", "export_run", "export_runs_csv", "health_warnings", "idle_status",
    "import_adapter", "next_press", "preset_knobs", "preset_tasks", "probe", "probe_samples", "queue_kl_demo",
    "rename_run", "reset", "resolve_model", "setup_message", "start_settings", "step_status", "stop", "table_rows",
    "train", "upload_tasks", "waiting_status",
]
