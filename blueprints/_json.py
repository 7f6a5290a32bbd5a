"""Reading a POSTed JSON body the same careful way in every view that takes one."""
from collections.abc import Mapping

from flask import request

from portico.hardening import UnreadableText, refuse_unencodable_text


def posted_json():
    """The POSTed JSON, or None where it is not JSON we can read: silent=True only covers
    ValueError, and "[" * 5000 raises RecursionError from the parser. Raises
    portico.hardening.UnreadableText for text that is not valid Unicode."""
    try:
        data = request.get_json(silent=True)
    except RecursionError:
        return None
    refuse_unencodable_text(data)  # "\ud800" parses, and would fail every later step
    return data


def posted_credential():
    """A WebAuthn ceremony's answer from the browser: a JSON object, or None for anything else."""
    try:
        data = posted_json()
    except UnreadableText:
        return None
    return data if isinstance(data, Mapping) else None
