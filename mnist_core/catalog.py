"""The translation catalog's upkeep with Babel: extract the visible strings (babel.cfg) and update the .po files.

`python -m mnist_core catalog` (after adding or changing a visible string) adds new strings to
locales/zh_Hans/LC_MESSAGES/messages.po with an empty translation, marks changed ones fuzzy and drops the ones
the code no longer has; a translator then fills them in. The app compiles the .po itself (mnist_core.i18n), and
tests/test_i18n.py fails while an entry is untranslated, fuzzy or obsolete.
"""

from __future__ import annotations

from pathlib import Path

from babel.messages import pofile
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg

from mnist_core.i18n import CHINESE, DOMAIN, catalog_path

ROOT = Path(__file__).resolve().parents[1]
MAPPING_FILE = ROOT / "babel.cfg"
LANGUAGE_NAMES = {"zh_Hans": "Simplified Chinese (简体中文)"}


def extract(root: Path = ROOT) -> Catalog:
    """Every string marked for translation in the files babel.cfg names, with where each occurs."""
    with MAPPING_FILE.open(encoding="utf-8") as mapping:
        method_map, options_map = parse_mapping_cfg(mapping)
    catalog = Catalog(domain=DOMAIN, project="MNIST Lab", charset="utf-8")
    for file_name, line, message, comments, context in extract_from_dir(
        str(root), method_map, options_map, strip_comment_tags=True
    ):
        catalog.add(message, None, [(file_name, line)], auto_comments=comments, context=context)
    return catalog


def read_catalog(language: str = CHINESE) -> Catalog:
    with catalog_path(language).open("rb") as source:
        return pofile.read_po(source, locale=language, domain=DOMAIN)


def update(language: str = CHINESE) -> Catalog:
    """Bring the language's .po up to date with the code (new entries empty, changed ones fuzzy, gone ones removed)."""
    template = extract()
    path = catalog_path(language)
    previous_creation = None
    if path.exists():
        catalog = read_catalog(language)
        previous_creation = catalog.creation_date
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        catalog = Catalog(locale=language, domain=DOMAIN, project="MNIST Lab", charset="utf-8")
    catalog.update(template, no_fuzzy_matching=False)
    catalog.obsolete.clear()  # git keeps the history; an obsolete entry in the file only misleads
    catalog.fuzzy = False  # the header: the file is in use, not a draft
    # A header of our own instead of Babel's placeholders, and no date that changes with every update.
    catalog.header_comment = (f"# {LANGUAGE_NAMES.get(language, language)} translations of MNIST Lab's visible strings.\n"
                              "# Words: docs/glossary.md. Update with `python -m mnist_core catalog`; tests/test_i18n.py "
                              "checks it.")
    catalog.project, catalog.version = "MNIST Lab", ""
    catalog.last_translator = catalog.language_team = "MNIST Lab contributors"
    catalog.msgid_bugs_address = ""
    if previous_creation is not None:
        catalog.creation_date = previous_creation
    with path.open("wb") as target:
        # File names without line numbers, so that moving code does not rewrite the catalog.
        pofile.write_po(target, catalog, width=116, sort_by_file=True, include_previous=True, include_lineno=False)
    return catalog
