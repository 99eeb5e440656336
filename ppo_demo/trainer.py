"""The PPO trainer: orchestrates rollouts and updates; all the math lives in :mod:`ppo_demo.ppo`.

Where this departs from the seed notebook, and why (the ``seed`` preset undoes 2-4):

1. A step samples a batch of responses (the seed: one), in one KV-cached, left-padded pass.
2. Dropout is off in PPO passes by default, so before any update the ratio is exactly 1;
   the seed leaves LoRA dropout on during the update, so its ratio differs from 1 by noise.
3. Advantages are whitened over the whole batch's real tokens (the seed: per response).
4. top-p is a knob: below 1 the sampled distribution is truncated while log pi uses the full
   softmax, so the rollout is slightly off-policy (the seed samples with top-p 0.9).
5. The reference policy in LoRA mode is the same network with adapters off, not a second copy.
6. Tokens after the first EOS are masked; a response that never ends can be penalised.
7. The advantage estimator is a knob: GAE with the critic (the seed's), or GRPO, RLOO or
   REINFORCE without one (then the value head is not trained); the KL can move from the
   reward into the loss, and beta can follow a target KL (the adaptive controller).
8. The score at the last token is the rule reward (the seed's), a reward model's learnt from
   preferences, or both (``reward_source``); with a reward model the rule's "gold" score is
   reported beside it, so optimising the proxy while the gold falls shows in the metrics.

A trainer's whole state (adapter or weights, value head, AdamW moments and step count, steps
done, the adaptive KL coefficient) goes out with :meth:`PPOTrainer.state` and back in through
``state=``, and every random draw of a step comes from that step's seed. So a run may be cut
into pieces (Stop, then Train again; or the app swapping sessions on the shared model between
steps) and still give the same weights, bit for bit on CPU, as one uninterrupted run.
"""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator

import torch

from . import ppo
from .config import TrainConfig
from .models import LoadedModel
from .policy import (PolicyRuntime, PolicyState, autocast_context, layer_checkpointing, load_optimizer_state,
                     optimizer_state_on_cpu, response_scores)
from .preference_losses import combine_scores
from .preferences import PreferenceError
from .prefix_sharing import can_pack, rows_grouped_by_prompt
from .reward import RewardConfig, compile_expected, is_hit, rule_reward
from .rollout import DEFAULT_SYSTEM_PROMPT, RolloutBatch
from .scored_batch import ScoredBatch, micro_batch_rows
from .tasks import Task
from .text import LocalizedError

if TYPE_CHECKING:
    from .reward_model import RewardModel


@dataclass
class RolloutRecord:
    """One sampled response with its per-token PPO quantities (lists of length = tokens)."""

    task_index: int
    prompt: str
    expected: str
    response: str
    score: float
    hit: bool
    ended_with_eos: bool
    tokens: list[str]
    logprobs: list[float]
    ref_logprobs: list[float]
    kl: list[float]
    values: list[float]
    advantages: list[float]  # the estimator's A_t (GAE, GRPO, RLOO or REINFORCE)
    train_advantages: list[float]  # what the policy loss multiplies: A_t after whitening
    returns: list[float]
    rewards: list[float]
    # PPO's rho_t = pi_new / pi_old at the token's last update pass (1 before any update), and
    # its clip case (a code of ppo.CLIP_CASES). Empty when no update ran in the step.
    ratios: list[float] = field(default_factory=list)
    clip_cases: list[int] = field(default_factory=list)
    kl_exact: list[float] = field(default_factory=list)  # the true KL per token; empty when not computed

    @property
    def kl_sum(self) -> float:
        return float(sum(self.kl))


@dataclass
class StepResult:
    step: int  # 1-based count of steps this policy has trained, including this one
    metrics: dict
    rollouts: list[RolloutRecord]
    updated: bool  # False when every update of the step was skipped (non-finite loss)


EXACT_KL_MAX_BYTES = 512 * 2**20  # quick-CPU on SmolLM2: 38 MB; batch 64 x 256 tokens: 3.2 GB, skipped


class TrainingError(RuntimeError):
    """The run cannot go on (e.g. too many non-finite losses in a row)."""


class NothingToTrainError(LocalizedError):
    """Every task is held out, so there is no prompt to train on."""


def check_bad_updates(bad_in_a_row: int, limit: int) -> None:
    """The one rule for non-finite losses: after ``limit`` steps in a row whose every update was
    skipped, the run stops (TrainingError); the adapter keeps its last good weights."""
    if bad_in_a_row >= limit:
        raise TrainingError(f"The loss was not finite in {bad_in_a_row} steps in a row, so training stopped. "
                            "The adapter keeps its last good weights. Try a lower learning rate.")


def _float(x: torch.Tensor | float) -> float:
    return float(x.detach().double().cpu()) if isinstance(x, torch.Tensor) else float(x)


def seed_of_step(seed: int, steps_done: int) -> int:
    """The seed of the step that follows ``steps_done`` steps of a run seeded with ``seed``.

    Every random draw of that step comes from it (the prompts, the sampled tokens, the dropout
    masks, the mini-batch order), so a step depends only on the state it starts from."""
    return seed * 1_000_003 + steps_done


class PPOTrainer:
    """PPO over a task list for one policy state (LoRA adapters or a full copy)."""

    def __init__(self, loaded: LoadedModel, config: TrainConfig, tasks: list[Task],
                 reward: RewardConfig = RewardConfig(), state: PolicyState | None = None,
                 system_prompt: str = DEFAULT_SYSTEM_PROMPT, reward_model: "RewardModel | None" = None):
        self.config = config.validate()
        if config.reward_source != "rule" and reward_model is None:
            raise PreferenceError("preferences.error.no_reward_model", source=config.reward_source)
        self.reward_model = reward_model  # scores answers when reward_source asks (and is reported)
        self.reward = reward.validate()
        if not tasks:
            raise ValueError("No tasks to train on.")
        if all(task.held_out for task in tasks):
            raise NothingToTrainError("tasks.all_held_out")
        for task in tasks:
            compile_expected(task.expected, reward)  # a bad regex fails here, not mid-run
        self.loaded = loaded
        self.tasks = list(tasks)
        self.device = loaded.device
        self.tokenizer = loaded.tokenizer
        self.runtime = PolicyRuntime.for_config(loaded, config, state)
        # The lean mode (gradient checkpointing) trades speed for memory: no transient packed
        # weight copies (~0.5 GB) for sampling either.
        self.runtime.pack_for_sampling = not config.gradient_checkpointing
        self.actor_critic = self.runtime.actor_critic
        self.optimizer = torch.optim.AdamW(self.actor_critic.trainable_parameters(), lr=config.learning_rate)
        if state is not None and state.optimizer is not None:
            load_optimizer_state(self.optimizer, state.optimizer, config.learning_rate)
        # fp16 (CUDA without bf16) needs loss scaling; bf16 and fp32 do not.
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.device.type == "cuda" and loaded.dtype == torch.float16)
        self.steps_done = state.steps_trained if state is not None else 0
        # beta: fixed, or steered by the adaptive controller (and then carried in the state)
        resumed_beta = state.meta.get("kl_coef") if state is not None and config.kl_target else None
        self.kl_coef = float(resumed_beta) if resumed_beta is not None else config.kl_coef
        self.system_prompt = system_prompt
        # The exact KL keeps pi's whole distribution for every sampled token until pi_ref's pass:
        # batch x max_new_tokens x V floats. Above EXACT_KL_MAX_BYTES it is not computed (NaN).
        vocab = self.actor_critic.model.get_output_embeddings().weight.shape[0]
        self.exact_kl = config.exact_kl and config.batch_size * config.max_new_tokens * vocab * 4 <= EXACT_KL_MAX_BYTES
        self._prompt_ids = [self.runtime.prompt_ids(t.prompt, system_prompt) for t in self.tasks]
        # Held-out tasks are never trained on: the prompts are drawn from the others only.
        self._train_indices = [i for i, t in enumerate(self.tasks) if not t.held_out]
        self._held_out_indices = [i for i, t in enumerate(self.tasks) if t.held_out]

    # --- public API --------------------------------------------------------------------------
    def state(self) -> PolicyState:
        """Everything needed to continue exactly: weights, value head, optimizer, steps done,
        and the adaptive KL coefficient when beta follows a target."""
        state = self.runtime.state(self.loaded.name, self.steps_done)
        state.optimizer = optimizer_state_on_cpu(self.optimizer)
        if self.config.kl_target:
            state.meta["kl_coef"] = self.kl_coef
        return state

    def train(self, steps: int | None = None, stop_event: threading.Event | None = None) -> Iterator[StepResult]:
        """Yield one :class:`StepResult` per PPO step. Closing the generator (or setting
        ``stop_event``) stops between steps; an update is never half-applied."""
        steps = self.config.steps if steps is None else steps
        bad_in_a_row = 0
        for _ in range(steps):
            if stop_event is not None and stop_event.is_set():
                return
            result = self.step(stop_event)
            if result is None:  # stopped after sampling, before touching the weights
                return
            bad_in_a_row = 0 if result.updated else bad_in_a_row + 1
            yield result
            check_bad_updates(bad_in_a_row, self.config.max_bad_updates)

    def step(self, stop_event: threading.Event | None = None) -> StepResult | None:
        """One PPO step. The global RNG (dropout masks) is seeded from the step's seed for the
        step and restored afterwards, so a step depends only on the state it starts from."""
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed_of_step(self.config.seed, self.steps_done))
            return self._step(stop_event)

    def _step(self, stop_event: threading.Event | None) -> StepResult | None:
        """One PPO step, in the order a student reads the algorithm."""
        cfg = self.config
        t_start = time.perf_counter()
        step_seed = seed_of_step(cfg.seed, self.steps_done)

        # 1. Pick prompts and sample responses from the current policy (dropout off); in fp32 the
        #    sampling pass also yields the old log-probs and values (see _scores_from_sampling).
        task_indices = self._choose_tasks(step_seed)
        prompts = [self._prompt_ids[i] for i in task_indices]
        sampling = dict(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p, seed=step_seed)
        if self._scores_from_sampling:
            batch, *policy_scores = self.runtime.sample_and_score(prompts, **sampling, distribution=self.exact_kl)
        else:
            batch, policy_scores = self.runtime.sample(prompts, **sampling), None
        if stop_event is not None and stop_event.is_set():
            return None
        held_out = self._held_out_success(step_seed)  # the same policy, on tasks it never trains on
        t_sampled = time.perf_counter()

        # 2. Score each response: the rule reward, the reward model's or both (reward_source).
        texts = self.runtime.decode(batch)
        scores, score_metrics = self._scores(batch, texts, task_indices)  # (B,)
        mask = batch.response_mask  # (B, T)

        # 3. Old log-probs and values (policy), reference log-probs (pi_ref), no gradients; and,
        #    with exact_kl, the true KL(pi || pi_ref) at each token from both whole distributions.
        old_logprobs, old_values, ref_logprobs, kl_exact = self._logprobs_and_values(batch, policy_scores)  # (B, T)

        # 4. Per-token rewards: -beta * KL_t, plus the score at the last real token. With the
        #    KL in the loss instead, the reward is the score alone.
        kl_coef = self.kl_coef
        kl = ppo.kl_per_token(old_logprobs, ref_logprobs, cfg.kl_estimator) * mask  # (B, T)
        rewards = ppo.per_token_rewards(scores, kl, mask, kl_coef if cfg.kl_in == "reward" else 0.0)  # (B, T)

        # 5. Advantages and returns (GAE with the critic, or a baseline from the other
        #    responses), then whitening.
        advantages, returns, train_advantages = self._advantages(rewards, old_values, mask)
        scored = ScoredBatch(batch, texts, task_indices, scores, old_logprobs=old_logprobs, old_values=old_values,
                             ref_logprobs=ref_logprobs, kl=kl, rewards=rewards, advantages=advantages,
                             train_advantages=train_advantages, returns=returns, kl_exact=kl_exact)

        # 6. PPO epochs over shuffled mini-batches (+ beta * E[k3] in the loss when kl_in is loss).
        ratios = torch.ones_like(old_logprobs)  # (B, T): each token's rho at its last update pass
        update_stats = self._update(scored, step_seed, kl_coef, ratios)
        t_end = time.perf_counter()
        self.steps_done += 1

        # 7. Report, then let the adaptive controller move beta for the next step.
        metrics = self._metrics(scored, update_stats) | held_out | score_metrics
        metrics.update(step=self.steps_done, step_seconds=t_end - t_start, sample_seconds=t_sampled - t_start,
                       update_seconds=t_end - t_sampled, kl_coef=kl_coef)
        metrics["samples_per_second"] = metrics["samples"] / metrics["step_seconds"]
        metrics["tokens_per_second"] = metrics["response_tokens"] / metrics["step_seconds"]
        if cfg.kl_target:
            self.kl_coef = ppo.adaptive_kl_coef(kl_coef, metrics["kl_sum_mean"], cfg.kl_target, cfg.kl_horizon,
                                                n_steps=metrics["samples"])
        updated = update_stats["updates"] > 0
        records = self._records(scored, ratios if updated else None)
        return StepResult(self.steps_done, metrics, records, updated=updated)

    # --- stages ------------------------------------------------------------------------------
    def _choose_tasks(self, seed: int) -> list[int]:
        """batch/G prompts, each repeated G times in consecutive rows (a group). The prompts:
        every task equally often when their number allows (the rest drawn at random); with
        fewer prompts than tasks, a random draw like the seed's random.choice."""
        rng = random.Random(seed)
        G = self.config.group_size
        trainable = self._train_indices  # held-out tasks are never picked
        n, size = len(trainable), self.config.batch_size // G
        indices = trainable * (size // n) + rng.sample(trainable, size % n)
        rng.shuffle(indices)
        return [i for i in indices for _ in range(G)]

    def _scores(self, batch: RolloutBatch, texts: list[str], task_indices: list[int]) -> tuple[torch.Tensor, dict]:
        """The score of each response, (B,), and what to report of its parts. With a reward
        model, its normalised score (minus the missing-EOS penalty when it is the only source)
        and the rule's ("gold") score are both reported, whichever one PPO follows."""
        ended = batch.ended_with_eos.tolist()
        rule = self._rule_scores(texts, task_indices, ended)  # (B,)
        parts = {"gold_score_mean": _float(rule.mean())}
        if self.reward_model is None:
            return rule, parts
        rm = self.reward_model.normalized_scores(batch).to(rule.device)  # (B,)
        parts["rm_score_mean"] = _float(rm.mean())
        if self.config.reward_source == "reward_model":
            rm = rm - self.config.missing_eos_penalty * (~batch.ended_with_eos).to(rm.device, rm.dtype)
        return combine_scores(rule, rm, self.config.reward_source), parts

    def _held_out_success(self, step_seed: int) -> dict:
        """{"heldout_success_rate": share of hits} over one answer per held-out task from the
        policy that sampled this step's batch (before its update); {} without held-out tasks.
        Its own seed, so the training batch is the same with or without held-out tasks. Not
        used for any update."""
        if not self._held_out_indices:
            return {}
        cfg = self.config
        batch = self.runtime.sample([self._prompt_ids[i] for i in self._held_out_indices],
                                    max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature,
                                    top_p=cfg.top_p, seed=step_seed + 500_001)
        hits = [is_hit(text, self.tasks[i].expected, self.reward)
                for text, i in zip(self.runtime.decode(batch), self._held_out_indices)]
        return {"heldout_success_rate": sum(hits) / len(hits)}

    def _rule_scores(self, texts: list[str], task_indices: list[int], ended: list[bool]) -> torch.Tensor:
        """r_rm of each response, (B,)."""
        return torch.tensor([
            rule_reward(text, self.tasks[i].expected, self.reward, ended_with_eos=e,
                        missing_eos_penalty=self.config.missing_eos_penalty)
            for text, i, e in zip(texts, task_indices, ended)
        ], device=self.device)

    @property
    def _scores_from_sampling(self) -> bool:
        """Whether the old log-probs and values come from the sampling pass (no separate policy
        forward). Only in fp32 without autocast: there the cached decode and a full forward
        agree to ~1e-6, so the ratio before any update stays 1 to that precision. In bf16 or
        under CUDA autocast the two paths round differently by ~1e-2, which would show up as a
        ratio != 1 and clipping before the policy has changed, so the separate pass stays.
        Full fine-tuning, dropout in PPO updates and top-p < 1 need no exception: sampling runs
        the policy itself, in eval mode like the scoring pass, and the kept log-probs are taken
        from the full tempered softmax, not the truncated one sampled from."""
        return self.device.type == "cpu" and self.loaded.dtype in (torch.float32, torch.float64)  # fp64: the exact tests

    @property
    def _share_prompts_in_update(self) -> bool:
        """Prompt sharing in grad-enabled passes: not under gradient checkpointing (recomputing
        a layer would append to the shared cache again) nor with dropout on in the update (every
        answer to a prompt would share one dropout mask, which is not the unshared math)."""
        cfg = self.config
        return cfg.share_prompts and not cfg.gradient_checkpointing and not cfg.dropout_in_ppo

    @torch.no_grad()
    def _logprobs_and_values(self, batch: RolloutBatch, policy_scores=None) -> tuple:
        """Old log-probs and values of the policy, reference log-probs, and the exact KL (None
        unless ``exact_kl``), each (B, T) and 0 past each response's end. Chunked like the
        update so memory stays within the budget. ``policy_scores`` (old log-probs, old values
        [, whole log-softmax (B, T, V)]) from the sampling pass skip the policy's forward; pi_ref
        is always a pass of its own (it did not sample)."""
        cfg = self.config
        size, T = batch.response_mask.shape
        all_rows = torch.arange(size, device=self.device)
        if cfg.share_prompts:  # answers to one prompt in one chunk, so they can share it
            all_rows = rows_grouped_by_prompt(batch, all_rows)
        packed = cfg.share_prompts and can_pack(self.actor_critic.model)
        chunks = [(rows, batch.rows(rows).trimmed())
                  for rows in micro_batch_rows(batch, all_rows, cfg.micro_batch_tokens, packed=packed)]
        dtype = torch.promote_types(self.loaded.dtype, torch.float32)  # fp32 (fp64 in the exact tests)
        ref_logprobs = torch.zeros(size, T, device=self.device, dtype=dtype)
        self.actor_critic.eval()
        with autocast_context(self.device):
            policy_dist = None  # (B, T, V) log pi over the vocabulary, for the exact KL
            if policy_scores is not None:
                old_logprobs, old_values, *rest = policy_scores
                policy_dist = rest[0] if rest else None
            else:
                old_logprobs, old_values = (torch.zeros(size, T, device=self.device, dtype=dtype) for _ in range(2))
                for rows, mb in chunks:
                    t = mb.response_mask.shape[1]
                    policy = response_scores(self.actor_critic.model, mb, cfg.temperature,
                                             share_prompts=cfg.share_prompts, distribution=self.exact_kl)
                    old_logprobs[rows, :t] = policy.logprobs * mb.response_mask
                    old_values[rows, :t] = self.actor_critic.values(policy.hidden) * mb.response_mask
                    if self.exact_kl:
                        if policy_dist is None:
                            policy_dist = torch.zeros(size, T, policy.log_probs.shape[-1], device=self.device, dtype=dtype)
                        policy_dist[rows, :t] = policy.log_probs.to(dtype)
            kl_exact = torch.zeros(size, T, device=self.device, dtype=dtype) if self.exact_kl else None
            with self.runtime.reference() as ref_model:  # adapters switched off once for all chunks
                for rows, mb in chunks:
                    t = mb.response_mask.shape[1]
                    ref = response_scores(ref_model, mb, cfg.temperature, share_prompts=cfg.share_prompts,
                                          distribution=self.exact_kl)
                    ref_logprobs[rows, :t] = ref.logprobs * mb.response_mask
                    if kl_exact is not None:  # sum_v pi (log pi - log pi_ref) at each real token
                        kl_exact[rows, :t] = ppo.exact_kl(policy_dist[rows, :t], ref.log_probs.to(dtype)) * mb.response_mask
        return old_logprobs, old_values, ref_logprobs, kl_exact

    def _advantages(self, rewards: torch.Tensor, values: torch.Tensor,
                    mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The advantage estimator: (A_t, returns, the A_t the policy loss multiplies), each
        (B, T). GAE with the critic's values, or, without a critic, the return-to-go minus a
        baseline from the other responses (GRPO, RLOO, REINFORCE); then whitening."""
        cfg = self.config
        if cfg.advantage_estimator == "gae":
            advantages, returns = ppo.gae(rewards, values, mask, cfg.gamma, cfg.gae_lambda)
        elif cfg.advantage_estimator == "grpo":
            advantages, returns = ppo.grpo_advantages(rewards, mask, cfg.group_size, cfg.gamma,
                                                      std_norm=cfg.grpo_std_norm)
        elif cfg.advantage_estimator == "rloo":
            advantages, returns = ppo.rloo_advantages(rewards, mask, cfg.group_size, cfg.gamma)
        else:
            advantages, returns = ppo.reinforce_advantages(rewards, mask, cfg.gamma, baseline=cfg.reinforce_baseline)
        if cfg.whiten == "batch":
            train_advantages = ppo.masked_whiten(advantages, mask)
        elif cfg.whiten == "sequence":
            train_advantages = ppo.whiten_per_sequence(advantages, mask)
        else:
            train_advantages = advantages
        return advantages, returns, train_advantages

    def _update(self, scored: ScoredBatch, seed: int, kl_coef: float, ratios: torch.Tensor) -> dict:
        cfg = self.config
        t_start = time.perf_counter()
        params = self.actor_critic.trainable_parameters()
        generator = torch.Generator().manual_seed(seed)
        sums: dict[str, float] = {}
        updates = skipped = 0
        self.actor_critic.train(cfg.dropout_in_ppo)
        self.optimizer.zero_grad(set_to_none=True)
        with layer_checkpointing(self.actor_critic.model, cfg.gradient_checkpointing):
            for _epoch in range(cfg.ppo_epochs):
                order = torch.randperm(len(scored), generator=generator).to(self.device)
                for rows in torch.tensor_split(order, cfg.num_minibatches):
                    mb_stats = self._accumulate_gradients(scored, rows, kl_coef, ratios)
                    if mb_stats is None:
                        self.optimizer.zero_grad(set_to_none=True)
                        skipped += 1
                        continue
                    self.scaler.unscale_(self.optimizer)
                    grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                    if not torch.isfinite(grad_norm):
                        self.optimizer.zero_grad(set_to_none=True)
                        self.scaler.update()
                        skipped += 1
                        continue
                    self.scaler.step(self.optimizer)
                    self.scaler.update()
                    self.optimizer.zero_grad(set_to_none=True)
                    updates += 1
                    for key, value in dict(mb_stats, grad_norm=grad_norm).items():
                        sums[key] = sums.get(key, 0.0) + _float(value)
        self.actor_critic.eval()
        self.optimizer.zero_grad(set_to_none=True)
        stats = {k: v / updates for k, v in sums.items()} if updates else {
            k: math.nan for k in ("loss", "policy_loss", "value_loss", "entropy", "grad_norm", "ratio_mean",
                                  "clip_frac", "clip_frac_low", "clip_frac_high", "approx_kl",
                                  "value_clip_frac", "kl_loss")}
        if not cfg.has_critic:  # no critic, no value loss: NaN (shown as n/a), not a made-up 0
            stats.update(value_loss=math.nan, value_clip_frac=math.nan)
        # epochs_seconds: the PPO epochs' share of update_seconds (the rest: decoding, reward, scoring passes, GAE)
        stats.update(updates=updates, skipped_updates=skipped, epochs_seconds=time.perf_counter() - t_start)
        return stats

    def _accumulate_gradients(self, scored: ScoredBatch, rows: torch.Tensor, kl_coef: float,
                              ratios: torch.Tensor) -> dict | None:
        """Backward the mini-batch ``rows`` in micro-batches; returns its loss terms, or None
        (gradients possibly partial: the caller zeroes them) if a loss is not finite.

        Each micro-batch's losses are aggregated over its own tokens (``ppo.agg_loss``), so
        weighting them by its share of what the aggregation divides by (tokens for token-mean,
        responses for the seq-mean modes, whose constant L is max_new_tokens) makes the summed
        gradient equal the gradient of the whole mini-batch's loss (the same number a single
        pass would give). Each token's
        rho is written into ``ratios`` (B, T), so after the last epoch it holds the last pass's."""
        cfg = self.config
        agg = dict(loss_agg_mode=cfg.loss_agg_mode, norm_length=cfg.max_new_tokens)  # E_t of every term
        # Python numbers: each chunk's weight is then exact in the loss's own dtype (fp64 in the exact tests)
        total = int(ppo.agg_count(scored.response_mask[rows], cfg.loss_agg_mode))  # tokens, or responses
        total_tokens = int(scored.response_mask[rows].sum())  # the diagnostics are means over tokens
        sums: dict[str, torch.Tensor] = {}
        share = self._share_prompts_in_update
        if share:  # answers to one prompt in one chunk (the sum over rows does not depend on order)
            rows = rows_grouped_by_prompt(scored.batch, rows)
        packed = share and can_pack(self.actor_critic.model)
        for chunk in micro_batch_rows(scored.batch, rows, cfg.micro_batch_tokens, packed=packed):
            mb = scored.rows(chunk).trimmed()  # (b, t), t <= T: columns past every row's EOS dropped
            mask = mb.response_mask
            weight = int(ppo.agg_count(mask, cfg.loss_agg_mode)) / total  # this chunk's share of E_t
            token_weight = int(mask.sum()) / total_tokens
            with autocast_context(self.device):
                scores = response_scores(self.actor_critic.model, mb.batch, cfg.temperature, share_prompts=share,
                                         entropy=True, entropy_grad=cfg.ent_coef > 0)
                logprobs, entropy, hidden = scores.logprobs, scores.entropy, scores.hidden  # (b, t), (b, t), (b, t, H)
                policy_loss, pstats = ppo.ppo_policy_loss(logprobs, mb.old_logprobs, mb.train_advantages, mask,
                                                          cfg.clip_eps, cfg.clip_eps_high, **agg)
                entropy_term = ppo.agg_loss(entropy, mask, cfg.loss_agg_mode, cfg.max_new_tokens)  # E_t[H_t]
                loss = policy_loss - cfg.ent_coef * entropy_term
                # reported: the mean entropy per token whatever the aggregation (as TRL's "entropy")
                terms = dict(policy_loss=policy_loss, entropy=ppo.masked_mean(entropy.detach(), mask), **pstats)
                diagnostics = {"entropy", *pstats}  # entropy, ratio, clip fractions, approx KL: token means
                if cfg.has_critic:  # without one the value head stays out of the graph: not trained
                    values = self.actor_critic.values(hidden)  # (b, t)
                    value_loss, vstats = ppo.ppo_value_loss(values, mb.old_values, mb.returns, mask,
                                                            cfg.value_clip_eps, **agg)
                    loss = loss + cfg.vf_coef * value_loss
                    terms.update(value_loss=value_loss, **vstats)
                    diagnostics |= set(vstats)
                if cfg.kl_in == "loss":
                    kl_loss = ppo.kl_penalty_loss(logprobs, mb.ref_logprobs, mask, cfg.kl_loss_estimator, **agg)
                    loss = loss + kl_coef * kl_loss
                    terms.update(kl_loss=kl_loss)
            if not torch.isfinite(loss):
                return None
            self.scaler.scale(loss * weight).backward()
            ratios[chunk, :mask.shape[1]] = torch.exp(logprobs.detach() - mb.old_logprobs) * mask
            del scores, hidden, logprobs, entropy
            for key, value in dict(loss=loss, **terms).items():
                share = token_weight if key in diagnostics else weight
                sums[key] = sums.get(key, 0.0) + value.detach() * share
        return sums

    def _metrics(self, scored: ScoredBatch, update_stats: dict) -> dict:
        batch, scores, texts, mask = scored.batch, scored.scores, scored.texts, scored.response_mask
        lengths = batch.response_lengths.float()
        hits = [is_hit(t, self.tasks[i].expected, self.reward) for t, i in zip(texts, scored.task_indices)]
        metrics = {
            "samples": len(texts),
            "response_tokens": int(lengths.sum()),
            "response_length_mean": _float(lengths.mean()),
            "reward_mean": _float(scores.mean()),
            "reward_std": _float(scores.std()) if len(texts) > 1 else 0.0,
            "success_rate": sum(hits) / len(hits),
            "kl_mean": _float(ppo.masked_mean(scored.kl, mask)),  # per token, as the seed prints it
            "kl_sum_mean": _float(scored.kl.sum(-1).mean()),  # per response: what -beta*KL costs
            # the true KL(pi || pi_ref) per token, over the whole vocabulary (NaN when not computed)
            "kl_exact": (_float(ppo.masked_mean(scored.kl_exact, mask)) if scored.kl_exact is not None
                         else math.nan),
            # groups whose scores all tie: GRPO/RLOO give them A = 0 (TRL's frac_reward_zero_std)
            "frac_reward_zero_std": ppo.frac_reward_zero_std(scores, self.config.group_size),
            "eos_rate": _float(batch.ended_with_eos.float().mean()),
            # no critic, no explained variance: NaN, which the plots and the CLI show as n/a
            "explained_variance": (_float(ppo.explained_variance(scored.old_values, scored.returns, mask))
                                   if self.config.has_critic else math.nan),
            "learning_rate": self.optimizer.param_groups[0]["lr"],
        }
        metrics.update(update_stats)
        for index in range(len(self.tasks)):
            task_scores = [float(s) for s, i in zip(scores.tolist(), scored.task_indices) if i == index]
            if task_scores:
                metrics[f"task_reward/{index}"] = sum(task_scores) / len(task_scores)
        return metrics

    def _records(self, scored: ScoredBatch, ratios: torch.Tensor | None) -> list[RolloutRecord]:
        """Per-response lists for the UI; ``ratios`` (B, T) None when no update ran."""
        records = []
        codes = (ppo.clip_cases(ratios, scored.train_advantages, scored.response_mask, self.config.clip_eps,
                                self.config.clip_eps_high)
                 if ratios is not None else None)  # (B, T)
        batch = scored.batch
        lengths = batch.response_lengths.tolist()
        for row, (n, i) in enumerate(zip(lengths, scored.task_indices)):
            ids = batch.response_ids[row, :n].tolist()
            def cut(t):
                return [round(v, 5) for v in t[row, :n].tolist()]
            text, task = scored.texts[row], self.tasks[i]
            records.append(RolloutRecord(
                task_index=i, prompt=task.prompt, expected=task.expected, response=text,
                score=float(scored.scores[row]), hit=is_hit(text, task.expected, self.reward),
                ended_with_eos=bool(batch.ended_with_eos[row]),
                tokens=[self.tokenizer.decode([token_id]) for token_id in ids],
                logprobs=cut(scored.old_logprobs), ref_logprobs=cut(scored.ref_logprobs), kl=cut(scored.kl),
                values=cut(scored.old_values), advantages=cut(scored.advantages),
                train_advantages=cut(scored.train_advantages), returns=cut(scored.returns),
                rewards=cut(scored.rewards), ratios=cut(ratios) if ratios is not None else [],
                clip_cases=codes[row, :n].tolist() if codes is not None else [],
                kl_exact=cut(scored.kl_exact) if scored.kl_exact is not None else []))
        return records
