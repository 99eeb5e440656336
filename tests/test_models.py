"""Model loading choices that do not need the embedded model."""

import pytest
import torch

from ppo_demo.models import ModelLoadError, default_dtype, load_model


def test_dtype_defaults_follow_the_seed(monkeypatch):
    monkeypatch.delenv("PPO_DEMO_DTYPE", raising=False)
    assert default_dtype(torch.device("cpu")) == torch.float32


def test_dtype_environment_override(monkeypatch):
    monkeypatch.setenv("PPO_DEMO_DTYPE", "bf16")
    loaded = load_model("tiny-random", device="cpu")
    assert loaded.dtype == torch.bfloat16
    assert next(loaded.model.parameters()).dtype == torch.bfloat16


def test_unknown_dtype_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("PPO_DEMO_DTYPE", "float8")
    with pytest.raises(ModelLoadError, match="Unknown dtype 'float8'. Use one of: float32, bfloat16, float16"):
        load_model("tiny-random", device="cpu")
