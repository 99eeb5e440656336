"""The projector test in headless Chromium at 1400×1000: runs named for what they are (and
renamed), charts whose titles never cover the data, every word in Chinese, Compare following the
tasks. One app (tiny-random, or PPO_DEMO_TEST_MODEL) serves every test here.

PPO_DEMO_SCREENSHOT=1 also writes docs/projector/{train,runs,compare}_{en,zh}.png; the committed
ones come from the embedded model:
PPO_DEMO_SCREENSHOT=1 PPO_DEMO_TEST_MODEL=smollm2-135m-instruct pytest tests/test_projector_browser.py -m browser

Run: .venv/bin/python -m pytest tests/test_projector_browser.py -q -m browser
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from test_browser import _browser_page, pick, set_number, status, wait_for
from ui_server import app_url  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser
STEPS = int(os.environ.get("PPO_DEMO_SCREENSHOT_RUN_STEPS", "1"))
SHOTS = Path("docs/projector")

# Words that stay as they are on the Chinese page: names of methods, tools, formats and units a
# Chinese course writes in Latin letters too, and the symbols of the formulas in the knobs' help.
ALLOWED_LATIN = {
    "PPO", "PPO-LoRA", "LoRA", "KL", "GAE", "GRPO", "RLOO", "REINFORCE", "EOS", "CSV", "TSV", "JSON", "PEFT",
    "TRL", "veRL", "OpenRLHF", "README", "AdamW", "Ziegler", "CPU", "GPU", "Hub", "Top-p", "top-p", "token",
    "logits", "softmax", "dropout", "rollout", "ratio", "clip", "log", "min", "ref", "zip", "csv", "json",
    "peft", "safetensors", "adapter_config", "adapter_model", "from_pretrained", "PeftModel", "value_head",
    "ppo_lab", "optimizer", "reward", "loss", "batch", "gae", "grpo", "rloo", "reinforce", "c_V", "c_ent",
    "r_t", "KL_t", "E_t", "A_t", "k3_t", "q-1", "k1", "k3", "tiny-random", "smollm2-135m-instruct", "qwen2-0", "instruct",
    "adapter",  # file names: adapter_config.json, adapter.safetensors
    # the loss aggregation modes keep veRL's names; papers and the symbols of their formulas
    "token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm", "DAPO", "Clip-higher",
    "Dr", "Liu", "Yu", "eps", "pi", "pi_ref", "SmolLM2", "quick-CPU", "y_i", "G_0",
}
GREEK_SUBSCRIPT = re.compile(r"[α-ωΑ-Ω]_[A-Za-z]+")  # ε_high, ε_low: symbols, not words
# Where the page shows data rather than its own words: task prompts and answers, model output.
DATA = ["#tasks-table tbody", "#tasks-table td", "#compare-task", "#compare-prompt", "#base-output",
        "#adapted-output", "#rollouts-table tbody", "#rollouts-table td", ".heat-tokens", ".heat-prompt", "#formulas",
        "footer", ".katex", "#model", "#custom-model", "#eval-table tbody", "#eval-table td",
        "#tasks-table .body-cell", "#rollouts-table .body-cell", "#eval-table .body-cell"]
VISIBLE_TEXT = """(skip) => {
  const out = [];
  const root = document.querySelector('.gradio-container') || document.body;
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const visible = el => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
  while (walker.nextNode()) {
    const el = walker.currentNode.parentElement, s = walker.currentNode.textContent.trim();
    if (s && el && visible(el) && !skip.some(sel => el.closest(sel))) out.push(s);
  }
  for (const el of root.querySelectorAll('input[type=text], textarea')) {
    if (el.value.trim() && visible(el) && !skip.some(sel => el.closest(sel))) out.push(el.value.trim());
  }
  return out;
}"""


def _page(app_url, locale: str):
    """A page at the projector's 1400×1000, in ``locale``."""
    yield from _browser_page(app_url, locale, f"--lang={locale}", height=1000)


@pytest.fixture
def page_en(app_url):
    yield from _page(app_url, "en-US")


@pytest.fixture
def page_zh(app_url):
    yield from _page(app_url, "zh-CN")


def shot(page, name: str, tmp_path: Path) -> None:
    target = SHOTS / name if os.environ.get("PPO_DEMO_SCREENSHOT") == "1" else tmp_path / name
    target.parent.mkdir(parents=True, exist_ok=True)
    # The tab's own content from the top of the screen, as a class sees it after the header scrolls away.
    page.evaluate("() => { const bar = document.querySelector('[role=tablist]');"
                  " if (bar) window.scrollTo(0, bar.getBoundingClientRect().top + window.scrollY - 8); }")
    time.sleep(1.5)
    page.screenshot(path=str(target), full_page=False)


def train(page, done_prefix: str) -> None:
    page.click("#train-btn")
    wait_for(lambda: status(page).startswith(done_prefix), 120 + 30 * STEPS, "the end of the run")


def chart_drawn(page, element: str) -> None:
    wait_for(lambda: page.evaluate(f"() => Number(document.querySelector('{element} svg.marks')"
                                   "?.getAttribute('width') || 0)") > 100, 30, f"{element} drawn")


def chart_geometry(page, element: str) -> dict:
    """Screen boxes of a Vega chart's title, its plot area (the y grid), its marks and its y tick labels."""
    return page.evaluate("""(element) => {
      const svg = document.querySelector(element + ' svg.marks');
      const box = el => { const b = el.getBoundingClientRect(); return {top: b.top, bottom: b.bottom}; };
      const title = svg.querySelector('.role-title-text');
      const grid = svg.querySelector('.role-axis-grid');
      const area = svg.querySelector('g.role-scope[class*=pathgroup]');  // the plot area (its clip)
      return {title: title ? box(title) : null, titleText: title ? title.textContent : '',
              grid: grid ? box(grid) : null, area: area ? box(area) : null,
              symbols: [...svg.querySelectorAll('.role-mark.mark-symbol path')].map(box),
              ticks: [...svg.querySelectorAll('.role-axis-label text')].map(t => ({text: t.textContent, ...box(t)})),
              label: [...document.querySelectorAll(element + ' [data-testid="block-label"]')]
                       .filter(l => l.getClientRects().length).length};
    }""", element)


def test_runs_are_named_for_what_they_are_renamed_and_charts_keep_titles_off_the_data(page_en, tmp_path):
    page = page_en
    wait_for(lambda: "Train starts run 1" in page.locator("#next-press").inner_text(), 30, "the page's load event")
    page.get_by_role("tab", name="2 · Knobs").click()
    set_number(page, "steps", STEPS)
    train(page, "Done")
    page.click("#reset-btn")
    wait_for(lambda: "kept" in status(page), 20, "the reset")
    page.get_by_role("tab", name="2 · Knobs").click()
    page.locator("#knob-advantage-estimator").get_by_text("GRPO (group mean)").click()
    set_number(page, "group-size", 2)
    wait_for(lambda: "Train starts run 2" in page.locator("#next-press").inner_text(), 10, "the next-press line")
    train(page, "Done")

    # 2. The Train tab's charts: each title sits above its plot area, no block label floats over
    # the data, and on the success chart the 100 % line lies inside the plot area, under the title.
    page.get_by_role("tab", name="3 · Train").click()
    for element in ("#reward-plot", "#success-plot", "#kl-plot", "#policy-plot", "#health-plot"):
        chart_drawn(page, element)
        g = chart_geometry(page, element)
        assert g["label"] == 0, f"{element}: a block label over the chart"
        assert g["title"] and g["grid"] and g["area"], element
        assert g["title"]["bottom"] <= g["area"]["top"], f"{element}: title over the plot area"
        for symbol in g["symbols"]:  # each point's centre in the plot area, no point under the title
            centre = (symbol["top"] + symbol["bottom"]) / 2
            assert g["area"]["top"] - 1 <= centre <= g["area"]["bottom"] + 1, element
            assert symbol["top"] >= g["title"]["bottom"], element
    success = chart_geometry(page, "#success-plot")
    # The 100 % line (the top grid line) and its label are inside the plot area, under the title.
    assert success["area"]["top"] < success["grid"]["top"] <= success["area"]["bottom"]
    hundred = next(t for t in success["ticks"] if t["text"] == "100%")
    assert success["area"]["top"] <= (hundred["top"] + hundred["bottom"]) / 2 <= success["area"]["bottom"]
    assert hundred["top"] >= success["title"]["bottom"] and success["titleText"] == "Success rate"
    # One quantity per axis: KL per token on the left, KL per response on the right.
    kl_titles = [t.text_content() for t in page.locator("#kl-plot .role-axis-title text").all()]
    assert "KL per response" in kl_titles and any(title.startswith("KL per token") for title in kl_titles)
    shot(page, "train_en.png", tmp_path)

    # 1. The legend names the GRPO run by its estimator; a rename follows everywhere.
    page.get_by_role("tab", name="4 · Runs").click()
    chart_drawn(page, "#runs-plot")
    grpo = "run 2 · Advantage estimator GRPO (group mean), Group size G 2"
    wait_for(lambda: grpo in page.locator("#runs-plot").inner_text(), 20, "the GRPO run in the legend")
    assert grpo in page.locator("#runs-table").inner_text()
    pick(page, "#runs-pick", grpo)
    page.fill("#runs-title input", "GRPO")
    page.click("#runs-rename")
    wait_for(lambda: "run 2 · GRPO" in page.locator("#runs-plot").inner_text(), 20, "the new name in the legend")
    assert status(page) == "Renamed: run 2 · GRPO."
    assert "run 2 · GRPO (current)" in page.locator("#runs-table").inner_text()
    table = page.locator("#runs-table").inner_text()
    assert "reward (mean of last 3)" in table and "%" in table  # success in %, the window said
    shot(page, "runs_en.png", tmp_path)


def test_compare_follows_the_tasks_after_an_upload(page_en, tmp_path):
    page = page_en
    page.get_by_role("tab", name="5 · Compare").click()
    wait_for(lambda: page.input_value("#compare-task input") != "", 20, "a picked task")
    assert page.input_value("#compare-task input") == page.input_value("#compare-prompt textarea")
    csv = tmp_path / "tasks.csv"
    csv.write_text("prompt,expected\nSay only the word: yes,yes\nSay only the word: no,no\n", encoding="utf-8")
    page.get_by_role("tab", name="1 · Tasks & reward").click()
    with page.expect_file_chooser() as chooser:
        page.click("#upload-csv")
    chooser.value.set_files(str(csv))
    wait_for(lambda: "Say only the word: yes" in page.locator("#tasks-table").inner_text(), 20, "the uploaded tasks")
    page.get_by_role("tab", name="5 · Compare").click()
    wait_for(lambda: page.input_value("#compare-task input") == "Say only the word: yes", 20, "the picker")
    assert page.input_value("#compare-prompt textarea") == "Say only the word: yes"  # the gone task went
    page.locator("#compare-task input").click()
    options = [o.inner_text().split("\n")[-1].strip() for o in page.get_by_role("option").all()]
    assert options == ["Say only the word: yes", "Say only the word: no"]
    page.keyboard.press("Escape")
    page.click("#compare-btn")
    wait_for(lambda: page.input_value("#base-output textarea") and page.input_value("#adapted-output textarea"),
             60, "both answers")
    shot(page, "compare_en.png", tmp_path)


def untranslated(texts: list[str], data: tuple[str, ...] = ()) -> list[str]:
    """The strings with an English word (3+ letters) not on the allowlist, once the ``data`` (task
    prompts and answers) are taken out; a model's undecodable output (U+FFFD) is data too."""
    bad = []
    for text in texts:
        for item in sorted(data, key=len, reverse=True):
            text = text.replace(item, "")
        if "\ufffd" in text:
            continue
        text = GREEK_SUBSCRIPT.sub("", text)
        words = re.findall(r"[A-Za-z][A-Za-z0-9_'\-]{2,}", text)
        if any(w not in ALLOWED_LATIN and w.rstrip("-") not in ALLOWED_LATIN for w in words):
            bad.append(text)
    return bad


def test_untranslated_finder_can_fail():
    assert untranslated(["成功率", "LoRA r=8", "每 token KL"]) == []
    assert untranslated(["LoRA r=8 on 210 layers", "grad_norm", "english"]) == [
        "LoRA r=8 on 210 layers", "grad_norm", "english"]


def test_the_chinese_page_says_every_word_in_chinese(page_zh, tmp_path):
    """Every tab, every section opened, after a one-step run: the status, the next-press line,
    legends, tables, the metric picker's options, knob options and presets hold no English
    (beyond the allowlist of method names, units and formula symbols)."""
    page = page_zh
    wait_for(lambda: "基座模型" in status(page), 30, "the Chinese status line")
    # 7. Compare's picker is filled from the first load, in Chinese too.
    page.get_by_role("tab", name="5 · 对比").click()
    wait_for(lambda: page.input_value("#compare-task input") != "", 20, "a picked task")
    assert page.input_value("#compare-task input") == page.input_value("#compare-prompt textarea")
    page.get_by_role("tab", name="2 · 参数").click()
    set_number(page, "steps", STEPS)
    wait_for(lambda: f"{STEPS} 步" in page.locator("#next-press").inner_text(), 10, "the next-press line")
    train(page, "完成")
    assert status(page).startswith(f"完成：{STEPS} 步") and f"已训练 {STEPS} 步" in status(page)

    seen: list[str] = []
    for tab in page.get_by_role("tab").all():
        tab.click()
        time.sleep(1.0)
        for closed in page.locator(".label-wrap:not(.open)").all():
            try:
                closed.click(timeout=1500)
            except Exception:  # noqa: BLE001  (a folded section of another tab)
                pass
        time.sleep(0.5)
        seen += page.evaluate(VISIBLE_TEXT, DATA)
    page.get_by_role("tab", name="4 · 运行").click()
    page.locator("#runs-metric input").click()
    metric_names = [o.inner_text().split("\n")[-1].strip() for o in page.get_by_role("option").all()]
    page.keyboard.press("Escape")
    assert len(metric_names) >= 20 and "梯度范数（裁剪前）" in metric_names
    page.get_by_role("tab", name="1 · 任务与奖励").click()
    assert page.input_value("#task-preset input") == "英文问答"  # the preset's name, not "english"
    from ppo_demo.tasks import TASK_PRESETS

    tasks = tuple(x for task in TASK_PRESETS["english"] for x in (task.prompt, task.expected))
    bad = untranslated(seen + metric_names, tasks)
    assert bad == [], "\n".join(sorted(set(bad)))

    page.get_by_role("tab", name="3 · 训练").click()
    chart_drawn(page, "#reward-plot")
    shot(page, "train_zh.png", tmp_path)
    page.get_by_role("tab", name="4 · 运行").click()
    chart_drawn(page, "#runs-plot")
    shot(page, "runs_zh.png", tmp_path)
    page.get_by_role("tab", name="5 · 对比").click()
    page.click("#compare-btn")
    wait_for(lambda: page.input_value("#base-output textarea") and page.input_value("#adapted-output textarea"),
             60, "both answers")
    shot(page, "compare_zh.png", tmp_path)
