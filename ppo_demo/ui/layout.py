"""``build_demo()``: the page's parts (built in ``tabs``) and the wiring of their events.

No logic lives here beyond turning handler results into component updates: the handlers do
the work and the checking. The knob controls are generated from the knob definitions, so a
knob added to the config appears on the page (with its range and help) without touching this
file. Every event names its inputs; the names are the handler's parameters and the API's.

Concurrency: Train, Compare, Evaluate and adapter upload touch the shared model. Up to
``MODEL_EVENTS_AT_ONCE`` of them are let into the app together (``concurrency_id="model"``); there
they take fair turns at the model (``model_gate``: one training step or one Compare per turn, in
arrival order) and a waiting user is told how many are ahead. Beyond that, Gradio's queue holds
them and shows their position. Stop and the light events never wait behind them.
"""

from __future__ import annotations

import inspect
from typing import Any

import gradio as gr
import pandas as pd

from . import handlers, tabs
from .errors import user_error
from .heatmap import heatmap_html
from .i18n import I18N
from .limits import Limits, limits_from_env
from .plots import PLOT_SERIES, all_frames, colour_map, rollouts_frame
from .session import ModelRegistry, SessionStore
from .tabs import KNOB_NAMES, PLOT_NAMES, REWARD_NAMES, TASK_HEADERS, Components

# Each admitted model event holds one of Gradio's worker threads (40 by default) while it waits
# for its turn or streams its run, so admit fewer than that and leave threads for light events.
MODEL_EVENTS_AT_ONCE = 16
MODEL_JOB = dict(concurrency_id="model", concurrency_limit=MODEL_EVENTS_AT_ONCE)
LIGHT_JOB = dict(concurrency_limit=None)
LISTED_MODELS = ["smollm2-135m-instruct", "qwen2-0.5b-instruct"]

CSS = """
.gradio-container { font-size: 16px; }
#status textarea { font-family: ui-monospace, monospace; font-size: 15px; }
#control-bar { align-items: end; }
.heatmap { font-family: ui-monospace, monospace; font-size: 17px; line-height: 2.0; padding: 6px 4px; }
.heat-prompt { color: var(--body-text-color-subdued); font-size: 14px; margin-bottom: 4px; }
.heat-tokens { white-space: pre-wrap; word-break: break-all; }
.tok { border-radius: 3px; padding: 1px 0; margin-right: 1px; border: 1px solid rgba(127,127,127,0.25); }
.heat-legend { margin-top: 8px; font-size: 14px; display: flex; align-items: center; gap: 6px; }
.heat-legend .bar { display: inline-block; width: 140px; height: 12px; border-radius: 3px;
  background: linear-gradient(90deg, rgba(37,99,235,0.8), rgba(255,255,255,0.9), rgba(220,38,38,0.8)); }
.heatmap-empty { color: var(--body-text-color-subdued); padding: 12px; }
#base-output textarea, #adapted-output textarea { font-size: 17px; }
"""


def launch_kwargs() -> dict[str, Any]:
    """Arguments Gradio 6 takes at launch rather than in Blocks()."""
    return dict(i18n=I18N, css=CSS, theme=gr.themes.Soft(primary_hue="indigo", text_size="lg"))



def named_inputs(names: list[str], fn, generator: bool = False):
    """An event function with one named parameter per input (so the API documents ``steps``,
    ``kl_coef``... rather than ``param_7``) plus ``request``. ``fn(values: dict, request)``."""
    if generator:
        def wrapper(*args):
            *values, request = args
            yield from fn(dict(zip(names, values)), request)
    else:
        def wrapper(*args):
            *values, request = args
            return fn(dict(zip(names, values)), request)
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    wrapper.__signature__ = inspect.Signature(
        [inspect.Parameter(n, kind) for n in names] + [inspect.Parameter("request", kind, annotation=gr.Request)])
    wrapper.__annotations__ = {"request": gr.Request}
    wrapper.__name__ = fn.__name__
    return wrapper


def checked_model_job(button: gr.Button, c: Components, names: list[str], check, work, outputs: list, *,
                      api_name: str, generator: bool = False, before=None):
    """``button`` runs ``check(values, request)`` as a quick event with no outputs, then (on
    success, after the optional ``before`` step) ``work`` as a model job. A mistake is then a
    message on the tab where it can be fixed, no output is marked as failed, and nobody waits in
    the model queue to hear of it. The check is queued (with no limit) because Gradio shows no
    error toast for an unqueued event. The work itself checks again: the API can call it directly."""
    event = button.click(named_inputs(names, check), c.inputs(*names), None, concurrency_id="control",
                         api_visibility="private", **LIGHT_JOB)
    if before is not None:
        event = event.success(*before, queue=False, api_visibility="private")
    return event.success(named_inputs(names, work, generator=generator), c.inputs(*names), outputs,
                         api_name=api_name, **MODEL_JOB)


# --- view -> component updates ------------------------------------------------------------

def _heat(rollouts, index, quantity):
    n = len(rollouts)
    index = min(max(int(index or 0), 0), max(n - 1, 0))
    record = rollouts[index] if n else None
    return heatmap_html(record, quantity or "advantage"), gr.Slider(maximum=max(n - 1, 1), value=index)


def _download(path: str | None) -> gr.DownloadButton:
    """Greyed out while there is nothing to download (a live button that does nothing confuses)."""
    return gr.DownloadButton(value=path, interactive=path is not None)


def view_updates(view: handlers.TrainView, session, heat_index, heat_quantity, files: bool) -> tuple:
    """status, 5 plots, rollouts table, heatmap, rollout slider, 2 downloads."""
    frames = all_frames(view.history, view.task_labels)
    heat, slider = _heat(view.rollouts, heat_index, heat_quantity)
    downloads = ((_download(handlers.export_adapter(session)), _download(handlers.export_metrics(session)))
                 if files else (gr.skip(), gr.skip()))
    return (view.status, *[_plot(frames[p]) for p in PLOT_SERIES], rollouts_frame(view.rollouts), heat, slider,
            *downloads)


def _plot(frame: pd.DataFrame):
    # Never an empty frame: the chart would fix an empty colour domain and draw no lines later.
    return gr.LinePlot(value=frame, color_map=colour_map(frame)) if len(frame) else None


def build_demo(limits: Limits | None = None, registry: ModelRegistry | None = None,
               store: SessionStore | None = None) -> gr.Blocks:
    limits = limits or limits_from_env()
    registry = registry or ModelRegistry()
    store = store or SessionStore()
    knob_defaults = handlers.default_knobs(limits)
    model_choices = list(limits.allowed_models) if limits.allowed_models else list(
        dict.fromkeys([limits.start_model, *LISTED_MODELS]))
    start_tasks, start_match = handlers.preset_tasks("english")
    c = Components()

    def session_of(request: gr.Request):
        return store.get(getattr(request, "session_hash", None) or "anonymous")

    with gr.Blocks(title="PPO-LoRA Lab") as demo:
        tabs.header(c, limits, model_choices)
        with gr.Tabs(selected="tasks") as c["tabs"]:
            tabs.tasks_tab(c, limits, knob_defaults, start_tasks, start_match)
            tabs.knobs_tab(c, limits, knob_defaults)
            tabs.train_tab(c)
            tabs.compare_tab(c, limits, start_tasks)
            tabs.files_tab(c)
        wire_training(c, limits, registry, session_of)
        wire_tasks(c, limits, session_of)
        wire_compare(c, limits, registry, session_of)
        wire_files(c, limits, registry, session_of)

        # A closed tab stops its run and frees its adapter (the thread ends after its step).
        def on_unload(request: gr.Request):
            store.close(getattr(request, "session_hash", None) or "anonymous")

        demo.unload(on_unload)
    demo.ppo_limits, demo.ppo_registry, demo.ppo_store = limits, registry, store
    return demo


TRAIN_OUTPUTS = ["status", *PLOT_NAMES, "rollouts_table", "heatmap", "heat_index", "download_adapter",
                 "download_metrics"]


def _knobs_of(v: dict) -> dict:
    return {name: v[name] for name in KNOB_NAMES}


def _model_of(v: dict, limits: Limits) -> str:
    return handlers.resolve_model(v["model"], v["custom_model"], limits)


def wire_training(c: Components, limits: Limits, registry: ModelRegistry, session_of) -> None:
    """Train (checked first, then a model job streaming every step), Stop, Reset, the heatmap."""
    def on_train(v, request):
        session = session_of(request)
        for view in handlers.train(session, _model_of(v, limits), _knobs_of(v), v["tasks"], v["match_mode"],
                                   v["length_penalty"], registry=registry, limits=limits):
            yield view_updates(view, session, v["heat_index"], v["heat_quantity"], files=view.finished)

    def on_check_train(v, request):
        handlers.check_train(session_of(request), _model_of(v, limits), _knobs_of(v), v["tasks"], v["match_mode"],
                             v["length_penalty"], limits=limits)

    train_names = ["model", "custom_model", "tasks", *REWARD_NAMES, "heat_index", "heat_quantity", *KNOB_NAMES]
    checked_model_job(c["train_btn"], c, train_names, on_check_train, on_train, c.inputs(*TRAIN_OUTPUTS),
                      api_name="train", generator=True, before=(lambda: gr.Tabs(selected="train"), None, c["tabs"]))

    def on_stop(request: gr.Request):
        return handlers.stop(session_of(request))

    c["stop_btn"].click(on_stop, None, c["status"], api_name="stop", concurrency_id="control", **LIGHT_JOB)

    def on_reset(h_index, h_quantity, request: gr.Request):
        session = session_of(request)
        view = handlers.reset(session)
        # The Compare tab's answers and table came from the adapter that is now gone.
        return (*view_updates(view, session, h_index, h_quantity, files=True), "", "",
                pd.DataFrame(columns=handlers.EVAL_HEADERS))

    c["reset_btn"].click(on_reset, c.inputs("heat_index", "heat_quantity"),
                         c.inputs(*TRAIN_OUTPUTS, "base_output", "adapted_output", "eval_table"),
                         api_name="reset", concurrency_id="control", **LIGHT_JOB)

    def on_heat(h_index, h_quantity, request: gr.Request):
        return _heat(session_of(request).last_rollouts, h_index, h_quantity)[0]

    for name in ("heat_index", "heat_quantity"):
        c[name].change(on_heat, c.inputs("heat_index", "heat_quantity"), c["heatmap"], api_visibility="private",
                       **LIGHT_JOB)


def wire_tasks(c: Components, limits: Limits, session_of) -> None:
    """The task table's buttons, task presets, CSV in and out, and the knob presets."""
    def on_add_row(table):
        rows = handlers.table_rows(table)
        if len(rows) >= limits.max_tasks:
            raise user_error(f"The limit is {limits.max_tasks} tasks.")
        return pd.DataFrame(rows + [["", ""]], columns=TASK_HEADERS)

    def on_remove_row(table):
        rows = handlers.table_rows(table)
        return pd.DataFrame(rows[:-1] if len(rows) > 1 else [["", ""]], columns=TASK_HEADERS)

    def on_preset_tasks(name):
        rows, mode = handlers.preset_tasks(name)
        return pd.DataFrame(rows, columns=TASK_HEADERS), mode

    def on_upload_tasks(file):
        rows = handlers.upload_tasks(getattr(file, "name", file), limits)
        return pd.DataFrame(rows, columns=TASK_HEADERS)

    def task_choices(table):
        prompts = [str(r[0]).strip() for r in handlers.table_rows(table) if r and str(r[0] or "").strip()]
        return gr.Dropdown(choices=prompts, value=None)

    # The CSV is written whenever the table changes, so the button always downloads what is shown.
    def on_table_change(table, request: gr.Request):
        try:
            return handlers.download_tasks(session_of(request), table, limits)
        except gr.Error:  # a half-edited table just keeps the previous file
            return gr.skip()

    quiet = dict(api_visibility="private", **LIGHT_JOB)
    table = c["tasks"]
    c["add_row"].click(on_add_row, table, table, **quiet)
    c["remove_row"].click(on_remove_row, table, table, **quiet)
    c["load_preset"].click(on_preset_tasks, c["task_preset"], c.inputs("tasks", "match_mode"), api_name="task_preset",
                           **LIGHT_JOB)
    c["upload_csv"].upload(on_upload_tasks, c["upload_csv"], table, **quiet)
    table.change(task_choices, table, c["compare_task"], **quiet)
    table.change(on_table_change, table, c["download_csv"], **quiet)
    c["compare_task"].change(lambda p: p or gr.skip(), c["compare_task"], c["prompt"], **quiet)

    def on_preset(name):
        values = handlers.preset_knobs(name, limits)
        return [values[knob] for knob in KNOB_NAMES]

    c["preset_seed"].click(lambda: on_preset("seed"), None, c.inputs(*KNOB_NAMES), **quiet)
    c["preset_quick"].click(lambda: on_preset("quick-cpu"), None, c.inputs(*KNOB_NAMES), **quiet)


def wire_compare(c: Components, limits: Limits, registry: ModelRegistry, session_of) -> None:
    """Compare one prompt and evaluate every task: each checked first, then a model job."""
    def on_compare(v, request):
        return handlers.compare(session_of(request), _model_of(v, limits), _knobs_of(v), v["prompt"],
                                registry=registry, limits=limits)

    def on_check_compare(v, request):
        handlers.check_compare(session_of(request), _model_of(v, limits), _knobs_of(v), v["prompt"], limits=limits)

    checked_model_job(c["compare_btn"], c, ["model", "custom_model", "prompt", *KNOB_NAMES], on_check_compare,
                      on_compare, c.inputs("base_output", "adapted_output"), api_name="compare")

    def on_evaluate(v, request):
        return handlers.evaluate(session_of(request), _model_of(v, limits), _knobs_of(v), v["tasks"], v["match_mode"],
                                 v["length_penalty"], v["samples_per_task"], registry=registry, limits=limits)

    def on_check_evaluate(v, request):
        handlers.check_evaluate(session_of(request), _model_of(v, limits), _knobs_of(v), v["tasks"], v["match_mode"],
                                v["length_penalty"], v["samples_per_task"], limits=limits)

    eval_names = ["model", "custom_model", "tasks", *REWARD_NAMES, "samples_per_task", *KNOB_NAMES]
    checked_model_job(c["eval_btn"], c, eval_names, on_check_evaluate, on_evaluate, [c["eval_table"]],
                      api_name="evaluate")


def wire_files(c: Components, limits: Limits, registry: ModelRegistry, session_of) -> None:
    """Load an adapter back (a model job: its trial load puts it on the shared model); export
    the run."""
    def on_load_adapter(v, request):
        session = session_of(request)
        view, implied = handlers.import_adapter(session, v["files"], _model_of(v, limits), _knobs_of(v),
                                                registry=registry, limits=limits)
        knob_updates = [implied.get(name, gr.skip()) for name in KNOB_NAMES]
        return (*view_updates(view, session, v["heat_index"], v["heat_quantity"], files=True), *knob_updates)

    names = ["files", "model", "custom_model", "heat_index", "heat_quantity", *KNOB_NAMES]
    c["load_adapter"].click(named_inputs(names, on_load_adapter), c.inputs(*names),
                            c.inputs(*TRAIN_OUTPUTS, *KNOB_NAMES), api_name="load_adapter", **MODEL_JOB)

    def on_export_run(v, request):
        return handlers.export_run(session_of(request), _model_of(v, limits), _knobs_of(v), v["tasks"],
                                   v["match_mode"], v["length_penalty"], registry=registry, limits=limits)

    # Writing files only: no model job, so it never waits behind a run.
    export_names = ["model", "custom_model", "tasks", *REWARD_NAMES, *KNOB_NAMES]
    c["export_run"].click(named_inputs(export_names, on_export_run), c.inputs(*export_names), c["export_file"],
                          api_name="export_run", **LIGHT_JOB)
