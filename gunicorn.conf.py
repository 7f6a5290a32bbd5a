"""gunicorn settings for Portico's web processes:

    PORTAL_SCHEDULER=off gunicorn -c gunicorn.conf.py

with one `python portal.py worker` beside them for the scheduled jobs (mail, reminders).
Under gunicorn the web processes never start the scheduler: create_app() does not, only
`portal.py serve` and `portal.py worker` do. PORTAL_SCHEDULER=off says so where the web
service is defined (it is not forced here through raw_env, which would silently override
the environment), and `portal.py serve` started from the same environment honours it.

Environment: PORTAL_BIND (default 127.0.0.1:8000; comma-separated for several),
WEB_CONCURRENCY (worker processes, default 2), PORTAL_WEB_THREADS (threads per worker,
default 16), plus everything create_app() reads (docs/configuration.md).
"""
import os

wsgi_app = "portal:create_app()"
bind = os.environ.get("PORTAL_BIND", "127.0.0.1:8000").split(",")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))

# Threads, not sync workers: each participant of a telehealth room long-polls for up to 20 s
# (holding a thread, though no database connection), and a sync worker would serve nobody
# else meanwhile. Keep threads at most 20, the PostgreSQL pool of each process.
worker_class = "gthread"
threads = int(os.environ.get("PORTAL_WEB_THREADS", "16"))
graceful_timeout = 30  # on stop or reload, a long-poll in progress ends by itself within 20 s
keepalive = 5  # seconds an idle keep-alive connection from the proxy stays open

# Access log on stdout (the journal under systemd). Its lines show request paths, and
# create_app() puts the RedactTokens filter on gunicorn's loggers in every worker, so a
# sign-in or join link appears as /s/… or /t/…, never with its token.
accesslog = "-"
errorlog = "-"
loglevel = "info"

# gunicorn's control socket has one default path per user, which a second gunicorn on the
# same host (another instance, or a test) would fight over; Portico does not use it.
control_socket_disable = True
