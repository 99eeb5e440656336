"""The command line: JSON lines per step, an eval event, saved files, one-line errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ppo_demo.cli import main

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "ppo_demo", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_jsonl_run_with_eval_and_out(tmp_path):
    tasks = tmp_path / "tasks.csv"
    tasks.write_text("prompt,expected\nsay a,a\nsay b,b\n", encoding="utf-8")
    out = tmp_path / "run"
    proc = run_cli("train", "--model", "tiny-random", "--steps", "2", "--batch-size", "2", "--max-new-tokens", "4",
                   "--tasks", str(tasks), "--eval-samples", "2", "--out", str(out), "--jsonl")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    steps = [line for line in lines if "event" not in line]
    assert [s["step"] for s in steps] == [1, 2]
    for key in ("samples", "response_tokens", "reward_mean", "kl_mean", "policy_loss", "value_loss", "entropy",
                "approx_kl", "clip_frac", "step_seconds"):
        assert key in steps[0], key
    assert steps[0]["samples"] == 2
    final = lines[-1]
    assert final["event"] == "eval" and len(final["tasks"]) == 2
    assert 0.0 <= final["base_success"] <= 1.0
    assert (out / "adapter_model.safetensors").exists() and (out / "adapter_config.json").exists()
    assert (out / "run.json").exists() and (out / "value_head.safetensors").exists()
    assert (out / "optimizer.safetensors").exists()  # save_adapter, as the app's download: continues exactly
    assert (out / "metrics.csv").read_text().count("\n") == 3  # header + 2 steps


@pytest.mark.parametrize("args,message", [
    (["train", "--steps", "0"], "Steps must be between"),
    (["train", "--learning-rate", "fast"], "Learning rate must be a number"),
    (["train", "--preset", "turbo"], "invalid choice"),
    (["train", "--tasks", "/no/such/file.csv"], "Cannot read the task file"),
    (["train", "--num-minibatches", "9", "--batch-size", "2"], "cannot exceed the batch size"),
    (["train", "--model", "tiny-random", "--lora-targets", "c_attn", "--steps", "1"], "No Linear layer matches"),
])
def test_bad_arguments_give_one_line_and_exit_2(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert "Traceback" not in err and len(errors) == 1


def test_bad_task_file_row_is_named(tmp_path, capsys):
    tasks = tmp_path / "tasks.csv"
    tasks.write_text("prompt,expected\nok,yes\nmissing,\n", encoding="utf-8")
    assert main(["train", "--model", "tiny-random", "--tasks", str(tasks)]) == 2
    assert "row 2" in capsys.readouterr().err


def test_non_utf8_task_file(tmp_path, capsys):
    tasks = tmp_path / "tasks.csv"
    tasks.write_bytes("prompt,expected\ncafé,x\n".encode("latin-1"))
    assert main(["train", "--model", "tiny-random", "--tasks", str(tasks)]) == 2
    assert "not UTF-8" in capsys.readouterr().err


def test_dtype_and_memory_knobs_from_the_command_line(capsys):
    code = main(["train", "--model", "tiny-random", "--steps", "1", "--batch-size", "2", "--max-new-tokens", "3",
                 "--dtype", "bfloat16", "--micro-batch-tokens", "1", "--gradient-checkpointing", "true", "--jsonl"])
    assert code == 0, capsys.readouterr().err
    step = json.loads(capsys.readouterr().out.splitlines()[0])
    assert step["samples"] == 2 and step["approx_kl"] == pytest.approx(0.0, abs=1e-4)


def test_cli_without_preset_starts_from_the_apps_knobs():
    """One default: the CLI with no --preset trains with the knobs the app shows on opening."""
    from ppo_demo.cli import _config_from_args, build_parser
    from ppo_demo.config import TrainConfig
    from ppo_demo.ui.handlers import default_knobs
    from ppo_demo.ui.limits import Limits

    cli = _config_from_args(build_parser().parse_args(["train"]))
    assert cli == TrainConfig.from_dict(default_knobs(Limits()))
    assert cli != TrainConfig()  # the field defaults differ, so this test can fail


def test_reward_flags_come_from_the_reward_knobs(capsys):
    assert main(["train", "--model", "tiny-random", "--length-penalty", "5"]) == 2
    assert "Length penalty must be between 0 and 1" in capsys.readouterr().err


@pytest.mark.parametrize("command", [[], ["train"], ["export"]])
def test_help_prints_for_every_command(command, capsys):
    # A knob's help with a literal % ("about 20%") once made argparse's --help raise ValueError.
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage:" in capsys.readouterr().out
