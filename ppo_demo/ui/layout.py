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
import time
from typing import Any

import gradio as gr
import pandas as pd

from . import handlers, tabs
from .errors import user_error
from .heatmap import heatmap_html, quantity_choices
from .i18n import I18N, lang_of, t
from .limits import Limits, limits_from_env
from .plots import CHARTS, chart_frame, line_chart, plot_value, rollouts_frame
from .runs import RunBook
from .session import ModelRegistry, SessionStore, without_optimizer
from .tabs import KNOB_NAMES, PLOT_NAMES, REWARD_NAMES, RUNS_COLUMNS, TASK_HEADERS, Components

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
#next-press { font-size: 16px; margin-top: -6px; }
.hint { font-size: 14px; color: var(--body-text-color-subdued); }
"""


def launch_kwargs() -> dict[str, Any]:
    """Arguments Gradio 6 takes at launch rather than in Blocks().

    Footer: Gradio 6's "Runs" link is its own run history (every call's inputs and outputs kept
    in the browser, at /gradio_api/runs): a separate page that leaves the app, knows none of its
    translations and cannot redraw its plots. Runs here are the Runs tab, so the history is off
    (``run_history=False`` also deletes what a browser saved before) and its link gone.
    """
    return dict(i18n=I18N, css=CSS, theme=gr.themes.Soft(primary_hue="indigo", text_size="lg"),
                footer_links=["api", "gradio", "settings"], run_history=False)



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

def _heat(rollouts, index, quantity, lang: str = "en"):
    n = len(rollouts)
    index = min(max(int(index or 0), 0), max(n - 1, 0))
    record = rollouts[index] if n else None
    return heatmap_html(record, quantity or "advantage", lang), gr.Slider(maximum=max(n - 1, 1), value=index)


def _download(path: str | None) -> gr.DownloadButton:
    """Greyed out while there is nothing to download (a live button that does nothing confuses)."""
    return gr.DownloadButton(value=path, interactive=path is not None)


def view_updates(view: handlers.TrainView, session, heat_index, heat_quantity, files: bool, lang: str = "en") -> tuple:
    """status, 6 charts, rollouts table, heatmap, rollout slider, 2 downloads."""
    heat, slider = _heat(view.rollouts, heat_index, heat_quantity, lang)
    downloads = ((_download(handlers.export_adapter(session)), _download(handlers.export_metrics(session, lang)))
                 if files else (gr.skip(), gr.skip()))
    charts = [train_chart(view.history, chart, view.tasks_expected, lang) for chart in CHARTS]
    return (view.status, *charts, rollouts_frame(view.rollouts, lang), heat, slider, *downloads)


def train_chart(history: list[dict], chart: str, tasks_expected: list[str], lang: str, redraw: int = 0):
    """One Train-tab chart (None while there is nothing to draw: an empty plot box)."""
    frame = chart_frame(history, chart, tasks_expected, lang)
    if not len(frame):
        return None
    return plot_value(line_chart(frame, share=chart == "success", lang=lang), redraw)


RUNS_OUTPUTS = ["runs_table", "runs_plot", "runs_show", "runs_metric", "runs_pick", "runs_download", "compare_run",
                "next_press"]


def runs_updates(session, steps, metric, shown, lang: str, *, all_shown: bool = False, files: bool = True,
                 redraw: int = 0) -> tuple:
    """The Runs tab (table, overlay, pickers, CSV), Compare's run picker and the next-press line.
    ``files=False`` keeps the CSV download as it is (nothing it holds changed, or a run is still
    streaming: it is written once at the end, as the Train tab's downloads are)."""
    runs: RunBook = session.runs
    options = runs.run_options(lang)
    numbers = [number for _, number in options]
    picked = numbers if all_shown or shown is None else [n for n in shown if n in numbers]
    if not all_shown and shown is not None and not picked:
        picked = numbers
    metric_options = runs.metric_options(lang)
    metric = metric if metric in [m for _, m in metric_options] else "reward_mean"
    table = runs.summary(lang)
    table.columns = [t(f"header.{h}", lang) for h in RUNS_COLUMNS]
    spec = runs.overlay_chart(metric, picked, lang)
    plot = plot_value(spec, redraw) if spec["data"]["values"] else None
    default_run = runs.current.number if runs.current and runs.current.steps else (numbers[-1] if numbers else None)
    return (table, plot, gr.CheckboxGroup(choices=options, value=picked),
            gr.Dropdown(choices=metric_options, value=metric),
            gr.Dropdown(choices=options, value=numbers[-1] if numbers else None),
            _download(handlers.export_runs_csv(session, lang)) if files else gr.skip(),
            gr.Dropdown(choices=[(t("choice.current_run", lang), 0), *options], value=default_run or 0),
            handlers.next_press(session, steps, lang))


def build_demo(limits: Limits | None = None, registry: ModelRegistry | None = None,
               store: SessionStore | None = None) -> gr.Blocks:
    limits = limits or limits_from_env()
    registry = registry or ModelRegistry()
    start_tasks, start_match = handlers.preset_tasks("english")
    start = handlers.start_settings(limits, start_match)
    store = store or SessionStore(new_runbook=lambda: RunBook(start, limits.max_runs,
                                                              keep_for_comparison=without_optimizer))
    knob_defaults = handlers.default_knobs(limits)
    model_choices = list(limits.allowed_models) if limits.allowed_models else list(
        dict.fromkeys([limits.start_model, *LISTED_MODELS]))
    c = Components()

    def session_of(request: gr.Request):
        return store.get(getattr(request, "session_hash", None) or "anonymous")

    with gr.Blocks(title="PPO-LoRA Lab") as demo:
        tabs.header(c, limits, model_choices)
        with gr.Tabs(selected="tasks") as c["tabs"]:
            tabs.tasks_tab(c, limits, knob_defaults, start_tasks, start_match)
            tabs.knobs_tab(c, limits, knob_defaults)
            tabs.train_tab(c)
            tabs.runs_tab(c)
            tabs.compare_tab(c, limits, start_tasks)
            tabs.files_tab(c)
        wire_page_language(demo, c, limits, registry, session_of)
        wire_training(c, limits, registry, session_of)
        wire_runs(c, session_of)
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
RUNS_INPUTS = ["steps", "runs_metric", "runs_show"]


def _knobs_of(v: dict) -> dict:
    return {name: v[name] for name in KNOB_NAMES}


def _model_of(v: dict, limits: Limits, lang: str = "en") -> str:
    return handlers.resolve_model(v["model"], v["custom_model"], limits, lang)


def _status_now(session, registry: ModelRegistry, model: str, lang: str) -> tuple[str, bool]:
    """(status line, still loading?) for a page that is not training: says so while the model loads."""
    state, error = registry.load_state(model)
    if state == "loading":
        return t("status.model_loading", lang, model=model), True
    if state == "failed":
        return t("status.model_failed", lang, model=model, error=error), False
    return handlers.idle_status(session, lang), False


def wire_page_language(demo: gr.Blocks, c: Components, limits: Limits, registry: ModelRegistry, session_of) -> None:
    """On load, everything the server writes is put in the page's language (the labels follow it
    by themselves, through gr.I18n), and the status line says whether the model is still loading."""
    outputs = ["status", "match_mode", "heat_quantity", "heatmap", "rollouts_table", "eval_table", "load_timer",
               "tasks", *RUNS_OUTPUTS]

    def on_load(model, steps, table, request: gr.Request):
        lang = lang_of(request)
        session = session_of(request)
        status, loading = _status_now(session, registry, model, lang)
        rows = handlers.table_rows(table)
        return (status, gr.Radio(choices=match_mode_choices(lang)),
                gr.Dropdown(choices=quantity_choices(lang)), heatmap_html(None, lang=lang),
                rollouts_frame([], lang), pd.DataFrame(columns=handlers.eval_headers(lang)), gr.Timer(active=loading),
                # English headers are already there; rewriting them would fire the table's change events.
                pd.DataFrame(rows, columns=task_headers(lang)) if lang != "en" else gr.skip(),
                *runs_updates(session, steps, None, None, lang, all_shown=True))

    demo.load(on_load, c.inputs("model", "steps", "tasks"), c.inputs(*outputs), api_visibility="private",
              **LIGHT_JOB)

    def on_tick(model, request: gr.Request):
        session = session_of(request)
        if session.running:
            return gr.skip(), gr.Timer(active=False)
        status, loading = _status_now(session, registry, model, lang_of(request))
        return status, gr.Timer(active=loading)

    c["load_timer"].tick(on_tick, c["model"], c.inputs("status", "load_timer"), api_visibility="private",
                         **LIGHT_JOB)


def match_mode_choices(lang: str) -> list[tuple[str, str]]:
    """(name in ``lang``, value): the page shows '包含', the server still receives 'contains'."""
    from ..reward import MATCH_MODES

    return [(t(f"match.{mode}", lang), mode) for mode in MATCH_MODES]


def task_headers(lang: str) -> list[str]:
    return [t(f"header.{name}", lang) for name in TASK_HEADERS]


def wire_training(c: Components, limits: Limits, registry: ModelRegistry, session_of) -> None:
    """Train (checked first, then a model job streaming every step), Stop, Reset, the heatmap."""
    def on_train(v, request):
        session, lang = session_of(request), lang_of(request)
        for view in handlers.train(session, _model_of(v, limits, lang), _knobs_of(v), v["tasks"], v["match_mode"],
                                   v["length_penalty"], registry=registry, limits=limits, lang=lang):
            # The Runs tab follows every step (a run's curve grows beside the others), cheaply.
            yield (*view_updates(view, session, v["heat_index"], v["heat_quantity"], files=view.finished, lang=lang),
                   *runs_updates(session, v["steps"], v["runs_metric"], v["runs_show"], lang,
                                 all_shown=view.finished, files=view.finished))

    def on_check_train(v, request):
        lang = lang_of(request)
        handlers.check_train(session_of(request), _model_of(v, limits, lang), _knobs_of(v), v["tasks"],
                             v["match_mode"], v["length_penalty"], limits=limits, lang=lang)

    train_names = ["model", "custom_model", "tasks", *REWARD_NAMES, "heat_index", "heat_quantity", "runs_metric",
                   "runs_show", *KNOB_NAMES]
    checked_model_job(c["train_btn"], c, train_names, on_check_train, on_train,
                      c.inputs(*TRAIN_OUTPUTS, *RUNS_OUTPUTS),
                      api_name="train", generator=True, before=(lambda: gr.Tabs(selected="train"), None, c["tabs"]))

    def on_show_train_tab(request: gr.Request):
        # A chart drawn while its tab was hidden measured a width of 0 and stays blank when the tab
        # shows again (gr.Plot does not re-measure), so the Train tab redraws its charts on show.
        session, lang = session_of(request), lang_of(request)
        expected = [task.expected for task in session.tasks]
        redraw = time.monotonic_ns()
        return [train_chart(session.history, chart, expected, lang, redraw) for chart in CHARTS]

    c["tab_train"].select(on_show_train_tab, None, c.inputs(*PLOT_NAMES), api_visibility="private",
                          show_progress="hidden", **LIGHT_JOB)

    def on_stop(request: gr.Request):
        return handlers.stop(session_of(request), lang=lang_of(request))

    c["stop_btn"].click(on_stop, None, c["status"], api_name="stop", concurrency_id="control", **LIGHT_JOB)

    def on_reset(h_index, h_quantity, steps, metric, shown, request: gr.Request):
        session, lang = session_of(request), lang_of(request)
        view = handlers.reset(session, lang=lang)
        # The Compare tab's answers and table came from the adapter that is no longer current.
        return (*view_updates(view, session, h_index, h_quantity, files=True, lang=lang), "", "",
                pd.DataFrame(columns=handlers.eval_headers(lang)),
                *runs_updates(session, steps, metric, shown, lang, all_shown=True))

    c["reset_btn"].click(on_reset, c.inputs("heat_index", "heat_quantity", *RUNS_INPUTS),
                         c.inputs(*TRAIN_OUTPUTS, "base_output", "adapted_output", "eval_table", *RUNS_OUTPUTS),
                         api_name="reset", concurrency_id="control", **LIGHT_JOB)

    def on_heat(h_index, h_quantity, request: gr.Request):
        return _heat(session_of(request).last_rollouts, h_index, h_quantity, lang_of(request))[0]

    for name in ("heat_index", "heat_quantity"):
        c[name].change(on_heat, c.inputs("heat_index", "heat_quantity"), c["heatmap"], api_visibility="private",
                       **LIGHT_JOB)

    def on_steps(steps, request: gr.Request):
        return handlers.next_press(session_of(request), steps, lang_of(request))

    c["steps"].change(on_steps, c["steps"], c["next_press"], api_visibility="private", show_progress="hidden",
                      **LIGHT_JOB)


def wire_runs(c: Components, session_of) -> None:
    """The Runs tab: pick runs and a metric, delete a run, queue the KL demo."""
    quiet = dict(api_visibility="private", **LIGHT_JOB)

    def on_view(steps, metric, shown, request: gr.Request):
        return runs_updates(session_of(request), steps, metric, shown, lang_of(request), files=False)

    def on_show_tab(steps, metric, shown, request: gr.Request):  # the overlay may have been drawn while hidden
        return runs_updates(session_of(request), steps, metric, shown, lang_of(request), files=False,
                            redraw=time.monotonic_ns())

    for name in ("runs_metric", "runs_show"):
        c[name].input(on_view, c.inputs(*RUNS_INPUTS), c.inputs(*RUNS_OUTPUTS), **quiet)
    c["tabs"].select(on_show_tab, c.inputs(*RUNS_INPUTS), c.inputs(*RUNS_OUTPUTS), **quiet)

    def on_delete(number, steps, metric, shown, request: gr.Request):
        session, lang = session_of(request), lang_of(request)
        handlers.delete_run(session, number, lang)
        return runs_updates(session, steps, metric, shown, lang)

    c["runs_delete"].click(on_delete, c.inputs("runs_pick", *RUNS_INPUTS), c.inputs(*RUNS_OUTPUTS),
                           api_name="delete_run", concurrency_id="control", **LIGHT_JOB)

    def on_kl_demo(steps, metric, shown, request: gr.Request):
        session, lang = session_of(request), lang_of(request)
        sentence = handlers.queue_kl_demo(session, steps, lang)
        gr.Info(sentence)
        return runs_updates(session, steps, metric, shown, lang)

    c["kl_demo"].click(on_kl_demo, c.inputs(*RUNS_INPUTS), c.inputs(*RUNS_OUTPUTS), api_name="kl_demo",
                       concurrency_id="control", **LIGHT_JOB)


def wire_tasks(c: Components, limits: Limits, session_of) -> None:
    """The task table's buttons, task presets, CSV in and out, and the knob presets."""
    def on_add_row(table, request: gr.Request):
        lang = lang_of(request)
        rows = handlers.table_rows(table)
        if len(rows) >= limits.max_tasks:
            raise user_error(t("error.max_tasks", lang, limit=limits.max_tasks))
        return pd.DataFrame(rows + [["", ""]], columns=task_headers(lang))

    def on_select_row(event: gr.SelectData):
        return event.index[0] if isinstance(event.index, (list, tuple)) else event.index

    def on_remove_row(table, selected, request: gr.Request):
        """Removes the row of the cell clicked last (the last row if none), then forgets the choice."""
        rows = handlers.table_rows(table)
        index = selected if isinstance(selected, int) and 0 <= selected < len(rows) else len(rows) - 1
        rows = rows[:index] + rows[index + 1:]
        return pd.DataFrame(rows or [["", ""]], columns=task_headers(lang_of(request))), None

    def on_preset_tasks(name, request: gr.Request):
        lang = lang_of(request)
        rows, mode = handlers.preset_tasks(name, lang)
        return pd.DataFrame(rows, columns=task_headers(lang)), mode

    def on_upload_tasks(file, request: gr.Request):
        lang = lang_of(request)
        rows = handlers.upload_tasks(getattr(file, "name", file), limits, lang)
        return pd.DataFrame(rows, columns=task_headers(lang))

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
    table.select(on_select_row, None, c["selected_row"], **quiet)
    c["remove_row"].click(on_remove_row, c.inputs("tasks", "selected_row"), c.inputs("tasks", "selected_row"), **quiet)
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
    """Compare one prompt and evaluate every task, against the chosen run's adapter: each checked
    first, then a model job."""
    def on_compare(v, request):
        lang = lang_of(request)
        return handlers.compare(session_of(request), _model_of(v, limits, lang), _knobs_of(v), v["prompt"],
                                registry=registry, limits=limits, run_number=v["compare_run"], lang=lang)

    def on_check_compare(v, request):
        lang = lang_of(request)
        handlers.check_compare(session_of(request), _model_of(v, limits, lang), _knobs_of(v), v["prompt"],
                               limits=limits, run_number=v["compare_run"], lang=lang)

    checked_model_job(c["compare_btn"], c, ["model", "custom_model", "prompt", "compare_run", *KNOB_NAMES],
                      on_check_compare, on_compare, c.inputs("base_output", "adapted_output"), api_name="compare")

    def on_evaluate(v, request):
        lang = lang_of(request)
        return handlers.evaluate(session_of(request), _model_of(v, limits, lang), _knobs_of(v), v["tasks"],
                                 v["match_mode"], v["length_penalty"], v["samples_per_task"], registry=registry,
                                 limits=limits, run_number=v["compare_run"], lang=lang)

    def on_check_evaluate(v, request):
        lang = lang_of(request)
        handlers.check_evaluate(session_of(request), _model_of(v, limits, lang), _knobs_of(v), v["tasks"],
                                v["match_mode"], v["length_penalty"], v["samples_per_task"], limits=limits,
                                run_number=v["compare_run"], lang=lang)

    eval_names = ["model", "custom_model", "tasks", *REWARD_NAMES, "samples_per_task", "compare_run", *KNOB_NAMES]
    checked_model_job(c["eval_btn"], c, eval_names, on_check_evaluate, on_evaluate, [c["eval_table"]],
                      api_name="evaluate")


def wire_files(c: Components, limits: Limits, registry: ModelRegistry, session_of) -> None:
    """Load an adapter back (a model job: its trial load puts it on the shared model); export
    the run."""
    def on_load_adapter(v, request):
        session, lang = session_of(request), lang_of(request)
        view, implied = handlers.import_adapter(session, v["files"], _model_of(v, limits, lang), _knobs_of(v),
                                                registry=registry, limits=limits, lang=lang)
        knob_updates = [implied.get(name, gr.skip()) for name in KNOB_NAMES]
        return (*view_updates(view, session, v["heat_index"], v["heat_quantity"], files=True, lang=lang),
                *runs_updates(session, v["steps"], v["runs_metric"], v["runs_show"], lang, all_shown=True),
                *knob_updates)

    names = ["files", "model", "custom_model", "heat_index", "heat_quantity", "runs_metric", "runs_show", *KNOB_NAMES]
    c["load_adapter"].click(named_inputs(names, on_load_adapter), c.inputs(*names),
                            c.inputs(*TRAIN_OUTPUTS, *RUNS_OUTPUTS, *KNOB_NAMES), api_name="load_adapter", **MODEL_JOB)

    def on_export_run(v, request):
        lang = lang_of(request)
        return handlers.export_run(session_of(request), _model_of(v, limits, lang), _knobs_of(v), v["tasks"],
                                   v["match_mode"], v["length_penalty"], registry=registry, limits=limits, lang=lang)

    # Writing files only: no model job, so it never waits behind a run.
    export_names = ["model", "custom_model", "tasks", *REWARD_NAMES, *KNOB_NAMES]
    c["export_run"].click(named_inputs(export_names, on_export_run), c.inputs(*export_names), c["export_file"],
                          api_name="export_run", **LIGHT_JOB)
