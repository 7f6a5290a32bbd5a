"""The layout DESIGN.md describes: data flows blueprint -> practice, nothing imports upward,
the domain knows no Flask, and its wiring is explicit (no import side effects)."""
import ast
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from jinja2 import Environment, FileSystemLoader, select_autoescape

ROOT = Path(__file__).resolve().parent.parent
# werkzeug.security's password hashes are plain functions, not the web framework: allowed.
FLASK_PACKAGES = ("flask", "flask_login", "flask_mail", "flask_wtf", "flask_limiter", "flask_babel", "htmx_flask")


def imported_modules(path: Path) -> list[str]:
    """Every module a file imports, relative imports resolved against its package."""
    tree = ast.parse(path.read_text(), str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                names.append(".".join(base + ([node.module] if node.module else [])))
            else:
                names.append(node.module)
    return names


def modules_under(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def test_scanner_resolves_relative_imports():
    imports = imported_modules(ROOT / "blueprints" / "clinic" / "auth.py")
    assert "blueprints._auth" in imports and "blueprints.clinic" in imports and "flask" in imports


@pytest.mark.parametrize("path", modules_under("practice"), ids=lambda p: p.name)
def test_the_domain_imports_no_flask(path):
    flask_imports = [name for name in imported_modules(path) if name.split(".")[0] in FLASK_PACKAGES]
    assert flask_imports == [], f"{path.name} imports {flask_imports}"


@pytest.mark.parametrize("path", modules_under("practice"), ids=lambda p: p.name)
def test_the_domain_imports_nothing_above_it(path):
    upward = [name for name in imported_modules(path) if name.split(".")[0] in ("portal", "portico", "blueprints")]
    assert upward == [], f"{path.name} imports {upward}"


@pytest.mark.parametrize("path", modules_under("blueprints") + modules_under("portico"), ids=lambda p: p.name)
def test_nothing_imports_the_entry_point(path):
    assert "portal" not in imported_modules(path), f"{path.name} imports portal"


def test_portal_is_a_small_factory():
    assert len((ROOT / "portal.py").read_text().splitlines()) < 150


class PlainRenderer:
    """What a script gives the domain instead of Flask: Jinja and links on a base URL."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.jinja = Environment(loader=FileSystemLoader(ROOT / "templates"), autoescape=select_autoescape(),
                                 extensions=["jinja2.ext.i18n"])
        self.jinja.policies["ext.i18n.trimmed"] = True
        self.jinja.install_null_translations(newstyle=True)  # the source text, English

    def render(self, template, **context):
        return self.jinja.get_template(template).render(**context)

    def url(self, endpoint, **values):
        return f"{self.base_url}/{endpoint}/" + "/".join(str(value) for value in values.values())


@pytest.fixture
def domain_only(tmp_path):
    """The domain on a database of its own, built as a script would: no Flask app at all."""
    from practice.models import create_schema, db, open_database
    from practice.runtime import Settings
    from practice.wiring import build_domain
    db.initialize(open_database(f"sqlite:///{tmp_path / 'domain.db'}"))
    with db.connection_context():
        create_schema()
    build_domain(Settings(base_url="https://portal.example", secret_key="script-secret"),
                 PlainRenderer("https://portal.example"))
    with db.connection_context():
        yield
    db.close()


def test_booking_without_the_web_app_plans_its_reminders(domain_only):
    from practice.appointments import create_appointment
    from practice.clients import add_client
    from practice.clinicians import create_clinician
    from practice.models import Email, Reminder
    clinician = create_clinician("dana@example.com", "Dana Hale", "correct horse battery staple")
    client = add_client("alex@example.com", "Alex Morgan")
    start = datetime.utcnow().replace(microsecond=0) + timedelta(days=5)
    appointment = create_appointment(clinician=clinician, client=client, starts_at=start,
                                     ends_at=start + timedelta(minutes=50))
    assert sorted(r.offset_hours for r in Reminder.select().where(Reminder.appointment == appointment)) == [24, 72]
    soon = datetime.utcnow().replace(microsecond=0) + timedelta(hours=3)
    create_appointment(clinician=clinician, client=client, starts_at=soon, ends_at=soon + timedelta(minutes=50))
    confirmed = Email.get(Email.kind == "appointment_confirmed")  # inside both windows: a notice instead
    assert "https://portal.example/telehealth.join/" in confirmed.text_body


def test_a_script_that_never_builds_the_domain_is_told_so(tmp_path):
    script = f"""
from datetime import datetime, timedelta
from practice.models import create_schema, db, open_database
from practice.runtime import NotConfigured
db.initialize(open_database("sqlite:///{tmp_path / 'bare.db'}"))
with db.connection_context():
    create_schema()
    from practice.appointments import create_appointment
    from practice.clients import add_client
    from practice.clinicians import create_clinician
    start = datetime(2030, 1, 7, 10)
    try:
        create_appointment(clinician=create_clinician("k@example.com", "Kim", "x" * 12),
                           client=add_client("a@example.com", "Alex"), starts_at=start,
                           ends_at=start + timedelta(hours=1))
    except NotConfigured as error:
        print("refused:", error)
    from practice.models import Appointment
    print("appointments saved:", Appointment.select().count())
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "refused: call practice.wiring.build_domain()" in result.stdout
    assert "appointments saved: 0" in result.stdout  # never a booking without its reminders
