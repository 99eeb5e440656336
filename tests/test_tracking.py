"""trackio as an opt-in sink, writing to a temporary TRACKIO_DIR (trackio reads it at import,
hence the subprocesses).

Run: .venv/bin/python -m pytest -q tests/test_tracking.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ppo_demo.tracking import METRIC_NAMES, project_from_env, tracked_metrics

ROOT = Path(__file__).resolve().parents[1]


def test_names_line_up_with_verl_and_the_rest_keep_the_lab_prefix():
    logged = tracked_metrics({"step": 3, "reward_mean": 0.5, "clip_frac": 0.1, "success_rate": 0.75,
                              "task_reward/0": 1.0, "explained_variance": float("nan"), "note": "x",
                              "clip_frac_low": 0.02, "clip_frac_high": 0.03})
    assert logged == {"critic/score/mean": 0.5, "lab/clip_frac": 0.1, "lab/success_rate": 0.75,
                      "lab/task_reward/0": 1.0, "clip_ratio/low_mean": 0.02, "clip_ratio/high_mean": 0.03,
                      "actor/pg_clipfrac": pytest.approx(0.05)}
    assert len(set(METRIC_NAMES.values())) == len(METRIC_NAMES)  # no two lab metrics share a name


def test_off_unless_the_env_var_names_a_project(monkeypatch):
    monkeypatch.delenv("PPO_DEMO_TRACKIO", raising=False)
    assert project_from_env() is None
    monkeypatch.setenv("PPO_DEMO_TRACKIO", "  ")
    assert project_from_env() is None
    monkeypatch.setenv("PPO_DEMO_TRACKIO", "lab-runs")
    assert project_from_env() == "lab-runs"


def test_cli_logs_every_step_to_a_local_trackio_dir(tmp_path):
    pytest.importorskip("trackio")
    env = {**os.environ, "TRACKIO_DIR": str(tmp_path / "trackio"), "HF_HUB_OFFLINE": "1"}
    env.pop("TRACKIO_SPACE_ID", None)
    env.pop("TRACKIO_SERVER_URL", None)
    proc = subprocess.run([sys.executable, "-m", "ppo_demo", "train", "--model", "tiny-random", "--steps", "2",
                           "--batch-size", "2", "--max-new-tokens", "4", "--jsonl", "--trackio", "lab-test"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    steps = [json.loads(line) for line in proc.stdout.splitlines()]  # stdout stays pure JSON
    read = subprocess.run([sys.executable, "-c", (
        "import json; from trackio.sqlite_storage import SQLiteStorage as S\n"
        "runs = S.get_runs('lab-test'); assert len(runs) == 1, runs\n"
        "print(json.dumps(S.get_logs('lab-test', runs[0])))")], env=env, capture_output=True, text=True, timeout=300)
    assert read.returncode == 0, read.stderr[-2000:]
    logs = json.loads(read.stdout.strip().splitlines()[-1])
    assert [row["step"] for row in logs] == [1, 2]
    assert [row["critic/score/mean"] for row in logs] == pytest.approx([s["reward_mean"] for s in steps])
    assert not any("prompt" in key or "expected" in key for row in logs for key in row)  # no task text
    assert (tmp_path / "trackio").is_dir()
