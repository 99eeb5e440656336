"""The README is a front page and every link in the docs leads somewhere.

README.md stays at most 150 lines (a Space shows it as its landing page; the rest is in
``docs/``), and every relative link or image in README.md and ``docs/*.md`` names a file or
folder of the repository (and, with a ``#fragment``, a heading of that Markdown file).
Run: ``python -m pytest tests/test_docs.py -q``."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README_MAX_LINES = 150

# [text](target) and ![alt](target), target up to the first space or ")"; also <img src="...">
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
IMG_SRC = re.compile(r"<img[^>]*\ssrc=\"([^\"]+)\"")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def relative_links(text: str) -> list[str]:
    """Link and image targets that point into the repository (not http:, mailto: and so on),
    outside fenced code blocks."""
    text = FENCE.sub("", text)
    targets = LINK.findall(text) + IMG_SRC.findall(text)
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t, re.I)]


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    broken = []
    for target in relative_links(path.read_text(encoding="utf-8")):
        file_part, _, fragment = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.exists() or root not in (resolved, *resolved.parents):
            broken.append(f"{target} (no such file)")
            continue
        if fragment and resolved.suffix == ".md":
            headings = re.findall(r"^#+\s+(.*)$", FENCE.sub("", resolved.read_text(encoding="utf-8")), re.M)
            if fragment not in {anchor(h) for h in headings}:
                broken.append(f"{target} (no such heading)")
    return broken


def test_the_link_check_can_fail(tmp_path):
    page = tmp_path / "page.md"
    (tmp_path / "there.md").write_text("# A heading\n", encoding="utf-8")
    page.write_text("[ok](there.md) [ok too](there.md#a-heading) [web](https://example.org/x)\n"
                    "![gone](missing.png) [bad](there.md#nowhere)\n"
                    "```\n[in code](not/checked.md)\n```\n", encoding="utf-8")
    assert broken_links(page, root=tmp_path) == ["missing.png (no such file)",
                                                 "there.md#nowhere (no such heading)"]
    outside = tmp_path / "docs"
    outside.mkdir()
    (outside / "p.md").write_text("[exists, but outside the repository](../there.md)\n", encoding="utf-8")
    assert broken_links(outside / "p.md", root=outside) == ["../there.md (no such file)"]


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path):
    assert not broken_links(path), f"{path.relative_to(ROOT)}: broken links: {broken_links(path)}"


# A file a doc names in backticks: `ppo_demo/trainer.py`, `ui/run_jobs.py` (in ppo_demo/ui/),
# `tests/test_docs.py`... Patterns with <, { or * stand for many files and are not checked.
NAMED_FILE = re.compile(r"`((?:ppo_demo|ui|tests|benchmarks|scripts|docs)/[^`\s]*)`")


def missing_named_files(path: Path, root: Path = ROOT) -> list[str]:
    missing = []
    for name in NAMED_FILE.findall(path.read_text(encoding="utf-8")):
        if any(c in name for c in "<{*"):
            continue
        name = name.split("::")[0]  # tests/test_x.py::test_name names the file
        target = root / ("ppo_demo/" + name if name.startswith("ui/") else name)
        if not target.exists():
            missing.append(name)
    return missing


def test_the_named_file_check_can_fail(tmp_path):
    (tmp_path / "ppo_demo" / "ui").mkdir(parents=True)
    (tmp_path / "ppo_demo" / "ui" / "here.py").write_text("", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text("`ui/here.py` `ppo_demo/ui/here.py::f` `ui/gone.py` `ui/<module>.py` `tests/x.py`\n",
                    encoding="utf-8")
    assert missing_named_files(page, root=tmp_path) == ["ui/gone.py", "tests/x.py"]


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_file_a_doc_names_exists(path):
    """Docs that walk through the code name its files; a rename must update them."""
    assert not missing_named_files(path), f"{path.relative_to(ROOT)} names missing files: {missing_named_files(path)}"


def test_readme_is_a_short_front_page():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail into docs/"
    text = "\n".join(lines)
    assert "](docs/screenshot.png)" in text  # one screenshot
    for doc in ("algorithms", "architecture", "exports", "deploying", "measurements"):
        assert f"](docs/{doc}.md)" in text, f"README does not link docs/{doc}.md"


def test_the_two_commands_ci_runs_stay_in_the_readme():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "bash scripts/setup.sh && .venv/bin/python app.py" in text
    assert "bash scripts/setup.sh --dev && .venv/bin/python -m pytest -q" in text


HISTORY = re.compile(r"\bissue #?\d+|today's main|\bfirst round\b|\bbranch `?i?\d+", re.I)


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_docs_tell_no_project_history(path):
    found = HISTORY.findall(path.read_text(encoding="utf-8"))
    assert not found, f"{path.relative_to(ROOT)} tells the project's history: {found}"
