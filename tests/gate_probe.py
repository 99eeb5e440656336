"""A check the UI tests share: is the shared model free? Asked the way a job asks, through the
gate's public interface. Import it: ``from gate_probe import gate_is_free``."""

from __future__ import annotations


def gate_is_free(gate) -> bool:
    """Nobody holds the model and nobody waits: a newcomer gets its turn at once (and gives it back)."""
    ticket = gate.request("free-check")
    try:
        return ticket.wait(0)
    finally:
        ticket.release()
