"""Client-facing words and dates in the client's language. The words are looked up through the
runtime's translator (the web app's catalogs, translations/); `in_language(client.language)`
puts what is composed inside it (subjects, bodies, .ics text, dates) in the client's language.

The clinician side's words go through gettext too, from their own catalog (translations/clinic.pot,
marked here with clinic_gettext, clinic_ngettext and clinic_N_); they stay English for now. The
practice's own words (its name, its documents) are never translated."""
from contextlib import contextmanager

LANGUAGES = {"en": "English", "es": "Español"}  # each named in itself, as a switch shows it
DEFAULT = "en"


def known(language: str | None) -> str:
    """The language if we ship it, else English."""
    return language if language in LANGUAGES else DEFAULT


def _translator():
    # Imported when used: the runtime imports the clock (through turn), which imports this.
    from .runtime import current
    return current().translator


def current_language() -> str:
    return known(_translator().language())


@contextmanager
def in_language(language: str | None):
    with _translator().using(known(language)):
        yield


def gettext(message: str, **variables) -> str:
    return _translator().gettext(message, **variables)


def ngettext(singular: str, plural: str, num: int, **variables) -> str:
    return _translator().ngettext(singular, plural, num, **variables)


_ = gettext


def N_(message: str) -> str:
    """Marks `message` for the catalog where it is defined; it is translated where it is shown."""
    return message


# ---- the clinician side: its own catalog, English for now -------------------------------

def _in_english(lookup):
    """`lookup(translator)` in English: at once on a clinic page (English already), inside
    in_language() where a client's language is in force (mail a worker composes). Without a
    runtime (a parser's test, say) the source text, which is the English, needs no catalog."""
    from .runtime import EnglishOnly, NotConfigured
    try:
        translator = _translator()
    except NotConfigured:
        return lookup(EnglishOnly())
    if known(translator.language()) == DEFAULT:
        return lookup(translator)
    with in_language(DEFAULT):
        return lookup(translator)


def clinic_gettext(message: str, **variables) -> str:
    """A clinician-side word, looked up in English whatever a client composing it reads."""
    return _in_english(lambda translator: translator.gettext(message, **variables))


def clinic_ngettext(singular: str, plural: str, num: int, **variables) -> str:
    return _in_english(lambda translator: translator.ngettext(singular, plural, num, **variables))


def clinic_N_(message: str) -> str:
    """Marks clinician-side `message` for the clinic's catalog; clinic_gettext where it is shown."""
    return message
