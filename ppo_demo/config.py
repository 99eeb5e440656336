"""Every knob of a PPO run, defined once: name, default, range and a one-line meaning.

The CLI builds its arguments from these fields, the UI its sliders and their explanations, and
:meth:`TrainConfig.validate` checks them, so the three can never disagree. Defaults are the
seed notebook's, except where a default decides whether the numbers are right: dropout is off
in the PPO passes (with it on, the ratio differs from 1 before any update and clipping fires on
noise) and advantages are whitened over the whole batch; the ``seed`` preset restores the
notebook exactly.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from .text import LocalizedError

ADVANTAGE_ESTIMATORS = ("gae", "grpo", "rloo", "reinforce")
KL_ESTIMATORS = ("k1", "k2", "k3")  # = ppo.KL_ESTIMATORS (config imports no torch)
LOSS_AGG_MODES = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm")
CRITIC_FREE_ESTIMATORS = ("grpo", "rloo", "reinforce")  # no value head trained, no value loss
LORA_TARGETS_DEFAULT = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class ConfigError(LocalizedError):
    """A knob is out of range or of the wrong type; the message names it and its range."""


def knob(default, help: str, *, low=None, high=None, choices=None, group: str = "ppo", label: str = "",
         step=None):
    """A dataclass field carrying the knob's range and explanation as metadata. ``step``: the
    increment of its UI control when the range alone would pick too coarse a slider."""
    meta = {"help": help, "low": low, "high": high, "choices": choices, "group": group, "label": label,
            "step": step}
    if isinstance(default, (list, tuple)):
        return field(default_factory=lambda: tuple(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    # --- what is trained -------------------------------------------------------------------
    mode: str = knob("lora", "lora: train low-rank adapters B·A (+ value head), base frozen; "
                     "full: train every weight, pi_ref is a frozen copy", choices=("lora", "full"),
                     group="lora", label="Fine-tuning mode")
    lora_r: int = knob(8, "rank r of the update ΔW = (alpha/r)·B·A", low=1, high=256, group="lora",
                       label="LoRA rank r")
    lora_alpha: float = knob(16.0, "alpha in the scale alpha/r of the LoRA update", low=0.0,
                             high=1024.0, group="lora", label="LoRA alpha")
    lora_dropout: float = knob(0.05, "dropout on the LoRA input x (only active in the update passes "
                               "when 'dropout in PPO updates' is on)", low=0.0, high=0.9, group="lora",
                               label="LoRA dropout")
    lora_targets: tuple = knob(LORA_TARGETS_DEFAULT, "names of the Linear layers that get an "
                               "adapter (matched by suffix)", group="lora", label="LoRA target modules")
    learning_rate: float = knob(1e-4, "AdamW step size for the trainable parameters", low=1e-8,
                                high=1.0, label="Learning rate")
    # --- rollouts --------------------------------------------------------------------------
    steps: int = knob(40, "PPO steps: each samples a batch, scores it, then updates", low=1,
                      high=100000, group="rollout", label="Steps")
    batch_size: int = knob(8, "responses sampled per PPO step (the seed uses 1)", low=1, high=512,
                           group="rollout", label="Batch size")
    max_new_tokens: int = knob(48, "longest response T; a response that never emits EOS is cut "
                               "here", low=1, high=2048, group="rollout", label="Max new tokens")
    temperature: float = knob(1.0, "logits are divided by this when sampling AND when computing "
                              "log pi, so both use one distribution", low=0.05, high=5.0,
                              group="rollout", label="Temperature")
    top_p: float = knob(0.9, "nucleus sampling; below 1 the rollout is slightly off-policy since "
                        "log pi uses the full softmax", low=0.01, high=1.0, group="rollout",
                        label="Top-p")
    seed: int = knob(42, "random seed: the same seed and knobs give the same run", low=0,
                     high=2**31 - 1, group="rollout", label="Seed")
    # --- PPO update ------------------------------------------------------------------------
    ppo_epochs: int = knob(2, "passes over each batch of rollouts", low=1, high=64, label="PPO epochs")
    num_minibatches: int = knob(1, "each epoch splits the batch into this many gradient steps",
                                low=1, high=512, label="Mini-batches")
    clip_eps: float = knob(0.2, "epsilon in min(ρA, clip(ρ, 1-ε, 1+ε)A); with a clip ε high it is "
                           "ε_low, the lower bound 1-ε_low", low=0.0, high=10.0, label="Clip ε")
    clip_eps_high: float | None = knob(None, "clip-higher (DAPO, Yu et al. 2025): the upper bound "
                                       "becomes 1+ε_high in min(ρA, clip(ρ, 1-ε, 1+ε_high)A), so an "
                                       "unlikely good token can grow further in one step; empty = ε "
                                       "(symmetric). DAPO uses ε 0.2, ε_high 0.28", label="Clip ε high")
    loss_agg_mode: str = knob("token-mean", "how E_t averages a per-token loss (veRL's names): "
                              "token-mean = Σ_i Σ_t l / Σ_i |y_i|; seq-mean-token-mean = "
                              "1/B Σ_i (1/|y_i|) Σ_t l; seq-mean-token-sum = 1/B Σ_i Σ_t l; "
                              "seq-mean-token-sum-norm = 1/(B·L) Σ_i Σ_t l with L = max new tokens "
                              "(Dr. GRPO: no length bias)", choices=LOSS_AGG_MODES,
                              label="Loss aggregation")
    value_clip_eps: float = knob(0.2, "values may move at most this far from the old values "
                                 "before the loss stops rewarding it", low=0.0, high=1e6,
                                 label="Value clip ε")
    vf_coef: float = knob(0.5, "c_V: weight of the value loss in the total loss", low=0.0,
                          high=100.0, label="Value coef c_V")
    ent_coef: float = knob(0.0, "c_ent: weight of the entropy bonus (higher keeps exploring)",
                           low=0.0, high=10.0, label="Entropy coef c_ent")
    kl_coef: float = knob(0.05, "β in the per-token reward r_t = -β·KL_t (+ score at the last "
                          "token)", low=0.0, high=100.0, label="KL coef β")
    kl_estimator: str = knob("k1", "KL_t in the reward r_t = -β·KL_t (and in the KL plots): "
                             "k1 = log pi - log pi_ref (unbiased, can be < 0); k2 = ½(log pi - "
                             "log pi_ref)² (>= 0, biased); k3 = (q-1) - log q with q = pi_ref/pi "
                             "(unbiased, >= 0)", choices=KL_ESTIMATORS, label="KL estimator")
    kl_in: str = knob("reward", "reward: r_t = -β·KL_t on every token (PPO, the seed); loss: r_t is "
                      "the score alone and β·E_t[KL_t] is added to the loss (as GRPO)",
                      choices=("reward", "loss"), label="KL in")
    kl_loss_estimator: str = knob("k3", "KL_t in the loss term β·E_t[KL_t] when the KL is in the "
                                  "loss: k1 = log pi - log pi_ref; k2 = ½(log pi - log pi_ref)² "
                                  "(its gradient is the true KL's); k3 = (q-1) - log q, q = "
                                  "pi_ref/pi (GRPO's)", choices=KL_ESTIMATORS, label="KL loss estimator")
    exact_kl: bool = knob(True, "also compute the true KL(pi || pi_ref) = Σ_v pi(v) (log pi(v) - "
                          "log pi_ref(v)) over the whole vocabulary at every response token, for "
                          "the plots and the heatmap (the training signal still uses the "
                          "estimator); memory: batch × max new tokens × V × 4 bytes (SmolLM2, V = "
                          "49152: 38 MB for quick-CPU); not computed above 512 MB",
                          label="Exact KL")
    kl_target: float | None = knob(None, "adaptive KL (Ziegler et al. 2019): the KL per response "
                                   "(summed over its tokens) that β is steered toward after each "
                                   "step; empty = β stays fixed", label="Target KL")
    kl_horizon: int = knob(100, "adaptive KL: responses over which β may change by about 20% "
                           "(TRL used 10000; a class run has a few hundred)", low=1,
                           high=10_000_000, label="KL horizon")
    # --- advantages ------------------------------------------------------------------------
    advantage_estimator: str = knob("gae", "gae: PPO with a learned critic V; grpo: (r - group "
                                    "mean) / group std; rloo: r minus the mean of the other "
                                    "answers to the prompt; reinforce: the plain return (minus the "
                                    "batch mean). The last three train no critic",
                                    choices=ADVANTAGE_ESTIMATORS, label="Advantage estimator")
    grpo_std_norm: bool = knob(True, "grpo: divide by the group's std, A = (G_0 - mean)/(std + "
                               "eps); off = Dr. GRPO (Liu et al. 2025), A = G_0 - mean, so a group "
                               "that nearly agrees is not blown up to unit scale",
                               label="GRPO std normalisation")
    group_size: int = knob(1, "G: a step draws batch/G prompts and samples each G times (grpo and "
                           "rloo compare the G answers, so need G >= 2)", low=1, high=512,
                           label="Group size G")
    reinforce_baseline: bool = knob(True, "reinforce: subtract the batch's mean return (lower "
                                    "variance, same expected gradient)", label="REINFORCE baseline")
    gamma: float = knob(1.0, "discount γ in GAE and in the return-to-go", low=0.0, high=1.0,
                        label="Gamma γ")
    gae_lambda: float = knob(0.95, "λ in GAE: 0 = one-step TD, 1 = Monte-Carlo return", low=0.0,
                             high=1.0, label="GAE λ")
    whiten: str = knob("batch", "advantage whitening: over all real tokens of the batch, per "
                       "response (the seed), or none", choices=("batch", "sequence", "none"),
                       label="Whiten advantages")
    max_grad_norm: float = knob(1.0, "gradients are rescaled to at most this global norm",
                                low=0.0, high=1e6, label="Max grad norm")
    dropout_in_ppo: bool = knob(False, "keep dropout on in the update passes, as the seed does "
                                "(sampling and scoring always run without it): then ratio != 1 "
                                "before any update", label="Dropout in PPO updates")
    missing_eos_penalty: float = knob(0.0, "subtracted from the score of a response that never "
                                      "emits EOS", low=0.0, high=100.0, group="reward",
                                      label="Missing-EOS penalty")
    reward_source: str = knob("rule", "the score at each answer's last token: rule (the task's rule reward, "
                              "the seed's), reward_model (a reward model trained on preferences, its score "
                              "normalised), or both added", choices=("rule", "reward_model", "both"),
                              group="reward", label="Reward source")
    micro_batch_tokens: int = knob(512, "memory budget: forward/backward passes are split into "
                                   "chunks of about this many computed tokens (prompt + response; "
                                   "shared prompts and packed answers count once) and the "
                                   "gradients summed, token-weighted, so the update is the same; "
                                   "0 = a whole mini-batch at once", low=0, high=1_000_000,
                                   label="Micro-batch tokens")
    gradient_checkpointing: bool = knob(False, "keep only each layer's input during the update and "
                                        "recompute the rest in the backward pass: far less memory, "
                                        "about a third more update time, same gradients; sampling "
                                        "also goes without its packed weight copies",
                                        label="Gradient checkpointing")
    share_prompts: bool = knob(True, "compute each distinct prompt once per pass (scoring and update) "
                               "and let every answer to it reuse its keys and values, and pack the "
                               "answers without their padding past EOS; the same numbers "
                               "up to float rounding, gradients included. Not used with gradient "
                               "checkpointing or dropout in PPO updates", label="Share prompts")
    max_bad_updates: int = knob(3, "stop the run after this many non-finite losses in a row",
                                low=1, high=1000, label="Max skipped updates")

    # ------------------------------------------------------------------------------------
    def validate(self) -> "TrainConfig":
        """Raise :class:`ConfigError` naming the first knob that is out of range."""
        check_knobs(self)
        if not self.lora_targets or not all(isinstance(t, str) and t.strip() for t in self.lora_targets):
            raise ConfigError("config.lora_targets")
        self._validate_estimator()
        if self.num_minibatches > self.batch_size:
            raise ConfigError("config.minibatches", n=self.num_minibatches, batch=self.batch_size)
        return self

    def _validate_estimator(self) -> None:
        G = self.group_size
        if self.advantage_estimator in ("grpo", "rloo") and G < 2:
            raise ConfigError("config.group_too_small", name=self.advantage_estimator.upper(), value=G)
        if self.batch_size % G:
            raise ConfigError("config.batch_not_multiple", batch=self.batch_size, group=G)
        if self.clip_eps_high is not None:
            if isinstance(self.clip_eps_high, bool) or not isinstance(self.clip_eps_high, (int, float)) \
                    or not (0.0 <= self.clip_eps_high <= 10.0):
                raise ConfigError("knobs_loss.clip_eps_high_range", value=repr(self.clip_eps_high))
        if self.kl_target is not None:
            if isinstance(self.kl_target, bool) or not isinstance(self.kl_target, (int, float)):
                raise ConfigError("config.kl_target_number", value=repr(self.kl_target))
            if not (0 < self.kl_target < math.inf):
                raise ConfigError("config.kl_target_positive", value=self.kl_target)

    @property
    def has_critic(self) -> bool:
        """Only GAE learns a value function; the others take their baseline from the rewards."""
        return self.advantage_estimator not in CRITIC_FREE_ESTIMATORS

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        """Build from untyped input (CLI strings, UI/API values), coercing and validating.

        Unknown keys are an error, so a misspelt knob never silently falls back to a default.
        """
        return knobs_from_dict(cls, values).validate()

    def replace(self, **changes) -> "TrainConfig":
        return TrainConfig.from_dict({**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["lora_targets"] = list(self.lora_targets)
        return d


def check_knobs(config, error: type[LocalizedError] = ConfigError) -> None:
    """Raise ``error`` naming the first knob of ``config`` (any dataclass of knobs) that is not
    one of its choices or out of its range."""
    for f in knob_fields(type(config)):
        value = getattr(config, f.name)
        meta = f.metadata
        if meta.get("choices") is not None and value not in meta["choices"]:
            raise error("config.not_choice", knob=f.name, choices=", ".join(meta["choices"]), value=repr(value))
        if meta.get("low") is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise error("config.not_number", knob=f.name, value=repr(value))
            if value != value or not (meta["low"] <= value <= meta["high"]):  # NaN fails too
                raise error("config.out_of_range", knob=f.name, low=meta["low"], high=meta["high"], value=value)


def knobs_from_dict(cls, values: dict[str, Any]):
    """``cls(**values)`` with each value coerced to its knob's type (not yet validated); an
    unknown key is a ConfigError."""
    fields = {f.name: f for f in knob_fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError("config.unknown_settings", names=", ".join(unknown))
    return cls(**{name: _coerce(fields[name], value) for name, value in values.items()})


def _coerce(f: dataclasses.Field, value: Any) -> Any:
    kind = f.type if isinstance(f.type, str) else f.type.__name__
    if kind.endswith("| None"):  # optional knob: empty means "off"
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "off")):
            return None
        kind = kind.removesuffix("| None").strip()
    try:
        if kind == "tuple":
            if isinstance(value, str):
                value = [part.strip() for part in value.split(",")]
            return tuple(str(v).strip() for v in value if str(v).strip())
        if kind == "bool":
            if isinstance(value, str):
                lowered = value.strip().lower()
                if lowered in ("1", "true", "yes", "on"):
                    return True
                if lowered in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if kind == "int":
            number = float(value)
            if number != int(number):
                raise ValueError(value)
            return int(number)
        if kind == "float":
            return float(value)
        return str(value).strip()
    except (TypeError, ValueError, OverflowError):
        key = {"int": "config.not_int", "float": "config.not_number", "bool": "config.not_bool"}.get(kind)
        raise ConfigError(key or "config.not_kind", knob=f.name, kind=kind, value=repr(value)) from None


def knob_fields(cls=None) -> list[dataclasses.Field]:
    """The knobs of ``cls`` (default :class:`TrainConfig`) in definition order, for CLI
    arguments, UI controls and validation: the fields defined with :func:`knob`."""
    return [f for f in dataclasses.fields(cls or TrainConfig) if "help" in f.metadata]


# Presets. "seed" is the notebook's knobs exactly (one response per step, dropout on during the
# update, per-response whitening). "quick-cpu" is tuned so SmolLM2-135M's reward curve visibly
# rises within a few minutes on two CPU cores.
PRESETS: dict[str, dict[str, Any]] = {
    "seed": dict(
        mode="lora", lora_r=8, lora_alpha=16.0, lora_dropout=0.05, learning_rate=1e-4, steps=40,
        batch_size=1, max_new_tokens=48, temperature=1.0, top_p=0.9, ppo_epochs=2,
        num_minibatches=1, clip_eps=0.2, value_clip_eps=0.2, vf_coef=0.5, ent_coef=0.0,
        kl_coef=0.05, kl_estimator="k1", gamma=1.0, gae_lambda=0.95, whiten="sequence",
        max_grad_norm=1.0, dropout_in_ppo=True, missing_eos_penalty=0.0,
    ),
    # Tuned on the English tasks (2 vCPU, SmolLM2-135M): 3 responses per task per step, 3
    # mini-batches of 4, lr 5e-4 and the seed's KL 0.05 reach every task >= 0.9 in ~8-12 steps.
    # No whitening: once every answer is right, batch whitening rescales the tiny length-penalty
    # differences to unit size, which shortened answers step after step until they broke (seen
    # at steps 13-24 in 3 of 4 tuning runs); unwhitened, the push fades as the rewards agree.
    "quick-cpu": dict(
        mode="lora", lora_r=8, lora_alpha=16.0, lora_dropout=0.0, learning_rate=5e-4, steps=20,
        batch_size=12, max_new_tokens=16, temperature=1.0, top_p=1.0, ppo_epochs=2,
        num_minibatches=3, clip_eps=0.2, value_clip_eps=0.2, vf_coef=0.5, ent_coef=0.0,
        kl_coef=0.05, kl_estimator="k1", gamma=1.0, gae_lambda=0.95, whiten="none",
        max_grad_norm=1.0, dropout_in_ppo=False, missing_eos_penalty=0.5,
    ),
}


def all_knob_fields() -> list[dataclasses.Field]:
    """Every knob a user sets: the training knobs, then the reward's, the reward model's and
    DPO's (their modules import this one, hence the imports here)."""
    from .preferences import DPOConfig, RewardModelConfig
    from .reward import RewardConfig

    return knob_fields() + knob_fields(RewardConfig) + knob_fields(RewardModelConfig) + knob_fields(DPOConfig)


# The one starting point of the app and of the CLI without --preset: quick-cpu, because it is what
# a student sees first and it learns visibly on two CPU cores in about a minute. (The field
# defaults above are the seed's knobs with the corrections named at the top, for code that builds
# a TrainConfig directly; the "seed" preset is the notebook's.)
DEFAULT_PRESET = "quick-cpu"


def preset_config(name: str, **overrides) -> TrainConfig:
    """A preset's knobs with ``overrides``. A batch smaller than the preset's mini-batch count
    takes one mini-batch per response, unless the mini-batches are given too."""
    if name not in PRESETS:
        raise ConfigError("config.unknown_preset", name=name, choices=", ".join(PRESETS))
    values = {**PRESETS[name], **overrides}
    if "num_minibatches" not in overrides and "batch_size" in overrides:
        values["num_minibatches"] = min(int(values["num_minibatches"]), int(values["batch_size"]))
    return TrainConfig.from_dict(values)
