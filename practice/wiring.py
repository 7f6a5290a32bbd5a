"""The one place the domain is put together: who follows which change, and the runtime
(settings, email renderer, mailer) it works with. The web factory, the worker and any script
call build_domain(); a script that does not gets NotConfigured, never a booking that
silently plans no reminders."""
from typing import Callable

from . import online_changes, reminders, telehealth
from .runtime import EmailRenderer, Listeners, Mailer, Runtime, Settings, Translator, configure

LISTENERS = Listeners(
    # A booking, move or cancellation re-plans reminders and sends its notice; every nonce a
    # join link was derived from is kept, so an old link can say "cancelled".
    appointment_changed=(reminders.on_appointment_change, telehealth.remember_nonce,
                         online_changes.on_appointment_change),  # a pending request lapses
    # New offsets, quiet hours or practice zone: unsent reminders follow.
    settings_changed=(reminders.on_settings_change,),
    # Quiet hours are the client's own: their unsent reminders follow their zone.
    client_zone_changed=(reminders.on_client_zone_change,),
)


def build_domain(settings: Settings, renderer: EmailRenderer, *, mailer: Mailer | None = None,
                 wake_mail: Callable[[], None] | None = None, translator: Translator | None = None) -> Runtime:
    """The domain's runtime, made this process's default (see practice/runtime.py)."""
    runtime = Runtime(settings=settings, renderer=renderer, mailer=mailer, listeners=LISTENERS,
                      **({"wake_mail": wake_mail} if wake_mail else {}),
                      **({"translator": translator} if translator else {}))
    configure(runtime)
    return runtime
