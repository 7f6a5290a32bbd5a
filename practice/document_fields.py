"""The fields of an intake form: what each kind accepts, the message when it does not, and
how an answer reads back. Plain values in, plain values out: no request, no database.

A field is a dict: {"key": "f1", "type": "short_text", "label": "...", "required": True,
"options": [...]}. Posted answers arrive as {name: [values]} (how an HTML form sends them),
keyed by the field's key.
"""
import re
from datetime import date

from .clock import plain_date
from .i18n import N_, clinic_gettext, clinic_N_, gettext as _

# The kinds an admin can put in a form, in the order the editor offers them.
FIELD_TYPES = {
    # The editor's words for each kind (the clinic's catalog): clients see the questions, not these.
    "short_text": clinic_N_("Short text"),
    "long_text": clinic_N_("Long text"),
    "date": clinic_N_("Date"),
    "single_choice": clinic_N_("Single choice"),
    "multiple_choice": clinic_N_("Multiple choice"),
    "signature": clinic_N_("Signature (typed name, dated)"),
}
CHOICE_TYPES = ("single_choice", "multiple_choice")
MAX_LENGTH = {"short_text": 200, "long_text": 5000, "signature": 200}
DRAFT_MAX_LENGTH = 20000  # a draft keeps more than the limit, so nothing typed is cut off before Submit
MAX_OPTIONS = 30
KEY = re.compile(r"\Af[0-9]{1,4}\Z")  # ASCII digits only, and no "f1\n": `$` lets a newline through
EARLIEST, LATEST = date(1900, 1, 1), date(2100, 12, 31)

# A read-and-acknowledge document asks exactly this: tick the box, and sign.
ACKNOWLEDGE_FIELDS = [
    {"key": "acknowledged", "type": "acknowledge", "label": N_("I have read and understood this document."),
     "required": True, "options": []},
    {"key": "signature", "type": "signature", "label": N_("Type your full name to sign"), "required": True,
     "options": []},
]


class AnswersInvalid(ValueError):
    """Answers that cannot be submitted: `errors` maps a field's key to its message, `values`
    holds what was posted (cleaned) so the form can show it again."""

    def __init__(self, errors: dict, values: dict):
        super().__init__(f"{len(errors)} answer(s) need attention")
        self.errors = errors
        self.values = values


class FieldsInvalid(ValueError):
    """A form design that cannot be saved; `row` is the index of the field it is about, or None."""

    def __init__(self, message: str, row: int | None = None):
        super().__init__(message)
        self.row = row


def _posted(field: dict, posted: dict) -> list[str]:
    values = posted.get(field["key"]) or []
    return [values] if isinstance(values, str) else [str(v) for v in values]


def draft_values(fields: list[dict], posted: dict) -> dict:
    """What to keep of a half-filled form: text as typed (capped), known choices only."""
    values = {}
    for field in fields:
        raw = _posted(field, posted)
        if field["type"] == "multiple_choice":
            values[field["key"]] = [v for v in raw if v in field["options"]]
        elif field["type"] == "acknowledge":
            values[field["key"]] = "yes" if "yes" in raw else ""
        else:
            values[field["key"]] = (raw[0] if raw else "")[:DRAFT_MAX_LENGTH]
    return values


def validate_answers(fields: list[dict], posted: dict, *, today: date) -> dict:
    """The answers to store, or AnswersInvalid with a message for each field that is wrong."""
    values = draft_values(fields, posted)
    answers, errors = {}, {}
    for field in fields:
        try:
            answers[field["key"]] = _check(field, _posted(field, posted), today)
        except ValueError as problem:
            errors[field["key"]] = str(problem)
    if errors:
        raise AnswersInvalid(errors, values)
    return answers


def _check(field: dict, raw: list[str], today: date):
    kind, required = field["type"], field.get("required", False)
    if kind == "multiple_choice":
        chosen = [v for v in field["options"] if v in raw]  # in the form's order, once each
        if any(v not in field["options"] for v in raw):
            raise ValueError(_("Choose from the options shown."))
        if required and not chosen:
            raise ValueError(_("Please choose at least one option."))
        return chosen
    if kind == "acknowledge":
        if required and "yes" not in raw:
            raise ValueError(_("Tick the box to confirm you have read this document."))
        return "yes" in raw
    if len(raw) > 1:
        raise ValueError(_("Choose only one option.") if kind == "single_choice" else _("Give one answer only."))
    value = (raw[0] if raw else "").strip()
    if kind in ("short_text", "long_text", "signature"):
        value = value if kind == "long_text" else " ".join(value.split())
        if not value and required:
            raise ValueError(_("Type your full name to sign.") if kind == "signature" else _("Please fill this in."))
        limit = MAX_LENGTH[kind]
        if len(value) > limit:
            raise ValueError(_("Please keep this under %(limit)d characters (it has %(length)d).", limit=limit,
                               length=len(value)))
        if kind == "signature":
            return {"name": value, "date": today.isoformat()} if value else None
        return value
    if kind == "date":
        if not value:
            if required:
                raise ValueError(_("Please enter a date."))
            return None
        try:
            day = date.fromisoformat(value) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) else None
        except ValueError:
            day = None
        if day is None:
            raise ValueError(_("Enter the date as year-month-day, like 1990-04-21."))
        if not EARLIEST <= day <= LATEST:
            raise ValueError(_("Enter a date between 1900 and 2100."))
        return day.isoformat()
    if kind == "single_choice":
        if not value:
            if required:
                raise ValueError(_("Please choose one option."))
            return None
        if value not in field["options"]:
            raise ValueError(_("Choose one of the options shown."))
        return value
    raise ValueError(_("This question cannot be answered."))  # an unknown kind: never silently accepted


def display(field: dict, answer) -> str:
    """An answer as a person reads it."""
    if answer in (None, "", []):
        return _("(no answer)")
    kind = field["type"]
    if kind == "multiple_choice":
        return ", ".join(answer)
    if kind == "acknowledge":
        return _("Yes") if answer else _("No")
    if kind == "signature":
        return _("%(name)s, signed %(date)s", name=answer["name"], date=_long_date(answer["date"]))
    if kind == "date":
        return _long_date(answer)
    return answer


def _long_date(iso: str) -> str:
    day = date.fromisoformat(iso)
    return plain_date(day)


def clean_fields(rows: list[dict], existing_keys: set[str]) -> list[dict]:
    """A form design from the editor's rows ({key, label, type, required, options text}):
    blank new rows dropped, choices one per line, a new key for each new field."""
    fields, used = [], set()
    next_number = max([int(k[1:]) for k in existing_keys if KEY.match(k)] or [0]) + 1
    for index, row in enumerate(rows):
        label = " ".join((row.get("label") or "").split())
        options = [o.strip() for o in (row.get("options") or "").splitlines() if o.strip()]
        key = row.get("key") or ""
        if not label and not options and not (key and KEY.match(key)):
            continue  # an empty row the editor offered and nobody filled in
        if not label:
            raise FieldsInvalid(clinic_gettext("Write the question, or tick Remove."), index)
        if len(label) > 300:
            raise FieldsInvalid(clinic_gettext("Keep the question under 300 characters."), index)
        kind = row.get("type")
        if kind not in FIELD_TYPES:
            raise FieldsInvalid(clinic_gettext("Choose what kind of answer this question takes."), index)
        if kind in CHOICE_TYPES:
            if len(options) < 2:
                raise FieldsInvalid(clinic_gettext("Give at least two choices, one per line."), index)
            if len(options) > MAX_OPTIONS:
                raise FieldsInvalid(clinic_gettext("Offer at most %(num)d choices.", num=MAX_OPTIONS), index)
            if len(set(options)) != len(options):
                raise FieldsInvalid(clinic_gettext("Each choice must be different."), index)
            if any(len(o) > 200 for o in options):
                raise FieldsInvalid(clinic_gettext("Keep each choice under 200 characters."), index)
        else:
            options = []
        if not KEY.match(key) or key in used:
            key = f"f{next_number}"
            next_number += 1
        used.add(key)
        fields.append({"key": key, "type": kind, "label": label, "required": bool(row.get("required")),
                       "options": options})
    if not fields:
        raise FieldsInvalid(clinic_gettext("A form needs at least one question."))
    return fields
