"""No sentence a person reads is written outside the catalogues (ppo_demo/text).

The scan reads the page's code (``ppo_demo/ui``) with ``ast`` and looks at what reaches a
person: the text of ``gr.Error`` / ``gr.Warning`` / ``gr.Info`` / ``user_error``, and the
``label``, ``info``, ``placeholder`` and Markdown/HTML values of Gradio components. A string
literal or f-string with words in it there is English nobody can translate: it must be a
catalogue lookup (``t(...)``, ``text(...)``, ``I18N(...)``) instead.

Run: .venv/bin/python -m pytest tests/test_no_stray_english.py -q
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

UI = Path(__file__).resolve().parent.parent / "ppo_demo" / "ui"
TOASTS = {"Error", "Warning", "Info", "user_error"}
SHOWN_KEYWORDS = {"label", "info", "placeholder"}
SHOWN_FIRST_ARG = {"Markdown", "HTML"}  # their first argument is what the page shows
WORDS = re.compile(r"[A-Za-z]{3,}")
# Strings that reach the page but are not sentences: the app's name (a proper noun), model ids
# ('owner/name', e.g. a placeholder) and HTML markup (tags and class names, no prose).
ALLOWED = {"PPO-LoRA Lab"}
MODEL_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


def _name(func: ast.expr) -> str:
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _literal_text(node: ast.expr) -> str | None:
    """The words a literal would show: a str constant, or an f-string's constant parts."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
    return None


def _is_prose(text: str) -> bool:
    stripped = re.sub(r"<[^>]*>", " ", text)  # HTML tags and their attributes are markup
    return text not in ALLOWED and not MODEL_ID.match(text) and bool(WORDS.search(stripped))


def stray_strings(source: str, filename: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call):
            continue
        name = _name(node.func)
        shown = []
        if name in TOASTS and node.args:
            shown.append(node.args[0])
        if name in SHOWN_FIRST_ARG and node.args:
            shown.append(node.args[0])
        shown += [kw.value for kw in node.keywords if kw.arg in SHOWN_KEYWORDS
                  or (kw.arg == "value" and name in SHOWN_FIRST_ARG)]
        for arg in shown:
            text = _literal_text(arg)
            if text is not None and _is_prose(text):
                found.append(f"{filename}:{node.lineno}: {text[:60]!r}")
    return found


def test_the_scan_can_fail():
    """A toast or a label written in English in the code is found."""
    code = 'import gradio as gr\ngr.Warning("The run stopped.")\ngr.Textbox(label=f"Steps for {run}")\n' \
           'raise user_error(t("error.max_tasks", lang))\ngr.Markdown(text("formulas_md"))\n'
    assert len(stray_strings(code, "example.py")) == 2


def test_no_user_visible_english_outside_the_catalogue():
    files = sorted(UI.rglob("*.py"))
    assert len(files) >= 10, "the scan found too few files: has ppo_demo/ui moved?"
    stray = [hit for path in files for hit in stray_strings(path.read_text(encoding="utf-8"), path.name)]
    assert stray == [], "\n".join(stray)
