"""Files: download the adapter and the metrics, load an adapter back, export the run for TRL,
veRL and OpenRLHF."""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path

from ...config import ConfigError
from ...export import TARGETS as EXPORT_TARGETS, export_record, make_run_record, zip_bundle
from ...peft_format import (FORMAT_PEFT, LAB_SETTINGS_FILE, PEFT_WEIGHTS_FILE, VALUE_HEAD_FILE, adapter_format,
                            base_model_id, load_any_adapter, save_adapter, save_peft_adapter)
from ...policy import ADAPTER_CONFIG_FILE, ADAPTER_FILE, OPTIMIZER_FILE, PolicyState, hidden_size
from .. import model_work
from ..errors import user_error, user_errors
from ..i18n import t
from ..limits import Limits
from ..model_gate import MODEL_GATE
from ..model_work import registry_key
from ..session import ModelRegistry, Session
from .common import (TrainView, adapter_config, build_config, build_reward, build_tasks, check_room_for_runs,
                     describe_state, load_model, model_job_errors, tell_waiting, view_of)
from .runs import export_runs_csv


def export_adapter(session: Session) -> str | None:
    """A zip of the current run's adapter, or None without one: PEFT format in LoRA mode (adapter_config.json,
    adapter_model.safetensors, plus value_head.safetensors and ppo_lab.json), the lab's own
    format (adapter.safetensors + adapter_config.json) for a full fine-tune. Both also carry
    optimizer.safetensors (AdamW's moments and step count) when the session has trained, so
    that training the uploaded zip continues exactly as if it had never stopped."""
    state = session.policy_state
    if state is None:
        return None
    folder = Path(tempfile.mkdtemp(dir=session.files_dir()))
    names = save_adapter(state, folder)  # as `train --out` saves it
    stem = f"ppo-lora-{(session.model_name or 'model').replace('/', '_')}-{state.steps_trained}steps"
    target = folder / f"{stem}.zip"
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in names:
            zf.write(folder / name, name)
    return str(target)


def export_run(session: Session, model: str, knobs: dict, table, match_mode: str, length_penalty, *,
               registry: ModelRegistry, limits: Limits, lang: str = "en") -> str:
    """A zip with the run as bundles for TRL, veRL and OpenRLHF (trl/, verl/, openrlhf/), built
    from the tasks, reward and knobs on the page, with the current run's adapter if it has one."""
    config = build_config(knobs, limits, lang)
    tasks = build_tasks(table, limits, lang)
    reward = build_reward(match_mode, length_penalty, tasks, lang)
    # The EOS text only matters to OpenRLHF's reward (it sees special tokens); no model is
    # loaded just for it.
    eos = registry.get(model).tokenizer.eos_token if registry.is_loaded(model) else ""
    state = session.policy_state if session.model_name == model else None
    record = make_run_record(model, tasks, reward, config, eos_token=eos or "",
                             steps_trained=state.steps_trained if state else 0)
    root = Path(tempfile.mkdtemp(dir=session.files_dir()))
    adapter = None
    if state is not None and state.mode == "lora":
        adapter = root / "adapter"
        save_peft_adapter(state, adapter)
    bundle = root / "ppo-lab-export"
    with user_errors(lang=lang):
        for target in EXPORT_TARGETS:
            export_record(record, target, bundle / target, adapter_dir=adapter)
    return str(zip_bundle(bundle, root / f"ppo-lab-export-{model.replace('/', '_')}.zip"))


def export_metrics(session: Session, lang: str = "en") -> str | None:
    """Every kept run's metrics in one CSV (see :func:`export_runs_csv`)."""
    return export_runs_csv(session, lang)


# The files an uploaded adapter may consist of: PEFT format (what Download gives) or the lab's
# older format (adapter.safetensors + adapter_config.json), either with optimizer.safetensors.
ADAPTER_UPLOAD_FILES = (ADAPTER_CONFIG_FILE, PEFT_WEIGHTS_FILE, VALUE_HEAD_FILE, LAB_SETTINGS_FILE, ADAPTER_FILE,
                        OPTIMIZER_FILE)


def _gather_adapter_files(paths: list[str], folder: Path, max_bytes: int, lang: str = "en") -> None:
    """Put the adapter's files into ``folder`` from a zip or the files themselves. Gradio already
    refused uploads over the limit while they arrived; a zip's members are checked here."""
    for path in paths:
        p = Path(path)
        if p.stat().st_size > max_bytes:
            raise user_error(t("error.file_too_large", lang, name=p.name, mb=max_bytes // 1024 ** 2))
        if p.suffix.lower() == ".zip":
            try:
                with zipfile.ZipFile(p) as zf:
                    for info in zf.infolist():
                        base = Path(info.filename).name  # ignore folders inside the zip
                        if base in ADAPTER_UPLOAD_FILES:
                            if info.file_size > max_bytes:
                                raise user_error(t("error.zip_member_too_large", lang, name=base))
                            (folder / base).write_bytes(zf.read(info))
            except zipfile.BadZipFile:
                raise user_error(t("error.bad_zip", lang, name=p.name)) from None
        elif p.name in ADAPTER_UPLOAD_FILES:
            shutil.copyfile(p, folder / p.name)
        elif p.suffix.lower() == ".safetensors":  # renamed on the way (the older format's weights)
            shutil.copyfile(p, folder / ADAPTER_FILE)
        elif p.suffix.lower() == ".json":
            shutil.copyfile(p, folder / ADAPTER_CONFIG_FILE)
        else:
            raise user_error(t("error.adapter_files", lang, name=p.name, weights=PEFT_WEIGHTS_FILE,
                               config=ADAPTER_CONFIG_FILE))


def _read_uploaded_adapter(folder: Path, model: str, registry: ModelRegistry, lang: str = "en") -> PolicyState:
    """Either format. A PEFT adapter made by peft has no value head: a fresh (zero) one is made
    for the selected model, which is then loaded to learn its width."""
    with user_errors(lang=lang):
        fmt = adapter_format(folder)
        hidden = None
        if fmt == FORMAT_PEFT and not (folder / VALUE_HEAD_FILE).is_file():
            hidden = hidden_size(load_model(registry, model, lang).model)
        state = load_any_adapter(folder, hidden)
    if state.model_name and base_model_id(state.model_name) == base_model_id(model):
        state.model_name = model  # e.g. 'HuggingFaceTB/SmolLM2-135M-Instruct' from peft = the embedded model
    return state


def import_adapter(session: Session, files, model: str, knobs: dict, *, registry: ModelRegistry,
                   limits: Limits, lang: str = "en") -> tuple[TrainView, dict]:
    """Load a saved adapter into the session after checking it fits the selected model.

    The adapter becomes a new run (the current one is kept), which Train continues. Returns the
    view and the knob values the adapter implies (mode, LoRA shape), so the controls show what
    will be continued. Any problem: gr.Error, session unchanged.
    """
    if not files:
        raise user_error(t("error.choose_adapter", lang))
    if session.running:
        raise user_error(t("error.running_other", lang))
    paths = [files] if isinstance(files, (str, Path)) else [getattr(f, "name", f) for f in files]
    config = build_config(knobs, limits, lang)
    with tempfile.TemporaryDirectory() as tmp:
        _gather_adapter_files([str(p) for p in paths], Path(tmp), limits.max_upload_bytes, lang)
        state = _read_uploaded_adapter(Path(tmp), model, registry, lang)
    if state.model_name and state.model_name != model:
        raise user_error(t("error.adapter_model", lang, model=state.model_name))
    try:
        config = adapter_config(config, state)
    except ConfigError as exc:
        raise user_error(t("error.adapter_settings", lang, error=exc)) from None
    check_room_for_runs(session, 1, lang)
    load_model(registry, model, lang)
    with MODEL_GATE.turn(session.session_id, on_wait=tell_waiting(lang)), model_job_errors(lang):  # trial load: shapes and names must fit this model
        model_work.check_fits_model(registry_key(registry), model, config, state)
    previous = session.runs.runs[-1] if session.runs.runs else None
    session.reset()
    with user_errors(lang=lang):
        session.runs.start(config.to_dict(), dict(previous.reward) if previous else {},
                           list(previous.tasks) if previous else [], model)
    session.policy_state = state
    knob_values = {k: v for k, v in config.to_dict().items()
                   if k in ("mode", "lora_r", "lora_alpha", "lora_dropout", "lora_targets")}
    knob_values["lora_targets"] = ", ".join(knob_values["lora_targets"])
    return view_of(session, t("status.loaded_adapter", lang, describe=describe_state(state, lang))), knob_values
