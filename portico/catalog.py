"""The message catalogs' upkeep: extract every client-facing string (babel.cfg says where),
merge it into each language's .po, compile the .mo files the app reads. `python portal.py
translations` runs all three; the tests extract again and compare (tests/test_i18n.py)."""
from pathlib import Path

from babel.messages.frontend import CommandLineInterface

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "translations"
# gettext, ngettext and _ are Babel's defaults; these are ours: lazy text in forms and error
# pages (flask_babel.lazy_gettext, as _l), and N_ (practice/i18n.py) for text marked where it is
# defined and translated where it is shown.
KEYWORDS = ("_l", "lazy_gettext", "N_")


def pybabel(*arguments: str) -> None:
    CommandLineInterface().run(["pybabel", "--quiet", *arguments])


def extract(pot: Path) -> None:
    """Every msgid in the code and templates, into the template `pot`."""
    keywords = [option for keyword in KEYWORDS for option in ("-k", keyword)]
    pybabel("extract", "-F", str(ROOT / "babel.cfg"), *keywords, "--no-wrap", "--sort-output",
            "--no-location", "--project=Portico", "-o", str(pot), str(ROOT))


def update(pot: Path) -> None:
    """Each language's .po gains the new msgids (to translate) and loses the ones gone."""
    pybabel("update", "-i", str(pot), "-d", str(TRANSLATIONS), "--no-wrap", "--no-fuzzy-matching",
            "--ignore-obsolete")


def compile_catalogs() -> None:
    pybabel("compile", "-d", str(TRANSLATIONS))
