"""The one translation mechanism: catalogue lookup, plurals, Markdown texts, keyed errors."""

import pytest

from ppo_demo import text
from ppo_demo.text import LocalizedError, catalogue, placeholders, t, tn


def test_every_key_has_both_languages_with_the_same_placeholders():
    for key, pair in catalogue().items():
        assert isinstance(pair, tuple) and len(pair) == 2, key
        english, chinese = pair
        assert english.strip() and chinese.strip(), f"{key} is empty in a language"
        assert placeholders(english) == placeholders(chinese), f"{key}: placeholders differ"


def test_plural_forms_follow_the_language():
    assert tn("common.steps", 1) == "1 step"
    assert tn("common.steps", 2) == "2 steps"
    assert tn("common.steps", 0) == "0 steps"
    assert tn("common.steps", 1, "zh") == "1 步"


def test_unknown_key_is_a_programming_error():
    with pytest.raises(KeyError):
        t("no.such.key")


def test_localized_error_prints_english_and_renders_chinese():
    error = LocalizedError("common.steps.other", n=3)
    assert str(error) == "3 steps"
    assert error.in_lang("zh") == "3 步"


def test_markdown_texts_exist_in_both_languages():
    english = {p.stem for p in (text._TEXT_DIR / "en").glob("*.md")}
    chinese = {p.stem for p in (text._TEXT_DIR / "zh").glob("*.md")}
    assert english == chinese


def test_knob_text_reads_english_from_the_config_and_chinese_from_the_catalogue():
    from ppo_demo.config import all_knob_fields
    from ppo_demo.text import knob_text, knobs_zh

    field = next(f for f in all_knob_fields() if f.name == "kl_coef")
    assert knob_text("kl_coef", "help") == field.metadata["help"]
    names = {f.name for f in all_knob_fields()}
    assert set(knobs_zh()) <= names, "Chinese written for a knob that does not exist"
