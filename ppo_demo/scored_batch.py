"""A step's sampled responses with everything PPO computed about them, travelling together.

Stages 2-5 of :meth:`ppo_demo.trainer.PPOTrainer.step` fill one :class:`ScoredBatch`; the
update, the metrics and the per-token records read it by name. Ten tensors of the same (B, T)
shape passed by position could be swapped without any error; fields cannot.

Shapes: B responses, T response tokens (the longest response), 0 past each response's EOS.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .rollout import RolloutBatch


@dataclass
class ScoredBatch:
    batch: RolloutBatch  # prompts + sampled responses, masks
    texts: list[str]  # B decoded responses
    task_indices: list[int]  # B: which task each response answers
    scores: torch.Tensor  # (B,) the rule reward r_rm of each response
    old_logprobs: torch.Tensor  # (B, T) log pi_old(y_t): the policy that sampled, no gradients
    old_values: torch.Tensor  # (B, T) V_old(s_t)
    ref_logprobs: torch.Tensor  # (B, T) log pi_ref(y_t)
    kl: torch.Tensor  # (B, T) per-token KL estimate to pi_ref
    rewards: torch.Tensor  # (B, T) -beta * KL_t (0 with the KL in the loss), plus the score at the last real token
    advantages: torch.Tensor  # (B, T) the estimator's A_t (GAE, GRPO, RLOO or REINFORCE)
    train_advantages: torch.Tensor  # (B, T) what the policy loss multiplies (A_t after whitening)
    returns: torch.Tensor  # (B, T) the critic's targets (GAE) or the return-to-go G_t

    _PER_TOKEN = ("old_logprobs", "old_values", "ref_logprobs", "kl", "rewards", "advantages",
                  "train_advantages", "returns")

    @property
    def response_mask(self) -> torch.Tensor:  # (B, T) 1 up to and including the first EOS
        return self.batch.response_mask

    def __len__(self) -> int:
        return len(self.texts)

    def rows(self, index: torch.Tensor | slice) -> "ScoredBatch":
        """A mini-batch: the selected rows, every field alike (columns unchanged)."""
        picked = range(len(self))[index] if isinstance(index, slice) else index.tolist()
        return ScoredBatch(self.batch.rows(index), [self.texts[i] for i in picked],
                           [self.task_indices[i] for i in picked], self.scores[index],
                           **{name: getattr(self, name)[index] for name in self._PER_TOKEN})

    def trimmed(self) -> "ScoredBatch":
        """Columns that are padding in every row dropped (see :meth:`RolloutBatch.trimmed`);
        the per-token fields keep the first t columns, t = the longest response here."""
        batch = self.batch.trimmed()
        t = batch.response_mask.shape[1]
        return ScoredBatch(batch, self.texts, self.task_indices, self.scores,
                           **{name: getattr(self, name)[:, :t] for name in self._PER_TOKEN})


def micro_batch_rows(batch: RolloutBatch, rows: torch.Tensor, token_budget: int) -> list[torch.Tensor]:
    """Split ``rows`` into chunks of about ``token_budget`` tokens each (at least one row), the
    width being that of ``rows`` trimmed to its longest prompt and response; 0 = one chunk."""
    width = batch.rows(rows).trimmed().input_ids.shape[1]
    per_chunk = len(rows) if token_budget <= 0 else max(1, token_budget // width)
    return list(torch.split(rows, per_chunk))
