"""The scheduler: one per process, started by `serve` (unless PORTAL_SCHEDULER=off) or
`worker`, never at import, in create_app or in tests (they call practice.jobs directly)."""
import threading
from datetime import datetime, timezone

from apscheduler.schedulers.background import BackgroundScheduler

from practice import jobs
from practice.wakeup import announce_mail

scheduler: BackgroundScheduler | None = None
RETENTION_TICK_SECONDS = 3600  # pruning by the day needs no finer clock
_in_job = threading.local()


def wake_mail_job() -> None:
    """Run the mail job now rather than at its next tick: a client is waiting for a link.
    The job of this process when it runs the scheduler; else a worker's, through PostgreSQL."""
    if getattr(_in_job, "running", False):
        return  # a tick's own mail leaves with that tick or the next; a wake-up would only be refused
    if scheduler is not None and scheduler.running:
        scheduler.modify_job("mail", next_run_time=datetime.now(timezone.utc))
    else:
        announce_mail()


def _in_app(app, tick):
    """The tick inside the app's context, so the domain works with this app's runtime."""
    def run() -> None:
        _in_job.running = True
        try:
            with app.app_context():
                tick()
        finally:
            _in_job.running = False
    return run


def start_scheduler(app, *, paused: bool = False) -> BackgroundScheduler:
    global scheduler
    if scheduler is not None:
        return scheduler
    scheduler = BackgroundScheduler(timezone="UTC")
    for job_id, name, tick, seconds in (
            ("reminders", "reminder tick", jobs.safe_reminder_tick, app.config["PORTAL_REMINDER_TICK_SECONDS"]),
            ("mail", "mail tick", jobs.safe_mail_tick, app.config["PORTAL_MAIL_TICK_SECONDS"]),
            ("retention", "retention tick", jobs.safe_retention_tick, RETENTION_TICK_SECONDS)):
        scheduler.add_job(_in_app(app, tick), "interval", seconds=seconds, id=job_id, name=name, max_instances=1,
                          coalesce=True, next_run_time=datetime.now(timezone.utc))
    scheduler.start(paused=paused)
    return scheduler


def stop_scheduler() -> None:
    global scheduler
    if scheduler is not None:
        scheduler.shutdown(wait=False)
        scheduler = None
