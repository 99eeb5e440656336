"""Server limits: laptop defaults locally, public-safe defaults on a Space, owner overrides, and
Gradio's own upload bound.

Run: .venv/bin/python -m pytest tests/test_limits.py -q
"""

from __future__ import annotations

import httpx
import gradio as gr
import pytest

from ppo_demo.config import TrainConfig
from ppo_demo.models import DEFAULT_MODEL
from ppo_demo.ui.limits import SPACE_DEFAULTS, Limits, LimitsError, limits_from_env

SPACE = {"SPACE_ID": "someone/ppo-lora-lab"}
QWEN = "qwen2-0.5b-instruct"


def test_locally_any_model_and_no_run_budget():
    limits = limits_from_env({})
    assert limits == Limits() and not limits.on_space
    assert limits.allowed_models is None and limits.model_allowed("gpt2")
    assert limits.max_run_seconds is None
    assert limits.allow_full_finetune


def test_on_a_space_the_defaults_are_public_safe():
    limits = limits_from_env(SPACE)
    assert limits.on_space
    assert limits.allowed_models == (DEFAULT_MODEL, QWEN)
    assert not limits.model_allowed("gpt2") and not limits.model_allowed("/etc/some/checkpoint")
    with pytest.raises(LimitsError, match="not available on this server. Choose one of: smollm2"):
        limits.check_model("someone/huge-model")
    assert (limits.max_steps, limits.max_batch, limits.max_new_tokens) == (40, 16, 96)
    assert limits.max_run_seconds == 600
    assert limits.max_upload_bytes == 100 * 1024 ** 2
    with pytest.raises(LimitsError, match="Full fine-tuning is switched off"):
        limits.check_mode("full")
    limits.check_mode("lora")
    # Every Space default is stricter than (or equal to) the local one.
    local = Limits()
    for name in ("max_steps", "max_batch", "max_new_tokens", "max_tasks", "max_prompt_chars",
                 "max_eval_samples", "max_upload_mb"):
        assert getattr(limits, name) <= getattr(local, name), name


def test_space_caps_keep_the_apps_default_knobs_valid():
    """The page starts from TrainConfig's defaults: a Space's caps must not reject them."""
    config, limits = TrainConfig(), limits_from_env(SPACE)
    assert config.steps <= limits.max_steps and config.batch_size <= limits.max_batch
    assert config.max_new_tokens <= limits.max_new_tokens


def test_the_space_owner_overrides_any_default():
    env = {**SPACE, "PPO_DEMO_ALLOWED_MODELS": "smollm2-135m-instruct,gpt2", "PPO_DEMO_MAX_STEPS": "100",
           "PPO_DEMO_MAX_RUN_SECONDS": "none", "PPO_DEMO_ALLOW_FULL_FINETUNE": "true",
           "PPO_DEMO_MAX_UPLOAD_MB": "500"}
    limits = limits_from_env(env)
    assert limits.allowed_models == (DEFAULT_MODEL, "gpt2")
    assert limits.max_steps == 100 and limits.max_run_seconds is None and limits.allow_full_finetune
    assert limits.max_upload_mb == 500
    assert limits.max_batch == SPACE_DEFAULTS["max_batch"]  # the ones not set keep the Space default


def test_the_tiny_model_stays_usable_on_a_space():
    limits = limits_from_env({**SPACE, "PPO_DEMO_MODEL": "tiny-random"})
    assert limits.allowed_models == (DEFAULT_MODEL, QWEN, "tiny-random")


def test_a_start_model_outside_the_spaces_list_is_a_startup_error():
    with pytest.raises(LimitsError, match="not in the Space's default model list.*PPO_DEMO_ALLOWED_MODELS"):
        limits_from_env({**SPACE, "PPO_DEMO_MODEL": "gpt2"})


@pytest.mark.parametrize("raw, expected", [("600", 600.0), ("2.5", 2.5), ("0", None), ("none", None),
                                           (" 90 ", 90.0)])
def test_max_run_seconds_parses(raw, expected):
    assert limits_from_env({"PPO_DEMO_MAX_RUN_SECONDS": raw}).max_run_seconds == expected


@pytest.mark.parametrize("env, message", [
    ({"PPO_DEMO_MAX_RUN_SECONDS": "ten minutes"}, "PPO_DEMO_MAX_RUN_SECONDS must be a number of seconds"),
    ({"PPO_DEMO_MAX_RUN_SECONDS": "-5"}, "PPO_DEMO_MAX_RUN_SECONDS must be at least 1 second"),
    ({"PPO_DEMO_MAX_RUN_SECONDS": "0.5"}, "PPO_DEMO_MAX_RUN_SECONDS must be at least 1 second"),
    ({"PPO_DEMO_MAX_RUN_SECONDS": "inf"}, "PPO_DEMO_MAX_RUN_SECONDS must be at least 1 second"),
    ({"PPO_DEMO_MAX_RUN_SECONDS": "nan"}, "PPO_DEMO_MAX_RUN_SECONDS must be at least 1 second"),
    ({"PPO_DEMO_MAX_UPLOAD_MB": "1GB"}, "PPO_DEMO_MAX_UPLOAD_MB must be a whole number"),
    ({"PPO_DEMO_MAX_UPLOAD_MB": "0"}, "PPO_DEMO_MAX_UPLOAD_MB must be at least 1"),
    ({"PPO_DEMO_ALLOW_FULL_FINETUNE": "maybe"}, "PPO_DEMO_ALLOW_FULL_FINETUNE must be true or false"),
])
def test_bad_values_name_the_variable(env, message):
    with pytest.raises(LimitsError, match=message):
        limits_from_env(env)


def test_gradio_refuses_an_upload_over_the_limit_while_it_arrives():
    """launch(**limits.launch_kwargs()) makes Gradio's upload route itself enforce the bound."""
    limits = Limits(max_upload_mb=1)
    with gr.Blocks() as demo:
        gr.File()
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True,
                            **limits.launch_kwargs())
    try:
        upload = url.rstrip("/") + "/gradio_api/upload"
        small = httpx.post(upload, files={"files": ("a.zip", b"x" * 1000)}, timeout=30)
        assert small.status_code == 200, small.text
        big = httpx.post(upload, files={"files": ("b.zip", b"x" * (limits.max_upload_bytes + 1))}, timeout=30)
        assert big.status_code == 413 and "File size exceeded" in big.text
    finally:
        demo.close()
