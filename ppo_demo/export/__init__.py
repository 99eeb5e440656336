"""Export a run to the tools the field trains with: TRL, veRL, OpenRLHF.

``export_run(run_dir, target, out_dir)`` reads ``run.json`` (written by ``train --out``) and
writes a bundle: the tasks in the tool's data format, ``reward.py`` (our rule reward, standalone)
and a launch script mapping every knob that has a counterpart (a comment for each that has none).
The trained adapter (PEFT format), if the run has one, is copied to ``adapter/``.

No module here imports trl, verl or openrlhf: the bundles are text and data; the tests check
them against the real packages.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

from .openrlhf_export import SCRIPT as OPENRLHF_SCRIPT, write_openrlhf_bundle
from .reward_file import REWARD_FILE, reward_file_source
from .run_record import (RUN_FILE, ExportError, RunRecord, make_run_record, read_run_record,
                         write_run_record)
from .trl_export import SCRIPT as TRL_SCRIPT, write_trl_bundle
from .verl_export import SCRIPT as VERL_SCRIPT, write_verl_bundle

TARGETS = ("trl", "verl", "openrlhf")
_WRITERS = {"trl": write_trl_bundle, "verl": write_verl_bundle, "openrlhf": write_openrlhf_bundle}
LAUNCH = {
    "trl": f"python {TRL_SCRIPT}",
    "verl": f"bash {VERL_SCRIPT}",
    "openrlhf": f"ray start --head && bash {OPENRLHF_SCRIPT}",
}
_ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "value_head.safetensors", "ppo_lab.json")

__all__ = ["TARGETS", "ExportError", "RunRecord", "export_record", "export_run", "make_run_record",
           "read_run_record", "write_run_record", "zip_bundle"]


def export_record(record: RunRecord, target: str, out_dir: str | Path, adapter_dir: str | Path | None = None) -> Path:
    """Write the bundle for ``target`` into ``out_dir`` (created; existing files are overwritten)."""
    if target not in TARGETS:
        raise ExportError(f"Unknown export target {target!r}; choose one of {', '.join(TARGETS)}.")
    if all(task.held_out for task in record.tasks):
        from ..text import t
        raise ExportError(t("tasks.all_held_out"))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / REWARD_FILE).write_text(reward_file_source(record.reward, record.missing_eos_penalty, record.eos_token),
                                   encoding="utf-8")
    write_run_record(record, out)
    _WRITERS[target](record, out)
    if adapter_dir is not None and (Path(adapter_dir) / "adapter_model.safetensors").is_file():
        (out / "adapter").mkdir(exist_ok=True)
        for name in _ADAPTER_FILES:
            if (Path(adapter_dir) / name).is_file():
                shutil.copyfile(Path(adapter_dir) / name, out / "adapter" / name)
    (out / "README.md").write_text(_bundle_readme(record, target), encoding="utf-8")
    return out


def export_run(run_dir: str | Path, target: str, out_dir: str | Path) -> Path:
    """Export a ``train --out`` folder."""
    record = read_run_record(run_dir)
    return export_record(record, target, out_dir, adapter_dir=run_dir)


def zip_bundle(directory: str | Path, zip_path: str | Path) -> Path:
    """Zip a bundle folder (paths relative to it), for the app's download."""
    directory, zip_path = Path(directory), Path(zip_path)
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(directory).as_posix())
    return zip_path


def _bundle_readme(record: RunRecord, target: str) -> str:
    tool = {"trl": "TRL (GRPOTrainer + peft)", "verl": "veRL (PPO, GAE)", "openrlhf": "OpenRLHF (PPO, Ray)"}[target]
    return f"""# PPO-LoRA Lab run exported to {tool}

Base model: `{record.base_model}` ({len(record.tasks)} tasks, match mode `{record.reward.match_mode}`,
{record.knobs.steps} steps). Launch, from this folder, on a machine with the tool installed:

    {LAUNCH[target]}

- `reward.py`: the lab's rule reward with this run's settings, standalone (no import of ppo_demo);
  entry points for TRL (`trl_reward`), veRL (`compute_score`) and OpenRLHF (`reward_func`).
- `run.json`: tasks, reward settings and every knob of the run.
- `adapter/` (if present): the adapter trained in the lab, in PEFT format
  (`PeftModel.from_pretrained(base, "adapter")`); the launch script trains a new one from the base.
- The launch script maps each knob that has a counterpart and lists those that have none.
"""
