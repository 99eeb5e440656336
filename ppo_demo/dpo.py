"""DPO on a table of preference pairs: the policy learns from the pairs directly, no reward model.

    L_DPO = −mean log σ(β [(log π(y_w|x) − log π_ref(y_w|x)) − (log π(y_l|x) − log π_ref(y_l|x))])

(the pure loss is :func:`ppo_demo.preference_losses.dpo_loss`). A step, in order:

1. draw ``batch_size`` pairs (seeded by the step, so a run can be cut and resumed);
2. log π(y|x) of both answers under the policy, summed over each answer's tokens (temperature 1:
   DPO's π is the model itself), in one pass of 2·b rows; log π_ref was computed once at the
   start, with the adapters off (LoRA) or from the frozen base (full fine-tuning), since the
   reference never changes;
3. the DPO loss, backward, gradient clipping, AdamW;
4. every ``sample_every`` steps, when tasks are given: sample answers to the task prompts as a
   PPO step would and report what a PPO run reports of them (the rule's "gold" score and
   success, KL to the reference per token on the policy's own answers, answer length; the
   reward model's score when one is given), so a DPO run and a PPO run overlay in one chart.

Departures a reader should know: the policy's answers never enter the loss (DPO is offline: it
learns from the pairs as they are); the sampled answers of stage 4 are only measured.
"""

from __future__ import annotations

import math
import random
import time
from typing import TYPE_CHECKING, Iterator

import torch

from . import ppo
from .config import TrainConfig
from .models import LoadedModel
from .policy import PolicyRuntime, PolicyState, autocast_context, load_optimizer_state, optimizer_state_on_cpu, response_scores
from .preference_losses import dpo_loss, sequence_logprobs
from .preferences import DPOConfig, Pair, PairEncoder, PreferenceError
from .reward import RewardConfig, is_hit, rule_reward
from .rollout import DEFAULT_SYSTEM_PROMPT
from .trainer import StepResult, seed_of_step

if TYPE_CHECKING:
    from .reward_model import RewardModel
    from .tasks import Task

REF_CHUNK_PAIRS = 8


class DPOTrainer:
    """DPO over a table of pairs for one policy state, reporting like :class:`~ppo_demo.trainer.PPOTrainer`."""

    def __init__(self, loaded: LoadedModel, config: TrainConfig, pairs: list[Pair], dpo: DPOConfig = DPOConfig(),
                 tasks: list["Task"] | None = None, reward: RewardConfig = RewardConfig(),
                 state: PolicyState | None = None, reward_model: "RewardModel | None" = None,
                 sample_every: int = 1, max_answer_tokens: int = 128,
                 system_prompt: str | None = DEFAULT_SYSTEM_PROMPT):
        self.config = config.validate()
        self.dpo = dpo.validate()
        self.reward = reward.validate()
        if not pairs:
            raise PreferenceError("preferences.error.empty_table")
        self.loaded = loaded
        self.device = loaded.device
        self.pairs = list(pairs)
        self.tasks = list(tasks or [])
        self.reward_model = reward_model
        self.sample_every = max(0, int(sample_every))
        self.system_prompt = system_prompt
        self.runtime = PolicyRuntime.for_config(loaded, config, state)
        self.runtime.pack_for_sampling = not config.gradient_checkpointing
        self.model = self.runtime.policy_model
        # LoRA A/B (or every weight in full mode); the value head has no part in DPO
        self.optimizer = torch.optim.AdamW([p for p in self.model.parameters() if p.requires_grad],
                                           lr=config.learning_rate)
        if state is not None and state.optimizer is not None:
            load_optimizer_state(self.optimizer, state.optimizer, config.learning_rate)
        self.steps_done = state.steps_trained if state is not None else 0
        self.encoder = PairEncoder(loaded.tokenizer, max_answer_tokens, system_prompt)
        self._prompt_ids = [self.runtime.prompt_ids(t.prompt, system_prompt) for t in self.tasks]
        self.ref_chosen, self.ref_rejected = self._reference_logps()  # (N,), (N,)

    # --- public API --------------------------------------------------------------------------
    def state(self) -> PolicyState:
        state = self.runtime.state(self.loaded.name, self.steps_done)
        state.optimizer = optimizer_state_on_cpu(self.optimizer)
        state.meta["trained_with"] = "dpo"
        return state

    def train(self, steps: int | None = None, stop_event=None) -> Iterator[StepResult]:
        for _ in range(self.config.steps if steps is None else steps):
            if stop_event is not None and stop_event.is_set():
                return
            yield self.step()

    def step(self) -> StepResult:
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed_of_step(self.config.seed, self.steps_done))
            return self._step()

    # --- stages ------------------------------------------------------------------------------
    def _pair_logps(self, model, pairs: list[Pair]) -> tuple[torch.Tensor, torch.Tensor]:
        """log π(y_w|x), log π(y_l|x) under ``model``, each (n,), summed over answer tokens."""
        batch = self.encoder.batch(pairs, self.device).trimmed()  # 2n rows: chosen, then rejected
        # A pair's two answers share their prompt: computed once (as PPO's passes do), unless
        # dropout is on (one mask would then be shared by both answers).
        share = self.config.share_prompts and not self.config.dropout_in_ppo
        with autocast_context(self.device):
            token_logps = response_scores(model, batch, temperature=1.0, share_prompts=share).logprobs  # (2n, T)
        logps = sequence_logprobs(token_logps, batch.response_mask)  # (2n,)
        return logps[:len(pairs)], logps[len(pairs):]

    @torch.no_grad()
    def _reference_logps(self) -> tuple[torch.Tensor, torch.Tensor]:
        chosen, rejected = [], []
        self.runtime.actor_critic.eval()
        with self.runtime.reference() as ref_model:
            for start in range(0, len(self.pairs), REF_CHUNK_PAIRS):
                c, r = self._pair_logps(ref_model, self.pairs[start:start + REF_CHUNK_PAIRS])
                chosen.append(c)
                rejected.append(r)
        return torch.cat(chosen), torch.cat(rejected)

    def _step(self) -> StepResult:
        cfg = self.config
        t_start = time.perf_counter()
        step_seed = seed_of_step(cfg.seed, self.steps_done)

        # 1. This step's pairs.
        rows = random.Random(step_seed).sample(range(len(self.pairs)), min(cfg.batch_size, len(self.pairs)))
        pairs = [self.pairs[i] for i in rows]
        index = torch.tensor(rows, device=self.device)

        # 2.-3. Policy log-probs of both answers, the DPO loss, one AdamW step (dropout as in PPO updates).
        self.runtime.actor_critic.train(cfg.dropout_in_ppo)
        chosen_logps, rejected_logps = self._pair_logps(self.model, pairs)  # (b,), (b,)
        loss, stats = dpo_loss(chosen_logps, rejected_logps, self.ref_chosen[index], self.ref_rejected[index],
                               self.dpo.dpo_beta)
        self.optimizer.zero_grad(set_to_none=True)
        updated = bool(torch.isfinite(loss))
        grad_norm = math.nan
        if updated:
            loss.backward()
            params = [p for group in self.optimizer.param_groups for p in group["params"]]
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm))
            updated = math.isfinite(grad_norm)
            if updated:
                self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.runtime.actor_critic.eval()
        self.steps_done += 1
        t_updated = time.perf_counter()

        metrics = {"step": self.steps_done, "dpo_loss": float(loss.detach()), "pairs": len(pairs),
                   "grad_norm": grad_norm, "skipped_updates": 0 if updated else 1,
                   **{k: float(v) for k, v in stats.items()}, "update_seconds": t_updated - t_start}
        # 4. Measure the policy's own answers, as a PPO step sees them.
        if self.tasks and self.sample_every and self.steps_done % self.sample_every == 0:
            metrics.update(self._sample_metrics(step_seed))
        metrics["step_seconds"] = time.perf_counter() - t_start
        return StepResult(self.steps_done, metrics, [], updated=updated)

    def _choose_tasks(self, seed: int) -> list[int]:
        """batch_size prompts, every task equally often when the numbers allow (as PPO picks)."""
        rng = random.Random(seed)
        n, size = len(self.tasks), self.config.batch_size
        indices = list(range(n)) * (size // n) + rng.sample(range(n), size % n)
        rng.shuffle(indices)
        return indices

    @torch.no_grad()
    def _sample_metrics(self, seed: int) -> dict:
        cfg = self.config
        task_indices = self._choose_tasks(seed)
        prompts = [self._prompt_ids[i] for i in task_indices]
        batch, logprobs, _ = self.runtime.sample_and_score(prompts, max_new_tokens=cfg.max_new_tokens,
                                                           temperature=cfg.temperature, top_p=cfg.top_p, seed=seed)
        mask = batch.response_mask  # (B, T)
        with self.runtime.reference() as ref_model, autocast_context(self.device):
            ref_logprobs = response_scores(ref_model, batch, cfg.temperature).logprobs * mask  # (B, T)
        kl = ppo.kl_per_token(logprobs, ref_logprobs, cfg.kl_estimator) * mask  # (B, T)
        texts = self.runtime.decode(batch)
        ended = batch.ended_with_eos.tolist()
        gold = [rule_reward(text, self.tasks[i].expected, self.reward, ended_with_eos=e,
                            missing_eos_penalty=cfg.missing_eos_penalty)
                for text, i, e in zip(texts, task_indices, ended)]
        hits = [is_hit(text, self.tasks[i].expected, self.reward) for text, i in zip(texts, task_indices)]
        lengths = batch.response_lengths.float()
        metrics = {"samples": len(texts), "gold_score_mean": sum(gold) / len(gold), "reward_mean": sum(gold) / len(gold),
                   "success_rate": sum(hits) / len(hits), "kl_mean": float(ppo.masked_mean(kl, mask)),
                   "kl_sum_mean": float(kl.sum(-1).mean()), "response_length_mean": float(lengths.mean()),
                   "eos_rate": float(batch.ended_with_eos.float().mean())}
        if self.reward_model is not None:
            metrics["rm_score_mean"] = float(self.reward_model.normalized_scores(batch).mean())
        return metrics

