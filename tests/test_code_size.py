"""The page's code stays readable in an afternoon: no file in ppo_demo/ui over 450 lines and no
function there over 60 (a feature that grows gets its own file).

Run: .venv/bin/python -m pytest tests/test_code_size.py -q
"""

from __future__ import annotations

import ast
from pathlib import Path

UI = Path(__file__).resolve().parent.parent / "ppo_demo" / "ui"
MAX_FILE_LINES, MAX_FUNCTION_LINES = 450, 60


def long_functions(source: str, filename: str) -> list[str]:
    return [f"{filename}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for node in ast.walk(ast.parse(source))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]


def test_the_check_can_fail():
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    assert long_functions(f"def f():\n{body}\n", "example.py") == ["example.py:1 f (61 lines)"]


def test_ui_files_and_functions_are_short():
    files = sorted(UI.rglob("*.py"))
    assert len(files) >= 10, "has ppo_demo/ui moved?"
    too_long = [f"{p.name} ({n} lines)" for p in files if (n := len(p.read_text(encoding="utf-8").splitlines()))
                > MAX_FILE_LINES]
    assert too_long == []
    assert [hit for p in files for hit in long_functions(p.read_text(encoding="utf-8"), p.name)] == []
