"""ZeroGPU readiness on CPU: what crosses the process boundary pickles, and a training run in a
forked worker (as ``@spaces.GPU`` runs it: fork, pickled arguments, pickled yields; the app
makes one such call per step, its turn at the model) streams its steps and hands back a state,
optimizer included, that continues exactly in the parent.

Run: .venv/bin/python -m pytest -q tests/test_zerogpu.py
"""

from __future__ import annotations

import pickle

import pandas as pd
import pytest
import torch

from ppo_demo.ui import handlers as h
from ppo_demo.ui import model_work, run_jobs
from ppo_demo.ui.limits import limits_from_env
from ppo_demo.ui.session import ModelRegistry, Session
from zerogpu_harness import run_forked

TINY = "tiny-random"
LIMITS = limits_from_env({"PPO_DEMO_MODEL": TINY})
TASKS = [["Say yes.", "yes"], ["Say no.", "no"]]


@pytest.fixture(scope="module")
def registry():
    registry = ModelRegistry()
    registry.get(TINY)  # loaded before any fork, as a Space loads its model at start
    return registry


@pytest.fixture
def one_thread():
    """Same float sums in parent and child: one intra-op thread in both."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def knobs(**changes):
    values = h.default_knobs(LIMITS)
    values.update({"steps": 2, "batch_size": 4, "num_minibatches": 2, "max_new_tokens": 6, **changes})
    return values


def _train(session, registry, **changes):
    return list(h.train(session, TINY, knobs(**changes), TASKS, "contains", 0.002, registry=registry, limits=LIMITS))


def test_every_value_a_model_handler_gives_pickles(registry):
    session = Session("pickles")
    views = _train(session, registry)
    assert len(views) >= 3
    for view in views:
        assert pickle.loads(pickle.dumps(view)).status == view.status
    answers = h.compare(session, TINY, knobs(), "Say yes.", registry=registry, limits=LIMITS)
    assert pickle.loads(pickle.dumps(answers)) == answers
    table = h.evaluate(session, TINY, knobs(), TASKS, "contains", 0.002, 1, registry=registry, limits=LIMITS)
    pd.testing.assert_frame_equal(pickle.loads(pickle.dumps(table)), table)
    # The session's state is CPU tensors only.
    assert {t.device.type for t in session.policy_state.tensors.values()} == {"cpu"}
    session.close()


def test_train_steps_in_a_forked_worker_matches_the_same_steps_here(registry, one_thread):
    request = model_work.TrainRequest(model_work.registry_key(registry), TINY, h.build_config(knobs(), LIMITS),
                                      h.build_tasks(TASKS, LIMITS), h.build_reward("contains", 0.002, []), None, 2)
    forked = list(run_forked(model_work.train_steps, request))  # no stop event: it does not pickle
    here = list(model_work.train_steps(request))
    assert [o.kind for o in forked] == ["ready", "step", "step"] == [o.kind for o in here]
    assert any(torch.count_nonzero(v) for k, v in forked[-1].state.tensors.items() if k.endswith("lora_B"))  # trained
    for a, b in zip(forked[1:], here[1:]):
        assert a.result.metrics["step"] == b.result.metrics["step"]
        assert a.result.metrics["reward_mean"] == b.result.metrics["reward_mean"]
        assert all(torch.equal(a.state.tensors[k], b.state.tensors[k]) for k in b.state.tensors)


def test_train_handler_on_zerogpu_streams_and_the_state_continues_in_the_parent(registry, one_thread, monkeypatch):
    # Session A trains as on ZeroGPU: the model's work runs in a forked worker; Stop would
    # close the generator. Session B trains in this process. Then both continue here.
    with monkeypatch.context() as patch:
        patch.setattr(run_jobs, "on_zerogpu", lambda: True)
        patch.setattr(run_jobs, "train_steps", lambda request, stop_event: run_forked(model_work.train_steps, request))
        a = Session("zerogpu")
        views_a = _train(a, registry)
    b = Session("here")
    views_b = _train(b, registry)
    assert [v.status.split(" ")[0] for v in views_a] == [v.status.split(" ")[0] for v in views_b]
    assert [m["step"] for m in a.history] == [1, 2] and a.policy_state.steps_trained == 2
    assert all(torch.equal(a.policy_state.tensors[k], b.policy_state.tensors[k]) for k in b.policy_state.tensors)
    # One worker call per step: AdamW's state went into the worker and came back each time.
    assert _optimizer_tensors(a) and _optimizer_tensors(a).keys() == _optimizer_tensors(b).keys()
    assert all(torch.equal(v, _optimizer_tensors(b)[k]) for k, v in _optimizer_tensors(a).items())
    # The state handed back continues exactly as the one trained here.
    _train(a, registry, steps=1)
    _train(b, registry, steps=1)
    assert [m["step"] for m in a.history] == [1, 2, 3]
    assert a.history[-1]["reward_mean"] == b.history[-1]["reward_mean"]
    assert all(torch.equal(a.policy_state.tensors[k], b.policy_state.tensors[k]) for k in b.policy_state.tensors)
    for s in (a, b):
        s.close()


def _optimizer_tensors(session) -> dict:
    saved = session.policy_state.optimizer
    return {f"{i}.{k}": v for i, entry in saved["state"].items() for k, v in entry.items()}


def _one(generator):
    (value,) = list(generator)
    return value


def test_compare_and_evaluate_in_a_forked_worker_give_what_they_give_here(registry, one_thread):
    session = Session("short-jobs")
    _train(session, registry)
    key, config = model_work.registry_key(registry), h.build_config(knobs(), LIMITS)
    state = session.policy_state

    def as_generator(fn):  # the harness runs generators; these jobs return one value
        def job(*args):
            yield fn(*args)
        return job

    assert _one(run_forked(as_generator(model_work.compare_answers), key, TINY, config, state, "Say yes.")) == \
        model_work.compare_answers(key, TINY, config, state, "Say yes.")
    tasks, reward = h.build_tasks(TASKS, LIMITS), h.build_reward("contains", 0.002, [])
    forked = _one(run_forked(as_generator(model_work.evaluate_policy), key, TINY, config, state, tasks, reward, 2, 8))
    here = model_work.evaluate_policy(key, TINY, config, state, tasks, reward, 2, 8)
    assert forked == here
    session.close()
