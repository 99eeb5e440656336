"""Every kind of event the page compares against is one the run job can send (a misspelt kind
would make a branch dead without any error).

Run: .venv/bin/python -m pytest tests/test_run_events.py -q
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import get_args

from ppo_demo.ui.run_jobs import JobEventKind

UI = Path(__file__).resolve().parent.parent / "ppo_demo" / "ui"


def kinds_compared(source: str) -> set[str]:
    """The strings compared with ``<x>.kind`` (``==``, ``!=``, ``in (...)``) in ``source``."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare) and isinstance(node.left, ast.Attribute) and node.left.attr == "kind":
            for right in node.comparators:
                items = right.elts if isinstance(right, (ast.Tuple, ast.List, ast.Set)) else [right]
                found |= {i.value for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str)}
    return found


def test_the_scan_finds_kinds():
    assert kinds_compared('if e.kind == "stepp" or e.kind in ("end", "x"): pass') == {"stepp", "end", "x"}


def test_every_kind_the_page_compares_is_a_job_event_kind():
    compared = set()
    for path in (UI / "handlers" / "train.py", UI / "run_jobs.py"):
        compared |= kinds_compared(path.read_text(encoding="utf-8"))
    assert {"step", "end", "ready"} <= compared, "the scan no longer finds the comparisons"
    assert compared <= set(get_args(JobEventKind))
