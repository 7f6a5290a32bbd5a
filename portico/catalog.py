"""The message catalogs' upkeep: extract every client-facing string (babel.cfg says where),
merge it into each language's .po, compile the .mo files the app reads. `python portal.py
translations` runs all three, and writes the clinician side's template, translations/clinic.pot
(babel-clinic.cfg; English for now, so no language has its .po yet). The tests extract again
and compare (tests/test_i18n.py)."""
import tempfile
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "translations"
# gettext, ngettext and _ are Babel's defaults; these are ours: lazy text in forms and error
# pages (flask_babel.lazy_gettext, as _l), and N_ (practice/i18n.py) for text marked where it is
# defined and translated where it is shown.
KEYWORDS = ("_l", "lazy_gettext", "N_")
# The clinician side's words outside blueprints/clinic and templates/clinic (practice/i18n.py).
CLINIC_KEYWORDS = ("clinic_gettext", "clinic_ngettext:1,2", "clinic_N_")
CLINIC_POT = TRANSLATIONS / "clinic.pot"


def pybabel(*arguments: str) -> None:
    CommandLineInterface().run(["pybabel", "--quiet", *arguments])


def _options(keywords) -> list:
    return [option for keyword in keywords for option in ("-k", keyword)]


def _extract(pot: Path, mapping: str, *keywords: str) -> None:
    pybabel("extract", "-F", str(ROOT / mapping), *keywords, "--no-wrap", "--sort-output",
            "--no-location", "--project=Portico", "-o", str(pot), str(ROOT))


def extract(pot: Path) -> None:
    """Every client-facing msgid in the code and templates, into the template `pot`."""
    _extract(pot, "babel.cfg", *_options(KEYWORDS))


def extract_clinic(pot: Path) -> None:
    """Every clinician-side msgid, into `pot`: blueprints/clinic and templates/clinic with the
    usual keywords, and the clinic's own keywords wherever else they are (practice/ mostly)."""
    with tempfile.TemporaryDirectory() as folder:
        own, marked = Path(folder) / "own.pot", Path(folder) / "marked.pot"
        _extract(own, "babel-clinic.cfg", *_options(KEYWORDS))
        _extract(marked, "babel.cfg", "--no-default-keywords", *_options(CLINIC_KEYWORDS))
        catalog = Catalog(project="Portico", fuzzy=False)
        for part in (own, marked):
            with open(part, "rb") as handle:
                for message in read_po(handle):
                    if message.id:
                        catalog.add(message.id, context=message.context)
    with open(pot, "wb") as handle:
        write_po(handle, catalog, width=0, sort_output=True, omit_header=False, no_location=True)


def update(pot: Path) -> None:
    """Each language's .po gains the new msgids (to translate) and loses the ones gone."""
    pybabel("update", "-i", str(pot), "-d", str(TRANSLATIONS), "--no-wrap", "--no-fuzzy-matching",
            "--ignore-obsolete")


def compile_catalogs() -> None:
    pybabel("compile", "-d", str(TRANSLATIONS))
