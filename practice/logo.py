"""The practice's optional logo: a PNG, JPEG or SVG of at most MAX_BYTES, known by what its bytes
are rather than by its name, stored in the database (every web process serves it)."""
import re
from datetime import datetime

from . import audit
from .clock import utcnow
from .i18n import clinic_gettext
from .models import Practice, PracticeLogo, write_transaction

MAX_BYTES = 200 * 1024
EPOCH = datetime(2026, 1, 1)
TYPES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/svg+xml": "SVG"}


class LogoError(ValueError):
    """A file that cannot be the logo; the message says why, to the person who chose it."""


def sniff(data: bytes) -> str | None:
    """The image type the bytes are, or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if (head.startswith((b"<?xml", b"<svg", b"<!--")) and b"<svg" in data[:4096].lower()) and _is_text(data):
        return "image/svg+xml"
    return None


def _is_text(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def set_logo(data: bytes, *, by=None) -> str:
    """Store the logo; returns its new version. Raises LogoError for what cannot be one."""
    if not data:
        raise LogoError(clinic_gettext("Choose an image file for the logo."))
    if len(data) > MAX_BYTES:
        raise LogoError(clinic_gettext("The logo must be %(limit)d KB or smaller; this file is %(size)d KB.",
                                       limit=MAX_BYTES // 1024, size=len(data) // 1024))
    kind = sniff(data)
    if kind is None:
        raise LogoError(clinic_gettext("The logo must be a PNG, JPEG or SVG image."))
    if kind == "image/svg+xml" and re.search(rb"<script|javascript:|\son\w+\s*=", data, re.IGNORECASE):
        # Served under a sandbox either way; an SVG that tries to run code is refused as well.
        raise LogoError(clinic_gettext("This SVG contains scripts; save it without them, or as a PNG."))
    with write_transaction():
        # A number that only grows (seconds since 2026), so a URL never names two images: the
        # logo is cached for good under it. A number, not a hash, since a path of letters and
        # digits is what the logs treat as a token.
        now = utcnow()
        version = str(max(int((now - EPOCH).total_seconds()), int(Practice.current().logo_version or 0) + 1))
        PracticeLogo.insert(id=1, content_type=kind, data=data, updated_at=now).on_conflict(
            conflict_target=[PracticeLogo.id],
            update={PracticeLogo.content_type: kind, PracticeLogo.data: data, PracticeLogo.updated_at: now},
        ).execute()
        Practice.update(logo_version=version).where(Practice.id == 1).execute()
        audit.record("setting_changed", clinician=by, detail=f"logo: new {TYPES[kind]} ({len(data)} bytes)")
    return version


def remove_logo(*, by=None) -> bool:
    with write_transaction():
        removed = PracticeLogo.delete().execute()
        Practice.update(logo_version="").where(Practice.id == 1).execute()
        if removed:
            audit.record("setting_changed", clinician=by, detail="logo: removed")
    return bool(removed)


def current_logo() -> PracticeLogo | None:
    return PracticeLogo.get_or_none(PracticeLogo.id == 1)
