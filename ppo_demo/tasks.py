"""Toy tasks (prompt + expected answer), their presets, and reading them from CSV or JSON."""

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
    """Clean a table of (prompt, expected) rows: blank rows are dropped, half-filled rows and
    over-long prompts are errors naming the row (1-based, as a user counts)."""
    tasks = []
    for index, row in enumerate(rows, start=1):
        cells = [_cell(c) for c in (list(row) + ["", ""])[:2]]
        prompt, expected = (c.strip() for c in cells)
        if not prompt and not expected:
            continue
        if not prompt:
            raise TaskError("task.no_prompt", row=index)
        if not expected:
            raise TaskError("task.no_expected", row=index, prompt=prompt[:40])
        if len(prompt) > max_prompt_chars:
            raise TaskError("task.prompt_too_long", row=index, n=len(prompt), limit=max_prompt_chars)
        tasks.append(Task(prompt, expected))
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
        return tasks_from_rows([(item.get("prompt", ""), item.get("expected", "")) for item in data], **limits)
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
    p, e = header.index("prompt"), header.index("expected")
    return tasks_from_rows([(r[p] if p < len(r) else "", r[e] if e < len(r) else "") for r in rows[1:]], **limits)


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
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["prompt", "expected"])
    for task in tasks:
        writer.writerow([task.prompt, task.expected])
    return out.getvalue()
