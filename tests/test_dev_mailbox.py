"""The dev mailbox shows an email as it would be sent: headers, the HTML part served on its own
under a CSP that runs nothing, and the attachments as downloads; still only for this machine."""
import re
from datetime import timedelta

from practice.appointments import create_appointment
from practice.models import Email
from tests.conftest import START, deliver


def booked_mail(make_app, alex, dana):
    app = make_app(MAIL_SERVER=None)
    create_appointment(clinician=dana, client=alex, starts_at=START + timedelta(days=1),
                       ends_at=START + timedelta(days=1, minutes=50), kind="telehealth", by=dana)
    deliver(app)
    return app, Email.get(Email.kind == "appointment_confirmed")


def test_the_message_page_shows_the_headers_the_html_frame_and_the_attachment(make_app, alex, dana, traveller):
    app, mail = booked_mail(make_app, alex, dana)
    page = app.test_client().get(f"/dev/mailbox/{mail.id}").get_data(as_text=True)
    for name in ("From", "To", "Reply-To", "Message-ID"):
        assert f"<dt>{name}</dt>" in page
    assert mail.message_id.replace("<", "&lt;").replace(">", "&gt;") in page
    frame = re.search(r"<iframe[^>]*>", page)[0]
    assert f'src="/dev/mailbox/{mail.id}/html"' in frame
    assert 'sandbox="' in frame and "allow-scripts" not in frame and "allow-same-origin" not in frame
    assert f'href="/dev/mailbox/{mail.id}/attachments/0" download="appointment.ics"' in page


def test_the_html_part_is_served_under_a_csp_that_runs_nothing(make_app, alex, dana, traveller):
    app, mail = booked_mail(make_app, alex, dana)
    response = app.test_client().get(f"/dev/mailbox/{mail.id}/html")
    assert response.status_code == 200 and response.mimetype == "text/html"
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "sandbox" in policy and "allow-scripts" not in policy
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert "Alex Morgan" in response.get_data(as_text=True)


def test_the_ics_downloads_as_a_calendar_file(make_app, alex, dana, traveller):
    app, mail = booked_mail(make_app, alex, dana)
    response = app.test_client().get(f"/dev/mailbox/{mail.id}/attachments/0")
    assert response.mimetype == "text/calendar"
    assert response.headers["Content-Disposition"] == 'attachment; filename="appointment.ics"'
    assert response.get_data(as_text=True).startswith("BEGIN:VCALENDAR")
    assert app.test_client().get(f"/dev/mailbox/{mail.id}/attachments/1").status_code == 404


def test_every_part_is_only_for_this_machine(make_app, alex, dana, traveller):
    app, mail = booked_mail(make_app, alex, dana)
    for path in (f"/dev/mailbox/{mail.id}", f"/dev/mailbox/{mail.id}/html", f"/dev/mailbox/{mail.id}/attachments/0"):
        assert app.test_client().get(path, environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code == 404
