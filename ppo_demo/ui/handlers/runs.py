"""The Runs tab: what the next Train press does, deleting a run, the KL demo, the all-runs CSV."""

from __future__ import annotations

import tempfile
from pathlib import Path

from ..errors import user_error, user_errors
from ..i18n import t
from ..runs import kl_demo_plan
from ..session import Session


def next_press(session: Session, steps, lang: str = "en") -> str:
    """What pressing Train now will do (the line under the buttons)."""
    if session.running:
        return t("next.running", lang, run=session.runs.current.name(lang) if session.runs.current else "")
    try:
        steps = int(steps)
    except (TypeError, ValueError):
        steps = 0
    return session.runs.next_press(steps, lang)


def delete_run(session: Session, number, lang: str = "en") -> None:
    """Forget a run and its adapter. The run being trained cannot be deleted."""
    if number in (None, ""):
        raise user_error(t("error.pick_run", lang))
    with user_errors(lang=lang):
        run = session.runs.get(int(number))
    if session.running and run is session.runs.current:
        raise user_error(t("error.delete_running", lang, run=run.name(lang)))
    session.runs.delete(run.number)


def rename_run(session: Session, number, title, lang: str = "en") -> str:
    """Give a run a name of its own (empty: back to the name by differences); returns the new name."""
    if number in (None, ""):
        raise user_error(t("error.pick_run", lang))
    with user_errors(lang=lang):
        return session.runs.rename(int(number), title).name(lang)


def queue_kl_demo(session: Session, steps, lang: str = "en") -> str:
    """Queue the classic demonstration: the same knobs and seed, β = 0, 0.05 and 0.5."""
    if session.running:
        raise user_error(t("error.running_other", lang))
    with user_errors(lang=lang):
        session.runs.plan(kl_demo_plan())
    return next_press(session, steps, lang)


def export_runs_csv(session: Session, lang: str = "en") -> str | None:
    """Every step of every kept run, one CSV with a ``run`` column and the knobs."""
    if not session.runs.trained():
        return None
    target = Path(tempfile.mkdtemp(dir=session.files_dir())) / "metrics-all-runs.csv"
    target.write_text(session.runs.metrics_csv(lang), encoding="utf-8")
    return str(target)
