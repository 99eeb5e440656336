"""The task table and the presets: built-in task lists, CSV in and out, knob presets."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from ...config import DEFAULT_PRESET, PRESETS, knob_fields, preset_config
from ...reward import RewardConfig
from ...tasks import TASK_PRESET_MATCH_MODE, TASK_PRESETS, load_tasks_file, tasks_to_csv
from ..errors import user_error, user_errors
from ..i18n import t
from ..limits import Limits
from ..session import Session
from .common import build_config, build_tasks, table_rows


def preset_tasks(name: str, lang: str = "en") -> tuple[list[list[str]], str]:
    """(rows, match mode) of a built-in task list."""
    if name not in TASK_PRESETS:
        raise user_error(t("error.unknown_task_preset", lang, name=name, choices=", ".join(TASK_PRESETS)))
    return [[t.prompt, t.expected, t.held_out] for t in TASK_PRESETS[name]], TASK_PRESET_MATCH_MODE[name]


def upload_tasks(path: str, limits: Limits, lang: str = "en") -> list[list[str]]:
    with user_errors(lang=lang):
        tasks = load_tasks_file(path, max_tasks=limits.max_tasks, max_prompt_chars=limits.max_prompt_chars)
    return [[t.prompt, t.expected, t.held_out] for t in tasks]


def download_tasks(session: Session, table, limits: Limits, lang: str = "en") -> str:
    tasks = build_tasks(table, limits, lang)
    target = Path(tempfile.mkdtemp(dir=session.files_dir())) / "tasks.csv"
    target.write_text(tasks_to_csv(tasks), encoding="utf-8")
    return str(target)


def preset_knobs(name: str, limits: Limits, lang: str = "en") -> dict[str, Any]:
    """Every knob of a preset, with the knobs this server caps lowered to its limits."""
    if name not in PRESETS:
        raise user_error(t("error.unknown_preset", lang, name=name, choices=", ".join(PRESETS)))
    capped = {knob: min(PRESETS[name][knob], cap) for knob, cap in limits.knob_caps().items()
              if knob != "num_minibatches"}  # follows the batch size (see preset_config)
    values = preset_config(name, **capped).to_dict()
    values["lora_targets"] = ", ".join(values["lora_targets"])
    return {name: "" if value is None else value for name, value in values.items()}  # "" = an optional knob off


def changed_knobs(current: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The knobs ``new`` sets to another value than ``current`` has (what a preset or a lesson
    changes, to highlight): 0.1 and "0.1", "" and None, "q_proj,v_proj" and "q_proj, v_proj" are
    the same value."""
    def same(a, b) -> bool:
        if a in ("", None) or b in ("", None):
            return a in ("", None) and b in ("", None)
        if isinstance(a, bool) or isinstance(b, bool):
            return bool(a) == bool(b)
        try:
            return float(a) == float(b)
        except (TypeError, ValueError):
            return "".join(str(a).split()) == "".join(str(b).split())

    return [name for name, value in new.items() if name in current and not same(current[name], value)]


def start_settings(limits: Limits, match_mode: str) -> dict[str, Any]:
    """What the page starts with, as a run records its settings: run 1 is named by what differs."""
    reward = RewardConfig.from_dict({"match_mode": match_mode})
    return {**build_config(default_knobs(limits), limits).to_dict(), "match_mode": reward.match_mode,
            "length_penalty": reward.length_penalty}


def default_knobs(limits: Limits) -> dict[str, Any]:
    """The knobs the page starts with: the same preset as the CLI without --preset."""
    values = preset_knobs(DEFAULT_PRESET, limits)
    return {f.name: values[f.name] for f in knob_fields()}


def compare_pick(table, picked: str | None, prompt: str | None) -> tuple[list[str], str | None, str | None]:
    """(choices, picked task, prompt) for Compare after the task table changed (an edit, an upload,
    a preset, the page's headers put in its language).

    The picker keeps its task while the table still has it, else takes the first task. The prompt
    box follows the picker when it was empty or showed the picked task, so it never shows a task
    that is gone; a prompt a person typed there themselves stays. ``None`` for the prompt: leave
    the box as it is.
    """
    prompts = [str(row[0]).strip() for row in table_rows(table) if row and str(row[0] or "").strip()]
    new_pick = picked if picked in prompts else (prompts[0] if prompts else None)
    current = (prompt or "").strip()
    showed_the_pick = not current or current == (picked or "").strip()
    follows = showed_the_pick and new_pick is not None and current != new_pick
    return prompts, new_pick, (new_pick if follows else None)
