"""Two sessions share one base model but never each other's adapter (handlers on tiny-random).

Run: .venv/bin/python -m pytest tests/test_isolation.py -q
"""

from __future__ import annotations

import pytest
import torch

from ppo_demo.ui import handlers as h
from ppo_demo.ui.model_gate import MODEL_GATE
from ppo_demo.ui.session import ModelRegistry, Session
from test_ui_handlers import LIMITS, TINY, knobs, same, snapshot
from gate_probe import gate_is_free

TASKS_A = [["Say yes.", "yes"], ["Say no.", "no"]]
TASKS_B = [["Name a colour.", "red"], ["Count to two.", "two"]]
PROMPT = "Say yes."
KNOBS = dict(steps=2, learning_rate=0.05, max_new_tokens=10)


@pytest.fixture(scope="module")
def registry():
    return ModelRegistry()


@pytest.fixture
def sessions():
    a, b = Session("session-A"), Session("session-B")
    yield a, b
    for s in (a, b):
        s.close()
        if s.job is not None:
            s.job.join(30)


def train(session, registry, table, **changes):
    views = list(h.train(session, TINY, knobs(**{**KNOBS, **changes}), table, "contains", 0.002,
                         registry=registry, limits=LIMITS))
    assert views[-1].error is None and views[-1].finished
    return views


def compare(session, registry):
    return h.compare(session, TINY, knobs(**KNOBS), PROMPT, registry=registry, limits=LIMITS)


def evaluate(session, registry, table):
    return h.evaluate(session, TINY, knobs(**KNOBS), table, "contains", 0.002, 2, registry=registry, limits=LIMITS)


def base_weights(registry):
    """The shared base model's own parameters (any injected LoRA removed between jobs)."""
    model = registry.get(TINY).model
    return {k: v.detach().clone() for k, v in model.state_dict().items() if "lora" not in k.lower()}


def test_training_b_does_not_touch_a(sessions, registry):
    a, b = sessions
    train(a, registry, TASKS_A)
    a_before = snapshot(a)
    a_compare = compare(a, registry)
    a_eval = evaluate(a, registry, TASKS_A)
    base_before = base_weights(registry)

    train(b, registry, TASKS_B, seed=7)
    assert b.tasks != a.tasks and [t.prompt for t in a.tasks] == [r[0] for r in TASKS_A]
    assert same(a_before, snapshot(a)), "B's training changed A's adapter or history"
    assert a.policy_state is not b.policy_state
    assert not all(torch.equal(a.policy_state.tensors[k], b.policy_state.tensors[k]) for k in a.policy_state.tensors)
    # A's answers depend on A's adapter only: same seed, same answers as before B trained.
    assert compare(a, registry) == a_compare
    assert evaluate(a, registry, TASKS_A).equals(a_eval)
    # The shared base is what both compare against, and LoRA training never changed it.
    b_base, _ = compare(b, registry)
    assert b_base == a_compare[0]
    after = base_weights(registry)
    assert after.keys() == base_before.keys() and all(torch.equal(after[k], base_before[k]) for k in after)
    assert gate_is_free(MODEL_GATE)


def test_reset_in_one_session_leaves_the_other_intact(sessions, registry):
    a, b = sessions
    train(a, registry, TASKS_A)
    train(b, registry, TASKS_B)
    b_before, b_compare = snapshot(b), compare(b, registry)
    h.reset(a)
    assert a.policy_state is None and a.history == []
    assert same(b_before, snapshot(b))
    assert compare(b, registry) == b_compare
    base, adapted = compare(a, registry)
    assert base == adapted == b_compare[0]  # A is back on the plain base model
    # B continues counting from its own steps; A starts over.
    train(b, registry, TASKS_B, steps=1)
    train(a, registry, TASKS_A, steps=1)
    assert b.policy_state.steps_trained == 3 and a.policy_state.steps_trained == 1
    assert [m["step"] for m in a.history] == [1]
