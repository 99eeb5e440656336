"""The lessons: each a classroom question, its runs, and the predicate that reads the answer
off the runs' own numbers.

Every predicate is a pure function ``Runs -> Outcome`` (``Runs``: arm key -> one history per
seed, a history being the per-step metrics dicts). Statistics are named ``stat@arm``; with
several seeds each also has ``.min``/``.max``. Thresholds that are not comparisons between arms
are bounds with a reason written next to them, never a number read off one run.
"""

from __future__ import annotations

from ..tasks import Task
from .core import Arm, Lesson, Measure, Outcome, Runs, change, last_mean, max_of, mean_of, min_of
from .probes import NEG_KL_TOL

# A ratio that is 1 up to float rounding gives approx KL ~1e-12 and no clipping; 1e-4 is far
# above that rounding (the trainer keeps the ratio at 1 to ~1e-6 before any update in fp32) and
# far below what one real update step moves (~1e-3 and up).
RATIO_ONE_KL = 1e-4

# Tasks SmolLM2-135M (and any toy model) essentially never answers right: four-digit products.
NEVER_SOLVED_TASKS = (
    Task("What is 123 times 45? Reply with only the number.", "5535"),
    Task("What is 64 times 89? Reply with only the number.", "5696"),
    Task("What is 37 times 43? Reply with only the number.", "1591"),
)


# --- What does β do? ------------------------------------------------------------------------
def beta_signal(runs: Runs) -> Outcome:
    """Without the KL penalty the policy drifts further from the reference than with a large β."""
    m = Measure(runs)
    for arm in ("beta_zero", "beta_large"):
        m.arm(f"kl_last@{arm}", arm, last_mean("kl_mean"))
        m.arm(f"reward_last@{arm}", arm, last_mean("reward_mean"))
    m.check("lesson.beta.check.kl", m.above("kl_last@beta_zero", "kl_last@beta_large"),
            arms={"zero": "beta_zero", "large": "beta_large"}, a="kl_last@beta_zero", b="kl_last@beta_large")
    m.note("lesson.beta.note.reward", arms={"zero": "beta_zero", "large": "beta_large"},
           a="reward_last@beta_zero", b="reward_last@beta_large")
    return m.outcome(steps_needed=3)


# --- Why clip? ------------------------------------------------------------------------------
def clip_signal(runs: Runs) -> Outcome:
    """One epoch on one mini-batch: ratio ≡ 1, nothing clipped. Many epochs: the policy moves
    away from the sampling policy within the step, much further when nothing clips it."""
    m = Measure(runs)
    kl_one = m.arm("approx_kl_max@one_epoch", "one_epoch", max_of("approx_kl"))
    clip_one = m.arm("clip_frac_max@one_epoch", "one_epoch", max_of("clip_frac"))
    kl_clip = m.arm("approx_kl_max@clipped", "clipped", max_of("approx_kl"))
    kl_free = m.arm("approx_kl_max@unclipped", "unclipped", max_of("approx_kl"))
    m.arm("clip_frac_mean@clipped", "clipped", mean_of("clip_frac"))
    m.arm("success_last@clipped", "clipped", last_mean("success_rate", 2))
    m.arm("success_last@unclipped", "unclipped", last_mean("success_rate", 2))
    m.check("lesson.clip.check.one_epoch", kl_one < RATIO_ONE_KL and clip_one == 0, arms={"arm": "one_epoch"},
            kl="approx_kl_max@one_epoch", clip="clip_frac_max@one_epoch")
    m.check("lesson.clip.check.kl", kl_free > kl_clip, arms={"free": "unclipped", "clipped": "clipped"},
            a="approx_kl_max@unclipped", b="approx_kl_max@clipped")
    m.note("lesson.clip.note.clip_frac", arms={"clipped": "clipped"}, c="clip_frac_mean@clipped")
    m.note("lesson.clip.note.success", arms={"free": "unclipped", "clipped": "clipped"},
           a="success_last@unclipped", b="success_last@clipped")
    return m.outcome(steps_needed=2)


# --- Why is the KL negative? ----------------------------------------------------------------
def kl_negative_signal(runs: Runs) -> Outcome:
    """k1 = log π − log π_ref is negative on many tokens once the policy moved; k3 never is."""
    m = Measure(runs)
    neg = m.arm("kl_neg_frac@k_one", "k_one", mean_of("kl_neg_frac"))
    low3 = m.arm("kl_token_min@k_three", "k_three", min_of("kl_token_min"))
    m.arm("kl_token_min@k_one", "k_one", min_of("kl_token_min"))
    m.arm("kl_step_min@k_one", "k_one", min_of("kl_mean"))
    m.check("lesson.kl_negative.check.k_one", neg > 0, arms={"arm": "k_one"}, frac="kl_neg_frac@k_one",
            low="kl_token_min@k_one")
    m.check("lesson.kl_negative.check.k_three", low3 >= -NEG_KL_TOL, arms={"arm": "k_three"},
            low="kl_token_min@k_three")
    m.note("lesson.kl_negative.note.step", arms={"arm": "k_one"}, low="kl_step_min@k_one")
    if any("kl_exact" in step for histories in runs.values() for h in histories for step in h):
        m.arm("kl_exact_min@k_one", "k_one", min_of("kl_exact"))
        m.note("lesson.kl_negative.note.exact", arms={"arm": "k_one"}, low="kl_exact_min@k_one")
    return m.outcome(steps_needed=2)


# --- What is the critic for? ----------------------------------------------------------------
def critic_signal(runs: Runs) -> Outcome:
    """With a learned V the advantages A = G − V are smaller than the raw returns REINFORCE
    multiplies without a baseline, and the critic explains part of the returns' variance."""
    m = Measure(runs)
    gae = m.arm("adv_rms_last@gae", "gae", last_mean("adv_rms"))
    raw = m.arm("adv_rms_last@reinforce", "reinforce", last_mean("adv_rms"))
    m.arm("adv_mean_last@gae", "gae", last_mean("adv_mean"))
    m.arm("adv_mean_last@reinforce", "reinforce", last_mean("adv_mean"))
    ev = m.arm("ev_last@gae", "gae", last_mean("explained_variance"))
    m.check("lesson.critic.check.rms", gae < raw, arms={"gae": "gae", "raw": "reinforce"},
            a="adv_rms_last@gae", b="adv_rms_last@reinforce")
    m.check("lesson.critic.check.ev", ev > 0, arms={"gae": "gae"}, ev="ev_last@gae")
    m.note("lesson.critic.note.mean", arms={"gae": "gae", "raw": "reinforce"},
           a="adv_mean_last@gae", b="adv_mean_last@reinforce")
    return m.outcome(steps_needed=3)


# --- Why does GRPO sometimes learn nothing? -------------------------------------------------
def grpo_zero_signal(runs: Runs) -> Outcome:
    """On tasks the model never solves every group ties, so every advantage is 0 and the policy
    does not move; on tasks it sometimes solves, groups disagree and it learns."""
    m = Measure(runs)
    tied_never = m.arm("tied_group_frac@never", "never", mean_of("tied_group_frac"))
    tied_mixed = m.arm("tied_group_frac@mixed", "mixed", mean_of("tied_group_frac"))
    zero_never = m.arm("zero_adv_frac@never", "never", mean_of("zero_adv_frac"))
    zero_mixed = m.arm("zero_adv_frac@mixed", "mixed", mean_of("zero_adv_frac"))
    m.arm("approx_kl_max@never", "never", max_of("approx_kl"))
    m.arm("approx_kl_max@mixed", "mixed", max_of("approx_kl"))
    m.check("lesson.grpo_zero.check.tied", tied_never > tied_mixed, arms={"never": "never", "mixed": "mixed"},
            a="tied_group_frac@never", b="tied_group_frac@mixed")
    m.check("lesson.grpo_zero.check.zero", zero_never > zero_mixed, arms={"never": "never", "mixed": "mixed"},
            a="zero_adv_frac@never", b="zero_adv_frac@mixed")
    m.note("lesson.grpo_zero.note.kl", arms={"never": "never", "mixed": "mixed"},
           a="approx_kl_max@never", b="approx_kl_max@mixed")
    return m.outcome(steps_needed=2)


# --- Reward hacking -------------------------------------------------------------------------
def reward_hacking_signal(runs: Runs) -> Outcome:
    """A heavy length term is a proxy that can be gamed by saying less: the reward rises while
    the answers get no more right."""
    m = Measure(runs)
    d_reward = m.arm("reward_change@hacked", "hacked", change("reward_mean"))
    d_success = m.arm("success_change@hacked", "hacked", change("success_rate"))
    m.arm("length_change@hacked", "hacked", change("response_length_mean"))
    m.arm("success_change@honest", "honest", change("success_rate"))
    m.check("lesson.reward_hacking.check.proxy", d_reward > 0, arms={"arm": "hacked"}, d="reward_change@hacked")
    m.check("lesson.reward_hacking.check.truth", d_success <= 0, arms={"arm": "hacked"}, d="success_change@hacked")
    m.note("lesson.reward_hacking.note.length", arms={"arm": "hacked"}, d="length_change@hacked")
    m.note("lesson.reward_hacking.note.honest", arms={"arm": "honest"}, d="success_change@honest")
    return m.outcome(steps_needed=3)


# --- Why must dropout be off in the update? -------------------------------------------------
def dropout_signal(runs: Runs) -> Outcome:
    """One epoch on one mini-batch: without dropout the update pass recomputes exactly the
    sampling policy (ratio 1); with dropout on, the ratio differs from 1 before the weights
    change, and approx KL and clipping measure noise."""
    m = Measure(runs)
    off = m.arm("approx_kl_max@no_dropout", "no_dropout", max_of("approx_kl"))
    on = m.arm("approx_kl_max@dropout", "dropout", max_of("approx_kl"))
    m.arm("clip_frac_max@dropout", "dropout", max_of("clip_frac"))
    m.check("lesson.dropout.check.off", off < RATIO_ONE_KL, arms={"arm": "no_dropout"}, kl="approx_kl_max@no_dropout")
    m.check("lesson.dropout.check.on", on > off, arms={"on": "dropout", "off": "no_dropout"},
            a="approx_kl_max@dropout", b="approx_kl_max@no_dropout")
    m.note("lesson.dropout.note.clip", arms={"arm": "dropout"}, c="clip_frac_max@dropout")
    return m.outcome(steps_needed=2)


# --- Length bias ----------------------------------------------------------------------------
def length_bias_signal(runs: Runs) -> Outcome:
    """Averaging the loss per sequence gives a long wrong answer's tokens a smaller share of the
    penalty than per token does, so responses grow (or shrink less) than with the token mean."""
    m = Measure(runs)
    seq = m.arm("length_change@seq_mean", "seq_mean", change("response_length_mean"))
    tok = m.arm("length_change@token_mean", "token_mean", change("response_length_mean"))
    m.arm("length_last@seq_mean", "seq_mean", last_mean("response_length_mean"))
    m.arm("length_last@token_mean", "token_mean", last_mean("response_length_mean"))
    m.check("lesson.length_bias.check.length", seq > tok, arms={"seq": "seq_mean", "tok": "token_mean"},
            a="length_change@seq_mean", b="length_change@token_mean")
    m.note("lesson.length_bias.note.last", arms={"seq": "seq_mean", "tok": "token_mean"},
           a="length_last@seq_mean", b="length_last@token_mean")
    return m.outcome(steps_needed=3)


LESSONS: dict[str, Lesson] = {lesson.name: lesson for lesson in (
    # Two seeds per arm: with one, 6 steps gave KL 0.147 (β = 0) vs 0.144 (β = 0.5) and 0.162 for
    # β = 0.05 on the embedded model: a difference far inside seed noise. The middle β is left
    # out to keep the lesson's time (the KL demo's β = 0.05 is the Lab's default run).
    Lesson("beta", arms=(Arm("beta_zero", {"kl_coef": 0.0}), Arm("beta_large", {"kl_coef": 0.5})),
           signal=beta_signal, metrics=("kl_mean", "reward_mean", "success_rate"), steps=6, seeds=(42, 43)),
    Lesson("clip", arms=(Arm("one_epoch", {"ppo_epochs": 1, "num_minibatches": 1}),
                         Arm("clipped", {"ppo_epochs": 8}),
                         Arm("unclipped", {"ppo_epochs": 8, "clip_eps": 10.0})),
           signal=clip_signal, metrics=("approx_kl", "clip_frac", "success_rate"), steps=4),
    Lesson("kl_negative", arms=(Arm("k_three", {"kl_estimator": "k3"}), Arm("k_one", {"kl_estimator": "k1"})),
           shared={"top_p": 0.9}, signal=kl_negative_signal, metrics=("kl_mean", "kl_neg_frac", "kl_token_min"),
           steps=4),
    Lesson("critic", arms=(Arm("gae", {"advantage_estimator": "gae"}),
                           Arm("reinforce", {"advantage_estimator": "reinforce", "reinforce_baseline": False})),
           signal=critic_signal, metrics=("adv_rms", "explained_variance", "reward_mean"), steps=6),
    Lesson("grpo_zero", arms=(Arm("mixed"), Arm("never", tasks=NEVER_SOLVED_TASKS)),
           shared={"advantage_estimator": "grpo", "group_size": 4, "kl_coef": 0.0, "missing_eos_penalty": 0.0},
           reward={"length_penalty": 0.0}, signal=grpo_zero_signal,
           metrics=("tied_group_frac", "zero_adv_frac", "approx_kl"), steps=3),
    # Advantages whitened over the batch: raw rewards near -20 with a critic that starts at 0 make
    # every answer's advantage hugely negative, and 6 steps showed no shortening (reward -1.8,
    # length +1.8 tokens, embedded model, seed 1). Whitened, 6 steps shortened the answers
    # (reward +6.0, length -3.5 tokens) but success still rose (+0.22, honest +0.44): the
    # shortest answers were still right. 10 steps give the shortening time to cut into them.
    Lesson("reward_hacking", arms=(Arm("honest"), Arm("hacked", reward={"length_penalty": 0.5})),
           shared={"whiten": "batch"}, steps=10, signal=reward_hacking_signal,
           metrics=("reward_mean", "success_rate", "response_length_mean")),
    Lesson("dropout", arms=(Arm("no_dropout", {"dropout_in_ppo": False}), Arm("dropout", {"dropout_in_ppo": True})),
           shared={"ppo_epochs": 1, "num_minibatches": 1, "lora_dropout": 0.1}, signal=dropout_signal,
           metrics=("approx_kl", "clip_frac", "reward_mean"), steps=3),
    Lesson("length_bias", arms=(Arm("token_mean", {"loss_agg_mode": "token-mean"}),
                                Arm("seq_mean", {"loss_agg_mode": "seq-mean-token-mean"})),
           shared={"advantage_estimator": "grpo", "group_size": 4, "kl_in": "loss"},
           signal=length_bias_signal, metrics=("response_length_mean", "reward_mean", "success_rate"), steps=6,
           seeds=(42, 43), requires=("loss_agg_mode",)),
)}
