"""A client's link history and audit trail as plain rows of words, for the clinician on the
phone with a client whose link "says expired"."""
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from peewee import fn

from . import runtime
from .clock import format_local, to_local, utcnow
from .links import MAX_CODE_ATTEMPTS
from .mail import describe_duration
from .models import AuditEvent, Client, Clinician, Email, Link, Practice, SignInRequest
from .passkeys import device_name

# "Probably a mail scanner". Outlook Safe Links, Mimecast, Proofpoint and the like fetch every
# link in a message as it arrives, from their own data centres, before the person sees it.
# We mark a link's first opening as a scanner's when
#   - it was a HEAD request (browsers open links with GET; scanners often probe with HEAD), or
#   - it came within SCANNER_WINDOW of the mail leaving (of the link being issued, when the
#     mail has not left) from an IP address other than the one the link was later used from,
#     or, while it is unused, other than the one the client asked for it from.
# With no address to compare (a clinician sent it and nobody has used it yet) we say nothing
# rather than guess. A scanner's open is harmless: opening never uses a link up.
SCANNER_WINDOW = timedelta(minutes=2)

REASONS = {
    "client_request": "The client asked for it on the sign-in page",
    "clinician": "Sent by a clinician",
    "invitation": "Invitation to the portal",
    "document_share": "A document was shared",
    "reminder": "Appointment reminder",
}

# What the client was shown when a dead link was refused (the dead-link page's cases).
REFUSALS = {
    "used": "already used",
    "replaced": "replaced by a newer link",
    "expired": "expired",
    "killed": "switched off after too many wrong codes",
    "email_changed": "switched off by a new email address",
    "not_recognised": "not recognised",
}

# revoked_reason -> the outcome's name (a CSS class and a test hook)
REVOKED = {"replaced": "replaced", "too_many_codes": "killed", "archived": "archived", "email_changed": "email_changed"}

LABELS = {
    "used": "Used", "replaced": "Replaced", "expired": "Expired", "killed": "Switched off: wrong codes",
    "archived": "Switched off: archived", "email_changed": "Switched off: new address", "revoked": "Switched off",
    "live": "Still works",
}

# What an email that carries no sign-in link is (Email.kind), for the "Other emails" list.
MAIL_KINDS = {
    "reminder": "Appointment reminder",
    "appointment_confirmed": "Appointment confirmed",
    "appointment_moved": "Appointment moved",
    "appointment_updated": "Appointment updated (new end)",
    "appointment_cancelled": "Appointment cancelled",
    "join_link_replaced": "New video link",
    "change_declined": "New time declined",
    "sign_in": "Sign-in link",
    "invitation": "Invitation to the portal",
}
OTHER_MAIL_LIMIT = 20
# What a mail row needs to say where an email is: not the bodies and .ics, which can be large.
MAIL_COLUMNS = (Email.id, Email.status, Email.queued_at, Email.next_attempt_at, Email.attempts, Email.last_error,
                Email.sent_at, Email.transport)

SESSION_ENDS = {
    "idle": "Signed out after a period of inactivity (timeout)",
    "absolute": "Signed out: the 12-hour limit was reached",
    "archived": "Session ended: the client was archived",
    "ended_by_clinician": "Session ended by the practice (sign out everywhere)",
    "replaced": "Session replaced by a new sign-in",
}

EVENTS = {
    "signed_in": "Signed in",
    "signed_out": "Signed out",
    "link_throttled": "Asked for a link, refused: too many requests in an hour",
    "client_added": "Client added",
    "client_updated": "Details edited",
    "client_archived": "Archived",
    "client_restored": "Restored from the archive",
    "signed_out_everywhere": "Signed out everywhere",
    "feed_revoked": "Calendar address switched off",
    "appointment_created": "Appointment booked",
    "appointment_moved": "Appointment moved",
    "appointment_cancelled": "Appointment cancelled",
    "join_link_replaced": "New join link sent (the old one no longer opens the session)",
    "telehealth_let_in": "Let in from the video waiting room",
    "online_moved": "Moved online",
    "online_request": "New time asked for online",
    "online_cancelled": "Cancelled online",
    "online_change_approved": "Online request approved",
    "online_change_declined": "Online request declined",
    "passkey_added": "Passkey added",
    "passkey_used": "Signed in with a passkey",
    "passkey_refused": "Passkey sign-in refused",
    "passkey_removed": "Passkey removed by the client",
    "passkeys_removed_by_practice": "Passkeys removed by the practice",
}


@dataclass
class MailRow:
    state: str  # sent, waiting, retrying, failed
    text: str


@dataclass
class LinkRow:
    number: int
    reason: str
    issued: str
    mail: list[MailRow]
    opened: str = ""  # when and from where; "" while never opened
    opens: int = 0
    scanner: str = ""  # why we think a scanner opened it; "" when we do not
    outcome: str = "live"  # used, replaced, expired, killed, archived, email_changed, revoked, live
    outcome_text: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return LABELS[self.outcome]


@dataclass
class OtherMailRow:
    kind: str
    what: str
    subject: str
    mail: MailRow  # its delivery state, in the words the link rows use


@dataclass
class EventRow:
    at: str
    what: str
    ip: str
    by: str
    kind: str


def spoken(moment: datetime, zone: str, now: datetime) -> str:
    """"today at 3:04 PM", "yesterday at 9:00 AM", "Tue 1 Dec at 3:04 PM" ("… 2025 at …" in
    another year), on the practice's wall clock."""
    local, today = to_local(moment, zone), to_local(now, zone).date()
    clock = local.strftime("%-I:%M %p")
    days = (local.date() - today).days
    named = {0: "today", -1: "yesterday", 1: "tomorrow"}
    if days in named:
        return f"{named[days]} at {clock}"
    return local.strftime("%a %-d %b" + (" %Y" if local.year != today.year else "")) + f" at {clock}"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _ago(later: datetime, earlier: datetime) -> str:
    seconds = int((later - earlier).total_seconds())
    if seconds < 120:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    if seconds < 2 * 3600:
        return f"{seconds // 60} minutes"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} hours"
    return f"{seconds // 86400} days"


# ua-parser's names for the phone editions of a browser; a person knows them by the browser's name.
BROWSER_FAMILIES = {"Chrome Mobile iOS": "Chrome", "Chrome Mobile WebView": "Chrome", "Chrome Mobile": "Chrome",
                    "Mobile Safari UI/WKWebView": "Safari", "Mobile Safari": "Safari", "Firefox Mobile": "Firefox",
                    "Firefox iOS": "Firefox", "Edge Mobile": "Edge"}


def browser_words(agent: str | None) -> str:
    """"Chrome on Android" from a user agent; what a program calls itself ("SafeLinks") where it
    names no known browser; "a browser that did not name itself" for none."""
    if not agent or not agent.strip():
        return "a browser that did not name itself"
    words = device_name(agent)
    if words != "A browser":
        for family, plain in BROWSER_FAMILIES.items():
            words = words.replace(family, plain)
        return words
    named = re.sub(r"^Mozilla/[\d.]+\s*", "", agent).strip(" ()") or agent
    return f"“{named[:60]}{'…' if len(named) > 60 else ''}”"


def scanner_reason(link: Link, left_at: datetime | None, used_ip: str | None, asked_ip: str | None) -> str:
    """Why the first opening looks like a mail scanner's, or "" (the rule is described above)."""
    if link.first_opened_at is None:
        return ""
    if link.first_opened_method == "HEAD":
        return "it was first opened with a HEAD request, which browsers do not send"
    since = left_at if left_at is not None and left_at <= link.first_opened_at else link.issued_at
    if link.first_opened_at - since > SCANNER_WINDOW or not link.first_opened_ip:
        return ""
    after = _ago(link.first_opened_at, since)
    if used_ip and used_ip != link.first_opened_ip:
        return f"it was opened {after} after sending from {link.first_opened_ip}, but used from {used_ip}"
    if not used_ip and asked_ip and asked_ip != link.first_opened_ip:
        return f"it was opened {after} after sending from {link.first_opened_ip}, but requested from {asked_ip}"
    return ""


def _mail_row(email: Email, when) -> MailRow:
    queued = f"Queued {when(email.queued_at)}"
    tries = f"{email.attempts} attempt{'s' if email.attempts != 1 else ''}"
    if email.status == "sent":
        extra = f" (after {tries})" if email.attempts > 1 else ""
        if email.transport == "dev-mailbox":
            extra += " to the dev mailbox: no mail server is set up"
        return MailRow("sent", f"{queued}; sent {when(email.sent_at)}{extra}.")
    if email.status == "failed":
        return MailRow("failed", f"{queued}; NOT sent: gave up after {tries}. Last SMTP error: {email.last_error}")
    if email.attempts:
        return MailRow("retrying", f"{queued}; not sent yet: {tries} failed, next try {when(email.next_attempt_at)}. "
                                   f"Last SMTP error: {email.last_error}")
    return MailRow("waiting", f"{queued}; waiting to be sent.")


def _no_mail(link: Link, now: datetime) -> MailRow:
    retention = runtime.settings().retention
    if link.issued_at < now - retention:
        return MailRow("pruned", f"Its email's delivery record is no longer kept (sent mail is kept "
                                 f"{retention.days} days).")
    return MailRow("none", "No email was queued for this link.")


def _outcome(link: Link, numbers: dict, now: datetime, when, used_ip: str | None) -> tuple[str, str]:
    if link.used_at is not None:
        via = "the code from the email" if link.used_by == "code" else "the link"
        return "used", f"Used to sign in {when(link.used_at)} with {via}" + (f", from {used_ip}." if used_ip else ".")
    newer = f"link {numbers[link.replaced_by_id]}" if link.replaced_by_id in numbers else "a newer link"
    if link.expires_at <= (link.revoked_at or now):
        text = (f"Expired {when(link.expires_at)} without being used "
                f"(it worked for {describe_duration(link.expires_at - link.issued_at)}).")
        if link.revoked_reason == "replaced":
            text += f" Later, {newer} replaced it ({when(link.revoked_at)})."
        return "expired", text
    if link.revoked_at is not None:
        reason = link.revoked_reason
        text = {
            "replaced": f"Replaced {when(link.revoked_at)} by {newer}; only the newest link works.",
            "too_many_codes": f"Switched off {when(link.revoked_at)}: the wrong code was entered "
                              f"{MAX_CODE_ATTEMPTS} times.",
            "archived": f"Switched off {when(link.revoked_at)}: the client was archived.",
            "email_changed": f"Switched off {when(link.revoked_at)}: the client's email address changed.",
        }.get(reason, f"Switched off {when(link.revoked_at)}.")
        return REVOKED.get(reason, "revoked"), text
    return "live", f"Still works, until {when(link.expires_at)}."


HISTORY_PAGE = 20  # links a page of the history shows; "Show older" brings the next ones


@dataclass
class HistoryPage:
    """One page of a client's link history, newest first. `older` is the number to ask for
    the next page with (links numbered below it), or None when this page reaches link 1."""

    rows: list[LinkRow]
    total: int
    older: int | None


def link_numbers(client: Client, ids) -> dict[int, int]:
    """Each given link's number among the client's links (1 for the first issued), in one
    query that reads only the links' index, however long the client's history."""
    ids = sorted({i for i in ids if i})
    if not ids:
        return {}
    numbered = (Link.select(Link.id, fn.ROW_NUMBER().over(order_by=[Link.issued_at, Link.id]).alias("number"))
                .where(Link.client == client))
    return dict(Link.select(numbered.c.id, numbered.c.number).from_(numbered)
                .where(numbered.c.id.in_(ids)).tuples())


def link_history(client: Client, *, now: datetime | None = None, before: int | None = None,
                 limit: int = HISTORY_PAGE) -> HistoryPage:
    """The client's links numbered below `before` (the newest when None), newest first, at
    most `limit`, each with its mail, openings and fate. Only that page is read."""
    now = now or utcnow()
    zone = Practice.current().timezone

    def when(moment):
        return format_local(moment, zone)

    total = Link.select().where(Link.client == client).count()
    start = 0 if before is None else max(0, total - (before - 1))
    links = list(Link.history_for(client).offset(start).limit(limit)) if start < total else []
    if not links:
        return HistoryPage([], total, None)
    ids = [link.id for link in links]
    numbers = link_numbers(client, ids + [link.replaced_by_id for link in links])
    mails, events, asked_from = {}, {}, {}
    for email in Email.select(*MAIL_COLUMNS, Email.link).where(Email.link.in_(ids)).order_by(Email.queued_at, Email.id):
        mails.setdefault(email.link_id, []).append(email)
    for event in AuditEvent.select().where(AuditEvent.link.in_(ids)).order_by(AuditEvent.at, AuditEvent.id):
        events.setdefault(event.link_id, []).append(event)
    for request in SignInRequest.select(SignInRequest.link, SignInRequest.ip).where(SignInRequest.link.in_(ids)):
        asked_from[request.link_id] = request.ip
    senders = {c.id: c.name for c in Clinician.select().where(
        Clinician.id.in_([e.clinician_id for es in events.values() for e in es if e.clinician_id] or [0]))}

    rows = []
    for link in links:
        own = events.get(link.id, [])
        used_ip = next((e.ip for e in own if e.kind == "link_redeemed"), None)
        sender = next((senders.get(e.clinician_id) for e in own
                       if e.kind in ("link_sent_by_clinician", "invitation_sent") and e.clinician_id), None)
        reason = REASONS.get(link.reason, link.reason)
        if sender:
            reason += f" ({'sent by ' if link.reason == 'invitation' else ''}{sender})"
        emails = mails.get(link.id, [])
        left_at = next((m.sent_at for m in emails if m.sent_at), None)
        row = LinkRow(
            number=numbers[link.id], reason=reason, issued=when(link.issued_at),
            mail=[_mail_row(m, when) for m in emails] or [_no_mail(link, now)],
            opens=sum(1 for e in own if e.kind == "link_opened"),
            scanner=scanner_reason(link, left_at, used_ip, asked_from.get(link.id)),
        )
        if link.first_opened_at is not None:
            after = f", {_ago(link.first_opened_at, left_at)} after the mail left" if left_at and \
                link.first_opened_at >= left_at else ""
            head = ", with a HEAD request" if link.first_opened_method == "HEAD" else ""
            row.opened = (f"{when(link.first_opened_at)}{after}, in {browser_words(link.first_opened_agent)}{head}, "
                          f"from {link.first_opened_ip or 'an unknown address'}")
        row.outcome, row.outcome_text = _outcome(link, numbers, now, when, used_ip)
        refused = [e for e in own if e.kind == "link_rejected"]
        for event in refused[-5:]:
            row.notes.append(f"Opened {when(event.at)} and refused as \u201c{REFUSALS.get(event.detail, event.detail)}\u201d"
                             + (f", from {event.ip}." if event.ip else "."))
        if len(refused) > 5:
            row.notes.insert(0, f"Refused {len(refused)} times in all; the latest five:")
        if link.code_attempts and link.revoked_reason != "too_many_codes":
            row.notes.append(f"{link.code_attempts} wrong code{'s' if link.code_attempts != 1 else ''} entered"
                             + ("; its code no longer works, the link itself still does." if
                                link.code_attempts >= MAX_CODE_ATTEMPTS else "."))
        rows.append(row)
    oldest = numbers[links[-1].id]
    return HistoryPage(rows, total, oldest if oldest > 1 else None)


def other_mail(client: Client, limit: int = OTHER_MAIL_LIMIT) -> list[OtherMailRow]:
    """The client's latest emails that carry no sign-in link (reminders, appointment notices),
    newest first, in one query: the link history shows the rest."""
    zone = Practice.current().timezone

    def when(moment):
        return format_local(moment, zone)

    emails = (Email.select(*MAIL_COLUMNS, Email.kind, Email.subject)
              .where((Email.client == client) & Email.link.is_null())
              .order_by(Email.queued_at.desc(), Email.id.desc()).limit(limit))
    return [OtherMailRow(kind=e.kind, what=MAIL_KINDS.get(e.kind, e.kind.replace("_", " ").capitalize()),
                         subject=e.subject, mail=_mail_row(e, when)) for e in emails]


# Events about one link, in words: {link} is "Link 3" (or "A link"), {detail} the event's own.
LINK_EVENTS = {
    "link_issued": "{link} issued: {reason}",
    "link_opened": "{link} opened{method}",
    "link_redeemed": "{link} used to sign in{via}",
    "link_rejected": "{link} refused: {refusal}",
    "code_rejected": "Wrong code for {link_lower} ({detail})",
    "link_sent_by_clinician": "{link} sent by a clinician",
    "invitation_sent": "Invitation sent ({link_lower})",
}


def _describe(event: AuditEvent, numbers: dict, zone: str = "UTC") -> str:
    kind, detail = event.kind, event.detail
    if kind == "session_ended":
        return SESSION_ENDS.get(detail, f"Session ended ({detail})")
    if kind in LINK_EVENTS:
        link = f"Link {numbers[event.link_id]}" if event.link_id in numbers else "A link"
        return LINK_EVENTS[kind].format(link=link, link_lower=link.lower(), detail=detail,
                                        reason=REASONS.get(detail, detail).lower(),
                                        refusal=REFUSALS.get(detail, detail),
                                        method=" (a HEAD request: probably a mail scanner)" if detail == "HEAD" else "",
                                        via={"by code": " with the code from the email",
                                             "by link": " with the link"}.get(detail, ""))
    if kind.startswith("appointment_"):
        return _appointment_event(kind, detail, zone)
    if kind.startswith("telehealth_"):
        return _telehealth_event(kind, detail)
    words = EVENTS.get(kind, kind.replace("_", " ").capitalize())
    # Details that are codes say nothing the words do not: only the ones in words are shown.
    if not detail or kind in ("signed_in", "signed_out") or re.fullmatch(r"[a-z_]+", detail):
        return words
    return f"{words} ({detail})"


# Appointment events keep their times in UTC ("telehealth 2026-12-01 23:10Z–00:15Z"); they are
# said here on the practice's clock.
_UTC_SPAN = re.compile(r"(?:(\w+) )?(?:now )?(\d{4}-\d\d-\d\d \d\d:\d\d)Z(?:–(\d\d:\d\d)Z)?")
KIND_WORDS = {"telehealth": "video session", "in_person": "in person", "phone": "phone call"}


def _appointment_event(kind: str, detail: str, zone: str) -> str:
    words = EVENTS.get(kind, kind.replace("_", " ").capitalize())
    match = _UTC_SPAN.fullmatch(detail or "")
    if not match:
        return f"{words} ({detail})" if detail else words
    what, start_text, end_text = match.groups()
    start = datetime.strptime(start_text, "%Y-%m-%d %H:%M")
    local = to_local(start, zone)
    text = local.strftime("%a %-d %b %Y, %-I:%M %p")
    if end_text:
        end = datetime.combine(start.date(), datetime.strptime(end_text, "%H:%M").time())
        end += timedelta(days=1) if end <= start else timedelta(0)
        text += " – " + to_local(end, zone).strftime("%-I:%M %p")
    text += " " + local.tzname()
    if kind == "appointment_moved":  # a move or a new end alike
        return f"Appointment changed: now {text}"
    return f"{words}: {text}" + (f", {KIND_WORDS.get(what, what.replace('_', ' '))}" if what else "")


TELEHEALTH = {
    "telehealth_entered": "Joined the video session",
    "telehealth_rejoined": "Rejoined the video session",
    "telehealth_left": "Left the video session",
    "telehealth_refused": "Could not join the video session",
}
TELEHEALTH_REFUSALS = {
    "full": "it already had its participants", "not_yet": "it had not opened yet", "closed": "it had closed",
    "cancelled": "it was cancelled", "in_person": "it is an in-person appointment", "archived": "the client is archived",
}


def _telehealth_event(kind: str, detail: str) -> str:
    """"appointment 5 as clinician: full" -> "Could not join the video session (as the clinician): it already
    had its participants"."""
    words = TELEHEALTH.get(kind, kind.replace("_", " ").capitalize())
    match = re.fullmatch(r"appointment \d+ as (\w+)(?:: (.*))?", detail or "")
    if not match:
        return f"{words} ({detail})" if detail else words
    role, reason = match.groups()
    text = words + (" (the clinician)" if role == "clinician" else "")
    if reason:
        text += ": " + TELEHEALTH_REFUSALS.get(reason, reason.replace("_", " "))
    return text


def recent_events(client: Client, limit: int = 50) -> list[EventRow]:
    """The client's recent audit trail, newest first, in words."""
    zone = Practice.current().timezone
    events = list(AuditEvent.recent_for(client, limit))
    numbers = link_numbers(client, [e.link_id for e in events])
    # A link a clinician sent has two events, "issued" and "sent by"; show the one that says who.
    sent = {e.link_id for e in events if e.kind in ("link_sent_by_clinician", "invitation_sent")}
    events = [e for e in events if not (e.kind == "link_issued" and e.link_id in sent)]
    names = {c.id: c.name for c in Clinician.select().where(
        Clinician.id.in_([e.clinician_id for e in events if e.clinician_id] or [0]))}
    now = utcnow()
    return [EventRow(at=_capital(spoken(e.at, zone, now)), what=_describe(e, numbers, zone), ip=e.ip or "",
                     by=names.get(e.clinician_id, ""), kind=e.kind) for e in events]
