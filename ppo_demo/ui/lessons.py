"""The Lessons tab, side by side: its layout, its events, and how each calls the handlers
(``handlers/lessons.py``). Pick a question, press Run lesson: its runs train one after another
as runs of the tab (they appear on the Runs tab, overlaid on the lesson's first metric), then
the verdict is written from their numbers, and can be downloaded as Markdown."""

from __future__ import annotations

import gradio as gr

from .handlers import lessons as lesson_handlers
from .i18n import lang_of, t, text
from .limits import Limits
from .session import ModelRegistry
from .tabs import Components
from .updates import LIGHT_JOB, MODEL_JOB, QUIET, RUNS_OUTPUTS, TRAIN_OUTPUTS, download, model_of, runs_updates, view_updates

FIRST_LESSON = "clip"


def lessons_tab(c: Components) -> None:
    with gr.Tab(text("tab_lessons"), id="lessons"):
        gr.Markdown(text("lessons_note"))
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=280):
                c["lesson_picker"] = gr.Dropdown(lesson_handlers.lesson_choices(), value=FIRST_LESSON,
                                                 label=text("lesson_picker"), elem_id="lesson-picker")
                c["lesson_run"] = gr.Button(text("lesson_run"), variant="primary", elem_id="lesson-run")
                c["lesson_download"] = gr.DownloadButton(text("lesson_download"), interactive=False,
                                                         elem_id="lesson-download")
            with gr.Column(scale=3):
                c["lesson_verdict"] = gr.Markdown("", elem_id="lesson-verdict", latex_delimiters=LATEX)
        c["lesson_intro"] = gr.Markdown(lesson_handlers.lesson_intro(FIRST_LESSON), elem_id="lesson-intro",
                                        latex_delimiters=LATEX)


LATEX = [{"left": "$$", "right": "$$", "display": True}, {"left": "$", "right": "$", "display": False}]


def wire_lessons(demo: gr.Blocks, c: Components, limits: Limits, registry: ModelRegistry, session_of) -> None:
    def on_pick(name, request: gr.Request):
        return lesson_handlers.lesson_intro(name, lang_of(request))

    c["lesson_picker"].change(on_pick, c["lesson_picker"], c["lesson_intro"], **QUIET)

    def on_load(name, request: gr.Request):
        lang = lang_of(request)
        return {c["lesson_picker"]: gr.Dropdown(choices=lesson_handlers.lesson_choices(lang)),
                c["lesson_intro"]: lesson_handlers.lesson_intro(name, lang)}

    demo.load(on_load, c["lesson_picker"], c.inputs("lesson_picker", "lesson_intro"), **QUIET)

    def on_check(name, model, custom_model, steps, request: gr.Request):
        lesson_handlers.check_lesson(session_of(request), name, limits, lang_of(request))

    inputs = c.inputs("lesson_picker", "model", "custom_model", "steps")
    outputs = c.inputs(*TRAIN_OUTPUTS, *RUNS_OUTPUTS, "lesson_verdict", "lesson_download")

    def on_run(name, model, custom_model, steps, request: gr.Request):
        session, lang = session_of(request), lang_of(request)
        model = model_of({"model": model, "custom_model": custom_model}, limits, lang)
        yield {c["lesson_verdict"]: t("lesson.ui.running", lang), c["lesson_download"]: download(None)}
        lesson = lesson_handlers.get_lesson(name)
        for view, verdict, numbers in lesson_handlers.run_lesson(session, model, name, registry=registry,
                                                                 limits=limits, lang=lang):
            updates = {**view_updates(c, view, session, 0, "advantage", files=view.finished, lang=lang),
                       **runs_updates(c, session, steps, lesson.metrics[0], numbers, lang, files=view.finished)}
            if verdict is not None:
                updates[c["lesson_verdict"]] = verdict
                updates[c["lesson_download"]] = download(lesson_handlers.export_lesson(session, model, lang))
            yield updates

    event = c["lesson_run"].click(on_check, inputs, None, concurrency_id="control", api_visibility="private",
                                  **LIGHT_JOB)
    event.success(on_run, inputs, outputs, api_name="run_lesson", **MODEL_JOB)
