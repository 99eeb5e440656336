"""The page's events, one ``wire_*`` function per feature: which handler a button calls, with
which inputs, and which components it updates. A handler's result becomes component updates
through :mod:`ppo_demo.ui.updates` (dicts keyed by component). No logic lives here: the handlers
do the work and the checking.
"""

from __future__ import annotations

import time

import gradio as gr
import pandas as pd

from . import handlers
from .errors import user_error
from .heatmap import heatmap_html, quantity_choices
from .i18n import lang_of, t
from .limits import Limits
from .plots import CHARTS, rollouts_frame
from .session import ModelRegistry
from .tabs import (KNOB_NAMES, OPTION_KNOBS, PLOT_NAMES, REWARD_NAMES, SECTIONS, Components, option_choices,
                   preset_choices)
from .updates import (LIGHT_JOB, MODEL_JOB, QUIET, RUNS_INPUTS, RUNS_OUTPUTS, RUNS_OUTPUTS_WHILE_TRAINING,
                      TRAIN_OUTPUTS, checked_model_job, heat,
                      highlight_updates, knob_updates, knobs_of, match_mode_choices, model_of, named_inputs,
                      runs_updates, task_headers, train_chart, view_updates)


# --- the page's language and the model's loading state -------------------------------------

def _status_now(session, registry: ModelRegistry, model: str, lang: str) -> tuple[str, bool]:
    """(status line, still loading?) for a page that is not training: says so while the model loads."""
    state, error = registry.load_state(model)
    if state == "loading":
        return t("status.model_loading", lang, model=model), True
    if state == "failed":
        return t("status.model_failed", lang, model=model, error=error), False
    return handlers.idle_status(session, lang), False


def wire_page_language(demo: gr.Blocks, c: Components, registry: ModelRegistry, session_of) -> None:
    """On load, everything the server writes is put in the page's language (the labels follow it
    by themselves, through gr.I18n), and the status line says whether the model is still loading."""
    outputs = ["status", "match_mode", "heat_quantity", "heatmap", "rollouts_table", "eval_table", "load_timer",
               "tasks", "task_preset", *OPTION_KNOBS, *RUNS_OUTPUTS]

    def on_load(model, steps, table, request: gr.Request):
        lang = lang_of(request)
        session = session_of(request)
        status, loading = _status_now(session, registry, model, lang)
        rows = handlers.table_rows(table)
        return {c["status"]: status, c["match_mode"]: gr.Radio(choices=match_mode_choices(lang)),
                c["heat_quantity"]: gr.Dropdown(choices=quantity_choices(lang)),
                c["heatmap"]: heatmap_html(None, lang=lang), c["rollouts_table"]: rollouts_frame([], lang),
                c["eval_table"]: pd.DataFrame(columns=handlers.eval_headers(lang)),
                c["load_timer"]: gr.Timer(active=loading),
                # English headers are already there; rewriting them would fire the table's change events.
                c["tasks"]: pd.DataFrame(rows, columns=task_headers(lang)) if lang != "en" else gr.skip(),
                c["task_preset"]: gr.Dropdown(choices=preset_choices(lang)),
                **{c[name]: gr.Radio(choices=option_choices(name, lang)) for name in OPTION_KNOBS},
                **runs_updates(c, session, steps, None, None, lang, all_shown=True)}

    demo.load(on_load, c.inputs("model", "steps", "tasks"), c.inputs(*outputs), **QUIET)

    def on_tick(model, request: gr.Request):
        session = session_of(request)
        if session.running:
            return {c["status"]: gr.skip(), c["load_timer"]: gr.Timer(active=False)}
        status, loading = _status_now(session, registry, model, lang_of(request))
        return {c["status"]: status, c["load_timer"]: gr.Timer(active=loading)}

    c["load_timer"].tick(on_tick, c["model"], c.inputs("status", "load_timer"), **QUIET)


# --- Train, Stop, Reset, the heatmap ---------------------------------------------------------

def wire_training(c: Components, limits: Limits, registry: ModelRegistry, session_of) -> None:
    """Train (checked first, then a model job streaming every step), Stop, Reset, the heatmap."""
    def on_train(v, request):
        session, lang = session_of(request), lang_of(request)
        for view in handlers.train(session, model_of(v, limits, lang), knobs_of(v), v["tasks"], v["match_mode"],
                                   v["length_penalty"], registry=registry, limits=limits, lang=lang):
            # The Runs tab follows every step (a run's curve grows beside the others), cheaply.
            yield {**view_updates(c, view, session, v["heat_index"], v["heat_quantity"], files=view.finished,
                                  lang=lang),
                   **runs_updates(c, session, v["steps"], v["runs_metric"], v["runs_show"], lang,
                                  all_shown=view.finished, files=view.finished, button=False)}

    def on_check_train(v, request):
        lang = lang_of(request)
        handlers.check_train(session_of(request), model_of(v, limits, lang), knobs_of(v), v["tasks"],
                             v["match_mode"], v["length_penalty"], limits=limits, lang=lang)

    train_names = ["model", "custom_model", "tasks", *REWARD_NAMES, "heat_index", "heat_quantity", "runs_metric",
                   "runs_show", *KNOB_NAMES]
    checked_model_job(c["train_btn"], c, train_names, on_check_train, on_train,
                      c.inputs(*TRAIN_OUTPUTS, *RUNS_OUTPUTS_WHILE_TRAINING),
                      api_name="train", generator=True, before=(lambda: gr.Tabs(selected="train"), None, c["tabs"]))

    def on_show_train_tab(request: gr.Request):
        # A chart drawn while its tab was hidden measured a width of 0 and stays blank when the tab
        # shows again (gr.Plot does not re-measure), so the Train tab redraws its charts on show.
        session, lang = session_of(request), lang_of(request)
        expected = [task.expected for task in session.tasks]
        redraw = time.monotonic_ns()
        warnings = handlers.health_warnings(session)
        return {c[name]: train_chart(session.history, chart, expected, lang, redraw, warnings)
                for chart, name in zip(CHARTS, PLOT_NAMES)}

    c["tab_train"].select(on_show_train_tab, None, c.inputs(*PLOT_NAMES), show_progress="hidden", **QUIET)

    def on_stop(request: gr.Request):
        return handlers.stop(session_of(request), lang=lang_of(request))

    c["stop_btn"].click(on_stop, None, c["status"], api_name="stop", concurrency_id="control", **LIGHT_JOB)

    def on_reset(h_index, h_quantity, steps, metric, shown, request: gr.Request):
        session, lang = session_of(request), lang_of(request)
        view = handlers.reset(session, lang=lang)
        # The Compare tab's answers and table came from the adapter that is no longer current.
        return {**view_updates(c, view, session, h_index, h_quantity, files=True, lang=lang),
                c["base_output"]: "", c["adapted_output"]: "",
                c["eval_table"]: pd.DataFrame(columns=handlers.eval_headers(lang)),
                **runs_updates(c, session, steps, metric, shown, lang, all_shown=True)}

    c["reset_btn"].click(on_reset, c.inputs("heat_index", "heat_quantity", *RUNS_INPUTS),
                         c.inputs(*TRAIN_OUTPUTS, "base_output", "adapted_output", "eval_table", *RUNS_OUTPUTS),
                         api_name="reset", concurrency_id="control", **LIGHT_JOB)

    wire_heatmap_and_next_press(c, session_of)


def wire_heatmap_and_next_press(c: Components, session_of) -> None:
    """The heatmap follows its rollout slider and quantity; the line under Train follows Steps."""
    def on_heat(h_index, h_quantity, numbers, request: gr.Request):
        session = session_of(request)
        session.heat_numbers = bool(numbers)
        return heat(session.last_rollouts, h_index, h_quantity, lang_of(request), session.heat_numbers)[0]

    for name in ("heat_index", "heat_quantity", "heat_numbers"):
        c[name].change(on_heat, c.inputs("heat_index", "heat_quantity", "heat_numbers"), c["heatmap"], **QUIET)

    def on_steps(steps, request: gr.Request):
        return handlers.next_press(session_of(request), steps, lang_of(request))

    c["steps"].change(on_steps, c["steps"], c["next_press"], show_progress="hidden", **QUIET)


# --- the Runs tab ----------------------------------------------------------------------------

def wire_runs(c: Components, session_of) -> None:
    """The Runs tab: pick runs and a metric, delete a run, queue the KL demo."""
    def on_view(steps, metric, shown, request: gr.Request):
        return runs_updates(c, session_of(request), steps, metric, shown, lang_of(request), files=False)

    def on_show_tab(steps, metric, shown, request: gr.Request):  # the overlay may have been drawn while hidden
        return runs_updates(c, session_of(request), steps, metric, shown, lang_of(request), files=False,
                            redraw=time.monotonic_ns())

    for name in ("runs_metric", "runs_show"):
        c[name].input(on_view, c.inputs(*RUNS_INPUTS), c.inputs(*RUNS_OUTPUTS), **QUIET)
    c["tabs"].select(on_show_tab, c.inputs(*RUNS_INPUTS), c.inputs(*RUNS_OUTPUTS), **QUIET)

    def on_delete(number, steps, metric, shown, request: gr.Request):
        session, lang = session_of(request), lang_of(request)
        handlers.delete_run(session, number, lang)
        return runs_updates(c, session, steps, metric, shown, lang)

    c["runs_delete"].click(on_delete, c.inputs("runs_pick", *RUNS_INPUTS), c.inputs(*RUNS_OUTPUTS),
                           api_name="delete_run", concurrency_id="control", **LIGHT_JOB)

    def on_rename(number, title, steps, metric, shown, request: gr.Request):
        """The Runs tab, Compare's picker, the next-press line and the status line follow the new name."""
        session, lang = session_of(request), lang_of(request)
        name = handlers.rename_run(session, number, title, lang)
        status = gr.skip() if session.running else t("status.renamed", lang, run=name)
        return {**runs_updates(c, session, steps, metric, shown, lang, files=False), c["status"]: status,
                c["runs_title"]: ""}

    c["runs_rename"].click(on_rename, c.inputs("runs_pick", "runs_title", *RUNS_INPUTS),
                           c.inputs(*RUNS_OUTPUTS, "status", "runs_title"), api_name="rename_run",
                           concurrency_id="control", **LIGHT_JOB)
    c["runs_title"].submit(on_rename, c.inputs("runs_pick", "runs_title", *RUNS_INPUTS),
                           c.inputs(*RUNS_OUTPUTS, "status", "runs_title"), concurrency_id="control", **QUIET)

    def on_kl_demo(steps, metric, shown, request: gr.Request):
        session, lang = session_of(request), lang_of(request)
        sentence = handlers.queue_kl_demo(session, steps, lang)
        gr.Info(sentence)
        return runs_updates(c, session, steps, metric, shown, lang)

    c["kl_demo"].click(on_kl_demo, c.inputs(*RUNS_INPUTS), c.inputs(*RUNS_OUTPUTS), api_name="kl_demo",
                       concurrency_id="control", **LIGHT_JOB)


# --- the task table and the presets ----------------------------------------------------------

def wire_tasks(c: Components, limits: Limits, session_of) -> None:
    """The task table's buttons, task presets, CSV in and out, and the knob presets."""
    def on_add_row(table, request: gr.Request):
        lang = lang_of(request)
        rows = handlers.table_rows(table)
        if len(rows) >= limits.max_tasks:
            raise user_error(t("error.max_tasks", lang, limit=limits.max_tasks))
        return pd.DataFrame(rows + [["", "", False]], columns=task_headers(lang))

    def on_select_row(event: gr.SelectData):
        return event.index[0] if isinstance(event.index, (list, tuple)) else event.index

    def on_remove_row(table, selected, request: gr.Request):
        """Removes the row of the cell clicked last (the last row if none), then forgets the choice."""
        rows = handlers.table_rows(table)
        index = selected if isinstance(selected, int) and 0 <= selected < len(rows) else len(rows) - 1
        rows = rows[:index] + rows[index + 1:]
        return {c["tasks"]: pd.DataFrame(rows or [["", "", False]], columns=task_headers(lang_of(request))),
                c["selected_row"]: None}

    def on_preset_tasks(name, request: gr.Request):
        lang = lang_of(request)
        rows, mode = handlers.preset_tasks(name, lang)
        return {c["tasks"]: pd.DataFrame(rows, columns=task_headers(lang)), c["match_mode"]: mode}

    def on_upload_tasks(file, request: gr.Request):
        lang = lang_of(request)
        rows = handlers.upload_tasks(getattr(file, "name", file), limits, lang)
        return pd.DataFrame(rows, columns=task_headers(lang))

    def on_tasks_for_compare(table, picked, prompt):
        """Compare's picker follows the table in every language and after every upload."""
        prompts, picked, prompt = handlers.compare_pick(table, picked, prompt)
        return {c["compare_task"]: gr.Dropdown(choices=prompts, value=picked),
                c["prompt"]: gr.skip() if prompt is None else prompt}

    # The CSV is written whenever the table changes, so the button always downloads what is shown.
    def on_table_change(table, request: gr.Request):
        try:
            return handlers.download_tasks(session_of(request), table, limits)
        except gr.Error:  # a half-edited table just keeps the previous file
            return gr.skip()

    table = c["tasks"]
    c["add_row"].click(on_add_row, table, table, **QUIET)
    table.select(on_select_row, None, c["selected_row"], **QUIET)
    c["remove_row"].click(on_remove_row, c.inputs("tasks", "selected_row"), c.inputs("tasks", "selected_row"), **QUIET)
    c["load_preset"].click(on_preset_tasks, c["task_preset"], c.inputs("tasks", "match_mode"), api_name="task_preset",
                           **LIGHT_JOB)
    c["upload_csv"].upload(on_upload_tasks, c["upload_csv"], table, **QUIET)
    table.change(on_tasks_for_compare, c.inputs("tasks", "compare_task", "prompt"),
                 c.inputs("compare_task", "prompt"), **QUIET)
    table.change(on_table_change, table, c["download_csv"], **QUIET)
    c["compare_task"].input(lambda p: p or gr.skip(), c["compare_task"], c["prompt"], **QUIET)

    wire_knob_presets(c, limits)


def wire_knob_presets(c: Components, limits: Limits) -> None:
    """A knob preset sets every knob, marks the ones it changed and opens their sections."""
    sections = [f"section_{s}" for s in SECTIONS if f"section_{s}" in c]

    def preset_event(name):
        def on_preset(*current):
            return highlight_updates(c, handlers.preset_knobs(name, limits), dict(zip(KNOB_NAMES, current)))
        return on_preset

    c["preset_seed"].click(preset_event("seed"), c.inputs(*KNOB_NAMES), c.inputs(*KNOB_NAMES, *sections), **QUIET)
    c["preset_quick"].click(preset_event("quick-cpu"), c.inputs(*KNOB_NAMES), c.inputs(*KNOB_NAMES, *sections),
                            **QUIET)


# --- Compare and Evaluate --------------------------------------------------------------------

def wire_compare(c: Components, limits: Limits, registry: ModelRegistry, session_of) -> None:
    """Compare one prompt and evaluate every task, against the chosen run's adapter: each checked
    first, then a model job."""
    def on_compare(v, request):
        lang = lang_of(request)
        base, adapted = handlers.compare(session_of(request), model_of(v, limits, lang), knobs_of(v), v["prompt"],
                                         registry=registry, limits=limits, run_number=v["compare_run"], lang=lang)
        return {c["base_output"]: base, c["adapted_output"]: adapted}

    def on_check_compare(v, request):
        lang = lang_of(request)
        handlers.check_compare(session_of(request), model_of(v, limits, lang), knobs_of(v), v["prompt"],
                               limits=limits, run_number=v["compare_run"], lang=lang)

    checked_model_job(c["compare_btn"], c, ["model", "custom_model", "prompt", "compare_run", *KNOB_NAMES],
                      on_check_compare, on_compare, c.inputs("base_output", "adapted_output"), api_name="compare")

    def on_evaluate(v, request):
        lang = lang_of(request)
        return handlers.evaluate(session_of(request), model_of(v, limits, lang), knobs_of(v), v["tasks"],
                                 v["match_mode"], v["length_penalty"], v["samples_per_task"], registry=registry,
                                 limits=limits, run_number=v["compare_run"], lang=lang)

    def on_check_evaluate(v, request):
        lang = lang_of(request)
        handlers.check_evaluate(session_of(request), model_of(v, limits, lang), knobs_of(v), v["tasks"],
                                v["match_mode"], v["length_penalty"], v["samples_per_task"], limits=limits,
                                run_number=v["compare_run"], lang=lang)

    eval_names = ["model", "custom_model", "tasks", *REWARD_NAMES, "samples_per_task", "compare_run", *KNOB_NAMES]
    checked_model_job(c["eval_btn"], c, eval_names, on_check_evaluate, on_evaluate, [c["eval_table"]],
                      api_name="evaluate")


def wire_probe(c: Components, limits: Limits, registry: ModelRegistry, session_of) -> None:
    """Check the reward (Tasks tab): checked first, then one model turn, like Compare."""
    names = ["model", "custom_model", "tasks", *REWARD_NAMES, *KNOB_NAMES]

    def on_probe(v, request):
        lang = lang_of(request)
        return handlers.probe(session_of(request), model_of(v, limits, lang), knobs_of(v), v["tasks"],
                              v["match_mode"], v["length_penalty"], registry=registry, limits=limits, lang=lang)

    def on_check_probe(v, request):
        lang = lang_of(request)
        handlers.check_probe(session_of(request), model_of(v, limits, lang), knobs_of(v), v["tasks"],
                             v["match_mode"], v["length_penalty"], limits=limits, lang=lang)

    checked_model_job(c["probe_btn"], c, names, on_check_probe, on_probe, [c["probe_result"]], api_name="probe")


# --- Files -----------------------------------------------------------------------------------

def wire_files(c: Components, limits: Limits, registry: ModelRegistry, session_of) -> None:
    """Load an adapter back (a model job: its trial load puts it on the shared model); export
    the run."""
    def on_load_adapter(v, request):
        session, lang = session_of(request), lang_of(request)
        view, implied = handlers.import_adapter(session, v["files"], model_of(v, limits, lang), knobs_of(v),
                                                registry=registry, limits=limits, lang=lang)
        return {**view_updates(c, view, session, v["heat_index"], v["heat_quantity"], files=True, lang=lang),
                **runs_updates(c, session, v["steps"], v["runs_metric"], v["runs_show"], lang, all_shown=True),
                **knob_updates(c, implied)}

    names = ["files", "model", "custom_model", "heat_index", "heat_quantity", "runs_metric", "runs_show", *KNOB_NAMES]
    c["load_adapter"].click(named_inputs(names, on_load_adapter), c.inputs(*names),
                            c.inputs(*TRAIN_OUTPUTS, *RUNS_OUTPUTS, *KNOB_NAMES), api_name="load_adapter", **MODEL_JOB)

    def on_export_run(v, request):
        lang = lang_of(request)
        return handlers.export_run(session_of(request), model_of(v, limits, lang), knobs_of(v), v["tasks"],
                                   v["match_mode"], v["length_penalty"], registry=registry, limits=limits, lang=lang)

    # Writing files only: no model job, so it never waits behind a run.
    export_names = ["model", "custom_model", "tasks", *REWARD_NAMES, *KNOB_NAMES]
    c["export_run"].click(named_inputs(export_names, on_export_run), c.inputs(*export_names), c["export_file"],
                          api_name="export_run", **LIGHT_JOB)
