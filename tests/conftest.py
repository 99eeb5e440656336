"""Shared fixtures. Every test here runs on ``tiny-random`` (a 2-layer Llama built locally in
milliseconds) except those marked ``integration``, which load the embedded SmolLM2."""

from __future__ import annotations

import pytest
import torch

from ppo_demo.cpu_tuning import configure_cpu_runtime
from ppo_demo.models import load_model

configure_cpu_runtime()  # as the app and the CLI do at start-up


@pytest.fixture
def tiny():
    """A fresh tiny model per test: trainers inject LoRA into it, so tests must not share one."""
    torch.manual_seed(0)
    return load_model("tiny-random", device="cpu")


@pytest.fixture(scope="session")
def embedded():
    """The real embedded SmolLM2-135M-Instruct, loaded once for the integration tests."""
    return load_model("smollm2-135m-instruct", device="cpu")


@pytest.fixture
def tiny64():
    """The tiny model computing in float64 end to end, for tests that two computation orders
    give equal numbers: rounding then stays far below their tolerance on any CPU (see
    tests/tolerances.py)."""
    from tolerances import float64_everywhere

    torch.manual_seed(0)
    loaded = load_model("tiny-random", device="cpu", dtype=torch.float64)
    float64_everywhere(loaded.model)
    return loaded
