"""``build_demo()``: the page's parts (built in ``tabs``) and their events (wired in ``wiring``).

No logic lives here: the handlers do the work and the checking, ``updates`` turns their results
into component updates. The knob controls are generated from the knob definitions, so a
knob added to the config appears on the page (with its range and help) without touching this
file. Every event names its inputs; the names are the handler's parameters and the API's.

Concurrency: Train, Compare, Evaluate and adapter upload touch the shared model. Up to
``updates.MODEL_EVENTS_AT_ONCE`` of them are let into the app together (``concurrency_id="model"``); there
they take fair turns at the model (``model_gate``: one training step or one Compare per turn, in
arrival order) and a waiting user is told how many are ahead. Beyond that, Gradio's queue holds
them and shows their position. Stop and the light events never wait behind them.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from . import handlers, tabs
from .i18n import I18N
from .lessons import lessons_tab, wire_lessons
from .limits import Limits, limits_from_env
from .runs import RunBook
from .session import ModelRegistry, SessionStore, without_optimizer
from .tabs import Components
from .wiring import wire_compare, wire_files, wire_page_language, wire_probe, wire_runs, wire_tasks, wire_training

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
.tok-stack { display: inline-flex; flex-direction: column; align-items: center; vertical-align: top; }
.tok-num { font-size: 13px; line-height: 1.2; color: #222; }
.heatmap-empty { color: var(--body-text-color-subdued); padding: 12px; }
#base-output textarea, #adapted-output textarea { font-size: 17px; }
#next-press { font-size: 16px; margin-top: -6px; }
.knob-changed { outline: 3px solid #D55E00; outline-offset: 2px; border-radius: 6px; }
.knob-changed [data-testid="block-info"]::before { content: "★ "; color: #D55E00; }
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


def build_demo(limits: Limits | None = None, registry: ModelRegistry | None = None,
               store: SessionStore | None = None) -> gr.Blocks:
    limits = limits or limits_from_env()
    registry = registry or ModelRegistry()
    start_tasks, start_match = handlers.preset_tasks("english")
    start = handlers.start_settings(limits, start_match)
    store = store or SessionStore(new_runbook=lambda: RunBook(start, limits.max_runs,
                                                              keep_for_comparison=without_optimizer,
                                                              budget_seconds=limits.max_run_seconds))
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
            lessons_tab(c)
        wire_page_language(demo, c, registry, session_of)
        wire_training(c, limits, registry, session_of)
        wire_runs(c, session_of)
        wire_tasks(c, limits, session_of)
        wire_compare(c, limits, registry, session_of)
        wire_probe(c, limits, registry, session_of)
        wire_files(c, limits, registry, session_of)
        wire_lessons(demo, c, limits, registry, session_of)

        # A closed tab stops its run and frees its adapter (the thread ends after its step).
        def on_unload(request: gr.Request):
            store.close(getattr(request, "session_hash", None) or "anonymous")

        demo.unload(on_unload)
    demo.ppo_limits, demo.ppo_registry, demo.ppo_store = limits, registry, store
    return demo
