"""Toy tasks (prompt + expected answer), their presets, and reading them from CSV or JSON.

A task may be *held out*: it is never trained on (the trainer samples only the other tasks) and
is evaluated apart, so a rising success on the held-out tasks shows the policy learned the kind
of task rather than memorised the training prompts. In a CSV the optional column ``held_out``
says so (``true``/``yes``/``1``/``x``; empty is false), in JSON the optional key ``held_out``.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from .text import LocalizedError

MAX_TASKS_DEFAULT = 64
MAX_PROMPT_CHARS_DEFAULT = 2000


class TaskError(LocalizedError):
    """The task list is unusable; the message says which row and why."""


@dataclass(frozen=True)
class Task:
    prompt: str
    expected: str
    held_out: bool = False  # never trained on; evaluated apart from the training tasks


def training_tasks(tasks: list[Task]) -> list[Task]:
    return [t for t in tasks if not t.held_out]


def held_out_tasks(tasks: list[Task]) -> list[Task]:
    return [t for t in tasks if t.held_out]


_TRUE = {"true", "yes", "y", "1", "x", "✓", "是", "held_out", "held-out"}
_FALSE = {"", "false", "no", "n", "0", "否", "train"}


def parse_held_out(value, row: int) -> bool:
    """A held_out cell as a bool: True/False, 1/0, and the words a person types."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value == value:
        if value in (0, 1):
            return bool(value)
    text = _cell(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise TaskError("tasks.held_out_bad", row=row, value=text[:20])


# The seed notebook's four tasks (Chinese), verbatim.
SEED_ZH_TASKS = [
    Task("请只回答一个词：小鱼儿", "小鱼儿"),
    Task("请只输出数字 4，不要额外文字。2+2等于几？", "4"),
    Task("把“我喜欢机器学习”翻译成英文，只输出翻译。", "I like machine learning"),
    Task("请只回答：通义千问", "通义千问"),
]

# English tasks SmolLM2-135M (English only) can learn on a CPU in minutes. Sampled at temperature
# 1 the base model hits each answer only part of the time (it rambles, or misses the bare word);
# with 'contains' matching and the quick-cpu preset, PPO lifts every task to >= 0.9 in ~8 steps.
ENGLISH_TASKS = [
    Task("What is 2+2? Reply with only the number.", "4"),
    Task("What is the capital of France? Answer with one word.", "Paris"),
    Task("Say only the word: hello", "hello"),
    Task("What is the opposite of hot? Answer with one word.", "cold"),
    # Held out: never trained on, the same kinds of task (arithmetic, a capital, repeat a word,
    # an opposite), so their success tells learning the format from memorising four prompts.
    Task("What is 3+3? Reply with only the number.", "6", held_out=True),
    Task("What is the capital of Italy? Answer with one word.", "Rome", held_out=True),
    Task("Say only the word: yes", "yes", held_out=True),
    Task("What is the opposite of big? Answer with one word.", "small", held_out=True),
]

TASK_PRESETS = {"english": ENGLISH_TASKS, "seed-zh": SEED_ZH_TASKS}
# The match mode each preset is meant for (the seed uses 'contains').
TASK_PRESET_MATCH_MODE = {"english": "contains", "seed-zh": "contains"}


def _cell(value) -> str:
    """A table cell as text: None and pandas' NaN (an empty cell) become ''."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)


def tasks_from_rows(rows, max_tasks: int = MAX_TASKS_DEFAULT,
                    max_prompt_chars: int = MAX_PROMPT_CHARS_DEFAULT) -> list[Task]:
    """Clean a table of (prompt, expected[, held_out]) rows: blank rows are dropped, half-filled
    rows and over-long prompts are errors naming the row (1-based, as a user counts)."""
    tasks = []
    for index, row in enumerate(rows, start=1):
        row = list(row)
        cells = [_cell(c) for c in (row + ["", ""])[:2]]
        prompt, expected = (c.strip() for c in cells)
        if not prompt and not expected:
            continue
        if not prompt:
            raise TaskError("task.no_prompt", row=index)
        if not expected:
            raise TaskError("task.no_expected", row=index, prompt=prompt[:40])
        if len(prompt) > max_prompt_chars:
            raise TaskError("task.prompt_too_long", row=index, n=len(prompt), limit=max_prompt_chars)
        tasks.append(Task(prompt, expected, parse_held_out(row[2] if len(row) > 2 else "", index)))
    if not tasks:
        raise TaskError("task.empty_table")
    if len(tasks) > max_tasks:
        raise TaskError("task.too_many", n=len(tasks), limit=max_tasks)
    return tasks


def parse_tasks_text(text: str, fmt: str, **limits) -> list[Task]:
    """Parse CSV (header ``prompt,expected``) or JSON (list of {"prompt", "expected"})."""
    if fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TaskError("task.bad_json", error=exc.msg, line=exc.lineno) from None
        if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
            raise TaskError("task.json_shape", shape='{"prompt": ..., "expected": ...}')
        return tasks_from_rows([(item.get("prompt", ""), item.get("expected", ""), item.get("held_out", ""))
                                for item in data], **limits)
    try:
        reader = csv.reader(io.StringIO(text))
        rows = list(reader)
    except csv.Error as exc:
        raise TaskError("task.bad_csv", error=str(exc)) from None
    if not rows:
        raise TaskError("task.empty_file")
    header = [h.strip().lower().lstrip("\ufeff") for h in rows[0]]
    if "prompt" not in header or "expected" not in header:
        raise TaskError("task.csv_header", found=repr(",".join(rows[0])[:80]))
    columns = [header.index("prompt"), header.index("expected")]
    if "held_out" in header:
        columns.append(header.index("held_out"))
    return tasks_from_rows([[r[c] if c < len(r) else "" for c in columns] for r in rows[1:]], **limits)


def load_tasks_file(path: str | Path, **limits) -> list[Task]:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise TaskError("task.unreadable", path=str(path), error=exc.strerror) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise TaskError("task.not_utf8", name=path.name) from None
    fmt = "json" if path.suffix.lower() == ".json" or text.lstrip().startswith("[") else "csv"
    return parse_tasks_text(text, fmt, **limits)


def tasks_to_csv(tasks: list[Task]) -> str:
    """CSV with the header prompt,expected,held_out (the column is written even when no task is
    held out, so a file round-trips whatever the table held)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["prompt", "expected", "held_out"])
    for task in tasks:
        writer.writerow([task.prompt, task.expected, "true" if task.held_out else "false"])
    return out.getvalue()
