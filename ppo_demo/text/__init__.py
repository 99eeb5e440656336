"""Every sentence a person reads, in English and Simplified Chinese, looked up by key.

One way to translate, for the engine, the CLI and the page alike:

* short sentences live in catalogue modules, ``ppo_demo/text/catalog/<area>.py``, each with a
  ``MESSAGES = {key: (english, chinese)}`` dict (the two side by side, so a stale translation
  shows in review; placeholders are ``str.format`` names and must be the same in both);
* long texts (formulas, lesson explanations) are Markdown files,
  ``ppo_demo/text/en/<name>.md`` and ``ppo_demo/text/zh/<name>.md``;
* a knob's Chinese label and help go in a catalogue module's ``KNOBS_ZH = {name: (label,
  help)}`` (the English is the knob's definition in :mod:`ppo_demo.config`);
* errors meant for a person subclass :class:`LocalizedError`: they carry a key and values,
  print in English (the CLI) and render in any language (the page), with no pattern matching.

Nothing here imports Gradio: the engine and the CLI use it too.
"""

from __future__ import annotations

import importlib
import pkgutil
import string
from functools import lru_cache
from pathlib import Path

LANGS = ("en", "zh")
_TEXT_DIR = Path(__file__).resolve().parent


def _merged(attribute: str) -> dict:
    """One dict from the ``attribute`` dicts of every catalogue module.

    A key defined in two modules is a programming error: it would make one of them dead.
    """
    from . import catalog

    merged: dict = {}
    origin: dict[str, str] = {}
    for info in sorted(pkgutil.iter_modules(catalog.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{catalog.__name__}.{info.name}")
        for key, value in getattr(module, attribute, {}).items():
            if key in merged:
                raise RuntimeError(f"{attribute} key {key!r} is defined in both {origin[key]} and {info.name}")
            merged[key], origin[key] = value, info.name
    return merged


@lru_cache(maxsize=1)
def catalogue() -> dict[str, tuple[str, str]]:
    """Every catalogue module's ``MESSAGES`` merged: {key: (english, chinese)}."""
    return _merged("MESSAGES")


@lru_cache(maxsize=1)
def knobs_zh() -> dict[str, tuple[str, str]]:
    """Every catalogue module's ``KNOBS_ZH`` merged: {knob name: (chinese label, chinese help)}.

    A knob's English label and help are its definition in :mod:`ppo_demo.config` (the one
    source of truth); the catalogue adds only the Chinese.
    """
    return _merged("KNOBS_ZH")


def knob_text(name: str, part: str, lang: str = "en") -> str:
    """A knob's ``part`` ('label' or 'help') in ``lang``; English when no Chinese is written."""
    from ..config import all_knob_fields  # lazy: config's errors use this module

    fields = {f.name: f for f in all_knob_fields()}
    if lang == "zh" and name in knobs_zh():
        return knobs_zh()[name][0 if part == "label" else 1]
    if name not in fields:
        return name
    return (fields[name].metadata.get("label") or name) if part == "label" else fields[name].metadata["help"]


def has(key: str) -> bool:
    return key in catalogue()


def t(key: str, lang: str = "en", **values) -> str:
    """The sentence ``key`` in ``lang`` ('en' or 'zh'), with ``values`` filled in.

    An unknown key is a programming error (KeyError; a test checks every key used exists); an
    unknown language falls back to English.
    """
    english, chinese = catalogue()[key]
    template = chinese if lang == "zh" else english
    return template.format(**values) if values else template


def tn(key: str, count: int, lang: str = "en", **values) -> str:
    """A sentence with a count in it, plural right in both languages.

    English picks ``key.one`` when ``count`` is 1 and ``key.other`` otherwise; Chinese has no
    plural forms and always uses ``key.other``. ``count`` is passed to the template as ``{n}``.
    """
    form = "one" if (lang != "zh" and count == 1) else "other"
    return t(f"{key}.{form}", lang, n=count, **values)


def long_text(name: str, lang: str = "en") -> str:
    """The Markdown text ``text/<lang>/<name>.md`` (English when that language has none)."""
    path = _TEXT_DIR / (lang if lang in LANGS else "en") / f"{name}.md"
    if not path.exists():
        path = _TEXT_DIR / "en" / f"{name}.md"
    return path.read_text(encoding="utf-8")


def placeholders(template: str) -> set[str]:
    """The ``str.format`` field names in a template: '{n} of {total:.0%}' -> {'n', 'total'}."""
    return {name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(template) if name}


class LocalizedError(ValueError):
    """An error a person reads: a catalogue key and its values.

    ``str(error)`` is the English sentence (CLI, logs); :meth:`in_lang` renders it in another
    language (the page). Subclasses say where the error comes from (a task, a knob, ...).
    A value named ``knob`` is a knob's name: the template's ``{label}`` is then that knob's label
    in the message's language. The error pickles as its key and values (a model job may run in
    another process).
    """

    def __init__(self, key: str, **values):
        self.key, self.values = key, values
        super().__init__(self.in_lang("en"))

    def in_lang(self, lang: str) -> str:
        values = dict(self.values)
        if "knob" in values:
            values.setdefault("label", knob_text(values["knob"], "label", lang))
        return t(self.key, lang, **values)

    def __reduce__(self):
        return _rebuild_error, (type(self), self.key, self.values)


def _rebuild_error(cls, key: str, values: dict) -> LocalizedError:
    return cls(key, **values)
