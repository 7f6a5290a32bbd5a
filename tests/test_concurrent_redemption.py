"""Against real server processes, not the Flask test client:

* twenty browsers pressing "Continue" on the same link at the same instant, served by
  gunicorn with two worker processes (so two processes, and several threads each, race
  for the one conditional UPDATE): exactly one is signed in, on SQLite and on PostgreSQL;
* the request log of `portal.py serve` shows /s/… and never the token itself.
"""
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import requests

from portal import create_app
from practice.clients import add_client
from practice.links import issue_link
from practice.models import Session, db
from tests.conftest import CSRF_INPUT, free_port

REPO = Path(__file__).resolve().parent.parent
SECRET_KEY = "concurrent-test-secret-key"
BROWSERS = 20


def _close_test_connections():
    """The server processes own the database now: the test process lets go of it."""
    if hasattr(db.obj, "close_all"):
        db.obj.close_all()
    elif not db.is_closed():
        db.close()


def _server_env(database_url: str, port: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAIL_")}
    env.update(
        DATABASE_URL=database_url,
        SECRET_KEY=SECRET_KEY,
        PORTAL_SCHEDULER="off",
        PORTAL_BASE_URL=f"http://127.0.0.1:{port}",
        PYTHONUNBUFFERED="1",
    )
    return env


@contextmanager
def running_server(command, env, log_path: Path, port: int, *, stop_signal=signal.SIGTERM):
    """Start the server, wait (bounded) until /healthz answers 200, and always stop it."""
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30  # waiting for a process to start, not moving time
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"server exited with {process.returncode}:\n{log_path.read_text()}")
            try:
                # gunicorn's master accepts before its workers have imported the app:
                # a read timeout here means "not ready yet", like a refused connection.
                if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass
            time.sleep(0.1)
        else:
            raise AssertionError(f"server did not answer /healthz:\n{log_path.read_text()}")
        yield base
    finally:
        if process.poll() is None:
            process.send_signal(stop_signal)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


def _issue_link(database_url: str, make_app=None):
    """Schema, a client and a live sign-in link, made from the test process."""
    app = make_app(DATABASE_URL=database_url, SECRET_KEY=SECRET_KEY) if make_app else create_app(
        {"DATABASE_URL": database_url, "SECRET_KEY": SECRET_KEY, "PORTAL_SCHEDULER": "off", "TESTING": True})
    with app.app_context():
        client = add_client("alex@example.com", "Alex Morgan")
        token = issue_link(client, "client_request").token
    _close_test_connections()
    return client, token


def test_twenty_simultaneous_redemptions_sign_in_exactly_once(make_app, database_url, tmp_path):
    client, token = _issue_link(database_url, make_app)
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "--workers", "2", "--threads", "8", "--access-logfile", "-",
               "--bind", f"127.0.0.1:{port}", "--no-control-socket", "portal:create_app()"]
    log_path = tmp_path / "gunicorn.log"

    with running_server(command, _server_env(database_url, port), log_path, port) as base:
        url = f"{base}/s/{token}"
        browsers = [requests.Session() for _ in range(BROWSERS)]
        try:
            # Each browser opens the link first: its own CSRF cookie and form token.
            csrf_tokens = []
            for browser in browsers:
                page = browser.get(url, headers={"Connection": "close"}, timeout=30)
                assert page.status_code == 200, page.text
                match = CSRF_INPUT.search(page.text)
                assert match, "no CSRF token on the link page"
                csrf_tokens.append(match.group(1))

            # Then all twenty press "Continue to the portal" at once.
            barrier = threading.Barrier(BROWSERS)
            responses = [None] * BROWSERS
            errors = []

            def press(index):
                try:
                    barrier.wait(timeout=30)
                    responses[index] = browsers[index].post(
                        url, data={"csrf_token": csrf_tokens[index]}, allow_redirects=False, timeout=60)
                except Exception as error:  # reported below, with the server's log
                    errors.append(error)

            threads = [threading.Thread(target=press, args=(i,)) for i in range(BROWSERS)]
            started = time.monotonic()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=90)
            elapsed = time.monotonic() - started
            assert not errors, f"{errors}\n{log_path.read_text()}"
            assert all(r is not None for r in responses)

            statuses = sorted(r.status_code for r in responses)
            assert not [s for s in statuses if s >= 500], (
                f"server errors (database locked?): {statuses}\n{log_path.read_text()}")
            winners = [i for i, r in enumerate(responses) if r.status_code == 303]
            losers = [r for r in responses if r.status_code != 303]
            assert len(winners) == 1, statuses
            winner = responses[winners[0]]
            assert winner.headers["Location"] == "/portal"
            assert winner.cookies.get("portico")
            assert len(losers) == BROWSERS - 1
            for loser in losers:
                assert loser.status_code == 410, loser.status_code
                assert "This link no longer works" in loser.text
                assert "already used" in loser.text
                assert "portico" not in loser.cookies

            # The winner really is signed in; a loser is not.
            home = browsers[winners[0]].get(f"{base}/portal", allow_redirects=False, timeout=30)
            assert home.status_code == 200
            assert "Hello, Alex Morgan" in home.text
            loser_index = next(i for i in range(BROWSERS) if i not in winners)
            assert browsers[loser_index].get(f"{base}/portal", allow_redirects=False, timeout=30).status_code != 200
            print(f"\n{database_url.split(':')[0]}: {BROWSERS} simultaneous POSTs answered in {elapsed:.2f}s")
        finally:
            for browser in browsers:
                browser.close()

    assert Session.select().where(Session.client == client.id).count() == 1
    _close_test_connections()
    # gunicorn's access log saw all forty requests, and never the token.
    log = log_path.read_text(encoding="utf-8", errors="replace")
    assert token not in log and log.count("/s/… HTTP/1.1") >= 2 * BROWSERS, log


TOKEN_IN_LOG = re.compile(r"/s/(?!…)[^\s\"]+")


def test_request_log_redacts_tokens(tmp_path):
    database_url = f"sqlite:///{tmp_path / 'portico.db'}"
    _, token = _issue_link(database_url)
    stranger = secrets.token_urlsafe(24)
    port = free_port()
    command = [sys.executable, "portal.py", "serve", "--host", "127.0.0.1", "--port", str(port)]
    log_path = tmp_path / "serve.log"

    # SIGINT: werkzeug's server stops on KeyboardInterrupt, after its log lines are written.
    with running_server(command, _server_env(database_url, port), log_path, port,
                        stop_signal=signal.SIGINT) as base:
        assert requests.get(f"{base}/s/{token}", timeout=10).status_code == 200
        assert requests.get(f"{base}/s/{stranger}", timeout=10).status_code == 404

    log = log_path.read_text(encoding="utf-8", errors="replace")
    assert token not in log
    assert stranger not in log
    assert log.count("GET /s/… HTTP/1.1") == 2, log
    assert not TOKEN_IN_LOG.search(log), log
