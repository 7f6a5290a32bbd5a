"""The client's private calendar feed, for phone calendars."""
import hashlib

from flask import Blueprint, abort, make_response, request

from practice.feeds import feed_calendar, feed_client, feed_last_modified

bp = Blueprint("feed", __name__)


@bp.get("/feed/<token>.ics")
def calendar_feed(token):
    client = feed_client(token)
    if client is None:
        abort(404)
    body = feed_calendar(client)
    response = make_response(body)
    response.headers["Content-Type"] = "text/calendar; charset=utf-8"
    response.headers["X-Robots-Tag"] = "noindex"
    # Calendars fetch this every hour or so: the same ETag (or an unchanged Last-Modified)
    # gets a 304 with no body. (portico/hardening.py still marks it no-store, as every URL
    # with a token in it: calendar apps revalidate from their own copy regardless.)
    response.set_etag(hashlib.sha256(body).hexdigest())
    response.last_modified = feed_last_modified(client)
    return response.make_conditional(request)
