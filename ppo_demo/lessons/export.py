"""A lesson's verdict with its numbers as Markdown, for class notes (the runs' every step is in
the all-runs CSV; this is the page a teacher pastes)."""

from __future__ import annotations

from ..text import t
from .core import fmt, values, verdict_text


def lesson_markdown(result, lang: str = "en", model: str = "") -> str:
    """Title, the verdict (expected, measured, seen or not), per run the first and last value
    of each overlaid metric, the wall time, then the lesson's explanation."""
    lesson, runs = result.lesson, result.runs
    lines = [f"# {t('lesson.verdict.title', lang, question=lesson.question(lang))}", "",
             verdict_text(lesson, result.outcome, lang), "", f"## {t('lesson.verdict.runs', lang)}", ""]
    explanation = lesson.explanation(lang).strip()
    header = ["run", "seed", "steps"] + [f"{k} (first → last)" for k in lesson.metrics]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    seeds = list(result.seeds) if getattr(result, "seeds", None) else None
    for arm in lesson.arms:
        for index, history in enumerate(runs.get(arm.key, [])):
            seed = history[0].get("seed", "") if history else ""
            cells = [arm.label(lang), str(seeds[index] if seeds else seed), str(len(history))]
            for key in lesson.metrics:
                vs = values(history, key)
                cells.append(f"{fmt(vs[0])} → {fmt(vs[-1])}" if vs else "n/a")
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", t("lesson.verdict.wall", lang, seconds=f"{result.seconds:.0f}", model=model or "?"), "",
              "---", "", explanation.replace("### ", "## ", 1)]
    return "\n".join(lines) + "\n"
