"""The Lessons tab in headless Chromium: pick a lesson, run it end to end, read its verdict
(English and Chinese). With PPO_DEMO_SCREENSHOT=1 the verdicts are saved to docs/lessons_en.png
and docs/lessons_zh.png (PPO_DEMO_TEST_MODEL=smollm2-135m-instruct for the embedded model).

Run: .venv/bin/python -m pytest tests/test_lessons_browser.py -q -m browser
"""

from __future__ import annotations

import os
import time

import pytest

from test_browser import page, page_zh, screenshot_path, wait_for  # noqa: F401  (fixtures)
from ui_server import app_url  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser
LESSON = os.environ.get("PPO_DEMO_SCREENSHOT_LESSON", "dropout")


def run_lesson(page, tab: str, question: str, seen: tuple[str, str]) -> str:
    page.get_by_role("tab", name=tab).click()
    page.locator("#lesson-picker input").click()
    page.get_by_role("option", name=question).click()
    wait_for(lambda: page.locator("#lesson-intro").inner_text().strip().startswith(question.rstrip("？?")[:4]),
             20, "the lesson's explanation")
    page.click("#lesson-run")
    wait_for(lambda: any(s in page.locator("#lesson-verdict").inner_text() for s in seen), 600, "the verdict")
    return page.locator("#lesson-verdict").inner_text()


def test_a_lesson_runs_end_to_end_and_shows_its_verdict(page, tmp_path):
    from ppo_demo.lessons import LESSONS

    lesson = LESSONS[LESSON]
    verdict = run_lesson(page, "Lessons", lesson.question("en"),
                         ("Verdict: the expected signal was seen.", "Verdict: the expected signal was NOT seen"))
    assert "Expected:" in verdict and "Measured in these runs:" in verdict
    for arm in lesson.arms:
        assert arm.label("en") in verdict
    assert page.locator("#lesson-download").get_attribute("href") or page.locator("#lesson-download a").count() \
        or page.locator("#lesson-download").is_enabled()
    page.get_by_role("tab", name="4 · Runs").click()
    wait_for(lambda: len(page.locator("#runs-table").inner_text().splitlines()) >= len(lesson.arms) + 1, 30,
             "the lesson's runs in the table")
    page.get_by_role("tab", name="Lessons").click()
    time.sleep(1.0)
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.locator("#lesson-verdict").scroll_into_view_if_needed()
    page.screenshot(path=str(screenshot_path("lessons_en.png", tmp_path)), full_page=False)


def test_the_verdict_follows_the_pages_language(page_zh, tmp_path):
    from ppo_demo.lessons import LESSONS

    lesson = LESSONS[LESSON]
    verdict = run_lesson(page_zh, "课程", lesson.question("zh"),
                         ("结论：看到了预期的信号。", "结论：这几次运行中没有看到预期的信号。"))
    assert "预期：" in verdict and "本次运行测得：" in verdict
    time.sleep(1.0)
    page_zh.set_viewport_size({"width": 1400, "height": 1000})
    page_zh.locator("#lesson-verdict").scroll_into_view_if_needed()
    page_zh.screenshot(path=str(screenshot_path("lessons_zh.png", tmp_path)), full_page=False)
