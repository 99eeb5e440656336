"""The page's side of :mod:`ppo_demo.text`: ``gr.I18n`` for what the browser renders, and the
page's language for what the server writes.

Nothing is catalogued here. Labels and buttons (``lab.*`` keys, ``catalog/page.py``), the
formulas (``text/<lang>/formulas.md``) and the knobs' labels and help (English from
:mod:`ppo_demo.config`, Chinese from ``catalog/knobs.py``) become one ``gr.I18n``: the browser's
language picks. Everything the server writes into a component (a status line, a gr.Error
toast, a table's headers, a plot's legend) is a plain string, so the server picks the language
itself: :func:`lang_of` reads it from the request and :func:`t` looks the sentence up.
"""

from __future__ import annotations

import gradio as gr

from ..config import all_knob_fields
from ..text import LANGS, catalogue, knob_text, long_text, t  # noqa: F401  (t: the page's lookup)

PAGE_PREFIX = "lab."

# Gradio 6.31's own zh-CN strings lack a few keys its front end uses, which then show raw: the
# status tracker's "common.complete" after every event (a screen-reader line, but readable in the
# page's text, e.g. under the evaluation table) and the queue's "status.queue_position" while a
# tab waits for the model. Gradio merges these into its own dictionary for the page's language.
# They are Gradio's keys, not ours, so they live here rather than in a catalogue.
GRADIO_ZH = {
    "common.complete": "完成",
    "common.progress": "进度",
    "common.download_all": "全部下载",
    "status.queue_position": "排队中：第 {position} 位，共 {size} 位",
}


def text(key: str) -> gr.i18n.I18nData:
    """A page string by its short name. Keys are namespaced ("lab.") because Gradio's own
    translations already use names like "status", which would shadow ours."""
    return I18N(f"{PAGE_PREFIX}{key}")


def knob_key(name: str, part: str) -> str:
    return f"knob.{name}.{part}"


def page_strings(lang: str) -> dict[str, str]:
    """Every string the browser renders itself, in ``lang``: labels, the formulas, the knobs."""
    strings = {key: pair[1 if lang == "zh" else 0] for key, pair in catalogue().items()
               if key.startswith(PAGE_PREFIX)}
    strings[f"{PAGE_PREFIX}formulas_md"] = long_text("formulas", lang)
    for f in all_knob_fields():
        for part in ("label", "help"):
            strings[knob_key(f.name, part)] = knob_text(f.name, part, lang)
    return strings


def build_i18n() -> gr.I18n:
    zh = {**page_strings("zh"), **GRADIO_ZH}
    return gr.I18n(en=page_strings("en"), **{"zh-CN": zh, "zh": zh})


I18N = build_i18n()


def lang_of(request) -> str:
    """'zh' or 'en': the browser's most preferred language we have, from Accept-Language.

    ``request`` is a ``gr.Request`` (or anything with ``.headers``); no request (a direct call,
    a test) means English. 'zh-CN,zh;q=0.9,en;q=0.8' -> 'zh'; 'en-US,zh;q=0.5' -> 'en'.
    """
    headers = getattr(request, "headers", None) or {}
    header = headers.get("accept-language", "") if hasattr(headers, "get") else ""
    best, best_q = "en", -1.0
    for part in str(header).split(","):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in LANGS:
            continue
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if q > best_q:  # ties keep the earlier entry: the browser lists its favourite first
            best, best_q = primary, q
    return best


def knob_label(name: str, lang: str = "en") -> str:
    """A knob's short label in ``lang`` (see :func:`ppo_demo.text.knob_text`)."""
    return knob_text(name, "label", lang)
