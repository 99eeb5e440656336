"""The Chinese page says everything the English one does: same keys, formulas translated."""

import re

from ppo_demo.config import all_knob_fields
from ppo_demo.ui.i18n import EN, FORMULAS_EN, FORMULAS_ZH, KNOBS_ZH, ZH


def test_every_english_string_has_a_chinese_one():
    assert set(EN) == set(ZH)
    assert all(ZH[key].strip() for key in ZH)


def test_every_formula_heading_is_translated_and_every_formula_kept():
    headings = re.findall(r"^\*\*.*?:$", FORMULAS_EN, flags=re.M)  # '**Ratio** of ...:'
    assert len(headings) >= 10
    for heading in headings:
        assert heading not in FORMULAS_ZH, heading  # a .replace that no longer matches leaves it English
    display = re.findall(r"\$\$.*?\$\$", FORMULAS_EN, flags=re.S)
    assert display == re.findall(r"\$\$.*?\$\$", FORMULAS_ZH, flags=re.S)


def test_every_knob_has_a_chinese_label_and_help():
    """Without an entry the Chinese page silently falls back to the English text."""
    for f in all_knob_fields():
        label, help_text = KNOBS_ZH[f.name]
        assert label.strip() and help_text.strip() and help_text != f.metadata["help"], f.name
