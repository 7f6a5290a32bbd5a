"""TURN credentials the way coturn is meant to be used (its "REST API" scheme, `use-auth-secret`).

Each room page gets its own short-lived credentials when its seat enters: the username is
`<expiry as a Unix time>:<name>` and the password base64(HMAC-SHA1(secret, username)). coturn
checks both with the shared secret alone and refuses a username whose time has passed, so a
credential that leaks (or a client who once joined) cannot use the practice's relay for long.
Nothing is stored, and nothing here is ever logged.
"""
import base64
import calendar
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from .clock import utcnow


@dataclass(frozen=True)
class TurnSettings:
    turn_urls: tuple[str, ...] = ()  # PORTAL_TURN_URLS
    secret: str = ""  # PORTAL_TURN_SECRET: coturn's static-auth-secret
    ttl: timedelta = timedelta(hours=2)  # PORTAL_TURN_TTL
    stun_urls: tuple[str, ...] = ()  # PORTAL_STUN_URLS
    static_servers: tuple[dict, ...] = ()  # PORTAL_ICE_SERVERS, as a practice may have set it


def turn_credentials(secret: str, name: str, ttl: timedelta, now: datetime | None = None) -> tuple[str, str]:
    """(username, password) for coturn's use-auth-secret, valid for `ttl` from `now`."""
    expiry = calendar.timegm(((now or utcnow()) + ttl).utctimetuple())  # naive UTC, as in the database
    username = f"{expiry}:{name}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def ice_servers(turn: TurnSettings, name: str, now: datetime | None = None) -> list[dict]:
    """What this room page's RTCPeerConnection is given: STUN, TURN with credentials of its
    own (when a secret is set), then whatever PORTAL_ICE_SERVERS lists."""
    servers = []
    if turn.stun_urls:
        servers.append({"urls": list(turn.stun_urls)})
    if turn.turn_urls and turn.secret:
        username, password = turn_credentials(turn.secret, name, turn.ttl, now)
        servers.append({"urls": list(turn.turn_urls), "username": username, "credential": password})
    return servers + [dict(server) for server in turn.static_servers]
