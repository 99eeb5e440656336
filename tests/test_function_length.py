"""Readable in one sitting: no function in ``ppo_demo/`` longer than 60 lines.

A long function is split into named stages (see ``PPOTrainer._step`` and
``export/verl_export.verl_overrides``). Run: ``python -m pytest tests/test_function_length.py -q``."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "ppo_demo"
MAX_FUNCTION_LINES = 60


def function_lengths(source: str) -> list[tuple[str, int, int]]:
    """(qualified name, first line, lines) of every function and method in ``source``, the
    decorators not counted, the docstring counted."""
    found = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                found.append((name, child.lineno, child.end_lineno - child.lineno + 1))
                visit(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return found


def test_function_lengths_counts_lines_of_nested_and_method_bodies():
    # the check can fail: a 61-line method is found, by its qualified name
    body = "".join(f"        x{i} = {i}\n" for i in range(60))
    source = f"class A:\n    def long(self):\n{body}\n    def short(self):\n        return 1\n"
    lengths = {name: lines for name, _, lines in function_lengths(source)}
    assert lengths == {"A.long": 61, "A.short": 2}


def test_no_function_in_ppo_demo_is_over_60_lines():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for name, line, lines in function_lengths(path.read_text(encoding="utf-8")):
            if lines > MAX_FUNCTION_LINES:
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{line} {name} ({lines} lines)")
    assert not offenders, (f"functions over {MAX_FUNCTION_LINES} lines (split them into named stages):\n  "
                           + "\n  ".join(offenders))
