"""Evaluation is not training: sample answers from the base (pi_ref) and the adapted policy and
score them with the training reward.

Both functions take a :class:`~ppo_demo.policy.PolicyRuntime` that already carries the policy to
judge (``with PolicyRuntime.for_config(loaded, config, state) as runtime: ...``), so a Compare
or an evaluation needs no trainer and no optimizer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .config import TrainConfig
from .policy import PolicyRuntime
from .reward import RewardConfig, is_hit, rule_reward
from .rollout import DEFAULT_SYSTEM_PROMPT
from .tasks import Task


@dataclass
class TaskEval:
    prompt: str
    expected: str
    base_success: float
    adapted_success: float
    base_reward: float
    adapted_reward: float
    base_samples: list[str] = field(default_factory=list)
    adapted_samples: list[str] = field(default_factory=list)
    held_out: bool = False  # never trained on: reported apart from the training tasks


@dataclass
class EvalReport:
    samples_per_task: int
    tasks: list[TaskEval]

    def _part(self, held_out: bool) -> list[TaskEval]:
        return [t for t in self.tasks if t.held_out == held_out]

    @property
    def training_tasks(self) -> list[TaskEval]:
        """The tasks trained on (all of them when every task is held out, so a mean exists)."""
        return self._part(False) or self.tasks

    @property
    def held_out_tasks(self) -> list[TaskEval]:
        return self._part(True)

    @property
    def base_success(self) -> float:
        """Mean success of the base model on the training tasks (held-out tasks apart)."""
        return sum(t.base_success for t in self.training_tasks) / len(self.training_tasks)

    @property
    def adapted_success(self) -> float:
        """Mean success of the adapted policy on the training tasks (held-out tasks apart)."""
        return sum(t.adapted_success for t in self.training_tasks) / len(self.training_tasks)

    @property
    def held_out_base_success(self) -> float | None:
        part = self.held_out_tasks
        return sum(t.base_success for t in part) / len(part) if part else None

    @property
    def held_out_adapted_success(self) -> float | None:
        part = self.held_out_tasks
        return sum(t.adapted_success for t in part) / len(part) if part else None


def compare(runtime: PolicyRuntime, prompt: str, *, seed: int, temperature: float, top_p: float,
            max_new_tokens: int, system_prompt: str | None = DEFAULT_SYSTEM_PROMPT) -> tuple[str, str]:
    """(base answer, adapted answer), both sampled with the same seed and settings."""
    sampling = dict(seed=seed, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                    system_prompt=system_prompt)
    base = runtime.answers([prompt], adapters=False, **sampling)[0][0]
    adapted = runtime.answers([prompt], adapters=True, **sampling)[0][0]
    return base, adapted


def evaluate(runtime: PolicyRuntime, tasks: list[Task], reward: RewardConfig, config: TrainConfig, *,
             samples_per_task: int = 8, seed: int = 1234, max_batch: int = 32,
             system_prompt: str | None = DEFAULT_SYSTEM_PROMPT) -> EvalReport:
    """K sampled answers per task from the base and from the adapted policy.

    Sampling uses the run's temperature, top-p and max new tokens: the success rate is then that
    of the very distribution PPO optimised (a lower temperature would flatter the base model),
    and the mean reward is the training reward, missing-EOS penalty included."""
    prompts = [t.prompt for t in tasks for _ in range(samples_per_task)]
    answers, ended = {}, {}
    for adapters in (False, True):
        answers[adapters], ended[adapters] = [], []
        for start in range(0, len(prompts), max_batch):
            texts, eos = runtime.answers(prompts[start:start + max_batch], adapters=adapters, seed=seed + start,
                                         temperature=config.temperature, top_p=config.top_p,
                                         max_new_tokens=config.max_new_tokens, system_prompt=system_prompt)
            answers[adapters] += texts
            ended[adapters] += eos
    report = []
    for index, task in enumerate(tasks):
        chunk = slice(index * samples_per_task, (index + 1) * samples_per_task)
        stats = {}
        for adapters in (False, True):
            texts = answers[adapters][chunk]
            rewards = [rule_reward(t, task.expected, reward, ended_with_eos=e,
                                   missing_eos_penalty=config.missing_eos_penalty)
                       for t, e in zip(texts, ended[adapters][chunk])]
            stats[adapters] = (sum(is_hit(t, task.expected, reward) for t in texts) / len(texts),
                               sum(rewards) / len(rewards), texts)
        report.append(TaskEval(task.prompt, task.expected, stats[False][0], stats[True][0],
                               stats[False][1], stats[True][1], stats[False][2], stats[True][2],
                               held_out=task.held_out))
    return EvalReport(samples_per_task, report)
