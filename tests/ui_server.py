"""A fixture that serves ``app.py`` on ``tiny-random`` (or ``PPO_DEMO_TEST_MODEL``) in a subprocess, for the client and
browser tests. Import it into a test module: ``from ui_server import app_url``."""

from __future__ import annotations

import os
import sys
from contextlib import ExitStack
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import serve_app  # noqa: E402

# The README screenshot is this test run on the real model: PPO_DEMO_TEST_MODEL=smollm2-135m-instruct.
TEST_MODEL = os.environ.get("PPO_DEMO_TEST_MODEL", "tiny-random")


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    log = tmp_path_factory.mktemp("app") / "app.log"
    with ExitStack() as stack:
        try:
            url = stack.enter_context(serve_app(timeout=90, log_path=log, model=TEST_MODEL))
        except RuntimeError as exc:
            pytest.fail(f"{exc}:\n{log.read_text()[-3000:]}")
        yield url
