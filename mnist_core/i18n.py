"""The app's two languages: English (the source strings) and Simplified Chinese, with gettext catalogs and Babel.

The catalog is `locales/zh_Hans/LC_MESSAGES/messages.po` in the repository, the only file a translator edits.
It is compiled here, in memory, the first time a process asks for Chinese (Babel's .po reader and .mo writer), so
there is no .mo file to forget to rebuild and nothing to run after an edit but a restart. Fuzzy entries are not
compiled (they show in English); tests/test_i18n.py fails on them, on missing and on obsolete entries.

Which language is current: the core does not know who is asking (it never imports Streamlit), so `gettext` asks a
*language source*, a function the app installs once (`use_language_source`; ui.py's reads the visitor's session).
Without one (the CLI, tests, worker processes) the language is English.

Two kinds of text, two ways, and no third:
- Text made for the page being drawn (chart titles, a caption, the models' agreement on the Draw page) is
  translated where it is made, with `gettext` (`_`), in the visitor's language: it is shown at once and never kept.
- Every message the core makes for later showing (errors, refusals, how a job ended, a worker's failure) is a
  `Message`: its English template, marked with `M_` (or `Mn_` with a plural) so that extraction finds it, and its
  values. An error carries it as its one argument (`raise QuotaError(M_("... {count} ...", count=3))`); a job's
  outcome carries it across the pipe or the Ray task as plain picklable data, the conversion worker as a JSON line
  on its stderr (`to_json`/`from_json`). The page boundary renders it with `render(...)` in the language of the
  visitor looking at it. Why: a message with values in it cannot be translated after it was formatted (no catalog
  matches "Epochs must be 1 to 50"); one made in a worker process does not know who will read it, and the same job,
  or a cached error, is read by several visitors in different languages; and `str(error)` stays English, for the
  server's log and the CLI, wherever the error was raised. tests/test_i18n.py holds the core's visitor-facing
  errors to it.
preprocess.py's fixed messages predate `Message` and are only marked (N_); `render` translates a plain string
that is a catalog entry, so those still show in the visitor's language.
"""

from __future__ import annotations

import functools
import gettext as _gettext
import io
import json
import math
import numbers
from pathlib import Path
from dataclasses import dataclass
from typing import Callable

from babel import Locale, dates
from babel import numbers as babel_numbers
from babel.messages import mofile, pofile

ENGLISH = "en"
CHINESE = "zh_Hans"
LANGUAGES = {ENGLISH: "English", CHINESE: "简体中文"}  # each language named in itself, for the picker
DEFAULT_LANGUAGE = ENGLISH
LOCALES_DIR = Path(__file__).resolve().parents[1] / "locales"
DOMAIN = "messages"


def catalog_path(language: str) -> Path:
    return LOCALES_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def checked_language(value) -> str | None:
    """`value` if it names one of the app's languages ("en", "zh_Hans"), else None (the one check for a cookie)."""
    return value if isinstance(value, str) and value in LANGUAGES else None


def language_for_locale(locale: str | None) -> str:
    """The app's language for a browser locale ("zh-CN", "zh-TW", "zh" -> Chinese; anything else -> English).

    Traditional Chinese readers get Simplified Chinese too: closer to them than English.
    """
    if isinstance(locale, str) and locale.strip().lower().replace("_", "-").split("-")[0] == "zh":
        return CHINESE
    return DEFAULT_LANGUAGE


@functools.cache
def translations(language: str) -> _gettext.NullTranslations:
    """The compiled catalog of `language` (English: the source strings themselves), compiled once per process."""
    if language == ENGLISH or checked_language(language) is None:
        return _gettext.NullTranslations()
    with catalog_path(language).open("rb") as source:
        catalog = pofile.read_po(source, locale=language, domain=DOMAIN)
    compiled = io.BytesIO()
    mofile.write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return _gettext.GNUTranslations(compiled)


def _english() -> str:
    return DEFAULT_LANGUAGE


_language_source: Callable[[], str] = _english


def use_language_source(source: Callable[[], str] | None) -> Callable[[], str]:
    """Make `source()` say which language `gettext` and the formatters use (None: English again); returns the
    source it replaces, so that a test can put it back."""
    global _language_source
    previous, _language_source = _language_source, source or _english
    return previous


def current_language() -> str:
    """The language of whoever is being answered now (English without a language source or when it fails)."""
    try:
        return checked_language(_language_source()) or DEFAULT_LANGUAGE
    except Exception:  # noqa: BLE001 - a message must still be shown, in English, if the source cannot tell
        return DEFAULT_LANGUAGE


def gettext(message: str) -> str:
    """`message` in the current language (itself when it has no translation)."""
    return translations(current_language()).gettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    """The singular or plural form for `count`, in the current language (Chinese has one form)."""
    return translations(current_language()).ngettext(singular, plural, count)


def pgettext(context: str, message: str) -> str:
    """`message` as meant in `context` (one English word, two Chinese ones: "Train" the page, "Train" the split)."""
    return translations(current_language()).pgettext(context, message)


def N_(message: str) -> str:  # noqa: N802 - gettext's own name for "mark for extraction, translate later"
    """Mark `message` for the catalog without translating it now (constants, translated where they are shown)."""
    return message


def _babel_locale(language: str | None) -> Locale:
    return Locale.parse(language or current_language())


def format_number(value, decimals: int = 0, language: str | None = None) -> str:
    """60000 -> "60,000"; with `decimals`, that many digits after the point (Babel, the language's own grouping)."""
    pattern = "#,##0" + ("." + "0" * decimals if decimals > 0 else "")
    return babel_numbers.format_decimal(value, format=pattern, locale=_babel_locale(language))


def format_percent(fraction: float | None, decimals: int = 2, language: str | None = None) -> str:
    """0.9922 -> "99.22%" (None or not finite -> "n/a", translated)."""
    if fraction is None or not isinstance(fraction, numbers.Real) or not math.isfinite(fraction):
        return gettext("n/a")
    pattern = "#,##0" + ("." + "0" * decimals if decimals > 0 else "") + "%"
    return babel_numbers.format_percent(fraction, format=pattern, locale=_babel_locale(language))


def format_duration(seconds: float | None, language: str | None = None) -> str:
    """125 -> "2 minutes" / "2分钟": a duration in words, rounded to its largest unit ("n/a" when unknown)."""
    if seconds is None or not isinstance(seconds, numbers.Real) or not math.isfinite(seconds) or seconds < 0:
        return gettext("n/a")
    return dates.format_timedelta(seconds, threshold=1.5, locale=_babel_locale(language))


@dataclass(frozen=True)
class Message:
    """A message for a person kept as its English template and its values until it is shown; plain, picklable data.

    `str(message)` is the English sentence (logs, the CLI); `render()` is the sentence in the current language.
    Values may be Messages themselves (rendered in the same language) or anything `str.format` takes.
    """

    template: str
    values: tuple[tuple[str, object], ...] = ()
    plural: str | None = None  # with `count`: ngettext's plural form
    count: int | None = None

    def render(self, language: str | None = None) -> str:
        language = checked_language(language) or current_language()
        catalog = translations(language)
        if self.plural is None:
            template = catalog.gettext(self.template)
        else:
            template = catalog.ngettext(self.template, self.plural, self.count if self.count is not None else 1)
        values = {key: value.render(language) if isinstance(value, Message) else value for key, value in self.values}
        try:
            return template.format(**values)
        except (KeyError, IndexError, ValueError):  # a translation that lost a placeholder: the English still reads
            english = self.template if self.plural is None or self.count == 1 else self.plural
            return english.format(**values)

    def __str__(self) -> str:
        return self.render(ENGLISH)

    def to_json(self) -> str:
        """One line of JSON, for a process that reports through text (the conversion worker's stderr)."""
        return json.dumps(self._plain(), ensure_ascii=True)

    @classmethod
    def from_json(cls, text: str) -> Message:
        """The Message `to_json` wrote; ValueError if `text` is not one."""
        return cls._from_plain(json.loads(text))

    def _plain(self) -> dict:
        def plain(value):
            if isinstance(value, Message):
                return {"message": value._plain()}
            return value if isinstance(value, (str, int, float)) or value is None else str(value)

        return {"template": self.template, "values": [[key, plain(value)] for key, value in self.values],
                "plural": self.plural, "count": self.count}

    @classmethod
    def _from_plain(cls, data) -> Message:
        if not isinstance(data, dict) or not isinstance(data.get("template"), str):
            raise ValueError("not a message")
        values = tuple((str(key), cls._from_plain(value["message"]) if isinstance(value, dict) else value)
                       for key, value in data.get("values") or ())
        plural, count = data.get("plural"), data.get("count")
        return cls(data["template"], values, plural if isinstance(plural, str) else None,
                   count if isinstance(count, int) else None)


def M_(template: str, **values) -> Message:  # noqa: N802 - a gettext-style marker, found by extraction
    """A Message: `template` (English, with {named} placeholders, marked for the catalog) and its values."""
    return Message(template, tuple(values.items()))


def Mn_(singular: str, plural: str, count: int, **values) -> Message:  # noqa: N802 - like ngettext, rendered later
    """A Message with a singular and a plural form chosen by `count` (also given to the template as {count})."""
    return Message(singular, tuple({"count": count, **values}.items()), plural, count)


def message_of(error: BaseException) -> Message | str:
    """The Message an error carries (its one argument), else its English text: what to keep for showing later."""
    if len(error.args) == 1 and isinstance(error.args[0], Message):
        return error.args[0]
    return str(error)


def render(thing) -> str:
    """What a person reads, in the current language: a Message, an error carrying one, or text (a catalog entry
    marked with N_ is translated; any other text, a value or an error from a library, is shown as it is)."""
    if isinstance(thing, BaseException):
        thing = message_of(thing)
    if isinstance(thing, Message):
        return thing.render()
    if thing is None:
        return ""
    return gettext(str(thing))
