"""One rollout's response tokens, each coloured by a per-token PPO quantity, as HTML.

HTML rather than ``gr.HighlightedText`` because the colour must be a diverging scale with a
legend (blue = negative, red = positive, white = zero) and every token needs a tooltip with
all its numbers; whitespace and newline tokens are made visible so no token disappears.
"""

from __future__ import annotations

import html
import math

# quantity key -> (label, how to compute it from a RolloutRecord at token t)
QUANTITIES = {
    "advantage": "advantage A_t (GAE)",
    "train_advantage": "advantage in the loss (after whitening)",
    "kl": "KL_t to the reference",
    "ratio": "π_θ/π_ref = exp(log π − log π_ref) (to the reference; not PPO's ρ)",
    "reward": "per-token reward r_t",
    "value": "value V(s_t)",
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


def heatmap_html(record, quantity: str = "advantage") -> str:
    """The tokens of ``record`` with backgrounds by ``quantity``; ratio is centred on 1."""
    if record is None:
        return "<div class='heatmap-empty'>Train a step to see its tokens here.</div>"
    values = token_values(record, quantity)
    centred = [v - 1.0 for v in values] if quantity == "ratio" else values
    finite = [abs(v) for v in centred if math.isfinite(v)]
    scale = max(finite) if finite else 0.0
    spans = []
    for t, (token, value, shown) in enumerate(zip(record.tokens, centred, values)):
        tip = (f"t={t}  token={token!r}\nA={record.advantages[t]:+.4f}  Â={record.train_advantages[t]:+.4f}  "
               f"KL={record.kl[t]:+.4f}  "
               f"r={record.rewards[t]:+.4f}\nV={record.values[t]:+.4f}  return={record.returns[t]:+.4f}  "
               f"log π={record.logprobs[t]:.3f}  log π_ref={record.ref_logprobs[t]:.3f}")
        spans.append(f"<span class='tok' style='background:{_colour(value, scale)}' "
                     f"title='{html.escape(tip, quote=True)}'>{html.escape(_visible(token))}</span>")
    low, high = (1 - scale, 1 + scale) if quantity == "ratio" else (-scale, scale)
    legend = (f"<div class='heat-legend'><span class='neg'>{low:+.3g}</span>"
              f"<span class='bar'></span><span class='pos'>{high:+.3g}</span>"
              f"&nbsp; {html.escape(QUANTITIES[quantity])} · rule score s = {record.score:+.3f} "
              f"{'✓' if record.hit else '✗'}{'' if record.ended_with_eos else ' · no EOS'}</div>")
    prompt = f"<div class='heat-prompt'>{html.escape(record.prompt)}</div>"
    return f"<div class='heatmap'>{prompt}<div class='heat-tokens'>{''.join(spans)}</div>{legend}</div>"
