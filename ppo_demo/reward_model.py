"""A reward model learnt from preferences: the same base model with its own LoRA and a scalar head.

    r(x, y) = w · h_L(x, y)        h_L: the last layer's hidden state at the answer's last real
                                   token (its EOS when it has one), under the reward model's LoRA
    L_RM    = −mean log σ(r(x, y_w) − r(x, y_l))       (Bradley–Terry, preference_losses.py)

Why it shares the policy's base model instead of holding a copy: one SmolLM2 is ~0.5 GB in fp32,
and the app already shares one base model between sessions. The reward model's LoRA is not
injected into the model; while it scores, forward hooks on the same frozen ``nn.Linear`` layers
add its update ``(alpha/r)·x Aᵀ Bᵀ`` (the :class:`~ppo_demo.lora.LoRALinear` maths and init, A
random, B zero), and the policy's adapters are switched off (the base model is exactly the
reference model then). So the reward model reads the answers with the base model plus its own
adapter, whatever policy is trained on the same weights.

The head is a bias-free ``Linear(H, 1)`` started at zero: every pair then ties, the loss starts
at log 2 and the accuracy at chance (a bias would cancel in r_w − r_l, so it could never learn).
It is the ``score`` layer of ``LlamaForSequenceClassification``, which is how the saved folder is
a PEFT ``SEQ_CLS`` adapter a TRL user can load (:func:`save_reward_model`).

Scores handed to PPO are normalised, (r − μ)/σ with μ, σ over the answers of the pairs it was
trained on (as Ziegler et al. 2019 normalise theirs), so "rule + reward model" adds two numbers
of about the same size.
"""

from __future__ import annotations

import json
import math
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch

from .lora import LoRALinear, adapters_disabled
from .models import LoadedModel
from .preference_losses import bradley_terry_loss, normalize_scores, pairwise_accuracy
from .preferences import PairEncoder, Pair, PreferenceError, RewardModelConfig, split_pairs
from .prefix_sharing import can_pack, packed_response_hidden
from .rollout import DEFAULT_SYSTEM_PROMPT, RolloutBatch

REWARD_MODEL_FORMAT = "ppo-lora-lab/reward-model-1"
PEFT_WEIGHTS_FILE = "adapter_model.safetensors"
PEFT_CONFIG_FILE = "adapter_config.json"
LAB_SETTINGS_FILE = "ppo_lab.json"
PEFT_KEY_PREFIX = "base_model.model."
HEAD_NAME = "score"  # LlamaForSequenceClassification's (and Qwen2's, Mistral's...) head
SCORE_CHUNK_ROWS = 16


def _target_linears(model: torch.nn.Module, targets) -> list[tuple[str, torch.nn.Linear]]:
    """(name as in the plain model, layer) of each frozen Linear the reward model adapts. A layer
    the policy has wrapped in a LoRALinear is found as its ``.base``, under the plain name."""
    found = []
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear):
            continue
        parent_name = name.rpartition(".")[0]
        parent = model.get_submodule(parent_name) if parent_name else model
        plain = parent_name if isinstance(parent, LoRALinear) else name  # 'x.q_proj.base' -> 'x.q_proj'
        if any(plain.endswith(t) for t in targets):
            found.append((plain, module))
    return found


def last_real_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """Column of each row's last real token: (B, L) -> (B,). Works for left-padded prompts with
    right-padded answers (the rollout layout) as for any padding."""
    L = attention_mask.shape[1]
    return (L - 1) - attention_mask.flip(-1).long().argmax(-1)


def last_token_hidden(model, batch: RolloutBatch) -> torch.Tensor:
    """The last layer's hidden state (after the final norm) at each row's last real token,
    from one plain pass over the padded batch: (B, H)."""
    kwargs = dict(input_ids=batch.input_ids, attention_mask=batch.attention_mask, position_ids=batch.position_ids,
                  use_cache=False)
    if hasattr(model, "get_decoder"):
        hidden = model.get_decoder()(**kwargs).last_hidden_state  # (B, L, H)
    else:
        hidden = model(**kwargs, output_hidden_states=True).hidden_states[-1]
    last = last_real_index(batch.attention_mask)  # (B,)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


def last_token_hidden_packed(model, batch: RolloutBatch) -> torch.Tensor:
    """The same as :func:`last_token_hidden`, from the packed pass PPO's updates use
    (:func:`ppo_demo.prefix_sharing.packed_response_hidden`): the system turn once, each
    distinct prompt once (a pair's two answers share theirs), no padding. That pass yields the
    hidden state at the position *predicting* each response token; one slot is added after
    every answer, so the state predicting it is the one at the answer's last real token. The
    slot's own token is never an input. (B, H)."""
    B = batch.response_mask.shape[0]
    lengths = batch.response_lengths  # (B,)
    rows = torch.arange(B, device=lengths.device)
    extra = batch.input_ids.new_zeros(B, 1)
    input_ids = torch.cat([batch.input_ids, extra], 1)  # (B, P+T+1)
    attention_mask = torch.cat([batch.attention_mask, extra], 1)
    response_mask = torch.cat([batch.response_mask, batch.response_mask.new_zeros(B, 1)], 1)  # (B, T+1)
    attention_mask[rows, batch.prompt_len + lengths] = 1
    response_mask[rows, lengths] = 1  # the slot after each answer
    extended = RolloutBatch(input_ids, attention_mask, batch.prompt_len, response_mask, batch.ended_with_eos)
    hidden, hidden_rows, cols = packed_response_hidden(model, extended)  # (N, H), (N,), (N,), row-major
    return hidden[cols == lengths[hidden_rows]]  # one per row, in row order: (B, H)


class RewardModel(torch.nn.Module):
    """r(x, y) on a shared base model: its own LoRA (added by hooks while it scores) and head."""

    def __init__(self, base_model: torch.nn.Module, r: int = 8, alpha: float = 16.0,
                 targets=RewardModelConfig.lora_targets, init_seed: int = 0):
        super().__init__()
        from .policy import hidden_size

        self.lora = {"r": int(r), "alpha": float(alpha), "dropout": 0.0, "targets": list(targets)}
        linears = _target_linears(base_model, tuple(targets))
        if not linears:
            from .lora import LoRAError
            raise LoRAError(f"No Linear layer matches the reward model's LoRA targets {', '.join(targets)}.")
        self.names = [name for name, _ in linears]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed)
            # LoRALinear as the adapter's container: same init (A kaiming, B zero) and scaling.
            self.adapters = torch.nn.ModuleList(LoRALinear(linear, r=r, alpha=alpha, dropout=0.0)
                                                for _, linear in linears)
        device = next(base_model.parameters()).device
        self.head = torch.nn.Linear(hidden_size(base_model), 1, bias=False, device=device, dtype=torch.float32)
        torch.nn.init.zeros_(self.head.weight)
        self._base = [base_model]  # a list: not a submodule (its weights are not the reward model's)
        self.score_mean, self.score_std = 0.0, 1.0  # normalisation for PPO, set after training

    @property
    def base_model(self) -> torch.nn.Module:
        return self._base[0]

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [p for a in self.adapters for p in (a.lora_A, a.lora_B)] + [self.head.weight]

    @contextmanager
    def attached(self):
        """The reward model's view of the base model: the policy's adapters off, its own on."""
        def hook_for(adapter: LoRALinear):
            def add_update(module, args, output):
                x = args[0]
                h = (x.to(adapter.lora_A.dtype) @ adapter.lora_A.t()) @ adapter.lora_B.t()  # (..., d_out)
                return output + (adapter.scaling * h).to(output.dtype)
            return add_update

        handles = []
        with adapters_disabled(self.base_model):
            try:
                handles = [a.base.register_forward_hook(hook_for(a)) for a in self.adapters]
                yield self.base_model
            finally:
                for handle in handles:
                    handle.remove()

    packed: bool = True  # the packed pass where the model allows it (False: always the plain pass)

    def forward(self, batch: RolloutBatch) -> torch.Tensor:
        """Raw scores r(x, y) of each row's answer: (B,). Gradients flow when enabled."""
        model = self.base_model
        with self.attached():
            if self.packed and can_pack(model):
                h_last = last_token_hidden_packed(model, batch)  # (B, H)
            else:
                h_last = last_token_hidden(model, batch)  # (B, H)
        return self.head(h_last.float()).squeeze(-1)  # (B,)

    @torch.no_grad()
    def raw_scores(self, batch: RolloutBatch) -> torch.Tensor:
        """r(x, y) for a batch of any size, in chunks, no gradients: (B,)."""
        self.base_model.eval()
        parts = [self(batch.rows(slice(start, start + SCORE_CHUNK_ROWS)).trimmed())
                 for start in range(0, batch.input_ids.shape[0], SCORE_CHUNK_ROWS)]
        return torch.cat(parts)

    def normalized_scores(self, batch: RolloutBatch) -> torch.Tensor:
        """(r − μ)/σ: what PPO adds at the last token, (B,)."""
        return normalize_scores(self.raw_scores(batch), self.score_mean, self.score_std)

    # --- state --------------------------------------------------------------------------------
    def lora_tensors(self) -> dict[str, torch.Tensor]:
        """'<module>.lora_A' / '.lora_B' -> CPU copies, as :func:`ppo_demo.lora.lora_state_dict`."""
        tensors = {}
        for name, a in zip(self.names, self.adapters):
            tensors[f"{name}.lora_A"] = a.lora_A.detach().to("cpu", copy=True)
            tensors[f"{name}.lora_B"] = a.lora_B.detach().to("cpu", copy=True)
        return tensors

    @torch.no_grad()
    def load_tensors(self, lora: dict[str, torch.Tensor], head_weight: torch.Tensor, source: str = "") -> None:
        """Copy saved LoRA tensors and head weight in; a PreferenceError naming ``source`` if
        they do not fit this model."""
        own = self.lora_tensors()
        if set(own) != set(lora) or any(tuple(own[k].shape) != tuple(lora[k].shape) for k in own):
            raise PreferenceError("preferences.error.rm_unreadable", path=source or "the reward model",
                                  detail="its LoRA tensors do not fit this model")
        if tuple(head_weight.shape) != tuple(self.head.weight.shape):
            raise PreferenceError("preferences.error.rm_wrong_model", saved=head_weight.shape[-1],
                                  found=self.head.weight.shape[-1])
        for name, a in zip(self.names, self.adapters):
            a.lora_A.copy_(lora[f"{name}.lora_A"])
            a.lora_B.copy_(lora[f"{name}.lora_B"])
        self.head.weight.copy_(head_weight)


# --- training -------------------------------------------------------------------------------
class RewardModelTrainer:
    """AdamW on the Bradley–Terry loss over the training pairs, the held-out pairs measured after
    every epoch. ``train()`` yields one dict of metrics per gradient step."""

    def __init__(self, loaded: LoadedModel, pairs: list[Pair], config: RewardModelConfig = RewardModelConfig(),
                 system_prompt: str | None = DEFAULT_SYSTEM_PROMPT):
        self.config = config.validate()
        need = 2 if config.rm_holdout > 0 else 1
        if len(pairs) < need:
            raise PreferenceError("preferences.error.too_few_pairs", need=need, holdout=config.rm_holdout, n=len(pairs))
        self.loaded = loaded
        self.device = loaded.device
        self.model_name = loaded.name
        self.pairs = list(pairs)
        self.train_pairs, self.heldout_pairs = split_pairs(self.pairs, config.rm_holdout, config.rm_seed)
        self.encoder = PairEncoder(loaded.tokenizer, config.rm_max_tokens, system_prompt)
        self.reward_model = RewardModel(loaded.model, config.rm_lora_r, config.rm_lora_alpha, config.lora_targets,
                                        init_seed=config.rm_seed)
        self.optimizer = torch.optim.AdamW(self.reward_model.trainable_parameters(), lr=config.rm_learning_rate)
        self.steps_done = 0
        self.last_eval: dict = {}

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.train_pairs) / self.config.rm_batch_size)

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.config.rm_epochs

    def pair_scores(self, pairs: list[Pair]) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw (chosen, rejected) scores, each (n,), no gradients."""
        scores = self.reward_model.raw_scores(self.encoder.batch(pairs, self.device))  # (2n,)
        return scores[:len(pairs)], scores[len(pairs):]

    def evaluate(self, pairs: list[Pair]) -> dict:
        """Bradley–Terry loss and pairwise accuracy on ``pairs`` (NaN when there are none)."""
        if not pairs:
            return {"loss": math.nan, "accuracy": math.nan}
        chosen, rejected = self.pair_scores(pairs)
        return {"loss": float(bradley_terry_loss(chosen, rejected)), "accuracy": pairwise_accuracy(chosen, rejected)}

    def train(self) -> Iterator[dict]:
        """1. shuffle the training pairs (seeded per epoch); 2. per batch of pairs: score chosen and
        rejected in one pass, L_RM, backward, clip, AdamW; 3. after each epoch: the held-out
        pairs' loss and accuracy; 4. at the end: μ, σ of the scores for PPO."""
        cfg = self.config
        params = self.reward_model.trainable_parameters()
        self.loaded.model.eval()  # no dropout: a score is a function of the text
        for epoch in range(1, cfg.rm_epochs + 1):
            order = torch.randperm(len(self.train_pairs), generator=torch.Generator().manual_seed(cfg.rm_seed * 7919 + epoch))
            batches = torch.split(order, cfg.rm_batch_size)
            for index, rows in enumerate(batches):
                t_start = time.perf_counter()
                pairs = [self.train_pairs[i] for i in rows.tolist()]
                scores = self.reward_model(self.encoder.batch(pairs, self.device).trimmed())  # (2b,)
                chosen, rejected = scores[:len(pairs)], scores[len(pairs):]  # (b,), (b,)
                loss = bradley_terry_loss(chosen, rejected)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(params, 1.0)
                if torch.isfinite(loss) and torch.isfinite(grad_norm):
                    self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
                self.steps_done += 1
                metrics = {"step": self.steps_done, "epoch": epoch, "loss": float(loss.detach()),
                           "accuracy": pairwise_accuracy(chosen.detach(), rejected.detach()),
                           "margin_mean": float((chosen - rejected).detach().mean()),
                           "grad_norm": float(grad_norm), "pairs": len(pairs)}
                if index == len(batches) - 1:  # the epoch's end: the pairs it never trained on
                    held = self.evaluate(self.heldout_pairs)
                    metrics.update(heldout_loss=held["loss"], heldout_accuracy=held["accuracy"])
                metrics["step_seconds"] = time.perf_counter() - t_start
                yield metrics
        self.finish()

    def finish(self) -> dict:
        """μ, σ of the raw scores over every answer in the pairs, and the final evaluation."""
        chosen, rejected = self.pair_scores(self.pairs)
        every = torch.cat([chosen, rejected])
        self.reward_model.score_mean = float(every.mean())
        self.reward_model.score_std = float(every.std()) if every.numel() > 1 else 1.0
        held, trained = self.evaluate(self.heldout_pairs), self.evaluate(self.train_pairs)
        self.last_eval = {"pairwise_accuracy": held["accuracy"], "heldout_loss": held["loss"],
                          "heldout_pairs": len(self.heldout_pairs), "train_accuracy": trained["accuracy"],
                          "train_loss": trained["loss"], "train_pairs": len(self.train_pairs),
                          "score_mean": self.reward_model.score_mean, "score_std": self.reward_model.score_std}
        return self.last_eval


# --- saving and loading: a PEFT SEQ_CLS adapter --------------------------------------------
def save_reward_model(reward_model: RewardModel, directory: str | Path, model_name: str = "",
                      meta: dict | None = None) -> Path:
    """A PEFT LoRA folder for sequence classification with one label, which
    ``PeftModel.from_pretrained(AutoModelForSequenceClassification(base, num_labels=1), dir)``
    reads: LoRA A/B under ``base_model.model.<module>``, the head as ``base_model.model.score.weight``
    (a ``modules_to_save`` layer); plus ``ppo_lab.json`` with μ, σ and how it was trained."""
    from safetensors.torch import save_file

    from .peft_format import base_model_id

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for key, tensor in reward_model.lora_tensors().items():
        module, _, ab = key.rpartition(".")
        tensors[f"{PEFT_KEY_PREFIX}{module}.{ab}.weight"] = tensor.contiguous()
    tensors[f"{PEFT_KEY_PREFIX}{HEAD_NAME}.weight"] = reward_model.head.weight.detach().to("cpu", copy=True).contiguous()
    save_file(tensors, str(directory / PEFT_WEIGHTS_FILE), metadata={"format": "pt"})
    lora = reward_model.lora
    config = {
        "peft_type": "LORA", "task_type": "SEQ_CLS", "base_model_name_or_path": base_model_id(model_name),
        "revision": None, "inference_mode": True, "r": lora["r"], "lora_alpha": lora["alpha"], "use_rslora": False,
        "target_modules": sorted({name.rpartition(".")[2] for name in reward_model.names}),
        "lora_dropout": 0.0, "fan_in_fan_out": False, "bias": "none", "modules_to_save": [HEAD_NAME],
        "init_lora_weights": True, "layers_to_transform": None, "layers_pattern": None, "rank_pattern": {},
        "alpha_pattern": {}, "use_dora": False, "lora_bias": False,
    }
    (directory / PEFT_CONFIG_FILE).write_text(json.dumps(config, indent=2))
    lab = {"format": REWARD_MODEL_FORMAT, "kind": "reward_model", "model_name": model_name, "lora": lora,
           "score_mean": reward_model.score_mean, "score_std": reward_model.score_std, **(meta or {})}
    (directory / LAB_SETTINGS_FILE).write_text(json.dumps(lab, indent=2, ensure_ascii=False))
    return directory


def load_reward_model(directory: str | Path, loaded: LoadedModel) -> RewardModel:
    """A reward model saved by :func:`save_reward_model`, on ``loaded``'s base model."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    directory = Path(directory)
    files = f"{PEFT_WEIGHTS_FILE}, {PEFT_CONFIG_FILE} and {LAB_SETTINGS_FILE}"
    if not all((directory / name).is_file() for name in (PEFT_WEIGHTS_FILE, PEFT_CONFIG_FILE, LAB_SETTINGS_FILE)):
        raise PreferenceError("preferences.error.rm_missing", path=str(directory), files=files)
    try:
        lab = json.loads((directory / LAB_SETTINGS_FILE).read_text(encoding="utf-8"))
        tensors = load_file(str(directory / PEFT_WEIGHTS_FILE))
    except (json.JSONDecodeError, UnicodeDecodeError, SafetensorError, OSError, ValueError) as exc:
        raise PreferenceError("preferences.error.rm_unreadable", path=str(directory), detail=str(exc)) from None
    if not isinstance(lab, dict) or lab.get("kind") != "reward_model" or not isinstance(lab.get("lora"), dict):
        raise PreferenceError("preferences.error.rm_unreadable", path=str(directory),
                              detail=f"{LAB_SETTINGS_FILE} does not describe a reward model")
    head_key = f"{PEFT_KEY_PREFIX}{HEAD_NAME}.weight"
    if head_key not in tensors:
        raise PreferenceError("preferences.error.rm_unreadable", path=str(directory), detail=f"no {head_key}")
    lora = lab["lora"]
    reward_model = RewardModel(loaded.model, int(lora["r"]), float(lora["alpha"]), tuple(lora["targets"]))
    lora_tensors = {}
    for key, tensor in tensors.items():
        if key == head_key:
            continue
        name = key.removeprefix(PEFT_KEY_PREFIX).removesuffix(".weight")  # '<module>.lora_A'
        lora_tensors[name] = tensor.float()
    reward_model.load_tensors(lora_tensors, tensors[head_key].float().to(reward_model.head.weight.device),
                              source=str(directory))
    reward_model.score_mean = float(lab.get("score_mean", 0.0))
    reward_model.score_std = float(lab.get("score_std", 1.0))
    return reward_model
