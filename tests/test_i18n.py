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


def test_core_errors_speak_the_visitors_language(speaking):
    """mnist_core's messages are made in the language current when they are raised (the visitor's, in the app)."""
    import numpy as np

    from mnist_core.finetune import FinetuneError, check_drawings
    from mnist_core.store import InvalidModelName, validate_name

    with pytest.raises(InvalidModelName, match="is not a valid model name"):
        validate_name("two words")
    speaking("zh_Hans")
    with pytest.raises(InvalidModelName, match="不是有效的模型名称"):
        validate_name("two words")
    with pytest.raises(FinetuneError, match="微调至少需要 10 个手写数字"):
        check_drawings(np.zeros((3, 28, 28), np.uint8), np.zeros(3, np.uint8))
