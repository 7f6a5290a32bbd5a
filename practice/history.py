"""A client's link history and audit trail as plain rows of words, for the clinician on the
phone with a client whose link "says expired"."""
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from peewee import fn

from . import runtime
from .clock import format_local, to_local, utcnow
from .i18n import clinic_gettext, clinic_N_, clinic_ngettext
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

# The word tables below are marked for the clinic's catalog; _word says an entry where it is shown.
REASONS = {
    "client_request": clinic_N_("The client asked for it on the sign-in page"),
    "clinician": clinic_N_("Sent by a clinician"),
    "invitation": clinic_N_("Invitation to the portal"),
    "document_share": clinic_N_("A document was shared"),
    "reminder": clinic_N_("Appointment reminder"),
}

# What the client was shown when a dead link was refused (the dead-link page's cases).
REFUSALS = {
    "used": clinic_N_("already used"),
    "replaced": clinic_N_("replaced by a newer link"),
    "expired": clinic_N_("expired"),
    "killed": clinic_N_("switched off after too many wrong codes"),
    "email_changed": clinic_N_("switched off by a new email address"),
    "not_recognised": clinic_N_("not recognised"),
}

# revoked_reason -> the outcome's name (a CSS class and a test hook)
REVOKED = {"replaced": "replaced", "too_many_codes": "killed", "archived": "archived", "email_changed": "email_changed"}

LABELS = {
    "used": clinic_N_("Used"), "replaced": clinic_N_("Replaced"), "expired": clinic_N_("Expired"),
    "killed": clinic_N_("Switched off: wrong codes"), "archived": clinic_N_("Switched off: archived"),
    "email_changed": clinic_N_("Switched off: new address"), "revoked": clinic_N_("Switched off"),
    "live": clinic_N_("Still works"),
}

# What an email that carries no sign-in link is (Email.kind), for the "Other emails" list.
MAIL_KINDS = {
    "reminder": clinic_N_("Appointment reminder"),
    "appointment_confirmed": clinic_N_("Appointment confirmed"),
    "appointment_moved": clinic_N_("Appointment moved"),
    "appointment_updated": clinic_N_("Appointment updated (new end)"),
    "appointment_cancelled": clinic_N_("Appointment cancelled"),
    "join_link_replaced": clinic_N_("New video link"),
    "change_declined": clinic_N_("New time declined"),
    "sign_in": clinic_N_("Sign-in link"),
    "invitation": clinic_N_("Invitation to the portal"),
}
OTHER_MAIL_LIMIT = 20
# What a mail row needs to say where an email is: not the bodies and .ics, which can be large.
MAIL_COLUMNS = (Email.id, Email.status, Email.queued_at, Email.next_attempt_at, Email.attempts, Email.last_error,
                Email.sent_at, Email.transport)

SESSION_ENDS = {
    "idle": clinic_N_("Signed out after a period of inactivity (timeout)"),
    "absolute": clinic_N_("Signed out: the 12-hour limit was reached"),
    "archived": clinic_N_("Session ended: the client was archived"),
    "ended_by_clinician": clinic_N_("Session ended by the practice (sign out everywhere)"),
    "replaced": clinic_N_("Session replaced by a new sign-in"),
}

EVENTS = {
    "signed_in": clinic_N_("Signed in"),
    "signed_out": clinic_N_("Signed out"),
    "link_throttled": clinic_N_("Asked for a link, refused: too many requests in an hour"),
    "client_added": clinic_N_("Client added"),
    "client_updated": clinic_N_("Details edited"),
    "client_archived": clinic_N_("Archived"),
    "client_restored": clinic_N_("Restored from the archive"),
    "signed_out_everywhere": clinic_N_("Signed out everywhere"),
    "feed_revoked": clinic_N_("Calendar address switched off"),
    "appointment_created": clinic_N_("Appointment booked"),
    "appointment_moved": clinic_N_("Appointment moved"),
    "appointment_cancelled": clinic_N_("Appointment cancelled"),
    "join_link_replaced": clinic_N_("New join link sent (the old one no longer opens the session)"),
    "telehealth_let_in": clinic_N_("Let in from the video waiting room"),
    "online_moved": clinic_N_("Moved online"),
    "online_request": clinic_N_("New time asked for online"),
    "online_cancelled": clinic_N_("Cancelled online"),
    "online_change_approved": clinic_N_("Online request approved"),
    "online_change_declined": clinic_N_("Online request declined"),
    "passkey_added": clinic_N_("Passkey added"),
    "passkey_used": clinic_N_("Signed in with a passkey"),
    "passkey_refused": clinic_N_("Passkey sign-in refused"),
    "passkey_removed": clinic_N_("Passkey removed by the client"),
    "passkeys_removed_by_practice": clinic_N_("Passkeys removed by the practice"),
}


def _word(table: dict, key, fallback: str | None = None) -> str:
    """`key`'s entry in a word table, in the clinic's language; else `fallback`, else the key as
    stored (never looked up: gettext("") would answer with the catalog's header)."""
    if key in table:
        return clinic_gettext(table[key])
    return key if fallback is None else fallback


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
        return clinic_gettext(LABELS[self.outcome])


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
    named = {0: clinic_N_("today at %(time)s"), -1: clinic_N_("yesterday at %(time)s"),
             1: clinic_N_("tomorrow at %(time)s")}
    if days in named:
        return clinic_gettext(named[days], time=clock)
    day = local.strftime("%a %-d %b" + (" %Y" if local.year != today.year else ""))
    return clinic_gettext("%(day)s at %(time)s", day=day, time=clock)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _ago(later: datetime, earlier: datetime) -> str:
    seconds = int((later - earlier).total_seconds())
    if seconds < 120:
        return clinic_ngettext("%(num)d second", "%(num)d seconds", seconds)
    if seconds < 2 * 3600:
        return clinic_ngettext("%(num)d minute", "%(num)d minutes", seconds // 60)
    if seconds < 2 * 86400:
        return clinic_ngettext("%(num)d hour", "%(num)d hours", seconds // 3600)
    return clinic_ngettext("%(num)d day", "%(num)d days", seconds // 86400)


# ua-parser's names for the phone editions of a browser; a person knows them by the browser's name.
BROWSER_FAMILIES = {"Chrome Mobile iOS": "Chrome", "Chrome Mobile WebView": "Chrome", "Chrome Mobile": "Chrome",
                    "Mobile Safari UI/WKWebView": "Safari", "Mobile Safari": "Safari", "Firefox Mobile": "Firefox",
                    "Firefox iOS": "Firefox", "Edge Mobile": "Edge"}


def browser_words(agent: str | None) -> str:
    """"Chrome on Android" from a user agent; what a program calls itself ("SafeLinks") where it
    names no known browser; "a browser that did not name itself" for none."""
    if not agent or not agent.strip():
        return clinic_gettext("a browser that did not name itself")
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
        return clinic_gettext("it was first opened with a HEAD request, which browsers do not send")
    since = left_at if left_at is not None and left_at <= link.first_opened_at else link.issued_at
    if link.first_opened_at - since > SCANNER_WINDOW or not link.first_opened_ip:
        return ""
    after = _ago(link.first_opened_at, since)
    if used_ip and used_ip != link.first_opened_ip:
        return clinic_gettext("it was opened %(ago)s after sending from %(ip)s, but used from %(used_ip)s",
                              ago=after, ip=link.first_opened_ip, used_ip=used_ip)
    if not used_ip and asked_ip and asked_ip != link.first_opened_ip:
        return clinic_gettext("it was opened %(ago)s after sending from %(ip)s, but requested from %(asked_ip)s",
                              ago=after, ip=link.first_opened_ip, asked_ip=asked_ip)
    return ""


def _mail_row(email: Email, when) -> MailRow:
    words = {"queued": clinic_gettext("Queued %(when)s", when=when(email.queued_at)),
             "tries": clinic_ngettext("%(num)d attempt", "%(num)d attempts", email.attempts),
             "error": email.last_error}
    if email.status == "sent":
        words["when"] = when(email.sent_at)
        if email.transport == "dev-mailbox":
            if email.attempts > 1:
                return MailRow("sent", clinic_gettext("%(queued)s; sent %(when)s (after %(tries)s) to the dev "
                                                      "mailbox: no mail server is set up.", **words))
            return MailRow("sent", clinic_gettext("%(queued)s; sent %(when)s to the dev mailbox: no mail server is "
                                                  "set up.", **words))
        if email.attempts > 1:
            return MailRow("sent", clinic_gettext("%(queued)s; sent %(when)s (after %(tries)s).", **words))
        return MailRow("sent", clinic_gettext("%(queued)s; sent %(when)s.", **words))
    if email.status == "failed":
        return MailRow("failed", clinic_gettext("%(queued)s; NOT sent: gave up after %(tries)s. Last SMTP error: "
                                                "%(error)s", **words))
    if email.attempts:
        return MailRow("retrying", clinic_gettext("%(queued)s; not sent yet: %(tries)s failed, next try %(when)s. "
                                                  "Last SMTP error: %(error)s", when=when(email.next_attempt_at),
                                                  **words))
    return MailRow("waiting", clinic_gettext("%(queued)s; waiting to be sent.", **words))


def _no_mail(link: Link, now: datetime) -> MailRow:
    retention = runtime.settings().retention
    if link.issued_at < now - retention:
        return MailRow("pruned", clinic_ngettext(
            "Its email's delivery record is no longer kept (sent mail is kept %(num)d day).",
            "Its email's delivery record is no longer kept (sent mail is kept %(num)d days).", retention.days))
    return MailRow("none", clinic_gettext("No email was queued for this link."))


def _outcome(link: Link, numbers: dict, now: datetime, when, used_ip: str | None) -> tuple[str, str]:
    if link.used_at is not None:
        used = {"when": when(link.used_at), "ip": used_ip}
        if link.used_by == "code":
            return "used", (clinic_gettext("Used to sign in %(when)s with the code from the email, from %(ip)s.",
                                           **used) if used_ip
                            else clinic_gettext("Used to sign in %(when)s with the code from the email.", **used))
        return "used", (clinic_gettext("Used to sign in %(when)s with the link, from %(ip)s.", **used) if used_ip
                        else clinic_gettext("Used to sign in %(when)s with the link.", **used))
    newer = (clinic_gettext("link %(number)s", number=numbers[link.replaced_by_id]) if link.replaced_by_id in numbers
             else clinic_gettext("a newer link"))
    if link.expires_at <= (link.revoked_at or now):
        text = clinic_gettext("Expired %(when)s without being used (it worked for %(duration)s).",
                              when=when(link.expires_at), duration=describe_duration(link.expires_at - link.issued_at))
        if link.revoked_reason == "replaced":
            text += " " + clinic_gettext("Later, %(newer)s replaced it (%(when)s).", newer=newer,
                                         when=when(link.revoked_at))
        return "expired", text
    if link.revoked_at is not None:
        reason = link.revoked_reason
        said = {"when": when(link.revoked_at), "newer": newer, "attempts": MAX_CODE_ATTEMPTS}
        text = {
            "replaced": clinic_N_("Replaced %(when)s by %(newer)s; only the newest link works."),
            "too_many_codes": clinic_N_("Switched off %(when)s: the wrong code was entered %(attempts)s times."),
            "archived": clinic_N_("Switched off %(when)s: the client was archived."),
            "email_changed": clinic_N_("Switched off %(when)s: the client's email address changed."),
        }.get(reason, clinic_N_("Switched off %(when)s."))
        return REVOKED.get(reason, "revoked"), clinic_gettext(text, **said)
    return "live", clinic_gettext("Still works, until %(when)s.", when=when(link.expires_at))


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
        reason = _word(REASONS, link.reason)
        if sender:
            reason = (clinic_gettext("%(reason)s (sent by %(sender)s)", reason=reason, sender=sender)
                      if link.reason == "invitation" else clinic_gettext("%(reason)s (%(sender)s)", reason=reason,
                                                                         sender=sender))
        emails = mails.get(link.id, [])
        left_at = next((m.sent_at for m in emails if m.sent_at), None)
        row = LinkRow(
            number=numbers[link.id], reason=reason, issued=when(link.issued_at),
            mail=[_mail_row(m, when) for m in emails] or [_no_mail(link, now)],
            opens=sum(1 for e in own if e.kind == "link_opened"),
            scanner=scanner_reason(link, left_at, used_ip, asked_from.get(link.id)),
        )
        if link.first_opened_at is not None:
            said = [when(link.first_opened_at)]
            if left_at and link.first_opened_at >= left_at:
                said.append(clinic_gettext("%(ago)s after the mail left", ago=_ago(link.first_opened_at, left_at)))
            said.append(clinic_gettext("in %(browser)s", browser=browser_words(link.first_opened_agent)))
            if link.first_opened_method == "HEAD":
                said.append(clinic_gettext("with a HEAD request"))
            said.append(clinic_gettext("from %(ip)s", ip=link.first_opened_ip or clinic_gettext("an unknown address")))
            row.opened = ", ".join(said)
        row.outcome, row.outcome_text = _outcome(link, numbers, now, when, used_ip)
        refused = [e for e in own if e.kind == "link_rejected"]
        for event in refused[-5:]:
            said = {"when": when(event.at), "refusal": _word(REFUSALS, event.detail), "ip": event.ip}
            row.notes.append(clinic_gettext("Opened %(when)s and refused as \u201c%(refusal)s\u201d, from %(ip)s.",
                                            **said) if event.ip
                             else clinic_gettext("Opened %(when)s and refused as \u201c%(refusal)s\u201d.", **said))
        if len(refused) > 5:
            row.notes.insert(0, clinic_ngettext("Refused %(num)d time in all; the latest five:",
                                                "Refused %(num)d times in all; the latest five:", len(refused)))
        if link.code_attempts and link.revoked_reason != "too_many_codes":
            if link.code_attempts >= MAX_CODE_ATTEMPTS:
                row.notes.append(clinic_ngettext(
                    "%(num)d wrong code entered; its code no longer works, the link itself still does.",
                    "%(num)d wrong codes entered; its code no longer works, the link itself still does.",
                    link.code_attempts))
            else:
                row.notes.append(clinic_ngettext("%(num)d wrong code entered.", "%(num)d wrong codes entered.",
                                                 link.code_attempts))
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
    return [OtherMailRow(kind=e.kind, what=_word(MAIL_KINDS, e.kind, e.kind.replace("_", " ").capitalize()),
                         subject=e.subject, mail=_mail_row(e, when)) for e in emails]


# Events about one link, in words: %(link)s is "Link 3" (or "A link"), %(detail)s the event's own.
LINK_EVENTS = {
    "link_issued": clinic_N_("%(link)s issued: %(reason)s"),
    "link_opened": clinic_N_("%(link)s opened"),
    "link_redeemed": clinic_N_("%(link)s used to sign in"),
    "link_rejected": clinic_N_("%(link)s refused: %(refusal)s"),
    "code_rejected": clinic_N_("Wrong code for %(link_lower)s (%(detail)s)"),
    "link_sent_by_clinician": clinic_N_("%(link)s sent by a clinician"),
    "invitation_sent": clinic_N_("Invitation sent (%(link_lower)s)"),
}
# The details that change a link event's words: a whole sentence each, for the translator.
LINK_EVENT_DETAILS = {
    ("link_opened", "HEAD"): clinic_N_("%(link)s opened (a HEAD request: probably a mail scanner)"),
    ("link_redeemed", "by code"): clinic_N_("%(link)s used to sign in with the code from the email"),
    ("link_redeemed", "by link"): clinic_N_("%(link)s used to sign in with the link"),
}


def _describe(event: AuditEvent, numbers: dict, zone: str = "UTC") -> str:
    kind, detail = event.kind, event.detail
    if kind == "session_ended":
        return _word(SESSION_ENDS, detail, clinic_gettext("Session ended (%(detail)s)", detail=detail))
    if kind in LINK_EVENTS:
        link = (clinic_gettext("Link %(number)s", number=numbers[event.link_id]) if event.link_id in numbers
                else clinic_gettext("A link"))
        words = LINK_EVENT_DETAILS.get((kind, detail), LINK_EVENTS[kind])
        return clinic_gettext(words, link=link, link_lower=link.lower(), detail=detail,
                              reason=_word(REASONS, detail, detail or "").lower(), refusal=_word(REFUSALS, detail))
    if kind.startswith("appointment_"):
        return _appointment_event(kind, detail, zone)
    if kind.startswith("telehealth_"):
        return _telehealth_event(kind, detail)
    words = _word(EVENTS, kind, kind.replace("_", " ").capitalize())
    # Details that are codes say nothing the words do not: only the ones in words are shown.
    if not detail or kind in ("signed_in", "signed_out") or re.fullmatch(r"[a-z_]+", detail):
        return words
    return f"{words} ({detail})"


# Appointment events keep their times in UTC ("telehealth 2026-12-01 23:10Z–00:15Z"); they are
# said here on the practice's clock.
_UTC_SPAN = re.compile(r"(?:(\w+) )?(?:now )?(\d{4}-\d\d-\d\d \d\d:\d\d)Z(?:–(\d\d:\d\d)Z)?")
KIND_WORDS = {"telehealth": clinic_N_("video session"), "in_person": clinic_N_("in person"),
              "phone": clinic_N_("phone call")}


def _appointment_event(kind: str, detail: str, zone: str) -> str:
    words = _word(EVENTS, kind, kind.replace("_", " ").capitalize())
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
        return clinic_gettext("Appointment changed: now %(when)s", when=text)
    return f"{words}: {text}" + (f", {_word(KIND_WORDS, what, what.replace('_', ' '))}" if what else "")


TELEHEALTH = {
    "telehealth_entered": clinic_N_("Joined the video session"),
    "telehealth_rejoined": clinic_N_("Rejoined the video session"),
    "telehealth_left": clinic_N_("Left the video session"),
    "telehealth_refused": clinic_N_("Could not join the video session"),
}
TELEHEALTH_REFUSALS = {
    "full": clinic_N_("it already had its participants"), "not_yet": clinic_N_("it had not opened yet"),
    "closed": clinic_N_("it had closed"), "cancelled": clinic_N_("it was cancelled"),
    "in_person": clinic_N_("it is an in-person appointment"), "archived": clinic_N_("the client is archived"),
}


def _telehealth_event(kind: str, detail: str) -> str:
    """"appointment 5 as clinician: full" -> "Could not join the video session (as the clinician): it already
    had its participants"."""
    words = _word(TELEHEALTH, kind, kind.replace("_", " ").capitalize())
    match = re.fullmatch(r"appointment \d+ as (\w+)(?:: (.*))?", detail or "")
    if not match:
        return f"{words} ({detail})" if detail else words
    role, reason = match.groups()
    text = clinic_gettext("%(words)s (the clinician)", words=words) if role == "clinician" else words
    if reason:
        text += ": " + _word(TELEHEALTH_REFUSALS, reason, reason.replace("_", " "))
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
