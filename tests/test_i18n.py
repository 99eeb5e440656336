"""The Chinese page says everything the English one does: same keys, formulas translated."""

import html
import re

from ppo_demo.config import all_knob_fields
from ppo_demo.text import LocalizedError, long_text
from ppo_demo.text import knobs_zh as _knobs_zh
from ppo_demo.ui.i18n import page_strings

FORMULAS_EN, FORMULAS_ZH = long_text("formulas", "en"), long_text("formulas", "zh")
KNOBS_ZH = _knobs_zh()


def test_every_english_string_has_a_chinese_one():
    english, chinese = page_strings("en"), page_strings("zh")
    assert set(english) == set(chinese)
    assert all(chinese[key].strip() for key in chinese)
    assert chinese["lab.formulas_md"] == FORMULAS_ZH != FORMULAS_EN == english["lab.formulas_md"]


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


# --- what the server writes: status lines, toasts, headers, legends ---------------------------
import string  # noqa: E402
from pathlib import Path  # noqa: E402

from ppo_demo.text import catalogue  # noqa: E402
from ppo_demo.ui.i18n import knob_label, lang_of, t  # noqa: E402

MESSAGES = catalogue()

UNCHANGED_OK = {"eta.unknown", "header.rollout"}  # '?' and '#' read the same in both languages


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_every_server_message_exists_in_both_languages_with_the_same_placeholders():
    for key, (english, chinese) in MESSAGES.items():
        assert english.strip() and chinese.strip(), key
        assert _placeholders(english) == _placeholders(chinese), key
        if key not in UNCHANGED_OK:
            assert chinese != english, f"{key} is not translated"


def test_every_message_key_the_ui_uses_is_in_the_catalog():
    """A t('...') with a misspelt key would raise in the middle of an event."""
    used = set()
    for path in Path("ppo_demo").rglob("*.py"):
        code = path.read_text(encoding="utf-8")
        used |= set(re.findall(r"""\bt\(\s*["']([a-z_]+\.[a-z_.]+)["']""", code))
        used |= set(re.findall(r"""(?:Runs|Config|Task|Reward|Localized)Error\(\s*["']([a-z_]+\.[a-z_.]+)["']""", code))
    assert used, "the scan found no keys: the pattern no longer matches the code"
    assert sorted(used - set(MESSAGES)) == []


class FakeRequest:
    def __init__(self, accept_language=None):
        self.headers = {} if accept_language is None else {"accept-language": accept_language}


def test_language_comes_from_the_browsers_accept_language():
    assert lang_of(FakeRequest("zh-CN,zh;q=0.9,en;q=0.8")) == "zh"
    assert lang_of(FakeRequest("en-US,en;q=0.9,zh-CN;q=0.8")) == "en"
    assert lang_of(FakeRequest("fr-FR,fr;q=0.9,zh;q=0.7,en;q=0.5")) == "zh"  # the best one we have
    assert lang_of(FakeRequest("de-DE")) == "en"
    assert lang_of(FakeRequest()) == "en" and lang_of(None) == "en"


def test_t_fills_in_values_and_falls_back_to_english():
    assert t("error.max_tasks", "zh", limit=32) == "最多 32 个任务。"
    assert t("error.max_tasks", "fr", limit=32) == "The limit is 32 tasks."
    assert t("match.exact", "zh") == "完全一致"
    assert knob_label("kl_coef") == "KL coef β" and knob_label("kl_coef", "zh") == "KL 系数 β"
    assert knob_label("match_mode", "zh") == "匹配方式"


def test_gradios_own_strings_missing_from_its_chinese_dictionary_are_supplied():
    """Gradio 6.31's zh-CN lacks these: without them the page shows 'common.complete' raw."""
    from ppo_demo.ui.i18n import I18N

    for locale in ("zh-CN", "zh"):
        translations = I18N.translations_dict[locale] if isinstance(I18N.translations_dict, dict) else \
            I18N.translations_dict()[locale]
        assert translations["common.complete"] == "完成"
        assert "{position}" in translations["status.queue_position"]


def _raised(fn) -> LocalizedError:
    try:
        fn()
    except LocalizedError as exc:
        return exc
    raise AssertionError("expected an error")


def engine_message(error: LocalizedError, lang: str) -> str:
    """What the page shows for an engine error: the path every event takes (``user_errors``)."""
    import gradio as gr

    from ppo_demo.ui.errors import user_errors

    try:
        with user_errors(lang=lang):
            raise error
    except gr.Error as exc:
        return html.unescape(str(exc.message))
    raise AssertionError("user_errors let the error through")


def test_the_engines_messages_carry_keys_and_render_in_both_languages():
    import pickle

    from ppo_demo.config import TrainConfig
    from ppo_demo.reward import RewardConfig, compile_expected
    from ppo_demo.tasks import tasks_from_rows

    raised = [
        _raised(lambda: TrainConfig.from_dict({"kl_estimator": "k4"})),
        _raised(lambda: TrainConfig.from_dict({"learning_rate": 5.0})),
        _raised(lambda: TrainConfig.from_dict({"steps": "2.5"})),
        _raised(lambda: TrainConfig.from_dict({"kl_coef": "abc"})),
        _raised(lambda: TrainConfig.from_dict({"dropout_in_ppo": "maybe"})),
        _raised(lambda: TrainConfig.from_dict({"batch_size": 2, "num_minibatches": 4})),
        _raised(lambda: TrainConfig.from_dict({"lora_targets": ""})),
        _raised(lambda: tasks_from_rows([["", "4"]])),
        _raised(lambda: tasks_from_rows([["What is 2+2?", ""]])),
        _raised(lambda: tasks_from_rows([["x" * 50, "4"]], max_prompt_chars=10)),
        _raised(lambda: tasks_from_rows([])),
        _raised(lambda: tasks_from_rows([["a", "b"]] * 3, max_tasks=2)),
        _raised(lambda: compile_expected("(", RewardConfig(match_mode="regex"))),
    ]
    for error in raised:
        english, chinese = str(error), engine_message(error, "zh")
        assert chinese != english and not re.search(r"\b(must|got|limit)\b", chinese), english
        assert engine_message(error, "en") == english
        assert str(pickle.loads(pickle.dumps(error))) == english  # a model job's error crosses processes
    assert engine_message(raised[1], "zh").startswith("学习率 必须在")  # the knob's label is translated too
    assert str(raised[1]) == "Learning rate must be between 1e-08 and 1.0; got 5.0."  # the CLI's sentence
    assert "第 2 行" not in engine_message(raised[8], "zh") and "第 1 行" in engine_message(raised[8], "zh")


def test_the_clip_cases_in_the_catalog_are_the_engines_cases():
    """The heatmap's English legend must say what ppo.CLIP_CASES says (one source of meaning)."""
    from ppo_demo.ppo import CLIP_CASES

    for case in CLIP_CASES:
        assert t(f"heat.case_why.{case['code']}") == case["why"]
        assert t(f"heat.case.{case['code']}", "zh") != t(f"heat.case.{case['code']}")


def test_the_estimator_errors_are_translated():
    from ppo_demo.config import TrainConfig

    raised = [
        _raised(lambda: TrainConfig.from_dict({"advantage_estimator": "grpo", "group_size": 1})),
        _raised(lambda: TrainConfig.from_dict({"advantage_estimator": "rloo", "batch_size": 10, "group_size": 4})),
        _raised(lambda: TrainConfig.from_dict({"kl_target": "0"})),
        _raised(lambda: TrainConfig.from_dict({"kl_target": "abc"})),
    ]
    for error in raised:
        english, chinese = str(error), engine_message(error, "zh")
        assert chinese != english and not re.search(r"\b(must|got)\b", chinese), english
