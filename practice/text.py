"""Checks on text that reaches an email header (a name, an address, a subject)."""
import unicodedata

# A line break in a header ends it: Python's email package then refuses the whole message, so a
# practice name with a newline would stop every email. U+2028/U+2029 are line breaks too.
LINE_SEPARATORS = "\u2028\u2029"
CONTROL_MESSAGE = "Use plain text: no line breaks, tabs or other control characters."


def has_control_characters(text: str | None) -> bool:
    """True if the text holds a control character (Unicode category Cc) or a line separator."""
    return any(unicodedata.category(c) == "Cc" or c in LINE_SEPARATORS for c in text or "")
