"""The glue between handlers and components: event helpers and handler results as component updates.

Every event that sets more than one component returns a dict keyed by component (Gradio
applies each entry to its component), so adding an output is one entry here and one name in
the event's output list, never a position to count.
"""

from __future__ import annotations

import inspect
from typing import Any

import gradio as gr

from . import handlers
from .heatmap import heatmap_html
from .i18n import t
from .limits import Limits
from ..health import status_line
from .plots import CHARTS, plot_value, rollouts_frame, train_chart_spec, warning_layers
from .runs import RunBook
from .tabs import KNOB_NAMES, PLOT_NAMES, TASK_HEADERS, Components

# Each admitted model event holds one of Gradio's worker threads (40 by default) while it waits
# for its turn or streams its run, so admit fewer than that and leave threads for light events.
MODEL_EVENTS_AT_ONCE = 16
MODEL_JOB = dict(concurrency_id="model", concurrency_limit=MODEL_EVENTS_AT_ONCE)
LIGHT_JOB = dict(concurrency_limit=None)
QUIET = dict(api_visibility="private", **LIGHT_JOB)  # a light event the API does not list

TRAIN_OUTPUTS = ["status", *PLOT_NAMES, "rollouts_table", "heatmap", "heat_index", "download_adapter",
                 "download_metrics"]
RUNS_OUTPUTS = ["runs_table", "runs_plot", "runs_show", "runs_metric", "runs_pick", "runs_download", "compare_run",
                "next_press", "train_btn"]
# Train's own stream leaves its button alone: an output of a running event is drawn as pending,
# which kept Stop from being clicked beside it; the button follows every other event.
RUNS_OUTPUTS_WHILE_TRAINING = [name for name in RUNS_OUTPUTS if name != "train_btn"]
RUNS_INPUTS = ["steps", "runs_metric", "runs_show"]


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


def knobs_of(v: dict) -> dict:
    return {name: v[name] for name in KNOB_NAMES}


def model_of(v: dict, limits: Limits, lang: str = "en") -> str:
    return handlers.resolve_model(v["model"], v["custom_model"], limits, lang)


def match_mode_choices(lang: str) -> list[tuple[str, str]]:
    """(name in ``lang``, value): the page shows '包含', the server still receives 'contains'."""
    from ..reward import MATCH_MODES

    return [(t(f"match.{mode}", lang), mode) for mode in MATCH_MODES]


def task_headers(lang: str) -> list[str]:
    return [t(f"header.{name}", lang) for name in TASK_HEADERS]


# --- view -> component updates ------------------------------------------------------------

def heat(rollouts, index, quantity, lang: str = "en", numbers: bool = False):
    """(heatmap HTML, rollout slider) for the rollout at ``index`` (clamped to the rollouts there are)."""
    n = len(rollouts)
    index = min(max(int(index or 0), 0), max(n - 1, 0))
    record = rollouts[index] if n else None
    return (heatmap_html(record, quantity or "advantage", lang, numbers=numbers),
            gr.Slider(maximum=max(n - 1, 1), value=index))


def download(path: str | None) -> gr.DownloadButton:
    """Greyed out while there is nothing to download (a live button that does nothing confuses)."""
    return gr.DownloadButton(value=path, interactive=path is not None)


def train_chart(history: list[dict], chart: str, tasks_expected: list[str], lang: str, redraw: int = 0,
                warnings=()):
    """One Train-tab chart (None while there is nothing to draw: an empty plot box), with a
    marker where each of ``warnings`` (health warnings about its metrics) fired."""
    spec = train_chart_spec(history, chart, tasks_expected, lang)
    if spec is None:
        return None
    spec["layer"] += warning_layers(list(warnings), chart, lang)
    return plot_value(spec, redraw)


def view_updates(c: Components, view: handlers.TrainView, session, heat_index, heat_quantity, files: bool,
                 lang: str = "en") -> dict:
    """The Train tab (:data:`TRAIN_OUTPUTS`): status, charts, rollouts table, heatmap and its
    slider, and the two downloads (``files=False`` leaves those as they are)."""
    heatmap, slider = heat(view.rollouts, heat_index, heat_quantity, lang, session.heat_numbers)
    status = f"{view.status}\n{status_line(view.warnings, lang)}" if view.warnings else view.status
    updates = {c["status"]: status, c["rollouts_table"]: rollouts_frame(view.rollouts, lang),
               c["heatmap"]: heatmap, c["heat_index"]: slider,
               c["download_adapter"]: download(handlers.export_adapter(session)) if files else gr.skip(),
               c["download_metrics"]: download(handlers.export_metrics(session, lang)) if files else gr.skip()}
    for chart, name in zip(CHARTS, PLOT_NAMES):
        updates[c[name]] = train_chart(view.history, chart, view.tasks_expected, lang, warnings=view.warnings)
    return updates


def runs_updates(c: Components, session, steps, metric, shown, lang: str, *, all_shown: bool = False,
                 files: bool = True, redraw: int = 0, button: bool = True) -> dict:
    """The Runs tab (table, overlay, pickers, CSV), Compare's run picker and the next-press line
    (:data:`RUNS_OUTPUTS`). ``files=False`` keeps the CSV download as it is (nothing it holds
    changed, or a run is still streaming: it is written once at the end, as the Train tab's
    downloads are)."""
    runs: RunBook = session.runs
    options = runs.run_options(lang)
    numbers = [number for _, number in options]
    focus = [n for n in runs.focus if n in numbers]  # after the KL demo: its runs only, on their own steps axis
    picked = (focus or numbers) if all_shown or shown is None else [n for n in shown if n in numbers]
    if not all_shown and shown is not None and not picked:
        picked = numbers
    metric_options = runs.metric_options(lang)
    metric = metric if metric in [m for _, m in metric_options] else "reward_mean"
    table = runs.summary(lang)
    spec = runs.overlay_chart(metric, picked, lang)
    default_run = runs.current.number if runs.current and runs.current.steps else (numbers[-1] if numbers else None)
    updates = {
        c["runs_table"]: table,
        c["runs_plot"]: plot_value(spec, redraw) if spec["data"]["values"] else None,
        c["runs_show"]: gr.CheckboxGroup(choices=options, value=picked),
        c["runs_metric"]: gr.Dropdown(choices=metric_options, value=metric),
        c["runs_pick"]: gr.Dropdown(choices=options, value=numbers[-1] if numbers else None),
        c["runs_download"]: download(handlers.export_runs_csv(session, lang)) if files else gr.skip(),
        c["compare_run"]: gr.Dropdown(choices=[(t("choice.current_run", lang), 0), *options], value=default_run or 0),
        c["next_press"]: handlers.next_press(session, steps, lang),
        # Off when the press would be refused (the cap on kept runs): said before, not after, pressing.
        c["train_btn"]: gr.Button(interactive=session.running or runs.can_train()),
    }
    if not button:
        del updates[c["train_btn"]]
    return updates


def knob_updates(c: Components, values: dict[str, Any]) -> dict:
    """The knob controls set to ``values`` (knobs not in it keep their value)."""
    return {c[name]: values.get(name, gr.skip()) for name in KNOB_NAMES}


HIGHLIGHT = "knob-changed"  # the class (CSS in layout) of a knob the last preset or lesson changed


def highlight_updates(c: Components, values: dict[str, Any], current: dict[str, Any]) -> dict:
    """The knobs set to ``values``, those that change marked (and every other mark cleared), and
    each folded section that holds a changed knob opened, so a class sees what a preset changed."""
    from .tabs import SECTIONS, knob_section
    from ..config import knob_fields

    changed = set(handlers.changed_knobs(current, values))
    updates = {c[name]: gr.update(value=values.get(name, current.get(name)),
                                  elem_classes=[HIGHLIGHT] if name in changed else [])
               for name in KNOB_NAMES}
    sections = {knob_section(f) for f in knob_fields() if f.name in changed}
    for section in SECTIONS:
        if f"section_{section}" in c and section in sections:
            updates[c[f"section_{section}"]] = gr.Accordion(open=True)
    return updates
