"""The two languages: the catalog covers every visible string, the language rules, and Babel's formatting.

The catalog tests extract the marked strings with Babel (babel.cfg, as `python -m mnist_core catalog` does) and
compare them with locales/zh_Hans/LC_MESSAGES/messages.po; the literal-text check holds app.py, ui.py, pages/ and
widgets/ to marking every string they show.
"""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest

from mnist_core import catalog, i18n

ROOT = Path(__file__).resolve().parents[1]

# Files whose every visible string goes through the catalog (the AST check below holds them to it): every file a
# visitor reads text from. (mnist_core's modules mark theirs with _ or N_; the catalog tests cover those.)
TRANSLATED_FILES = ["app.py", "ui.py", *sorted(str(path.relative_to(ROOT)) for path in (ROOT / "pages").glob("*.py")),
                    *sorted(str(path.relative_to(ROOT)) for path in (ROOT / "widgets").glob("*.py"))]

# Literal text allowed on the page as it is: the app's name, the picker's label (in both languages on purpose),
UNTRANSLATED_ALLOWED = {"MNIST Lab", "Language · 语言", ".keras"}  # and a file format

# Streamlit calls whose first argument (or these keywords) a visitor reads.
SHOWN_CALLS = {
    "title", "header", "subheader", "caption", "markdown", "write", "info", "warning", "error", "success", "toast",
    "button", "download_button", "metric", "selectbox", "multiselect", "radio", "select_slider", "slider",
    "number_input", "text_input", "text_area", "checkbox", "toggle", "file_uploader", "expander", "spinner",
    "progress", "page_link", "tabs", "form_submit_button", "segmented_control", "pills", "popover", "status",
}
SHOWN_KEYWORDS = {"label", "help", "placeholder", "caption", "text", "title"}


@pytest.fixture(scope="module")
def extracted():
    return catalog.extract()


@pytest.fixture(scope="module")
def chinese():
    return catalog.read_catalog(i18n.CHINESE)


def _message_key(message) -> str:
    return message.id if isinstance(message.id, str) else message.id[0]


def test_every_extracted_string_has_a_chinese_translation(extracted, chinese):
    missing = []
    for message in extracted:
        if not message.id:
            continue
        translated = chinese.get(message.id, context=message.context)
        strings = () if translated is None else (
            translated.string if isinstance(translated.string, tuple) else (translated.string,))
        if translated is None or not all(strings):
            where = ", ".join(sorted({path for path, _line in message.locations}))
            missing.append(f"{_message_key(message)!r} ({where})")
    assert not missing, ("strings without a Chinese translation (run `python -m mnist_core catalog`, then translate "
                         "them in locales/zh_Hans/LC_MESSAGES/messages.po):\n" + "\n".join(missing))


def test_no_fuzzy_or_obsolete_entries(extracted, chinese):
    fuzzy = [_message_key(message) for message in chinese if message.id and message.fuzzy]
    stale = [_message_key(message) for message in chinese
             if message.id and extracted.get(message.id, context=message.context) is None]
    assert not fuzzy, f"fuzzy (changed in the code, translation to check): {fuzzy}"
    assert not stale, f"in the catalog but no longer in the code (run `python -m mnist_core catalog`): {stale}"
    assert not chinese.obsolete, f"obsolete entries: {list(chinese.obsolete)}"


def _placeholders(text: str) -> set[str]:
    return {field for _literal, field, _spec, _conversion in string.Formatter().parse(text) if field is not None}


def test_translations_keep_the_placeholders(chinese):
    broken = []
    for message in chinese:
        if not message.id:
            continue
        sources = message.id if isinstance(message.id, tuple) else (message.id,)
        targets = message.string if isinstance(message.string, tuple) else (message.string,)
        expected = _placeholders(sources[-1])
        for target in targets:
            if target and _placeholders(target) != expected:
                broken.append(f"{sources[0]!r} -> {target!r}")
    assert not broken, "translations whose {placeholders} differ from the English:\n" + "\n".join(broken)


def _shown_literals(path: Path, root: Path = ROOT) -> list[str]:
    """Text literals (plain or f-strings) given straight to a Streamlit call that shows them, in one file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in SHOWN_CALLS):
            continue
        arguments = list(node.args[:1]) + [keyword.value for keyword in node.keywords if keyword.arg in SHOWN_KEYWORDS]
        for argument in arguments:
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                text = argument.value
            elif isinstance(argument, ast.JoinedStr):
                text = "".join(part.value for part in argument.values if isinstance(part, ast.Constant))
            else:
                continue
            if re.search(r"[A-Za-z]{2}", text) and text not in UNTRANSLATED_ALLOWED:
                found.append(f"{path.relative_to(root)}:{node.lineno}: {text[:70]!r}")
    return found


@pytest.mark.parametrize("relative", TRANSLATED_FILES)
def test_translated_files_show_no_literal_text(relative):
    found = _shown_literals(ROOT / relative)
    assert not found, "visible text not marked for translation (wrap it in _()):\n" + "\n".join(found)


def test_the_literal_check_catches_unmarked_text(tmp_path):
    page = tmp_path / "page.py"
    page.write_text('import streamlit as st\nst.title(_("Fine"))\nst.caption(f"{n} images")\n'
                    'st.button("Go", help=_("ok"))\nst.metric(_("A"), 3, help="grey levels")\n', encoding="utf-8")
    found = _shown_literals(page, root=tmp_path)
    assert [line.split(": ", 1)[1] for line in found] == ["' images'", "'Go'", "'grey levels'"]


# --- the language rules and the formatting -------------------------------------------------------------------


@pytest.mark.parametrize("locale, language", [
    ("zh-CN", "zh_Hans"), ("zh-TW", "zh_Hans"), ("zh", "zh_Hans"), ("ZH_hans_CN", "zh_Hans"),
    ("en-US", "en"), ("de-DE", "en"), ("", "en"), (None, "en"), ("zhx", "en"),
])
def test_browser_locale_picks_the_language(locale, language):
    assert i18n.language_for_locale(locale) == language


def test_only_the_apps_languages_pass_the_check():
    assert i18n.checked_language("zh_Hans") == "zh_Hans"
    assert i18n.checked_language("en") == "en"
    for value in ("fr", "zh_Hans; Path=/", "", None, 3):
        assert i18n.checked_language(value) is None


@pytest.fixture
def speaking():
    """Make the core answer in a language for one test, as ui.py's language source does for a visitor; the source
    in place before (ui.py's, once a page test has imported it) is put back after."""
    previous = i18n.use_language_source(None)

    def use(language: str):
        i18n.use_language_source(lambda: language)

    yield use
    i18n.use_language_source(previous)


def test_gettext_answers_in_the_current_language(speaking):
    assert i18n.gettext("Dataset") == "Dataset"
    speaking("zh_Hans")
    assert i18n.gettext("Dataset") == "数据集"
    assert i18n.gettext("a sentence nobody marked") == "a sentence nobody marked"
    speaking("en")
    assert i18n.gettext("Dataset") == "Dataset"


def test_a_broken_language_source_means_english(speaking):
    def broken():
        raise RuntimeError("no session")

    i18n.use_language_source(broken)
    assert i18n.current_language() == "en"
    assert i18n.gettext("Dataset") == "Dataset"


def test_numbers_percentages_and_durations_follow_the_language():
    assert i18n.format_number(60000, language="en") == "60,000"
    assert i18n.format_number(2.6666, 1, language="zh_Hans") == "2.7"
    assert i18n.format_percent(0.9922, language="en") == "99.22%"
    assert i18n.format_percent(0.5, 0, language="zh_Hans") == "50%"
    assert i18n.format_duration(125, language="en") == "2 minutes"
    assert i18n.format_duration(125, language="zh_Hans") == "2分钟"
    assert i18n.format_duration(float("nan"), language="en") == "n/a"
    assert i18n.format_percent(None, language="en") == "n/a"


def test_core_errors_stay_english_and_render_in_the_visitors_language(speaking):
    """mnist_core's errors carry a Message: str() is English (logs, the CLI) whoever raised it; render() is the
    language of whoever reads it."""
    import numpy as np

    from mnist_core.finetune import FinetuneError, check_drawings
    from mnist_core.store import InvalidModelName, validate_name

    speaking("zh_Hans")  # raised while a Chinese visitor is answered: still English in the log
    with pytest.raises(InvalidModelName, match="is not a valid model name") as refused:
        validate_name("two words")
    assert "不是有效的模型名称" in i18n.render(refused.value)
    with pytest.raises(FinetuneError) as too_few:
        check_drawings(np.zeros((3, 28, 28), np.uint8), np.zeros(3, np.uint8))
    assert str(too_few.value) == "Fine-tuning needs at least 10 drawings; this collection has 3."
    assert "微调至少需要 10 个手写数字" in i18n.render(too_few.value)
    speaking("en")
    assert i18n.render(too_few.value) == "Fine-tuning needs at least 10 drawings; this collection has 3."


def test_a_message_keeps_its_values_and_renders_nested_and_plural(speaking):
    inner = i18n.M_("The training queue is full ({count} waiting): try again when some have started.", count=4)
    outer = i18n.M_("The training could not be started: {error}", error=inner)
    assert str(outer) == ("The training could not be started: The training queue is full (4 waiting): try again "
                          "when some have started.")
    assert outer.render("zh_Hans") == "无法开始训练：训练队列已满（4 个在排队）：等其中一些开始后再试。"
    limit = i18n.Mn_("You have started {count} training in the last hour, this server's limit: try again in about "
                     "{minutes} min.", "You have started {count} trainings in the last hour, this server's limit: "
                     "try again in about {minutes} min.", 1, minutes=7)
    assert str(limit).startswith("You have started 1 training in the last hour")
    assert "1 次训练" in limit.render("zh_Hans") and "7 分钟" in limit.render("zh_Hans")
    speaking("zh_Hans")
    assert i18n.render(outer).startswith("无法开始训练")
    assert i18n.render(ValueError("a library's own words")) == "a library's own words"  # not ours: as it is
    assert i18n.render(None) == ""


def test_a_message_crosses_a_process_boundary_as_template_and_values():
    """A worker's outcome travels pickled (a pipe, a Ray task) and is rendered by each reader in their language."""
    import pickle

    from mnist_core.jobs import JobOutcome, JobStatus
    from mnist_core.jobs.local import describe_exit

    outcome = JobOutcome(JobStatus.FAILED, error=describe_exit(-9))
    carried = pickle.loads(pickle.dumps(outcome))
    assert carried == outcome
    assert str(carried.error).startswith("The training worker was killed (most likely it ran out of memory)")
    assert carried.error.render("zh_Hans").startswith("训练进程被终止了（很可能是内存不足）")


def test_a_message_crosses_a_text_channel_as_json():
    """The conversion worker reports through its stderr: one JSON line, nested messages and plurals kept."""
    inner = i18n.M_("it is not valid JSON ({problem}, line {line}).", problem="Expecting value", line=3)
    message = i18n.M_("The metadata of {name} is damaged: {reason}", name="'odd'", reason=inner)
    line = message.to_json()
    assert "\n" not in line and i18n.Message.from_json(line) == message
    assert i18n.Message.from_json(line).render("zh_Hans") == "'odd' 的元数据已损坏：它不是有效的 JSON（Expecting value，第 3 行）。"
    plural = i18n.Mn_("You keep {count} model on this server, its limit per person: delete it on the Models page "
                      "(download it first if you want to keep it) to train another.",
                      "You keep {count} models on this server, its limit per person: delete one on the Models page "
                      "(download it first if you want to keep it) to train another.", 2)
    assert i18n.Message.from_json(plural.to_json()) == plural
    with pytest.raises(ValueError):
        i18n.Message.from_json('{"no": "template"}')


def test_extraction_finds_the_message_markers(extracted):
    """babel.cfg's keywords: M_ and Mn_ (with its plural) reach the catalog like _ and ngettext."""
    assert extracted.get("The training queue is full ({count} waiting): try again when some have started.")
    plural = extracted.get("You have started {count} training in the last hour, this server's limit: try again in "
                           "about {minutes} min.")
    assert plural is not None and isinstance(plural.id, tuple)
    assert extracted.get("The model has no layers.")  # model_upload.py
    assert extracted.get("dynamic-range int8")  # export.py's format titles


# Errors a visitor reads, and the files that raise them: each must carry a Message (M_), never English text that no
# catalog can match once formatted.
VISITOR_ERRORS = {
    "JobRefused", "NotEnoughMemoryError", "QueueFullError", "AlreadyQueuedError", "NotYoursError", "QuotaError",
    "UploadRefused", "StoreError", "ModelNotFound", "ProtectedModelError", "ModelExistsError", "NotYourModelError",
    "BrokenModelError", "InvalidModelName", "ConfigError", "DatasetError", "FiltersError", "FinetuneError",
    "HandwritingError", "InvalidInput", "CollectionNotFound", "NameTakenError", "NotYourCollectionError",
    "CollectionFullError", "StoreFileError",
}
MESSAGE_FILES = ["mnist_core/jobs/job.py", "mnist_core/jobs/queue.py", "mnist_core/jobs/local.py",
                 "mnist_core/jobs/ray.py", "mnist_core/jobs/work.py", "mnist_core/jobs/worker.py",
                 "mnist_core/model_upload.py", "mnist_core/store.py", "mnist_core/training.py", "mnist_core/data.py",
                 "mnist_core/filters.py", "mnist_core/finetune.py", "mnist_core/explainer.py", "mnist_core/export.py",
                 "mnist_core/conversion.py",
                 "mnist_core/handwriting.py"]


def _is_text(node) -> bool:
    """A literal sentence: a string, an f-string, or "...".format(...)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return bool(re.search(r"[A-Za-z]{2}", node.value))
    if isinstance(node, ast.JoinedStr):
        return True
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format"
            and isinstance(node.func.value, (ast.Constant, ast.Call)))


def _english_messages(path: Path, root: Path = ROOT) -> list[str]:
    """Visitor errors raised with text, JobOutcomes and Failed answers whose error is text, in one file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
        shown = []
        if name in VISITOR_ERRORS or name == "Failed":
            shown = node.args[:1]
        elif name == "JobOutcome":
            shown = [keyword.value for keyword in node.keywords if keyword.arg == "error"]
        if any(_is_text(argument) for argument in shown):
            found.append(f"{path.relative_to(root)}:{node.lineno}: {name}(...)")
    return found


@pytest.mark.parametrize("relative", MESSAGE_FILES)
def test_visitor_errors_carry_messages_not_english_text(relative):
    found = _english_messages(ROOT / relative)
    assert not found, "a visitor reads these: give them M_(template, **values) (mnist_core/i18n.py):\n" + "\n".join(found)


def test_the_message_check_catches_english_text(tmp_path):
    module = tmp_path / "module.py"
    module.write_text('raise QuotaError(f"at most {n}")\nraise UploadRefused(M_("fine"))\n'
                      'x = JobOutcome(s, error="Lost.")\ny = Failed(_("gone {n}").format(n=1))\n'
                      'raise ValueError("a programming error")\n', encoding="utf-8")
    found = _english_messages(module, root=tmp_path)
    assert [line.split(": ", 1)[1] for line in found] == ["QuotaError(...)", "JobOutcome(...)", "Failed(...)"]
