"""Compare one prompt and Evaluate every task: base model vs the chosen run's adapter."""

from __future__ import annotations

import pandas as pd

from ...config import TrainConfig
from ...reward import RewardConfig
from ...tasks import Task
from .. import model_work
from ..errors import user_error
from ..i18n import t
from ..limits import Limits
from ..model_gate import MODEL_GATE
from ..model_work import registry_key
from ..runs import Run
from ..session import ModelRegistry, Session
from .common import (adapter_config, build_config, build_reward, build_tasks, check_adapter_model, chosen_run,
                     load_model, model_job_errors, tell_waiting)

EVAL_KEYS = ["task", "expected", "base_success", "adapted_success", "base_reward", "adapted_reward"]
EVAL_HEADERS = [t(f"header.{key}") for key in EVAL_KEYS]  # English; eval_headers(lang) for others


def eval_headers(lang: str = "en") -> list[str]:
    return [t(f"header.{key}", lang) for key in EVAL_KEYS]


def _mean_row(label: str, part) -> tuple:
    n = len(part)
    return (label, "", *(sum(getattr(x, key) for x in part) / n for key in EVAL_KEYS[2:]))


def check_compare(session: Session, model: str, knobs: dict, prompt: str, *, limits: Limits, run_number=None,
                  lang: str = "en") -> tuple[str, TrainConfig, Run | None]:
    """Compare's checks, also run as a quick event of their own (see :func:`check_train`)."""
    prompt = (prompt or "").strip()
    if not prompt:
        raise user_error(t("error.no_prompt", lang))
    if len(prompt) > limits.max_prompt_chars:
        raise user_error(t("error.prompt_too_long", lang, n=len(prompt), limit=limits.max_prompt_chars))
    if session.running:
        raise user_error(t("error.running_compare", lang))
    run = chosen_run(session, run_number, lang)
    state = run.training_state if run else None
    config = adapter_config(build_config(knobs, limits, lang), state)
    check_adapter_model(run, model, lang)
    return prompt, config, run


def compare(session: Session, model: str, knobs: dict, prompt: str, *, registry: ModelRegistry,
            limits: Limits, run_number=None, lang: str = "en") -> tuple[str, str]:
    """(base answer, adapted answer) for one prompt, same seed and sampling settings; the
    adapter is the chosen run's (by default the current one)."""
    prompt, config, run = check_compare(session, model, knobs, prompt, limits=limits, run_number=run_number, lang=lang)
    load_model(registry, model, lang)
    state = run.training_state if run else None
    with MODEL_GATE.turn(session.session_id, on_wait=tell_waiting(lang)), model_job_errors(lang):
        return model_work.compare_answers(registry_key(registry), model, config, state, prompt)


def check_evaluate(session: Session, model: str, knobs: dict, table, match_mode: str, length_penalty,
                   samples_per_task, *, limits: Limits, run_number=None,
                   lang: str = "en") -> tuple[int, TrainConfig, list[Task], RewardConfig, Run | None]:
    """Evaluate's checks, also run as a quick event of their own (see :func:`check_train`)."""
    try:
        k = int(samples_per_task)
    except (TypeError, ValueError):
        raise user_error(t("error.samples_whole", lang, value=repr(samples_per_task))) from None
    if not 1 <= k <= limits.max_eval_samples:
        raise user_error(t("error.samples_range", lang, limit=limits.max_eval_samples, value=k))
    if session.running:
        raise user_error(t("error.running_evaluate", lang))
    run = chosen_run(session, run_number, lang)
    config = adapter_config(build_config(knobs, limits, lang), run.training_state if run else None)
    tasks = build_tasks(table, limits, lang)
    reward = build_reward(match_mode, length_penalty, tasks, lang)
    check_adapter_model(run, model, lang)
    return k, config, tasks, reward, run


def evaluate(session: Session, model: str, knobs: dict, table, match_mode: str, length_penalty,
             samples_per_task, *, registry: ModelRegistry, limits: Limits, run_number=None,
             lang: str = "en") -> pd.DataFrame:
    """Success rate and mean reward per task, base vs the chosen run's adapter, over K samples each."""
    k, config, tasks, reward, run = check_evaluate(session, model, knobs, table, match_mode, length_penalty,
                                                   samples_per_task, limits=limits, run_number=run_number, lang=lang)
    load_model(registry, model, lang)
    state = run.training_state if run else None
    with MODEL_GATE.turn(session.session_id, on_wait=tell_waiting(lang)), model_job_errors(lang):
        report = model_work.evaluate_policy(registry_key(registry), model, config, state, tasks, reward, k,
                                            limits.max_batch)
    tag = t("probe.held_out_tag", lang)
    rows = [(t_.prompt + (tag if t_.held_out else ""), t_.expected, t_.base_success, t_.adapted_success,
             t_.base_reward, t_.adapted_reward) for t_ in report.tasks]
    held_out = report.held_out_tasks
    # Training and held-out tasks apart: a rise on the held-out ones is learning, not memorising.
    parts = [("header.training_tasks", report.training_tasks), ("header.held_out_tasks", held_out)] if held_out \
        else [("header.all_tasks", report.tasks)]
    rows += [_mean_row(t(label, lang), part) for label, part in parts]
    headers = eval_headers(lang)
    frame = pd.DataFrame(rows, columns=headers)
    return frame.round({c: 3 for c in headers[2:]})
