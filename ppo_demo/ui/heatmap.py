"""One rollout's response tokens, each coloured by a per-token PPO quantity, as HTML.

HTML rather than ``gr.HighlightedText`` because the colour must be a diverging scale with a
legend (blue = negative, red = positive, white = zero) and every token needs a tooltip with
all its numbers; whitespace and newline tokens are made visible so no token disappears.
"""

from __future__ import annotations

import html
import math

from ..ppo import CLIP_CASES
from .i18n import t

# The quantities a token can be coloured by; their names are the catalog's "heat.<key>".
QUANTITY_KEYS = ("advantage", "train_advantage", "kl", "kl_exact", "ratio", "reward", "value", "ppo_ratio",
                 "clip_case")
QUANTITIES = {key: t(f"heat.{key}") for key in QUANTITY_KEYS}  # English names

# clip case code -> (background, border). Pushing up is blue, pushing down is orange
# (Okabe-Ito, colour-blind safe), and the cases of one side differ in lightness too, so they stay
# apart in grey on a washed-out projector: ① dark, ② light, ③ clipped = pale grey with a thick
# border the colour of the push it no longer gets; A = 0 is white. Opaque colours, so what a
# case looks like does not depend on what is behind it (a test checks the lightness steps).
# The short label of each case is the catalog's "heat.case.<code>", what it means
# "heat.case_why.<code>" (in English the same sentence as ppo.CLIP_CASES).
_CASE_COLOURS = {
    0: ("#4f9fd6", "#0072B2"),
    1: ("#a6cdea", "#0072B2"),
    2: ("#f2f2f2", "#0072B2"),
    3: ("#f2f2f2", "#D55E00"),
    4: ("#f4c49c", "#D55E00"),
    5: ("#e8955a", "#D55E00"),
    6: ("#ffffff", "#9a9a9a"),
}
_CASE_BORDER = {2: "3px dashed", 3: "3px dashed"}  # clipped: a dashed frame, no push
# clip case code -> (background, border, short label in English)
CASE_STYLE = {code: (*colours, t(f"heat.case.{code}")) for code, colours in _CASE_COLOURS.items()}


def case_label(code: int, lang: str = "en") -> str:
    return t(f"heat.case.{code}", lang)


def quantity_choices(lang: str = "en") -> list[tuple[str, str]]:
    """(name in ``lang``, key) pairs for the "Colour by" dropdown."""
    return [(t(f"heat.{key}", lang), key) for key in QUANTITY_KEYS]


def token_values(record, quantity: str) -> list[float]:
    if quantity == "advantage":
        return list(record.advantages)
    if quantity == "train_advantage":
        return list(record.train_advantages)
    if quantity == "kl":
        return list(record.kl)
    if quantity == "kl_exact":  # empty when the run did not compute it
        return list(getattr(record, "kl_exact", []) or []) or [math.nan] * len(record.tokens)
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


def _tooltip(record, i: int, token: str, lang: str = "en") -> str:
    tip = (f"t={i}  token={token!r}\nA={record.advantages[i]:+.4f}  Â={record.train_advantages[i]:+.4f}  "
           f"KL={record.kl[i]:+.4f}  "
           + (f"KL exact={record.kl_exact[i]:.4f}  " if getattr(record, "kl_exact", None) else "") +
           f"r={record.rewards[i]:+.4f}\nV={record.values[i]:+.4f}  return={record.returns[i]:+.4f}  "
           f"log π={record.logprobs[i]:.3f}  log π_ref={record.ref_logprobs[i]:.3f}")
    if record.ratios:
        tip += f"\nρ={record.ratios[i]:.4f}  {case_label(record.clip_cases[i], lang)}"
    return tip


def _clip_case_legend(lang: str = "en") -> str:
    """Every case with its colour and what it means (the six cases of the clipped objective)."""
    rows = []
    for case in CLIP_CASES:
        code = case["code"]
        background, border = _CASE_COLOURS[code]
        rows.append(f"<div class='case' data-case='{code}'><span class='swatch' style='display:inline-block;"
                    f"width:18px;height:12px;margin-right:6px;background:{background};"
                    f"border:{_CASE_BORDER.get(code, '2px solid')} {border}'>"
                    f"</span><b>{html.escape(case_label(code, lang))}</b> — "
                    f"{html.escape(t(f'heat.case_why.{code}', lang))}</div>")
    return ("<div class='clip-legend' style='margin-top:8px;font-size:14px;line-height:1.6'>"
            + html.escape(t("heat.clip_legend", lang)) + "".join(rows) + "</div>")


def _score_note(record, lang: str = "en") -> str:
    return (f"{t('heat.score', lang, score=record.score)} {'✓' if record.hit else '✗'}"
            f"{'' if record.ended_with_eos else ' · ' + t('heat.no_eos', lang)}")


def _number(value: float, quantity: str) -> str:
    """A token's value as printed under it ('+0.12', '1.03', '②')."""
    if not math.isfinite(value):
        return "–"
    if quantity == "clip_case":
        return "①②③④⑤⑥·"[int(value)] if 0 <= int(value) <= 6 else "?"
    if quantity in ("ratio", "ppo_ratio"):
        return f"{value:.2f}"
    return f"{value:+.2f}"


def _with_number(span_text: str, value: float, quantity: str, numbers: bool) -> str:
    if not numbers:
        return span_text
    return (f"<span class='tok-stack'>{span_text}<span class='tok-num'>{html.escape(_number(value, quantity))}"
            "</span></span>")


def heatmap_html(record, quantity: str = "advantage", lang: str = "en", numbers: bool = False) -> str:
    """The tokens of ``record`` with backgrounds by ``quantity``; the ratios are centred on 1,
    the clip cases get one colour each and a legend of what they mean. Words in ``lang``.
    ``numbers``: each token's value printed under it (readable from the back of a class, where a
    tooltip is not)."""
    if record is None:
        return f"<div class='heatmap-empty'>{html.escape(t('heat.empty', lang))}</div>"
    values = token_values(record, quantity)
    prompt = f"<div class='heat-prompt'>{html.escape(record.prompt)}</div>"
    if quantity == "clip_case":
        spans = []
        for i, (token, code) in enumerate(zip(record.tokens, values)):
            background, border = _CASE_COLOURS.get(int(code), ("rgba(0,0,0,0)", "transparent")) \
                if math.isfinite(code) else ("rgba(0,0,0,0)", "rgba(127,127,127,0.25)")
            spans.append(f"<span class='tok' data-case='{int(code) if math.isfinite(code) else ''}' "
                         f"style='background:{background};border:{_CASE_BORDER.get(int(code), '2px solid') if math.isfinite(code) else '2px solid'} {border}' "
                         f"title='{html.escape(_tooltip(record, i, token, lang), quote=True)}'>"
                         f"{_with_number(html.escape(_visible(token)), code, quantity, numbers)}</span>")
        note = "" if record.clip_cases else f"<div>{html.escape(t('heat.no_update', lang))}</div>"
        legend = (f"<div class='heat-legend'>{html.escape(_score_note(record, lang))}</div>{note}"
                  f"{_clip_case_legend(lang)}")
        return f"<div class='heatmap'>{prompt}<div class='heat-tokens'>{''.join(spans)}</div>{legend}</div>"
    centred = [v - 1.0 for v in values] if quantity in ("ratio", "ppo_ratio") else values
    finite = [abs(v) for v in centred if math.isfinite(v)]
    scale = max(finite) if finite else 0.0
    spans = []
    for i, (token, value) in enumerate(zip(record.tokens, centred)):
        spans.append(f"<span class='tok' style='background:{_colour(value, scale)}' "
                     f"title='{html.escape(_tooltip(record, i, token, lang), quote=True)}'>"
                     f"{_with_number(html.escape(_visible(token)), values[i], quantity, numbers)}</span>")
    low, high = (1 - scale, 1 + scale) if quantity in ("ratio", "ppo_ratio") else (-scale, scale)
    if quantity == "kl_exact" and not finite:
        return (f"<div class='heatmap'>{prompt}<div class='heat-tokens'>{''.join(spans)}</div>"
                f"<div>{html.escape(t('heat.kl_exact_off', lang))}</div></div>")
    legend = (f"<div class='heat-legend'><span class='neg'>{low:+.3g}</span>"
              f"<span class='bar'></span><span class='pos'>{high:+.3g}</span>"
              f"&nbsp; {html.escape(t(f'heat.{quantity}', lang))} · {html.escape(_score_note(record, lang))}</div>")
    return f"<div class='heatmap'>{prompt}<div class='heat-tokens'>{''.join(spans)}</div>{legend}</div>"
