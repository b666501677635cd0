"""Every page in English and in Chinese through AppTest (issue 21): no exception, and Chinese text where it is due.

The fixtures and helpers are test_pages.py's: `app` (a new session on a scratch model store), `open_page`.
"""

from __future__ import annotations

import re

import pytest
from streamlit.testing.v1 import AppTest
from job_runners import QuietRunner
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


# --- messages made away from the page (the core's refusals, a worker's failure) in the reader's language ----------


def in_language(at: AppTest, language: str) -> AppTest:
    return in_chinese(at) if language == "zh_Hans" else at


def by_key(widgets, key: str):
    [widget] = [widget for widget in widgets if widget.key == key]
    return widget


def start_button(at: AppTest):
    [button] = [button for button in at.main.button if button.label in ("Start training", "开始训练")]
    return button


@pytest.mark.parametrize(("language", "refusal"), [
    ("en", "The file is not a .keras model: it is not a zip archive."),
    ("zh_Hans", "这个文件不是 .keras 模型：它不是 zip 压缩包。"),
])
def test_a_refused_upload_is_explained_in_the_visitors_language(app, language, refusal):
    at = in_language(open_page(app(model="cnn"), "models"), language)
    by_key(at.file_uploader, "model_upload").set_value(("model.keras", b"not a zip at all",
                                                        "application/octet-stream"))
    at.run()
    by_key(at.button, "model_upload_go").click()
    at.run()
    assert_ran_cleanly(at)
    assert [error.value for error in at.main.error] == [refusal]


@pytest.mark.parametrize(("language", "refusal"), [
    ("en", "The model store is full ({count} models): ask an admin to make room, or delete one of yours."),
    ("zh_Hans", "模型库已满（{count} 个模型）：请管理员腾出空间，或删除一个你自己的模型。"),
])
def test_the_queues_refusal_is_explained_in_the_visitors_language(app, store, language, refusal):
    import dataclasses

    import ui
    from mnist_core.store import list_models

    at = in_language(open_page(app(model="cnn"), "train"), language)
    queue = ui._scheduler(str(store))
    queue.limits = dataclasses.replace(queue.limits, store_max_models=1)  # the shipped models fill it already
    start_button(at).click()
    at.run()
    assert_ran_cleanly(at)
    assert [toast.value for toast in at.toast] == [refusal.format(count=len(list_models(store)))]
    assert queue.queued() == [] and queue.running() == []


class KilledWorkerRunner(QuietRunner):
    """A Runner whose worker is killed (as the kernel's out-of-memory killer does) as soon as it gets a job: the job
    ends FAILED with LocalRunner's own account of it, made where no visitor's language is known."""

    def __init__(self, replaced):
        self.replaced = replaced

    def run(self, job, on_end):
        import signal

        from mnist_core.jobs import JobOutcome, JobStatus
        from mnist_core.jobs.local import describe_exit

        job.end(JobOutcome(JobStatus.FAILED, error=describe_exit(-signal.SIGKILL)))
        on_end(job)
        return self

    def stop(self):
        pass

    def cancel(self):
        pass

    def describe(self):
        return "a runner whose workers are killed"

    def shutdown(self):
        self.replaced.shutdown()  # the real runner may have started a worker when the Train page opened


def test_a_failed_job_is_explained_to_each_reader_in_their_own_language(app, store):
    import ui

    owner = open_page(app(model="cnn"), "train")
    queue = ui._scheduler(str(store))
    queue.runner = KilledWorkerRunner(queue.runner)
    start_button(owner).click()
    owner.run()
    assert_ran_cleanly(owner)
    failed = ("Training failed: The training worker was killed (most likely it ran out of memory): nothing was saved. "
              "Fewer training images or a smaller batch need less memory.")
    assert failed in [error.value for error in owner.main.error]
    # The same job, read in Chinese: the message was kept as template and values, not as English text.
    in_chinese(owner)
    assert ("训练失败：训练进程被终止了（很可能是内存不足）：什么都没有保存。减少训练集图片或减小批量大小可以少用内存。"
            in [error.value for error in owner.main.error])
