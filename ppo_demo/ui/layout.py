"""``build_demo()``: the page's components and the wiring of their events.

No logic lives here beyond turning handler results into component updates: the handlers do
the work and the checking. The knob controls are generated from ``knob_fields()``, so a knob
added to the config appears here (with its range and help) without touching this file.

Concurrency: Train, Compare, Evaluate and adapter upload touch the shared model, so they share
one queue slot (``concurrency_id="model"``, limit 1) and a waiting user sees their position.
Stop and the light events never wait behind them.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import gradio as gr
import pandas as pd

from ..config import knob_fields
from ..reward import MATCH_MODES
from ..tasks import TASK_PRESETS
from . import handlers
from .heatmap import QUANTITIES, heatmap_html
from .i18n import I18N, knob_key, text
from .limits import Limits, limits_from_env
from .plots import PLOT_SERIES, ROLLOUT_HEADERS, all_frames, colour_map, rollouts_frame
from .session import ModelRegistry, SessionStore

MODEL_JOB = dict(concurrency_id="model", concurrency_limit=1)
LIGHT_JOB = dict(concurrency_limit=None)
TASK_HEADERS = ["prompt", "expected"]
KNOB_GROUPS = ("lora", "rollout", "ppo")  # "reward" knobs sit next to the task table
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


# --- knob controls from the dataclass -----------------------------------------------------

def _cap(name: str, high, limits: Limits):
    caps = {"steps": limits.max_steps, "batch_size": limits.max_batch,
            "num_minibatches": limits.max_batch, "max_new_tokens": limits.max_new_tokens}
    return min(high, caps[name]) if name in caps else high


def knob_component(f: dataclasses.Field, value, limits: Limits) -> gr.components.Component:
    """One control per knob: radio for choices, checkbox for flags, slider for short ranges,
    number box for wide or logarithmic ranges (learning rate, seed, coefficients)."""
    meta, name = f.metadata, f.name
    common = dict(label=I18N(knob_key(name, "label")), info=I18N(knob_key(name, "help")),
                  elem_id=f"knob-{name.replace('_', '-')}")
    kind = f.type if isinstance(f.type, str) else f.type.__name__
    if meta.get("choices"):
        return gr.Radio(choices=list(meta["choices"]), value=value, **common)
    if kind == "bool":
        return gr.Checkbox(value=bool(value), **common)
    if kind == "tuple":
        return gr.Textbox(value=value, **common)
    low, high = meta["low"], _cap(name, meta["high"], limits)
    logarithmic = low > 0 and high / low >= 1e4
    if kind == "int":
        if high - low <= 512:
            return gr.Slider(minimum=low, maximum=high, step=1, value=value, **common)
        return gr.Number(precision=0, value=value, **common)
    if high <= 5 and not logarithmic:
        return gr.Slider(minimum=low, maximum=high, step=0.01 if high <= 1 else 0.05, value=value, **common)
    # No minimum/maximum on a Number: Gradio's own check would say "Value -1 is less than minimum
    # value 1e-08" without naming the knob; TrainConfig.validate names it and its range.
    return gr.Number(value=value, step=low if logarithmic else 0.01, **common)


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


def checked_first(button: gr.Button, names: list[str], inputs: list, check):
    """``button.click`` running ``check(values, request)`` as a quick event with no outputs; chain
    the real work with ``.success``. A mistake is then a message on the tab where it can be
    fixed, no output is marked as failed, and nobody waits in the model queue to hear of it.
    Queued (with no limit) because Gradio shows no error toast for an unqueued event. The work
    itself checks again: the API can call it directly."""
    return button.click(named_inputs(names, check), inputs, None, concurrency_id="control",
                        api_visibility="private", **LIGHT_JOB)


def knob_columns(fields) -> list[tuple[str, list]]:
    """(heading, knobs) per column. The PPO group has as many knobs as the others together,
    so it is split over two columns to keep the page short on a projector."""
    columns = []
    for group in KNOB_GROUPS:
        members = [f for f in fields if f.metadata["group"] == group]
        if group == "ppo":
            half = (len(members) + 1) // 2
            columns += [(group, members[:half]), ("", members[half:])]
        else:
            columns.append((group, members))
    return columns


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
    fields = knob_fields()
    defaults = handlers.default_knobs(limits)
    model_choices = list(limits.allowed_models) if limits.allowed_models else list(
        dict.fromkeys([limits.start_model, *LISTED_MODELS]))
    start_tasks, start_match = handlers.preset_tasks("english")

    def session_of(request: gr.Request):
        return store.get(getattr(request, "session_hash", None) or "anonymous")

    with gr.Blocks(title="PPO-LoRA Lab") as demo:
        gr.Markdown(f"# {text('title')}")
        gr.Markdown(text("subtitle"))
        with gr.Row():
            model_dd = gr.Dropdown(model_choices, value=limits.start_model, label=text("model"),
                                   info=text("model_info"), elem_id="model", scale=2)
            custom_model = gr.Textbox("", label=text("custom_model"), info=text("custom_model_info"),
                                      placeholder="HuggingFaceTB/SmolLM2-360M-Instruct", elem_id="custom-model",
                                      visible=limits.allowed_models is None, scale=2)
        with gr.Row(elem_id="control-bar"):
            train_btn = gr.Button(text("train"), variant="primary", elem_id="train-btn", scale=1)
            stop_btn = gr.Button(text("stop"), variant="stop", elem_id="stop-btn", scale=1)
            reset_btn = gr.Button(text("reset"), variant="secondary", elem_id="reset-btn", scale=1)
            status = gr.Textbox("Base model, no adapter yet. Press Train.", label=text("status"),
                                elem_id="status", interactive=False, scale=5, lines=1, max_lines=3)

        knobs: dict[str, gr.components.Component] = {}
        with gr.Tabs(selected="tasks") as tabs:
            # 1. tasks and reward -----------------------------------------------------------
            with gr.Tab(text("tab_tasks"), id="tasks"):
                with gr.Row():
                    with gr.Column(scale=3):
                        tasks_table = gr.Dataframe(
                            pd.DataFrame(start_tasks, columns=TASK_HEADERS), headers=TASK_HEADERS,
                            datatype=["str", "str"], column_count=2, interactive=True, wrap=True,
                            label=text("tasks_table"), elem_id="tasks-table", column_widths=["72%", "28%"])
                        with gr.Row():
                            add_row = gr.Button(text("add_row"), size="sm")
                            remove_row = gr.Button(text("remove_row"), size="sm")
                        with gr.Row():
                            task_preset = gr.Dropdown(list(TASK_PRESETS), value="english", label=text("task_preset"),
                                                      scale=2)
                            load_preset = gr.Button(text("load_preset"), size="sm", scale=1)
                            upload_csv = gr.UploadButton(text("upload_csv"), file_types=[".csv", ".json"],
                                                         size="sm", scale=1)
                            download_csv = gr.DownloadButton(text("download_csv"), size="sm", scale=1)
                    with gr.Column(scale=2):
                        gr.Markdown(f"### {text('reward_settings')}")
                        gr.Markdown(text("reward_formula"))
                        match_mode = gr.Radio(list(MATCH_MODES), value=start_match, label=text("match_mode"),
                                              info=text("match_mode_info"), elem_id="match-mode")
                        length_penalty = gr.Number(0.002, step=0.001,
                                                   label=text("length_penalty"), info=text("length_penalty_info"),
                                                   elem_id="length-penalty")
                        for f in fields:
                            if f.metadata["group"] == "reward":
                                knobs[f.name] = knob_component(f, defaults[f.name], limits)

            # 2. knobs ------------------------------------------------------------------------
            with gr.Tab(text("tab_knobs"), id="knobs"):
                with gr.Row():
                    gr.Markdown(f"**{text('presets')}**")
                    preset_seed = gr.Button(text("preset_seed"), size="sm", elem_id="preset-seed")
                    preset_quick = gr.Button(text("preset_quick"), size="sm", elem_id="preset-quick")
                with gr.Row(equal_height=False):
                    for group, members in knob_columns(fields):
                        with gr.Column(min_width=220):
                            gr.Markdown(f"### {text('group_' + group)}" if group else "### &nbsp;")
                            for f in members:
                                knobs[f.name] = knob_component(f, defaults[f.name], limits)
                with gr.Accordion(text("formulas"), open=False, elem_id="formulas"):
                    gr.Markdown(text("formulas_md"), latex_delimiters=[
                        {"left": "$$", "right": "$$", "display": True},
                        {"left": "$", "right": "$", "display": False}])

            # 3. training -----------------------------------------------------------------------
            with gr.Tab(text("tab_train"), id="train"):
                # No fixed height: Gradio then sizes the chart so its legend (below it) is not cut off.
                plot_kw = dict(x="step", y="value", color="series", x_title="step", y_title=" ", color_title=" ")
                plots = {}
                with gr.Row():
                    plots["reward"] = gr.LinePlot(label=text("plot_reward"), elem_id="reward-plot", **plot_kw)
                    plots["kl"] = gr.LinePlot(label=text("plot_kl"), elem_id="kl-plot", **plot_kw)
                with gr.Row():
                    plots["policy"] = gr.LinePlot(label=text("plot_policy"), elem_id="policy-plot", **plot_kw)
                    plots["critic"] = gr.LinePlot(label=text("plot_critic"), elem_id="critic-plot", **plot_kw)
                    plots["health"] = gr.LinePlot(label=text("plot_health"), elem_id="health-plot", **plot_kw)
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3):
                        rollouts_table = gr.Dataframe(pd.DataFrame(columns=ROLLOUT_HEADERS), label=text("rollouts"),
                                                      interactive=False, wrap=True, elem_id="rollouts-table",
                                                      max_height=420, column_widths=["6%", "8%", "44%", "12%", "7%",
                                                                                     "12%", "11%"])
                    with gr.Column(scale=2):
                        with gr.Row():
                            heat_index = gr.Slider(0, 1, value=0, step=1, label=text("heat_index"),
                                                   elem_id="heat-index")
                            heat_quantity = gr.Dropdown([(label, key) for key, label in QUANTITIES.items()],
                                                        value="advantage", label=text("heat_quantity"),
                                                        elem_id="heat-quantity")
                        heatmap = gr.HTML(heatmap_html(None), label=text("heatmap"), elem_id="token-heatmap")

            # 4. compare and evaluate --------------------------------------------------------------
            with gr.Tab(text("tab_compare"), id="compare"):
                with gr.Row():
                    compare_task = gr.Dropdown([t[0] for t in start_tasks], value=start_tasks[0][0],
                                               label=text("compare_task"), elem_id="compare-task", scale=2)
                    compare_prompt = gr.Textbox(start_tasks[0][0], label=text("compare_prompt"),
                                                elem_id="compare-prompt", scale=3)
                    compare_btn = gr.Button(text("compare_btn"), variant="primary", elem_id="compare-btn", scale=1)
                gr.Markdown(text("compare_note"))
                with gr.Row():
                    base_output = gr.Textbox(label=text("base_output"), elem_id="base-output", lines=4,
                                             interactive=False)
                    adapted_output = gr.Textbox(label=text("adapted_output"), elem_id="adapted-output", lines=4,
                                                interactive=False)
                with gr.Row():
                    eval_samples = gr.Slider(1, limits.max_eval_samples, value=min(4, limits.max_eval_samples),
                                             step=1, label=text("eval_samples"), elem_id="eval-samples", scale=2)
                    eval_btn = gr.Button(text("eval_btn"), elem_id="eval-btn", scale=1)
                eval_table = gr.Dataframe(pd.DataFrame(columns=handlers.EVAL_HEADERS), label=text("eval_table"),
                                          interactive=False, wrap=True, elem_id="eval-table")

            # 5. files ------------------------------------------------------------------------------
            with gr.Tab(text("tab_files"), id="files"):
                gr.Markdown(text("files_note"))
                with gr.Row():
                    download_adapter = gr.DownloadButton(text("download_adapter"), elem_id="download-adapter",
                                                         interactive=False)
                    download_metrics = gr.DownloadButton(text("download_metrics"), elem_id="download-metrics",
                                                         interactive=False)
                with gr.Row():
                    upload_adapter = gr.File(label=text("upload_adapter"), file_count="multiple",
                                             file_types=[".zip", ".safetensors", ".json"], elem_id="upload-adapter",
                                             scale=3)
                    load_adapter = gr.Button(text("load_adapter"), elem_id="load-adapter", scale=1)

        knob_list = [knobs[f.name] for f in fields]
        train_outputs = [status, *plots.values(), rollouts_table, heatmap, heat_index, download_adapter,
                         download_metrics]

        knob_names = [f.name for f in fields]

        def knobs_of(v: dict) -> dict:
            return {name: v[name] for name in knob_names}

        # --- training ------------------------------------------------------------------------
        def on_train(v, request):
            session = session_of(request)
            name = handlers.resolve_model(v["model"], v["custom_model"], limits)
            for view in handlers.train(session, name, knobs_of(v), v["tasks"], v["match_mode"], v["length_penalty"],
                                       registry=registry, limits=limits):
                yield view_updates(view, session, v["heat_index"], v["heat_quantity"], files=view.finished)

        train_names = ["model", "custom_model", "tasks", "match_mode", "length_penalty", "heat_index",
                       "heat_quantity", *knob_names]
        train_inputs = [model_dd, custom_model, tasks_table, match_mode, length_penalty, heat_index, heat_quantity,
                        *knob_list]

        def on_check_train(v, request):
            handlers.check_train(session_of(request), handlers.resolve_model(v["model"], v["custom_model"], limits),
                                 knobs_of(v), v["tasks"], v["match_mode"], v["length_penalty"], limits=limits)

        checked_first(train_btn, train_names, train_inputs, on_check_train).success(
            lambda: gr.Tabs(selected="train"), None, tabs, queue=False, api_visibility="private").success(
            named_inputs(train_names, on_train, generator=True), train_inputs, train_outputs, api_name="train",
            **MODEL_JOB)

        def on_stop(request: gr.Request):
            return handlers.stop(session_of(request))

        stop_btn.click(on_stop, None, status, api_name="stop", concurrency_id="control", **LIGHT_JOB)

        def on_reset(h_index, h_quantity, request: gr.Request):
            session = session_of(request)
            view = handlers.reset(session)
            # The Compare tab's answers and table came from the adapter that is now gone.
            return (*view_updates(view, session, h_index, h_quantity, files=True), "", "",
                    pd.DataFrame(columns=handlers.EVAL_HEADERS))

        reset_btn.click(on_reset, [heat_index, heat_quantity], [*train_outputs, base_output, adapted_output, eval_table],
                        api_name="reset", concurrency_id="control", **LIGHT_JOB)

        def on_heat(h_index, h_quantity, request: gr.Request):
            return _heat(session_of(request).last_rollouts, h_index, h_quantity)[0]

        heat_index.change(on_heat, [heat_index, heat_quantity], heatmap, api_visibility="private", **LIGHT_JOB)
        heat_quantity.change(on_heat, [heat_index, heat_quantity], heatmap, api_visibility="private", **LIGHT_JOB)

        # --- tasks -------------------------------------------------------------------------------
        def on_add_row(table):
            rows = handlers.table_rows(table)
            if len(rows) >= limits.max_tasks:
                raise handlers.user_error(f"The limit is {limits.max_tasks} tasks.")
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

        def on_download_tasks(table, request: gr.Request):
            return handlers.download_tasks(session_of(request), table, limits)

        def task_choices(table):
            prompts = [str(r[0]).strip() for r in handlers.table_rows(table) if r and str(r[0] or "").strip()]
            return gr.Dropdown(choices=prompts, value=None)

        add_row.click(on_add_row, tasks_table, tasks_table, api_visibility="private", **LIGHT_JOB)
        remove_row.click(on_remove_row, tasks_table, tasks_table, api_visibility="private", **LIGHT_JOB)
        load_preset.click(on_preset_tasks, task_preset, [tasks_table, match_mode], api_name="task_preset",
                          **LIGHT_JOB)
        upload_csv.upload(on_upload_tasks, upload_csv, tasks_table, api_visibility="private", **LIGHT_JOB)
        # The CSV is written whenever the table changes, so the button always downloads what is shown.
        tasks_table.change(task_choices, tasks_table, compare_task, api_visibility="private", **LIGHT_JOB)
        def on_table_change(table, request: gr.Request):
            try:
                return on_download_tasks(table, request)
            except gr.Error:  # a half-edited table just keeps the previous file
                return gr.skip()

        tasks_table.change(on_table_change, tasks_table, download_csv, api_visibility="private", **LIGHT_JOB)
        compare_task.change(lambda p: p or gr.skip(), compare_task, compare_prompt, api_visibility="private", **LIGHT_JOB)

        # --- presets ----------------------------------------------------------------------------
        def on_preset(name):
            values = handlers.preset_knobs(name, limits)
            return [values[f.name] for f in fields]

        preset_seed.click(lambda: on_preset("seed"), None, knob_list, api_visibility="private", **LIGHT_JOB)
        preset_quick.click(lambda: on_preset("quick-cpu"), None, knob_list, api_visibility="private", **LIGHT_JOB)

        # --- compare and evaluate ---------------------------------------------------------------
        def on_compare(v, request):
            return handlers.compare(session_of(request), handlers.resolve_model(v["model"], v["custom_model"], limits),
                                    knobs_of(v), v["prompt"], registry=registry, limits=limits)

        def on_check_compare(v, request):
            handlers.check_compare(session_of(request), handlers.resolve_model(v["model"], v["custom_model"], limits),
                                   knobs_of(v), v["prompt"], limits=limits)

        compare_names = ["model", "custom_model", "prompt", *knob_names]
        compare_inputs = [model_dd, custom_model, compare_prompt, *knob_list]
        checked_first(compare_btn, compare_names, compare_inputs, on_check_compare).success(
            named_inputs(compare_names, on_compare), compare_inputs, [base_output, adapted_output],
            api_name="compare", **MODEL_JOB)

        def on_evaluate(v, request):
            return handlers.evaluate(session_of(request), handlers.resolve_model(v["model"], v["custom_model"], limits),
                                     knobs_of(v), v["tasks"], v["match_mode"], v["length_penalty"],
                                     v["samples_per_task"], registry=registry, limits=limits)

        def on_check_evaluate(v, request):
            handlers.check_evaluate(session_of(request), handlers.resolve_model(v["model"], v["custom_model"], limits),
                                    knobs_of(v), v["tasks"], v["match_mode"], v["length_penalty"],
                                    v["samples_per_task"], limits=limits)

        eval_names = ["model", "custom_model", "tasks", "match_mode", "length_penalty", "samples_per_task",
                      *knob_names]
        eval_inputs = [model_dd, custom_model, tasks_table, match_mode, length_penalty, eval_samples, *knob_list]
        checked_first(eval_btn, eval_names, eval_inputs, on_check_evaluate).success(
            named_inputs(eval_names, on_evaluate), eval_inputs, eval_table, api_name="evaluate", **MODEL_JOB)

        # --- files -------------------------------------------------------------------------------
        def on_load_adapter(v, request):
            session = session_of(request)
            view, implied = handlers.import_adapter(session, v["files"], handlers.resolve_model(
                v["model"], v["custom_model"], limits), knobs_of(v), registry=registry, limits=limits)
            knob_updates = [implied.get(name, gr.skip()) for name in knob_names]
            return (*view_updates(view, session, v["heat_index"], v["heat_quantity"], files=True), *knob_updates)

        load_adapter.click(named_inputs(["files", "model", "custom_model", "heat_index", "heat_quantity", *knob_names],
                                        on_load_adapter),
                           [upload_adapter, model_dd, custom_model, heat_index, heat_quantity, *knob_list],
                           [*train_outputs, *knob_list], api_name="load_adapter", **MODEL_JOB)

        # A closed tab stops its run and frees its adapter (the thread ends after its step).
        def on_unload(request: gr.Request):
            store.close(getattr(request, "session_hash", None) or "anonymous")

        demo.unload(on_unload)
    demo.ppo_limits, demo.ppo_registry, demo.ppo_store = limits, registry, store
    return demo

