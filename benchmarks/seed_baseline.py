"""The seed notebook's PPO loop, re-implemented as faithfully as a CPU run allows: the baseline.

Source: ``PPO 教学（手写公式 + 最小实现，手写 LoRA）`` (the notebook PPO-LoRA Lab grew from).
Kept exactly as the notebook does it:

* ONE response per PPO step (``random.choice`` over the tasks), sampled with HF ``generate``
  (do_sample, temperature 1.0, top-p 0.9, max_new_tokens 48);
* pi_ref is a SECOND full fp32 copy of the model (here a ``deepcopy`` taken before LoRA is
  injected; the notebook loads the checkpoint twice, which gives the same weights);
* the actor-critic runs the whole LM with ``output_hidden_states=True`` (logits over every
  position and every layer's hidden state kept) and puts the value head (default nn.Linear
  init) on ``hidden_states[-1]``;
* separate unbatched passes: old log-probs/values, then pi_ref, then ``ppo_epochs`` update
  passes, each over the single sequence;
* the notebook's own ``LoRALinear`` / ``inject_lora`` (r=8, alpha=16, dropout 0.05 on the 7
  projection layers), AdamW lr 1e-4 on LoRA + value head, grad clip 1.0;
* per-response advantage whitening; dropout ON during the update (``actor_critic.train()``)
  while the old log-probs were computed with dropout off (``generate`` left the model in eval);
* k1 KL penalty 0.05 per token, rule reward added at the last token, GAE gamma 1 lambda 0.95,
  clip 0.2, value clip 0.2, vf 0.5, ent 0.

Adapted only as far as needed to run here: device cpu, fp32 (so the notebook's CUDA autocast /
GradScaler branch is off), the model comes from :func:`ppo_demo.models.load_model`, and the
rule reward is :func:`ppo_demo.reward.rule_reward` (the notebook's rule for ``contains``, plus
the match modes the project's task presets use) so both sides score the same.

Evaluation follows the notebook's ``chat`` (one ``generate`` per answer, temperature 0.7,
top-p 0.9) run K times per task, for the base (pi_ref) and the adapted policy.

    python benchmarks/seed_baseline.py --model tiny-random --steps 3 --eval-samples 2
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Tuple

import torch
import torch.nn.functional as F
from torch.nn.utils import clip_grad_norm_

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ppo_demo.models import LoadedModel, load_model  # noqa: E402
from ppo_demo.reward import RewardConfig, is_hit, rule_reward  # noqa: E402
from ppo_demo.tasks import TASK_PRESET_MATCH_MODE, TASK_PRESETS, Task  # noqa: E402

SYSTEM_PROMPT = "You are a helpful assistant."
TARGET_SUFFIXES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class SeedKnobs:
    """The notebook's settings (section 6 and the LoRA cell)."""

    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    max_new_tokens: int = 48
    temperature: float = 1.0
    top_p: float = 0.9
    # HF generate's own default (transformers' GenerationConfig): the notebook never sets it, so
    # its sampling keeps the 50 likeliest tokens, then the top-p nucleus. 0 turns it off, which
    # samples exactly as the project does (nucleus only).
    top_k: int = 50
    kl_coef: float = 0.05
    gamma: float = 1.0
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    value_clip_eps: float = 0.2
    vf_coef: float = 0.5
    ent_coef: float = 0.0
    ppo_epochs: int = 2
    max_grad_norm: float = 1.0
    lr: float = 1e-4
    seed: int = 42
    targets: List[str] = field(default_factory=lambda: list(TARGET_SUFFIXES))
    # Not in the notebook: benchmarks set it to max_new_tokens to force full-length responses
    # (EOS suppressed by generate), so both sides of a comparison do the same work per sample.
    min_new_tokens: int | None = None


# --- section 2: the actor-critic --------------------------------------------------------------

class ActorCritic(torch.nn.Module):
    def __init__(self, base: torch.nn.Module):
        super().__init__()
        self.base = base
        self.value_head = torch.nn.Linear(base.config.hidden_size, 1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        out = self.base(
            input_ids=input_ids,
            attention_mask=attention_mask,
            output_hidden_states=True,
            use_cache=False,
            return_dict=True,
        )
        hidden = out.hidden_states[-1]
        values = self.value_head(hidden).squeeze(-1)
        return out.logits, values


# --- section 3: hand-written LoRA (verbatim) ---------------------------------------------------

class LoRALinear(torch.nn.Module):
    def __init__(self, base: torch.nn.Linear, r: int = 8, alpha: int = 16, dropout: float = 0.05):
        super().__init__()
        if not isinstance(base, torch.nn.Linear):
            raise TypeError("LoRALinear only supports torch.nn.Linear")

        self.base = base
        self.r = r
        self.alpha = alpha
        self.scaling = alpha / r
        self.dropout = torch.nn.Dropout(dropout)

        in_features = base.in_features
        out_features = base.out_features

        self.lora_A = torch.nn.Parameter(torch.empty((r, in_features), dtype=base.weight.dtype, device=base.weight.device))
        self.lora_B = torch.nn.Parameter(torch.zeros((out_features, r), dtype=base.weight.dtype, device=base.weight.device))

        torch.nn.init.kaiming_uniform_(self.lora_A, a=5**0.5)

        self.base.weight.requires_grad_(False)
        if self.base.bias is not None:
            self.base.bias.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base_out = self.base(x)
        lora_out = (self.dropout(x) @ self.lora_A.t()) @ self.lora_B.t()
        return base_out + lora_out * self.scaling


def _get_parent_module(root: torch.nn.Module, module_name: str) -> Tuple[torch.nn.Module, str]:
    parts = module_name.split(".")
    parent = root
    for p in parts[:-1]:
        parent = getattr(parent, p)
    return parent, parts[-1]


def inject_lora(m: torch.nn.Module, target_suffixes: List[str], r: int = 8, alpha: int = 16,
                dropout: float = 0.05) -> List[str]:
    to_replace: List[Tuple[str, torch.nn.Module]] = []
    for name, module in m.named_modules():
        if any(name.endswith(sfx) for sfx in target_suffixes) and isinstance(module, torch.nn.Linear):
            to_replace.append((name, module))

    replaced = []
    for name, module in to_replace:
        parent, child = _get_parent_module(m, name)
        setattr(parent, child, LoRALinear(module, r=r, alpha=alpha, dropout=dropout))
        replaced.append(name)
    return replaced


# --- section 5: PPO pieces (verbatim apart from the explicit device) ---------------------------

def action_logprobs_from_logits(logits: torch.Tensor, input_ids: torch.Tensor, prompt_len: int,
                                response_len: int) -> Tuple[torch.Tensor, torch.Tensor]:
    log_probs = F.log_softmax(logits, dim=-1)
    positions = torch.arange(prompt_len, prompt_len + response_len, device=logits.device)
    logp_positions = positions - 1
    action_ids = input_ids[0, positions]
    action_logp = log_probs[0, logp_positions, :].gather(dim=-1, index=action_ids.unsqueeze(-1)).squeeze(-1)

    step_log_probs = log_probs[0, logp_positions, :]
    entropy = -(step_log_probs.exp() * step_log_probs).sum(dim=-1)
    return action_logp, entropy


def compute_gae(rewards: torch.Tensor, values: torch.Tensor, gamma: float,
                gae_lambda: float) -> Tuple[torch.Tensor, torch.Tensor]:
    T = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    last_gae = torch.zeros((), device=rewards.device, dtype=rewards.dtype)
    for t in reversed(range(T)):
        next_value = values[t + 1] if t < T - 1 else torch.zeros((), device=values.device, dtype=values.dtype)
        delta = rewards[t] + gamma * next_value - values[t]
        last_gae = delta + gamma * gae_lambda * last_gae
        advantages[t] = last_gae
    returns = advantages + values
    return advantages, returns


class SeedPPO:
    """The notebook's globals (models, optimizer, knobs) and functions, bundled in one object."""

    def __init__(self, loaded: LoadedModel, tasks: List[Task], reward: RewardConfig = RewardConfig(),
                 knobs: SeedKnobs = SeedKnobs()):
        if loaded.device.type != "cpu" or loaded.dtype != torch.float32:
            raise ValueError("The seed baseline is meant for cpu / fp32 (as the notebook on a CPU).")
        self.knobs = knobs
        self.tasks = list(tasks)
        self.reward = reward
        self.device = loaded.device
        self.ref_device = loaded.device
        random.seed(knobs.seed)
        torch.manual_seed(knobs.seed)

        self.tokenizer = loaded.tokenizer
        actor_base = loaded.model
        # pi_ref: a second full fp32 copy, frozen, taken before any adapter exists.
        self.ref_model = copy.deepcopy(actor_base).to(self.ref_device)
        self.ref_model.eval()
        for p in self.ref_model.parameters():
            p.requires_grad_(False)

        actor_base.config.use_cache = False
        actor_base.config.pad_token_id = self.tokenizer.pad_token_id
        self.actor_critic = ActorCritic(actor_base).to(self.device)

        for p in self.actor_critic.base.parameters():
            p.requires_grad_(False)
        self.replaced = inject_lora(self.actor_critic.base, knobs.targets, r=knobs.lora_r,
                                    alpha=knobs.lora_alpha, dropout=knobs.lora_dropout)
        for p in self.actor_critic.value_head.parameters():
            p.requires_grad_(True)
        self.trainable = [p for p in self.actor_critic.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.trainable, lr=knobs.lr)
        self.steps_done = 0
        self._base_eval_cache: Dict[Tuple, List[List[str]]] = {}

    # --- section 5 ---------------------------------------------------------------------------
    @torch.inference_mode()
    def build_prompt_input_ids(self, user_prompt: str) -> torch.Tensor:
        messages = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": user_prompt},
        ]
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        enc = self.tokenizer(text, return_tensors="pt")
        return enc["input_ids"][0]

    @torch.inference_mode()
    def sample_response(self, m: torch.nn.Module, prompt_input_ids: torch.Tensor, max_new_tokens: int = 48,
                        temperature: float = 1.0, top_p: float = 0.9,
                        min_new_tokens: int | None = None, top_k: int = 50) -> Tuple[torch.Tensor, torch.Tensor]:
        tok = self.tokenizer
        m.eval()
        input_ids = prompt_input_ids.unsqueeze(0).to(self.device)

        old_use_cache = getattr(m.config, "use_cache", True)
        m.config.use_cache = True
        extra = {"min_new_tokens": min_new_tokens} if min_new_tokens else {}
        out = m.generate(
            **extra,
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),  # the notebook omits it; same result, no warning
            max_new_tokens=max_new_tokens,
            do_sample=True,
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        )
        m.config.use_cache = old_use_cache

        full_ids = out[0].detach().cpu()
        response_ids = full_ids[prompt_input_ids.numel():]
        return full_ids, response_ids

    def get_policy_logp_value_entropy(self, full_ids: torch.Tensor, prompt_len: int, response_len: int,
                                      use_grad: bool) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ctx = torch.enable_grad() if use_grad else torch.inference_mode()
        with ctx:
            input_ids = full_ids.unsqueeze(0).to(self.device)
            attention_mask = torch.ones_like(input_ids, dtype=torch.long)
            logits, values_all = self.actor_critic(input_ids=input_ids, attention_mask=attention_mask)
            action_logp, entropy = action_logprobs_from_logits(logits, input_ids, prompt_len, response_len)
            positions = torch.arange(prompt_len, prompt_len + response_len, device=self.device)
            value_positions = positions - 1
            values = values_all[0, value_positions]
            return action_logp, values, entropy

    @torch.inference_mode()
    def get_ref_logp(self, full_ids: torch.Tensor, prompt_len: int, response_len: int) -> torch.Tensor:
        input_ids = full_ids.unsqueeze(0).to(self.ref_device)
        attention_mask = torch.ones_like(input_ids, dtype=torch.long)
        logits = self.ref_model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False,
                                return_dict=True).logits
        log_probs = F.log_softmax(logits, dim=-1)
        positions = torch.arange(prompt_len, prompt_len + response_len, device=logits.device)
        logp_positions = positions - 1
        action_ids = input_ids[0, positions]
        logp = log_probs[0, logp_positions, :].gather(dim=-1, index=action_ids.unsqueeze(-1)).squeeze(-1)
        return logp.to(self.device)

    # --- section 6 ---------------------------------------------------------------------------
    def ppo_update_one_trajectory(self, full_ids, prompt_len, response_len, logpi_old, values_old,
                                  advantages, returns) -> Dict[str, float]:
        k = self.knobs
        self.actor_critic.train()
        advantages = (advantages - advantages.mean()) / (advantages.std().clamp_min(1e-8))

        metrics: Dict[str, float] = {}
        for _epoch in range(k.ppo_epochs):
            logpi, values, entropy = self.get_policy_logp_value_entropy(full_ids, prompt_len, response_len,
                                                                        use_grad=True)
            ratio = torch.exp(logpi - logpi_old)
            surr1 = ratio * advantages
            surr2 = torch.clamp(ratio, 1.0 - k.clip_eps, 1.0 + k.clip_eps) * advantages
            policy_loss = -torch.min(surr1, surr2).mean()

            values_clipped = values_old + (values - values_old).clamp(-k.value_clip_eps, k.value_clip_eps)
            v_loss1 = (values - returns) ** 2
            v_loss2 = (values_clipped - returns) ** 2
            value_loss = 0.5 * torch.max(v_loss1, v_loss2).mean()

            entropy_loss = -entropy.mean()
            loss = policy_loss + k.vf_coef * value_loss + k.ent_coef * entropy_loss

            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()  # fp32 on CPU: the notebook's GradScaler branch is disabled there
            clip_grad_norm_(self.trainable, k.max_grad_norm)
            self.optimizer.step()

            approx_kl = (logpi_old - logpi).mean().detach()
            clip_frac = ((ratio - 1.0).abs() > k.clip_eps).float().mean().detach()
            metrics = {
                "loss": float(loss.detach().cpu().item()),
                "policy_loss": float(policy_loss.detach().cpu().item()),
                "value_loss": float(value_loss.detach().cpu().item()),
                "entropy": float(entropy.mean().detach().cpu().item()),
                "approx_kl": float(approx_kl.cpu().item()),
                "clip_frac": float(clip_frac.cpu().item()),
            }
        return metrics

    @torch.inference_mode()
    def rollout_one(self, prompt: str, expected: str, timings: Dict[str, float]) -> Dict[str, Any]:
        k = self.knobs
        t0 = time.perf_counter()
        prompt_ids = self.build_prompt_input_ids(prompt)
        full_ids, response_ids = self.sample_response(self.actor_critic.base, prompt_ids,
                                                      max_new_tokens=k.max_new_tokens,
                                                      temperature=k.temperature, top_p=k.top_p,
                                                      min_new_tokens=k.min_new_tokens, top_k=k.top_k)
        response_text = self.tokenizer.decode(response_ids, skip_special_tokens=True)
        t1 = time.perf_counter()
        timings["sample"] = t1 - t0

        prompt_len = prompt_ids.numel()
        response_len = int(response_ids.numel())
        if response_len == 0:
            return {"skip": True, "prompt": prompt, "response": response_text}

        rm_reward = rule_reward(response_text, expected, self.reward)

        logpi_old, values_old, _ = self.get_policy_logp_value_entropy(full_ids, prompt_len, response_len,
                                                                      use_grad=False)
        t2 = time.perf_counter()
        logpi_ref = self.get_ref_logp(full_ids, prompt_len, response_len)
        t3 = time.perf_counter()
        timings["score_policy"] = t2 - t1
        timings["score_ref"] = t3 - t2

        kl = logpi_old - logpi_ref
        rewards = -k.kl_coef * kl
        rewards[-1] = rewards[-1] + torch.tensor(rm_reward, device=self.device, dtype=rewards.dtype)

        advantages, returns = compute_gae(rewards, values_old, gamma=k.gamma, gae_lambda=k.gae_lambda)
        timings["gae"] = time.perf_counter() - t3
        return {
            "skip": False,
            "prompt": prompt,
            "expected": expected,
            "response": response_text,
            "full_ids": full_ids,
            "prompt_len": prompt_len,
            "response_len": response_len,
            "rm_reward": float(rm_reward),
            "hit": is_hit(response_text, expected, self.reward),
            "ended_with_eos": bool(response_ids[-1].item() == self.tokenizer.eos_token_id),
            "kl_mean": float(kl.mean().detach().cpu().item()),
            "logpi_old": logpi_old,
            "values_old": values_old,
            "advantages": advantages.detach(),
            "returns": returns.detach(),
        }

    def step(self, task: Task | None = None) -> Dict[str, Any]:
        """One iteration of the notebook's training loop, with timings of its stages. ``task``:
        the one to answer (the speed benchmark passes the tasks in turn, so both sides answer
        the same mix); by default the notebook's ``random.choice``."""
        t0 = time.perf_counter()
        timings: Dict[str, float] = {}
        task = task if task is not None else random.choice(self.tasks)
        rollout = self.rollout_one(task.prompt, task.expected, timings)
        self.steps_done += 1
        if rollout["skip"]:
            total = time.perf_counter() - t0
            return {"step": self.steps_done, "skip": True, "samples": 0, "response_tokens": 0,
                    "step_seconds": total, "timings": timings}
        t1 = time.perf_counter()
        metrics = self.ppo_update_one_trajectory(
            full_ids=rollout["full_ids"], prompt_len=rollout["prompt_len"], response_len=rollout["response_len"],
            logpi_old=rollout["logpi_old"], values_old=rollout["values_old"],
            advantages=rollout["advantages"], returns=rollout["returns"],
        )
        t2 = time.perf_counter()
        timings["update"] = t2 - t1
        return {"step": self.steps_done, "skip": False, "samples": 1, "response_tokens": rollout["response_len"],
                "step_seconds": t2 - t0, "timings": timings, "prompt": rollout["prompt"], "task": task.prompt,
                "response": rollout["response"], "rm_reward": rollout["rm_reward"], "hit": rollout["hit"],
                "ended_with_eos": rollout["ended_with_eos"], "kl_mean": rollout["kl_mean"], **metrics}

    # --- section 7: the notebook's chat(), K times per task, base vs adapted -----------------
    @torch.inference_mode()
    def chat(self, model: torch.nn.Module, prompt: str, max_new_tokens: int = 64, temperature: float = 0.7,
             top_p: float = 0.9) -> str:
        prompt_ids = self.build_prompt_input_ids(prompt)
        _, response_ids = self.sample_response(model, prompt_ids, max_new_tokens=max_new_tokens,
                                               temperature=temperature, top_p=top_p)
        return self.tokenizer.decode(response_ids, skip_special_tokens=True)

    def evaluate(self, samples_per_task: int = 8, seed: int = 1234, max_new_tokens: int | None = None,
                 temperature: float = 0.7, top_p: float = 0.9) -> Dict[str, Any]:
        """Success rate per task of pi_ref (base) and of the adapted policy, K answers each.

        The base never changes, so its answers are computed once per setting and cached. The
        global RNGs are saved and restored: evaluating does not change the training run.
        """
        max_new_tokens = max_new_tokens or self.knobs.max_new_tokens
        py_state, torch_state = random.getstate(), torch.get_rng_state()
        try:
            key = (samples_per_task, seed, max_new_tokens, temperature, top_p)
            answers = {}
            for name, model in (("base", self.ref_model), ("adapted", self.actor_critic.base)):
                if name == "base" and key in self._base_eval_cache:
                    answers[name] = self._base_eval_cache[key]
                    continue
                torch.manual_seed(seed)
                answers[name] = [[self.chat(model, t.prompt, max_new_tokens, temperature, top_p)
                                  for _ in range(samples_per_task)] for t in self.tasks]
                if name == "base":
                    self._base_eval_cache[key] = answers[name]
        finally:
            random.setstate(py_state)
            torch.set_rng_state(torch_state)
        tasks = []
        for i, t in enumerate(self.tasks):
            row = {"prompt": t.prompt, "expected": t.expected}
            for name in ("base", "adapted"):
                texts = answers[name][i]
                row[f"{name}_success"] = sum(is_hit(x, t.expected, self.reward) for x in texts) / len(texts)
                row[f"{name}_reward"] = sum(rule_reward(x, t.expected, self.reward) for x in texts) / len(texts)
                row[f"{name}_samples"] = texts
            tasks.append(row)
        return {"samples_per_task": samples_per_task, "tasks": tasks}


def seed_knobs(**overrides) -> SeedKnobs:
    return SeedKnobs(**{**asdict(SeedKnobs()), **overrides})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--tasks", default="english", choices=sorted(TASK_PRESETS))
    parser.add_argument("--match-mode", default=None, help="default: the task preset's")
    parser.add_argument("--steps", type=int, default=40, help="the notebook's train_steps")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--eval-samples", type=int, default=0, help="K answers per task after training (0: skip)")
    parser.add_argument("--json", default=None, help="write the per-step log and evaluation here")
    args = parser.parse_args(argv)

    loaded = load_model(args.model, device="cpu", dtype=torch.float32)
    reward = RewardConfig(match_mode=args.match_mode or TASK_PRESET_MATCH_MODE[args.tasks])
    ppo = SeedPPO(loaded, TASK_PRESETS[args.tasks], reward,
                  seed_knobs(max_new_tokens=args.max_new_tokens, seed=args.seed))
    print(f"lora_injected_modules: {len(ppo.replaced)}")
    log = []
    for _ in range(args.steps):
        out = ppo.step()
        log.append({k: v for k, v in out.items()})
        if out["skip"]:
            print(f"step={out['step']} skip(empty response)")
            continue
        print(f"step={out['step']} rm_reward={out['rm_reward']:.3f} kl_mean={out['kl_mean']:.3f} "
              f"loss={out['loss']:.4f} policy={out['policy_loss']:.4f} value={out['value_loss']:.4f} "
              f"approx_kl={out['approx_kl']:.4f} clip_frac={out['clip_frac']:.3f} "
              f"tokens={out['response_tokens']} {out['step_seconds']:.2f}s")
        print("response:", repr(out["response"]))
    report = None
    if args.eval_samples > 0:
        report = ppo.evaluate(args.eval_samples)
        for t in report["tasks"]:
            print(f"{t['expected']!r}: base {t['base_success']:.2f} adapted {t['adapted_success']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"steps": log, "eval": report}, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
