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
    kl_exact: torch.Tensor | None = None  # (B, T) the true KL(pi || pi_ref) over the vocabulary, if computed

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
                           **{name: getattr(self, name)[index] for name in self._PER_TOKEN},
                           kl_exact=self.kl_exact[index] if self.kl_exact is not None else None)

    def trimmed(self) -> "ScoredBatch":
        """Columns that are padding in every row dropped (see :meth:`RolloutBatch.trimmed`);
        the per-token fields keep the first t columns, t = the longest response here."""
        batch = self.batch.trimmed()
        t = batch.response_mask.shape[1]
        return ScoredBatch(batch, self.texts, self.task_indices, self.scores,
                           **{name: getattr(self, name)[:, :t] for name in self._PER_TOKEN},
                           kl_exact=self.kl_exact[:, :t] if self.kl_exact is not None else None)


def micro_batch_rows(batch: RolloutBatch, rows: torch.Tensor, token_budget: int,
                     packed: bool = False) -> list[torch.Tensor]:
    """Split ``rows`` into chunks of about ``token_budget`` tokens each (at least one row); 0 =
    one chunk. A chunk's tokens are what its pass computes: padded, rows x the width of ``rows``
    trimmed to its longest prompt and response; ``packed`` (see
    :func:`ppo_demo.prefix_sharing.packed_response_hidden`), each distinct prompt's real tokens
    once plus each answer's real tokens but its last, consecutive rows greedily."""
    if token_budget <= 0:
        return [rows]
    if not packed:
        width = batch.rows(rows).trimmed().input_ids.shape[1]
        return list(torch.split(rows, max(1, token_budget // width)))
    chunks, current, seen, tokens = [], [], set(), 0
    for row in rows.tolist():
        prompt = tuple(batch.prompt_tokens(row))
        answer_inputs = max(int(batch.response_mask[row].sum()) - 1, 0)
        cost = answer_inputs + (0 if prompt in seen else len(prompt))
        if current and tokens + cost > token_budget:  # start a new chunk: its prompt is not computed yet
            chunks.append(current)
            current, seen, tokens = [], set(), 0
            cost = answer_inputs + len(prompt)
        current.append(row)
        seen.add(prompt)
        tokens += cost
    chunks.append(current)
    return [torch.tensor(chunk, dtype=rows.dtype, device=rows.device) for chunk in chunks]
