"""The client's private calendar feed, for phone calendars."""
from flask import Blueprint, abort, make_response

from practice.feeds import feed_calendar, feed_client

bp = Blueprint("feed", __name__)


@bp.get("/feed/<token>.ics")
def calendar_feed(token):
    client = feed_client(token)
    if client is None:
        abort(404)
    response = make_response(feed_calendar(client))
    response.headers["Content-Type"] = "text/calendar; charset=utf-8"
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex"
    return response
