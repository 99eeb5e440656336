"""Fair turns, exact resume and the run budget, on tiny-random through the app's handlers.

* Sessions A and B training at once take the model step by step, and each ends with weights
  bit-identical to the same run done alone.
* While A runs a long training, B's Compare returns before A's run has finished.
* N steps, Stop, then M more == N + M steps in one go, bitwise (also through a saved adapter).
* A run that reaches PPO_DEMO_MAX_RUN_SECONDS stops after its step, keeps its adapter, says why.

Run: .venv/bin/python -m pytest tests/test_fair_turns.py -q
"""

from __future__ import annotations

import threading
from dataclasses import replace

import gradio as gr
import pytest
import torch

from ppo_demo.config import TrainConfig
from ppo_demo.models import load_model
from ppo_demo.reward import RewardConfig
from ppo_demo.tasks import Task
from ppo_demo.trainer import PPOTrainer
from ppo_demo.ui import handlers as h
from ppo_demo.ui.limits import limits_from_env
from ppo_demo.ui.model_gate import MODEL_GATE
from ppo_demo.ui.session import ModelRegistry, Session

TINY = "tiny-random"
LIMITS = limits_from_env({"PPO_DEMO_MODEL": TINY})
TASKS = [["Say yes.", "yes"], ["Say no.", "no"]]
WAIT = 120  # seconds a test may wait for something that must happen; never reached when it passes


@pytest.fixture(scope="module")
def registry():
    return ModelRegistry()


@pytest.fixture
def sessions():
    made: list[Session] = []

    def make(name: str) -> Session:
        made.append(Session(name))
        return made[-1]
    yield make
    for s in made:
        s.close()
        if s.job is not None:
            s.job.join(60)


def knobs(**changes):
    values = h.default_knobs(LIMITS)
    # Dropout on in the update passes: the run then also draws from the global RNG, the hardest
    # case for interleaving and resuming to leave unchanged.
    values.update({"steps": 3, "batch_size": 4, "num_minibatches": 2, "max_new_tokens": 6, "learning_rate": 1e-2,
                   "lora_dropout": 0.3, "dropout_in_ppo": True, **changes})
    return values


def train(session, registry, limits=LIMITS, **changes):
    return list(h.train(session, TINY, knobs(**changes), TASKS, "contains", 0.002, registry=registry, limits=limits))


def weights(session) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in session.policy_state.tensors.items()}


def optimizer_tensors(session) -> dict[str, torch.Tensor]:
    return {f"{i}.{k}": v for i, s in session.policy_state.optimizer["state"].items() for k, v in s.items()}


def assert_bitwise_equal(a: dict, b: dict):
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


def in_thread(fn) -> tuple[threading.Thread, list]:
    out: list = []

    def run():
        try:
            out.append(fn())
        except BaseException as exc:  # reported by the test, not lost in the thread
            out.append(exc)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


# --- exact resume ------------------------------------------------------------------------------

def test_trainer_resumed_from_its_state_equals_one_uninterrupted_run(tiny):
    """The engine's contract, without the app: 2 steps, state out, state in, 2 more == 4 steps."""
    config = TrainConfig.from_dict({k: v for k, v in knobs(steps=4).items() if k in TrainConfig.__dataclass_fields__})
    tasks, reward = [Task("say hi", "h"), Task("count", "1")], RewardConfig()
    whole = PPOTrainer(tiny, config, tasks, reward)
    list(whole.train(4))
    first = PPOTrainer(tiny, config, tasks, reward)
    list(first.train(2))
    halfway = first.state()
    second = PPOTrainer(tiny, config, tasks, reward, state=halfway)
    list(second.train(2))
    assert_bitwise_equal(whole.state().tensors, second.state().tensors)
    # The check can fail: without the optimizer's moments the continuation takes other steps.
    fresh_optimizer = PPOTrainer(tiny, config, tasks, reward, state=replace(halfway, optimizer=None))
    list(fresh_optimizer.train(2))
    assert not all(torch.equal(whole.state().tensors[k], v) for k, v in fresh_optimizer.state().tensors.items())


def test_stop_then_train_again_equals_one_run_bitwise(registry, sessions):
    interrupted = sessions("interrupted")
    gen = h.train(interrupted, TINY, knobs(steps=50), TASKS, "contains", 0.002, registry=registry, limits=LIMITS)
    for view in gen:
        if view.status.startswith("Step 2/"):
            h.stop(interrupted)
    n = interrupted.policy_state.steps_trained
    assert 2 <= n < 50
    train(interrupted, registry, steps=3)
    whole = sessions("whole")
    train(whole, registry, steps=n + 3)
    assert interrupted.policy_state.steps_trained == whole.policy_state.steps_trained == n + 3
    assert_bitwise_equal(weights(whole), weights(interrupted))
    assert_bitwise_equal(optimizer_tensors(whole), optimizer_tensors(interrupted))
    assert [m["reward_mean"] for m in interrupted.history] == [m["reward_mean"] for m in whole.history]


def test_a_downloaded_adapter_continues_exactly(registry, sessions):
    first = sessions("first")
    train(first, registry, steps=2)
    loaded = sessions("loaded")
    h.import_adapter(loaded, [h.export_adapter(first)], TINY, knobs(), registry=registry, limits=LIMITS)
    assert loaded.policy_state.optimizer is not None
    train(loaded, registry, steps=2)
    whole = sessions("whole")
    train(whole, registry, steps=4)
    assert_bitwise_equal(weights(whole), weights(loaded))


# --- fair turns ---------------------------------------------------------------------------------

def test_two_sessions_training_at_once_interleave_and_match_their_solo_runs(registry, sessions, monkeypatch):
    alone = {}
    for name, seed, rank in (("A", 3, 8), ("B", 4, 4)):  # different LoRA shapes: B re-injects layers
        solo = sessions(f"solo-{name}")
        train(solo, registry, steps=4, seed=seed, lora_r=rank)
        alone[name] = weights(solo)

    turns: list[str] = []  # who held the model, turn by turn
    real_request = MODEL_GATE.request

    def logged_request(owner=""):
        ticket = real_request(owner)
        real_wait = ticket.wait

        def wait(timeout=None):
            granted = real_wait(timeout)
            if granted and not getattr(ticket, "logged", False):
                ticket.logged = True
                turns.append(owner)
            return granted
        ticket.wait = wait
        return ticket

    monkeypatch.setattr(MODEL_GATE, "request", logged_request)
    a, b = sessions("A"), sessions("B")
    threads = [in_thread(lambda: train(a, registry, steps=4, seed=3, lora_r=8)),
               in_thread(lambda: train(b, registry, steps=4, seed=4, lora_r=4))]
    for thread, out in threads:
        thread.join(WAIT)
        assert out and not isinstance(out[0], BaseException), out
    runs = [owner for owner in turns if owner in ("A", "B")]
    switches = sum(1 for x, y in zip(runs, runs[1:]) if x != y)
    assert switches >= 4, f"the runs did not take turns: {runs}"  # one after the other would switch once
    assert_bitwise_equal(alone["A"], weights(a))
    assert_bitwise_equal(alone["B"], weights(b))


def test_a_compare_returns_while_a_long_run_goes_on(registry, sessions):
    long_run, visitor = sessions("long"), sessions("visitor")
    gen = h.train(long_run, TINY, knobs(steps=LIMITS.max_steps), TASKS, "contains", 0.002, registry=registry,
                  limits=LIMITS)
    first_step = threading.Event()

    def follow():
        for view in gen:
            if view.status.startswith("Step "):
                first_step.set()
    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    assert first_step.wait(WAIT)
    base, adapted = h.compare(visitor, TINY, knobs(), "What is 2+2?", registry=registry, limits=LIMITS)
    assert isinstance(base, str) and isinstance(adapted, str)
    assert long_run.running and len(long_run.history) < LIMITS.max_steps  # the run had not finished
    h.stop(long_run)
    follower.join(WAIT)
    assert not long_run.running


def test_a_waiting_run_says_how_many_are_ahead(registry, sessions):
    holder = MODEL_GATE.request("someone else")
    assert holder.wait(WAIT)
    waiting = sessions("waiting")
    gen = h.train(waiting, TINY, knobs(steps=1), TASKS, "contains", 0.002, registry=registry, limits=LIMITS)
    try:
        first = next(gen)
        assert first.running and first.status.startswith("Waiting for the model: 1 ahead of you")
    finally:
        holder.release()
    views = [first, *gen]
    assert views[-1].status.startswith("Done: 1 step (")


def test_a_waiting_compare_is_told_its_place(registry, sessions, monkeypatch):
    told: list[str] = []
    monkeypatch.setattr(gr, "Info", lambda message, *a, **k: told.append(message))
    holder = MODEL_GATE.request("someone else")
    assert holder.wait(WAIT)
    thread, out = in_thread(lambda: h.compare(sessions("c"), TINY, knobs(), "Hi", registry=registry, limits=LIMITS))
    for _ in range(WAIT * 10):
        if told:
            break
        threading.Event().wait(0.1)
    holder.release()
    thread.join(WAIT)
    assert told and told[0].startswith("Waiting for the model: 1 ahead of you")
    assert out and isinstance(out[0], tuple)


# --- the compute budget -----------------------------------------------------------------------

def test_a_run_over_its_budget_stops_after_the_step_keeps_its_adapter_and_says_why(registry, sessions, monkeypatch):
    warnings: list[str] = []
    monkeypatch.setattr(gr, "Warning", lambda message, *a, **k: warnings.append(message))
    tight = replace(LIMITS, max_run_seconds=1e-6)  # every step takes longer than this
    session = sessions("budget")
    views = train(session, registry, limits=tight, steps=5)
    assert session.policy_state.steps_trained == 1 and len(session.history) == 1
    last = views[-1]
    assert last.finished and last.error is None
    assert last.status.startswith("Stopped after 1 of 5 steps (run 1): this server's compute budget per Train press")
    assert warnings and "compute budget" in warnings[0]
    # Without a budget the same run goes all the way (so the check above can fail).
    unlimited = sessions("unlimited")
    assert train(unlimited, registry, steps=5)[-1].status.startswith("Done: 5 steps")


def test_a_broken_or_foreign_optimizer_file_is_a_clear_error(tiny, tmp_path):
    from ppo_demo.policy import OPTIMIZER_FILE, AdapterError, load_policy_state, save_policy_state

    tasks = [Task("say hi", "h")]
    config = TrainConfig(steps=1, batch_size=2, max_new_tokens=4, seed=1)
    trainer = PPOTrainer(tiny, config, tasks, RewardConfig())
    list(trainer.train(1))
    save_policy_state(trainer.state(), tmp_path)
    saved = load_policy_state(tmp_path)
    assert saved.optimizer["state"].keys() == trainer.state().optimizer["state"].keys()
    # A rank-4 adapter cannot take a rank-8 adapter's moments.
    with pytest.raises(AdapterError, match="optimizer state does not fit"):
        PPOTrainer(tiny, config.replace(lora_r=4), tasks, RewardConfig(),
                   state=replace(saved, tensors=PPOTrainer(tiny, config.replace(lora_r=4), tasks).state().tensors,
                                 lora={**saved.lora, "r": 4}))
    (tmp_path / OPTIMIZER_FILE).write_bytes(b"not a safetensors file")
    with pytest.raises(AdapterError, match="optimizer.safetensors is not a readable optimizer state"):
        load_policy_state(tmp_path)


def test_one_step_per_model_job_call_equals_one_call_for_the_whole_run(registry):
    """What a turn is in the app: train_steps called for ONE step with the session's state, its
    state fed to the next call. Four such calls == one call of four steps, bitwise, optimizer
    and the adaptive KL coefficient included (kl_target on: beta moves every step)."""
    from ppo_demo.ui import model_work

    config = h.build_config(knobs(steps=4, kl_target="0.05"), LIMITS)
    assert config.kl_target == 0.05
    request = model_work.TrainRequest(model_work.registry_key(registry), TINY, config, h.build_tasks(TASKS, LIMITS),
                                      h.build_reward("contains", 0.002, []), None, 4)
    whole = [o for o in model_work.train_steps(request) if o.kind == "step"][-1].state
    state = None
    for _ in range(4):
        (step,) = [o for o in model_work.train_steps(replace(request, state=state, steps=1)) if o.kind == "step"]
        state = step.state
    assert state.steps_trained == whole.steps_trained == 4
    assert state.meta["kl_coef"] == whole.meta["kl_coef"] != config.kl_coef
    assert_bitwise_equal(whole.tensors, state.tensors)
    assert_bitwise_equal({f"{i}.{k}": v for i, s in whole.optimizer["state"].items() for k, v in s.items()},
                         {f"{i}.{k}": v for i, s in state.optimizer["state"].items() for k, v in s.items()})


def test_a_used_up_budget_ends_the_whole_kl_demo_press(registry, sessions, monkeypatch):
    monkeypatch.setattr(gr, "Warning", lambda *a, **k: None)
    session = sessions("kl-demo-budget")
    h.queue_kl_demo(session, 3)
    views = train(session, registry, limits=replace(LIMITS, max_run_seconds=1e-6), steps=3)
    # The first queued run used the press's budget in its first step: the other two never started.
    assert [run.steps for run in session.runs.runs] == [1]
    assert "compute budget" in views[-1].status and session.runs.planned == []
    # Without a budget the same press trains all three runs.
    unlimited = sessions("kl-demo-unlimited")
    h.queue_kl_demo(unlimited, 3)
    train(unlimited, registry, steps=3)
    assert [run.steps for run in unlimited.runs.runs] == [3, 3, 3]
