"""The client's private calendar feed, for phone calendars."""
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, make_response

from practice.feeds import client_for_feed, feed_calendar
from practice.reminders import telehealth_join_url

bp = Blueprint("feed", __name__)


@bp.get("/feed/<token>.ics")
def calendar_feed(token):
    client = client_for_feed(token, current_app.config["SECRET_KEY"].encode())
    if client is None:
        abort(404)
    host = urlsplit(current_app.config["PORTAL_BASE_URL"]).hostname or "portico"
    response = make_response(feed_calendar(client, host=host, join_url=telehealth_join_url))
    response.headers["Content-Type"] = "text/calendar; charset=utf-8"
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex"
    return response
