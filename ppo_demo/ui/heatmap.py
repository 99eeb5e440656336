"""One rollout's response tokens, each coloured by a per-token PPO quantity, as HTML.

HTML rather than ``gr.HighlightedText`` because the colour must be a diverging scale with a
legend (blue = negative, red = positive, white = zero) and every token needs a tooltip with
all its numbers; whitespace and newline tokens are made visible so no token disappears.
"""

from __future__ import annotations

import html
import math

from ..ppo import CLIP_CASES

# quantity key -> (label, how to compute it from a RolloutRecord at token t)
QUANTITIES = {
    "advantage": "advantage A_t (GAE)",
    "train_advantage": "advantage in the loss (after whitening)",
    "kl": "KL_t to the reference",
    "ratio": "π_θ/π_ref = exp(log π − log π_ref) (to the reference; not PPO's ρ)",
    "reward": "per-token reward r_t",
    "value": "value V(s_t)",
    "ppo_ratio": "PPO's ρ_t = π_new/π_old at the last update pass (centred on 1)",
    "clip_case": "clip case: which tokens still push the gradient and which the clip stopped",
}

# clip case code -> (background, border, short label). Pushing up is blue, pushing down is
# orange (Okabe-Ito, colour-blind safe); a clipped token is grey, its border the colour of the
# push it no longer gets; A = 0 is white.
CASE_STYLE = {
    0: ("rgba(0,114,178,0.75)", "rgba(0,114,178,1)", "① A>0, ρ<1−ε: pushed up"),
    1: ("rgba(0,114,178,0.35)", "rgba(0,114,178,0.6)", "② A>0, ρ in range: pushed up"),
    2: ("rgba(150,150,150,0.45)", "rgba(0,114,178,1)", "③ A>0, ρ>1+ε: clipped, no gradient"),
    3: ("rgba(150,150,150,0.45)", "rgba(213,94,0,1)", "④ A<0, ρ<1−ε: clipped, no gradient"),
    4: ("rgba(213,94,0,0.35)", "rgba(213,94,0,0.6)", "⑤ A<0, ρ in range: pushed down"),
    5: ("rgba(213,94,0,0.75)", "rgba(213,94,0,1)", "⑥ A<0, ρ>1+ε: pushed down"),
    6: ("rgba(255,255,255,0.9)", "rgba(127,127,127,0.4)", "A=0: no push"),
}


def token_values(record, quantity: str) -> list[float]:
    if quantity == "advantage":
        return list(record.advantages)
    if quantity == "train_advantage":
        return list(record.train_advantages)
    if quantity == "kl":
        return list(record.kl)
    if quantity == "ratio":
        return [math.exp(lp - ref) for lp, ref in zip(record.logprobs, record.ref_logprobs)]
    if quantity == "reward":
        return list(record.rewards)
    if quantity == "value":
        return list(record.values)
    if quantity == "ppo_ratio":
        return list(record.ratios) or [math.nan] * len(record.tokens)
    if quantity == "clip_case":
        return [float(c) for c in record.clip_cases] or [math.nan] * len(record.tokens)
    raise ValueError(f"Unknown heatmap quantity {quantity!r}; choose one of {', '.join(QUANTITIES)}.")


def _colour(value: float, scale: float) -> str:
    """Diverging: white at 0, red for positive, blue for negative, alpha by magnitude."""
    if not math.isfinite(value) or scale <= 0:
        return "rgba(0,0,0,0)"
    strength = min(abs(value) / scale, 1.0)
    rgb = "220,38,38" if value > 0 else "37,99,235"
    return f"rgba({rgb},{0.08 + 0.72 * strength:.3f})"


def _visible(token: str) -> str:
    return token.replace("\n", "↵\n").replace("\t", "⇥").replace(" ", "\u00a0") or "∅"


def _tooltip(record, t: int, token: str) -> str:
    tip = (f"t={t}  token={token!r}\nA={record.advantages[t]:+.4f}  Â={record.train_advantages[t]:+.4f}  "
           f"KL={record.kl[t]:+.4f}  "
           f"r={record.rewards[t]:+.4f}\nV={record.values[t]:+.4f}  return={record.returns[t]:+.4f}  "
           f"log π={record.logprobs[t]:.3f}  log π_ref={record.ref_logprobs[t]:.3f}")
    if record.ratios:
        tip += f"\nρ={record.ratios[t]:.4f}  {CASE_STYLE[record.clip_cases[t]][2]}"
    return tip


def _clip_case_legend() -> str:
    """Every case with its colour and what it means (the six cases of the clipped objective)."""
    rows = []
    for case in CLIP_CASES:
        background, border, label = CASE_STYLE[case["code"]]
        rows.append(f"<div class='case' data-case='{case['code']}'><span class='swatch' style='display:inline-block;"
                    f"width:18px;height:12px;margin-right:6px;background:{background};border:2px solid {border}'>"
                    f"</span><b>{html.escape(label)}</b> — {html.escape(case['why'])}</div>")
    return ("<div class='clip-legend' style='margin-top:8px;font-size:14px;line-height:1.6'>"
            "Each token's term min(ρA, clip(ρ, 1−ε, 1+ε)A) at the last update pass. "
            "Only ③ and ④ are clipped (zero gradient): the token already moved more than ε the way A asks."
            + "".join(rows) + "</div>")


def _score_note(record) -> str:
    return (f"rule score s = {record.score:+.3f} {'✓' if record.hit else '✗'}"
            f"{'' if record.ended_with_eos else ' · no EOS'}")


def heatmap_html(record, quantity: str = "advantage") -> str:
    """The tokens of ``record`` with backgrounds by ``quantity``; the ratios are centred on 1,
    the clip cases get one colour each and a legend of what they mean."""
    if record is None:
        return "<div class='heatmap-empty'>Train a step to see its tokens here.</div>"
    values = token_values(record, quantity)
    prompt = f"<div class='heat-prompt'>{html.escape(record.prompt)}</div>"
    if quantity == "clip_case":
        spans = []
        for t, (token, code) in enumerate(zip(record.tokens, values)):
            background, border, _ = CASE_STYLE.get(int(code), ("rgba(0,0,0,0)", "transparent", "")) \
                if math.isfinite(code) else ("rgba(0,0,0,0)", "rgba(127,127,127,0.25)", "")
            spans.append(f"<span class='tok' data-case='{int(code) if math.isfinite(code) else ''}' "
                         f"style='background:{background};border:2px solid {border}' "
                         f"title='{html.escape(_tooltip(record, t, token), quote=True)}'>"
                         f"{html.escape(_visible(token))}</span>")
        note = "" if record.clip_cases else "<div>No update ran in this step, so there is no ratio to show.</div>"
        legend = f"<div class='heat-legend'>{html.escape(_score_note(record))}</div>{note}{_clip_case_legend()}"
        return f"<div class='heatmap'>{prompt}<div class='heat-tokens'>{''.join(spans)}</div>{legend}</div>"
    centred = [v - 1.0 for v in values] if quantity in ("ratio", "ppo_ratio") else values
    finite = [abs(v) for v in centred if math.isfinite(v)]
    scale = max(finite) if finite else 0.0
    spans = []
    for t, (token, value) in enumerate(zip(record.tokens, centred)):
        spans.append(f"<span class='tok' style='background:{_colour(value, scale)}' "
                     f"title='{html.escape(_tooltip(record, t, token), quote=True)}'>{html.escape(_visible(token))}</span>")
    low, high = (1 - scale, 1 + scale) if quantity in ("ratio", "ppo_ratio") else (-scale, scale)
    legend = (f"<div class='heat-legend'><span class='neg'>{low:+.3g}</span>"
              f"<span class='bar'></span><span class='pos'>{high:+.3g}</span>"
              f"&nbsp; {html.escape(QUANTITIES[quantity])} · {html.escape(_score_note(record))}</div>")
    return f"<div class='heatmap'>{prompt}<div class='heat-tokens'>{''.join(spans)}</div>{legend}</div>"
