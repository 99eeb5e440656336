"""Check the reward (the Tasks tab): K answers per task from the current policy, scored with the
reward the run will use, flagged where a task cannot teach anything (see :mod:`ppo_demo.probe`).

It takes one model turn, like Compare: it waits its turn at the shared model behind other
sessions, and K is capped by the server's limit on evaluation samples."""

from __future__ import annotations

from ...probe import report_markdown
from .. import model_work
from ..errors import user_error
from ..i18n import t
from ..limits import Limits
from ..model_gate import MODEL_GATE
from ..model_work import registry_key
from ..session import ModelRegistry, Session
from .common import (adapter_config, build_config, build_reward, build_tasks, check_adapter_model, load_model,
                     model_job_errors, tell_waiting)

PROBE_SAMPLES = 8  # answers per task (lowered to the server's evaluation cap when that is smaller)


def probe_samples(limits: Limits) -> int:
    return max(1, min(PROBE_SAMPLES, limits.max_eval_samples))


def check_probe(session: Session, model: str, knobs: dict, table, match_mode: str, length_penalty, *,
                limits: Limits, lang: str = "en"):
    """The probe's checks (knobs, tasks, reward, adapter fits the model), also run as a quick
    event of their own before the model job."""
    if session.running:
        raise user_error(t("error.running_probe", lang))
    run = session.runs.current
    state = run.training_state if run else None
    config = adapter_config(build_config(knobs, limits, lang), state)
    tasks = build_tasks(table, limits, lang)
    reward = build_reward(match_mode, length_penalty, tasks, lang)
    check_adapter_model(run, model, lang)
    return config, tasks, reward, state


def probe(session: Session, model: str, knobs: dict, table, match_mode: str, length_penalty, *,
          registry: ModelRegistry, limits: Limits, lang: str = "en") -> str:
    """The probe's report as Markdown: from the current run's adapter when there is one, else
    from the base model."""
    config, tasks, reward, state = check_probe(session, model, knobs, table, match_mode, length_penalty,
                                               limits=limits, lang=lang)
    load_model(registry, model, lang)
    with MODEL_GATE.turn(session.session_id, on_wait=tell_waiting(lang)), model_job_errors(lang):
        report = model_work.probe_policy(registry_key(registry), model, config, state, tasks, reward,
                                         probe_samples(limits), limits.max_batch)
    return report_markdown(report, config.missing_eos_penalty, lang)
