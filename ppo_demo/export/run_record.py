"""run.json: what an export needs to know about a run, written by ``train --out`` (and the app).

    {"format": "ppo-lora-lab-run/1", "model_name": "smollm2-135m-instruct",
     "base_model": "HuggingFaceTB/SmolLM2-135M-Instruct", "system_prompt": "...",
     "eos_token": "<|im_end|>", "tasks": [{"prompt", "expected", "held_out"}...],
     "reward": {"match_mode", "length_penalty", "hit_reward", "miss_reward", "missing_eos_penalty"},
     "knobs": {every TrainConfig knob}, "steps_trained": 20}
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from ..config import TrainConfig
from ..reward import RewardConfig
from ..rollout import DEFAULT_SYSTEM_PROMPT
from ..tasks import Task

RUN_FILE = "run.json"
RUN_FORMAT = "ppo-lora-lab-run/1"


class ExportError(ValueError):
    """A run cannot be exported; the message says what is missing."""


@dataclass
class RunRecord:
    model_name: str
    base_model: str
    tasks: list[Task]
    reward: RewardConfig
    missing_eos_penalty: float
    knobs: TrainConfig
    eos_token: str = ""
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    steps_trained: int = 0

    def to_json(self) -> dict:
        reward = {f.name: getattr(self.reward, f.name) for f in dataclasses.fields(self.reward)}
        reward["missing_eos_penalty"] = self.missing_eos_penalty
        return {"format": RUN_FORMAT, "model_name": self.model_name, "base_model": self.base_model,
                "system_prompt": self.system_prompt, "eos_token": self.eos_token,
                "tasks": [{"prompt": t.prompt, "expected": t.expected, "held_out": t.held_out} for t in self.tasks],
                "reward": reward, "knobs": self.knobs.to_dict(), "steps_trained": self.steps_trained}


def make_run_record(model_name: str, tasks, reward: RewardConfig, config: TrainConfig, eos_token: str = "",
                    steps_trained: int = 0, system_prompt: str = DEFAULT_SYSTEM_PROMPT) -> RunRecord:
    from ..peft_format import base_model_id

    # The missing-EOS penalty is a knob of the run today; it may live on the reward's config.
    missing_eos = getattr(reward, "missing_eos_penalty", None)
    if missing_eos is None:
        missing_eos = getattr(config, "missing_eos_penalty", 0.0)
    return RunRecord(model_name, base_model_id(model_name), list(tasks), reward, float(missing_eos), config,
                     eos_token or "", system_prompt, steps_trained)


def write_run_record(record: RunRecord, directory: str | Path) -> Path:
    path = Path(directory) / RUN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record.to_json(), indent=2, ensure_ascii=False), encoding="utf-8")
    return path


def read_run_record(directory: str | Path) -> RunRecord:
    """Read run.json from a ``train --out`` folder; a missing or foreign file is an ExportError."""
    path = Path(directory) / RUN_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExportError(f"{directory} has no {RUN_FILE}: export a folder written by "
                          "'python -m ppo_demo train ... --out DIR'.") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ExportError(f"{path} is not valid JSON.") from None
    if not isinstance(data, dict) or data.get("format") != RUN_FORMAT:
        raise ExportError(f"{path} is not a PPO-LoRA Lab run record (format {RUN_FORMAT}).")
    try:
        reward_values = dict(data["reward"])
        missing_eos = float(reward_values.pop("missing_eos_penalty", 0.0))
        reward_fields = {f.name for f in dataclasses.fields(RewardConfig)}
        reward = RewardConfig(**{k: v for k, v in reward_values.items() if k in reward_fields}).validate()
        knob_names = {f.name for f in dataclasses.fields(TrainConfig)}
        knobs = TrainConfig.from_dict({k: v for k, v in data["knobs"].items() if k in knob_names})
        tasks = [Task(str(t["prompt"]), str(t["expected"]), bool(t.get("held_out", False))) for t in data["tasks"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise ExportError(f"{path} is incomplete or invalid ({exc}).") from None
    if not tasks:
        raise ExportError(f"{path} lists no tasks.")
    return RunRecord(str(data.get("model_name", "")), str(data.get("base_model", "")), tasks, reward, missing_eos,
                     knobs, str(data.get("eos_token") or ""), str(data.get("system_prompt") or DEFAULT_SYSTEM_PROMPT),
                     int(data.get("steps_trained", 0)))
