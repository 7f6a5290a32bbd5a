"""Validators our forms share: text that may go into an email header, and a length check
that ends the chain."""
from wtforms.validators import StopValidation

from practice.text import CONTROL_MESSAGE, has_control_characters


def plain_text(message: str = CONTROL_MESSAGE):
    """No control characters or line separators (they would break the email headers)."""

    def check(form, field):
        if isinstance(field.data, str) and has_control_characters(field.data):
            raise StopValidation(message)

    return check


def at_most(limit: int, message: str):
    """wtforms' Length(max=...) raises ValidationError and the chain goes on, so an Email check
    after it would still parse a megabyte; this one stops there."""

    def check(form, field):
        if isinstance(field.data, str) and len(field.data) > limit:
            raise StopValidation(message)

    return check
