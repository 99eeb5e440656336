"""The running app driven through its API with gradio_client (app.py on tiny-random).

Run: .venv/bin/python -m pytest tests/test_app_client.py -q
"""

from __future__ import annotations

import json
import time

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from ui_server import app_url  # noqa: F401  (fixture)

SMALL = dict(batch_size=4, num_minibatches=2, max_new_tokens=6)


def statuses(job) -> list[str]:
    return [out[0] for out in job]


def test_train_streams_updates_then_continues(app_url):
    client = Client(app_url, verbose=False)
    job = client.submit(steps=4, api_name="/train", **SMALL)
    seen = statuses(job)
    assert len([s for s in seen if s.startswith("Step ")]) == 4
    assert seen[-1].startswith("Done: 4 steps")
    # The same client is the same session: a second Train continues the step count.
    seen = statuses(client.submit(steps=2, api_name="/train", **SMALL))
    assert "6 steps trained in total" in [s for s in seen if s.startswith("Step ")][-1]
    # The reward plot's data came along with every update.
    final = client.submit(steps=1, api_name="/train", **SMALL)
    outputs = list(final)[-1]
    plot = outputs[1].get("value", outputs[1]) if isinstance(outputs[1], dict) else outputs[1]
    spec = json.loads(plot["plot"])  # a gr.Plot: the reward chart's Vega-Lite spec with its data
    assert {row["step"] for row in spec["data"]["values"]} == set(range(1, 8))
    assert "mean reward" in spec["encoding"]["color"]["scale"]["domain"]


def test_stop_ends_a_long_run(app_url):
    client = Client(app_url, verbose=False)
    job = client.submit(steps=200, api_name="/train", **SMALL)
    deadline = time.monotonic() + 60
    while not any(out[0].startswith("Step 2/") for out in job.outputs()):
        assert time.monotonic() < deadline and not job.done(), "no training progress"
        time.sleep(0.05)
    assert client.predict(api_name="/stop").startswith("Stopping")
    job.result(timeout=60)
    final = job.outputs()[-1][0]
    assert final.startswith("Stopped after") and "of 200 steps" in final


def test_compare_returns_two_answers(app_url):
    client = Client(app_url, verbose=False)
    statuses(client.submit(steps=2, api_name="/train", **SMALL))
    base, adapted = client.predict(prompt="What is 2+2?", api_name="/compare", max_new_tokens=8)
    assert isinstance(base, str) and isinstance(adapted, str) and base and adapted


def test_api_input_is_validated_on_the_server(app_url):
    client = Client(app_url, verbose=False)
    with pytest.raises(AppError, match="greater than maximum value 200"):
        client.predict(steps=100000, api_name="/train")
    with pytest.raises(AppError, match="Mini-batches .* cannot exceed the batch size"):
        client.predict(steps=1, batch_size=2, num_minibatches=8, api_name="/train")
    with pytest.raises(AppError, match="has no expected answer"):
        client.predict(steps=1, tasks={"headers": ["prompt", "expected"], "data": [["Say yes.", ""]]},
                       api_name="/train")
