"""The baseline: a bare Flask app with one trivial route, served with the portal's gunicorn settings."""
from flask import Flask

app = Flask(__name__)


@app.route("/", methods=["GET", "POST"])
def index():
    return "ok"


def create_bare_app() -> Flask:
    return app
