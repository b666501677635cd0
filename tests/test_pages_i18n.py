"""Every page in English and in Chinese through AppTest (issue 21): no exception, and Chinese text where it is due.

The fixtures and helpers are test_pages.py's: `app` (a new session on a scratch model store), `open_page`.
"""

from __future__ import annotations

import re

import pytest
from streamlit.testing.v1 import AppTest
from test_pages import APP, PAGE_PATHS, RUN_TIMEOUT, app, assert_ran_cleanly, open_page, store  # noqa: F401

CHINESE_TITLES = {"home": "MNIST Lab", "dataset": "数据集", "train": "训练", "draw": "手写", "models": "模型",
                  "my_digits": "我的数字"}
ENGLISH_TITLES = {"home": "MNIST Lab", "dataset": "Dataset", "train": "Train", "draw": "Draw", "models": "Models",
                  "my_digits": "My digits"}
TRANSLATED_PAGES = list(CHINESE_TITLES)
HAN = re.compile(r"[\u4e00-\u9fff]")


def in_chinese(at: AppTest) -> AppTest:
    """Pick 简体中文 in the sidebar's language picker, as a visitor does."""
    at.sidebar.selectbox(key="language_picker").set_value("zh_Hans")
    at.run()
    assert_ran_cleanly(at)
    return at


def shown_text(at: AppTest) -> list[str]:
    """What the main area says in words: titles, headings, text, captions, alerts and widget labels."""
    found = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "info", "warning", "error", "success"):
        found += [str(element.value) for element in at.main.get(kind)]
    for kind in ("button", "selectbox", "radio", "multiselect", "number_input", "text_input", "checkbox", "toggle",
                 "select_slider", "slider", "metric"):
        found += [str(element.label) for element in at.main.get(kind) if getattr(element, "label", None)]
    return [text for text in found if text.strip()]


@pytest.mark.parametrize("page", list(PAGE_PATHS))
def test_every_page_runs_in_english_and_in_chinese(app, page):
    at = open_page(app(model="cnn"), page)
    assert at.title[0].value == ENGLISH_TITLES[page]
    open_page(in_chinese(at), page)
    assert at.sidebar.selectbox(key="active_model").label == "当前模型"
    if page in TRANSLATED_PAGES:
        assert at.title[0].value == CHINESE_TITLES[page]


@pytest.mark.parametrize("page", TRANSLATED_PAGES)
def test_translated_pages_show_no_english_sentences(app, page):
    at = open_page(in_chinese(app(model="cnn")), page)
    shown = shown_text(at)
    assert any(HAN.search(text) for text in shown)
    # English left in a Chinese page: a run of three English words (names of models, libraries and code excepted).
    english = [text for text in shown
               if re.search(r"\b[A-Za-z]{2,}\s+[a-z]{2,}\s+[a-z]{2,}\b", re.sub(r"`[^`]*`", "", text))]
    assert not english, f"English on the Chinese {page} page: {english}"


def test_a_chinese_browser_gets_chinese_and_the_choice_stays_across_pages(store):
    at = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT)
    at.context = {"locale": "zh-CN"}
    at.run()
    assert_ran_cleanly(at)
    assert at.sidebar.selectbox(key="language_picker").value == "zh_Hans"
    assert at.subheader[0].value == "从这里开始"
    at.sidebar.selectbox(key="language_picker").set_value("en")
    at.run()
    open_page(at, "dataset")
    assert at.title[0].value == "Dataset", "the visitor's pick wins over the browser's locale, on every page"


def test_an_english_browser_gets_english(store):
    at = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT)
    at.context = {"locale": "en-GB"}
    at.run()
    assert_ran_cleanly(at)
    assert at.sidebar.selectbox(key="language_picker").value == "en"
    assert at.subheader[0].value == "Where to go"


def test_a_drawing_is_answered_in_chinese_with_the_canvas_in_chinese(app, monkeypatch):
    from test_pages import forge_canvas, texts
    from test_preprocess import drawn_canvas_url

    at = open_page(in_chinese(app(model="cnn")), "draw")
    sent = {}
    import widgets.digit_canvas

    def canvas(**options):
        sent.update(options["data"])
        return {"drawing": {"png": one, "strokes": [{"width": 20, "points": [[140, 50], [140, 230]]}]}}

    one = drawn_canvas_url(draw=lambda pen: pen.line([(140, 50), (140, 230)], fill=(255, 255, 255, 255), width=20))
    monkeypatch.setattr(widgets.digit_canvas, "_component", canvas)
    at.run()
    assert_ran_cleanly(at)
    assert "### 预测结果：1" in texts(at.markdown)
    assert sent["labels"]["undo"]["text"] == "撤销" and sent["labels"]["clear"]["text"] == "清空"
    captions = [caption for image in at.image for caption in image.captions]
    assert captions[0] == "1. 笔迹" and "模型看到的图像" in captions[4]
    assert [element.value for element in at.subheader][:2] == ["网络看到的图像", "它为什么这么认为"]
    # a small dot: the hint above the answer, in Chinese, with the note that confidence is not correctness
    dot = drawn_canvas_url(draw=lambda pen: pen.ellipse([130, 130, 140, 140], fill=(255, 255, 255, 255)))
    forge_canvas(monkeypatch, {"png": dot, "strokes": [{"width": 20, "points": [[135, 135]]}]})
    at.run()
    assert_ran_cleanly(at)
    [warning] = texts(at.warning)
    assert "写得太小了" in warning and "置信度不等于正确率" in warning
