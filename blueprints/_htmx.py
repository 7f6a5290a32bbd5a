"""The one place that reads htmx's request headers, so the library can change without the views."""
from flask import make_response, redirect, render_template, request

FRAGMENT_VARY = "HX-Request, HX-Trigger, HX-Boosted, HX-History-Restore-Request"


def wants_fragment(trigger: str) -> bool:
    """True when the element with id `trigger` asked for its fragment; boosted and
    history-restore requests carry HX-Request too but want the whole page."""
    htmx = request.htmx
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request and htmx.trigger == trigger


def page_or_fragment(page: str, fragments: dict[str, str], status: int = 200, **context):
    """The fragment for the element (by id) that asked via htmx, else the whole page; either
    way with Vary, since the answer depends on htmx's headers."""
    template = next((fragment for trigger, fragment in fragments.items() if wants_fragment(trigger)), page)
    return vary(make_response(render_template(template, **context), status))


def is_htmx() -> bool:
    return bool(request.htmx)


def vary(response):
    response.headers.add("Vary", FRAGMENT_VARY)
    return response


def redirect_to(location: str, code: int = 303):
    """A real redirect for a page; HX-Redirect for htmx, which would otherwise swap the
    target page into a small element."""
    if is_htmx():
        response = make_response("", 200)
        response.headers["HX-Redirect"] = location
        return vary(response)
    return vary(redirect(location, code))
