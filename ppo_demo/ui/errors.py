"""The one way an engine error becomes a message in the browser.

The engine raises its own exceptions for bad input (:data:`USER_ERRORS`), each with a message
already written for the user; here they become ``gr.Error`` toasts. Anything else is a bug or
a broken environment: where a job sets the policy up it is still reported as a sentence, never
as a stack trace.
"""

from __future__ import annotations

import html
from contextlib import contextmanager

import gradio as gr

from ..config import ConfigError
from ..lora import LoRAError
from ..models import ModelLoadError
from ..policy import AdapterError
from ..reward import RewardError
from ..tasks import TaskError
from ..text import LocalizedError
from .limits import LimitsError

# Errors the engine raises for bad input; each message is already written for the user.
USER_ERRORS = (ConfigError, TaskError, RewardError, LoRAError, AdapterError, ModelLoadError, LimitsError)


def user_error(message: str) -> gr.Error:
    """A gr.Error shown as a toast; its text is HTML, so escape e.g. '<|im_end|>'."""
    return gr.Error(html.escape(str(message), quote=False), print_exception=False)


def unexpected_error_text(exc: BaseException) -> str:
    """An exception the user cannot fix, named in one line (its type and the start of its text)."""
    return f"{type(exc).__name__}: {str(exc)[:300]}"


@contextmanager
def user_errors(unexpected: str | None = None, lang: str = "en"):
    """Inside this block an engine error becomes a :func:`user_error` with its own message (in
    ``lang`` when it carries a catalogue key); with ``unexpected`` (e.g.
    "Could not set up the policy"), so does any other exception."""
    try:
        yield
    except gr.Error:
        raise
    except LocalizedError as exc:  # a key and values: the sentence in the page's language
        raise user_error(exc.in_lang(lang)) from None
    except USER_ERRORS as exc:  # written in English only (adapters, LoRA, loading a model)
        raise user_error(str(exc)) from None
    except Exception as exc:
        if unexpected is None:
            raise
        raise user_error(f"{unexpected}: {unexpected_error_text(exc)}") from None
