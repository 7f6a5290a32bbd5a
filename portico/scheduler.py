"""The scheduler: one per process, started by `serve` (unless PORTAL_SCHEDULER=off) or
`worker`, never at import, in create_app or in tests (they call practice.jobs directly)."""
import threading
from datetime import datetime, timezone

from apscheduler.schedulers.background import BackgroundScheduler

from practice import jobs
from practice.wakeup import announce_mail

scheduler: BackgroundScheduler | None = None
RETENTION_TICK_SECONDS = 3600  # pruning by the day needs no finer clock
_job = threading.local()  # the id of the job this scheduler thread is running, if any


class MailRuns:
    """Whether the mail job is running, and whether it was woken meanwhile. APScheduler
    refuses to start a second instance of a running job (max_instances=1) and drops the
    wake-up; mail queued after the running tick's last claim then waited for the next
    interval. A wake-up that finds the job running asks it to claim once more as it ends."""

    def __init__(self):
        self.lock = threading.Lock()
        self.running = self.woken = False

    def wake(self) -> bool:
        """False when the job is not running: the caller schedules it."""
        with self.lock:
            if self.running:
                self.woken = True
            return self.running

    def run(self, tick) -> None:
        with self.lock:
            self.running = True
        try:
            while True:
                with self.lock:
                    self.woken = False
                tick()
                with self.lock:  # deciding to stop and saying so at once: no wake-up falls between
                    if not self.woken:
                        self.running = False
                        return
        finally:
            with self.lock:
                self.running = False


mail_runs = MailRuns()


def wake_mail_job() -> None:
    """Run the mail job now rather than at its next tick: a client is waiting for a link, or
    the reminder tick has queued mail. The job of this process when it runs the scheduler;
    else a worker's, through PostgreSQL."""
    if getattr(_job, "id", None) == "mail":
        return  # the mail job's own loop sends the sign-in mail it queues before it ends
    if scheduler is not None and scheduler.running:
        if not mail_runs.wake():
            scheduler.modify_job("mail", next_run_time=datetime.now(timezone.utc))
    else:
        announce_mail()


def _in_app(app, job_id: str, tick):
    """The tick inside the app's context, so the domain works with this app's runtime."""
    def in_app() -> None:
        _job.id = job_id
        try:
            with app.app_context():
                tick()
        finally:
            _job.id = None

    if job_id == "mail":
        return lambda: mail_runs.run(in_app)
    return in_app


def start_scheduler(app, *, paused: bool = False) -> BackgroundScheduler:
    global scheduler
    if scheduler is not None:
        return scheduler
    scheduler = BackgroundScheduler(timezone="UTC")
    for job_id, name, tick, seconds in (
            ("reminders", "reminder tick", jobs.safe_reminder_tick, app.config["PORTAL_REMINDER_TICK_SECONDS"]),
            ("mail", "mail tick", jobs.safe_mail_tick, app.config["PORTAL_MAIL_TICK_SECONDS"]),
            ("retention", "retention tick", jobs.safe_retention_tick, RETENTION_TICK_SECONDS)):
        scheduler.add_job(_in_app(app, job_id, tick), "interval", seconds=seconds, id=job_id, name=name,
                          max_instances=1, coalesce=True, next_run_time=datetime.now(timezone.utc))
    scheduler.start(paused=paused)
    return scheduler


def stop_scheduler(*, wait: bool = False) -> None:
    """`wait`: until the jobs running have ended (a benchmark about to drop their database)."""
    global scheduler
    if scheduler is not None:
        scheduler.shutdown(wait=wait)
        scheduler = None
