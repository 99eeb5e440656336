"""Fair turns on the shared model (ppo_demo/ui/model_gate.py), with threads and no model.

Run: .venv/bin/python -m pytest tests/test_model_gate.py -q
"""

from __future__ import annotations

import threading

import pytest

from ppo_demo.ui.model_gate import ModelGate
from gate_probe import gate_is_free

WAIT = 30  # seconds a test thread may wait for an event that must happen; never reached when it passes


def _wait_until(condition, what: str):
    event = threading.Event()
    for _ in range(WAIT * 100):
        if condition():
            return
        event.wait(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def test_turns_are_granted_first_come_first_served():
    gate = ModelGate()
    first = gate.request("a")
    assert first.wait(0) and first.ahead == 0
    later = [gate.request(name) for name in "bcd"]
    assert [t.ahead for t in later] == [1, 2, 3]  # the holder plus those queued earlier
    assert gate.waiting() == 3 and not later[0].wait(0)
    first.release()
    assert later[0].wait(0) and not later[1].wait(0)
    assert [t.ahead for t in later] == [0, 1, 2]
    later[1].release()  # a user who leaves while waiting gives up the place
    assert later[2].ahead == 1
    later[0].release()
    assert later[2].wait(0)
    later[2].release()
    assert gate_is_free(gate) and gate.waiting() == 0


def test_two_runs_alternate_step_by_step_and_a_compare_gets_in_after_one_step():
    """Each run takes one turn per step and asks again: runs interleave, a newcomer waits for
    at most the step in progress plus one step of each run queued before it."""
    gate = ModelGate()
    log: list[str] = []
    steps = {"A": 4, "B": 4}
    compare_asked = threading.Event()
    a_started = threading.Event()

    def run(name: str, other: str):
        for step in range(steps[name]):
            with gate.turn(name):
                log.append(f"{name}{step + 1}")
                if name == "A" and step == 0:
                    a_started.set()
                    _wait_until(lambda: gate.waiting() >= 1, "B to queue")
                if name == "A" and step == 1:
                    compare_asked.wait(WAIT)  # the Compare arrives during A's second step
                # Hand over only once the other run has queued its next step (if it has one):
                # this makes the order deterministic without sleeping.
                _wait_until(lambda: gate.waiting() >= 1 or not others_left(other), f"{other} to queue")

    remaining = dict(steps)

    def others_left(other):
        return remaining[other] > sum(1 for entry in log if entry.startswith(other))

    threads = [threading.Thread(target=run, args=("A", "B")), threading.Thread(target=run, args=("B", "A"))]
    threads[0].start()
    a_started.wait(WAIT)
    threads[1].start()
    _wait_until(lambda: "A2" in log and gate.waiting() == 1, "A's second step with B's next one queued")
    compare = gate.request("C")
    assert compare.ahead == 2  # A's step in progress, then B's queued step
    compare_asked.set()
    assert compare.wait(WAIT)
    log.append("C")
    compare.release()
    for t in threads:
        t.join(WAIT)
    assert log == ["A1", "B1", "A2", "B2", "C", "A3", "B3", "A4", "B4"]


def test_an_error_inside_a_turn_releases_it():
    gate = ModelGate()
    with pytest.raises(ValueError):
        with gate.turn("a"):
            raise ValueError("a failing step")
    assert gate_is_free(gate)
    with gate.turn("b") as ticket:
        assert ticket.holding


def test_a_waiter_hears_how_many_are_ahead_and_can_give_up():
    gate = ModelGate()
    holder = gate.request("a")
    heard: list[int] = []

    class Gone(Exception):
        pass

    def on_wait(ahead):
        heard.append(ahead)
        raise Gone()  # e.g. the user closed the tab

    with pytest.raises(Gone):
        with gate.turn("b", on_wait=on_wait, poll=0.01):
            pass
    assert heard == [1] and gate.waiting() == 0
    holder.release()
    assert gate_is_free(gate)
