"""Practice settings: the tunable defaults of the rules, changed by an admin and audited."""
from . import audit, runtime
from .models import Practice, write_transaction
from .text import CONTROL_MESSAGE, has_control_characters

EDITABLE = (
    "name", "timezone", "contact_email", "sign_in_link_minutes", "invitation_link_hours",
    "quiet_hours_start", "quiet_hours_end", "client_idle_minutes", "telehealth_grace_minutes",
    "reminder_offsets", "clinician_idle_minutes", "room_entry", "require_second_factor",
    # Clients' online changes (their own form: blueprints/clinic/online_changes.py).
    "phone", "online_change_hours", "online_change_weeks", "online_change_approval", "buffer_minutes",
)

# Both go into every email's headers (From's display name, Reply-To).
HEADER_SETTINGS = ("name", "contact_email")
PLAIN_SETTINGS = ("phone",)  # shown on pages: no control characters either


class SettingsError(ValueError):
    """A setting that cannot be saved; `field` names it."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


def update_settings(values: dict, *, by=None) -> list[str]:
    """Apply validated values; returns the names of the settings that changed (each audited)."""
    for name in HEADER_SETTINGS + PLAIN_SETTINGS:
        if isinstance(values.get(name), str) and has_control_characters(values[name]):
            raise SettingsError(CONTROL_MESSAGE, name)
    changed = []
    with write_transaction():
        practice = Practice.current()
        for name in EDITABLE:
            if name in values and values[name] != getattr(practice, name):
                audit.record("setting_changed", clinician=by,
                             detail=f"{name}: {getattr(practice, name)!s} -> {values[name]!s}")
                setattr(practice, name, values[name])
                changed.append(name)
        if changed:
            practice.save()
    # Quiet hours are in each client's zone, else the practice's: a new practice zone moves them too.
    if {"reminder_offsets", "quiet_hours_start", "quiet_hours_end", "timezone"} & set(changed):
        for listener in runtime.current().listeners.settings_changed:
            listener(changed)
    return changed
