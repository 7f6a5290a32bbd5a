"""Whose calendar it is. An admin sees one clinician at a time (`?clinician=<id>`, kept in every
calendar link and form), or everyone's ("all") at a practice small enough for that page to stay
quick; a clinician who is not an admin sees their own, always."""
from dataclasses import dataclass, field

from flask_babel import gettext

from practice.clinicians import by_name, sees_clients
from practice.models import Clinician

ALL = "all"
ALL_AT_MOST = 6  # clinicians: past that, everyone's week is a page that grows with the practice


class UnknownChoice(Exception):
    """A `clinician` value naming no calendar this viewer may open; the message says what to do."""


@dataclass
class Choice:
    owner: Clinician | None  # whose appointments are shown; None: every clinician's
    value: str | None  # the `clinician` parameter that keeps the choice in links; None: nothing to choose
    name: str  # "Kim Park", "All clinicians"
    options: list[tuple[str, str]] = field(default_factory=list)  # (value, name); empty: nothing to choose

    @property
    def names_clinicians(self) -> bool:
        """Each card says whose appointment it is when the calendar shows more than one clinician's."""
        return self.owner is None


def choose(viewer: Clinician, raw: str | None) -> Choice:
    """The calendar `viewer` asked for with `raw` (the `clinician` parameter, None if absent).
    An admin's default is their own calendar when they see clients; otherwise everyone's if
    the practice is small enough, else the first clinician by name."""
    raw = (raw or "").strip()
    if not viewer.is_admin:
        if raw not in ("", str(viewer.id)):  # another clinician's calendar looks like none
            raise UnknownChoice(gettext("There is no calendar of yours at this address."))
        return Choice(viewer, None, viewer.name)
    clinicians = list(by_name())
    offers_all = 1 < len(clinicians) <= ALL_AT_MOST
    options = ([(ALL, gettext("All clinicians"))] if offers_all else []) + [(str(c.id), c.name) for c in clinicians]
    if not raw:
        raw = str(viewer.id) if sees_clients(viewer) else options[0][0]
    if raw == ALL and offers_all:
        return Choice(None, ALL, gettext("All clinicians"), options)
    if raw == ALL:
        raise UnknownChoice(gettext("All clinicians' calendars are shown together at a practice of up to "
                                    "%(most)d clinicians. Choose one clinician from the calendar's Clinician list.",
                                    most=ALL_AT_MOST))
    owner = next((c for c in clinicians if str(c.id) == raw), None)
    if owner is None:
        raise UnknownChoice(gettext("No clinician has that calendar. Choose one from the calendar's Clinician list."))
    if len(clinicians) == 1:  # the admin alone: nothing to choose, nothing to keep in links
        return Choice(owner, None, owner.name)
    return Choice(owner, raw, owner.name, options)


def choose_after_change(viewer: Clinician, raw: str | None, appointment) -> Choice:
    """After a change from a card: the calendar it was made on, or else (a stale or edited
    value: the change itself stands) the calendar of the appointment's clinician."""
    try:
        return choose(viewer, raw)
    except UnknownChoice:
        return choose(viewer, str(appointment.clinician_id) if viewer.is_admin else None)
