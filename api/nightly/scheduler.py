"""`credo scheduler`: the nightly run on a cron, in its own process (never in web workers).

APScheduler 3 fires the job on `[scheduler] cron` in `[scheduler] timezone`; the run's as_of is
the fire time's date there. A run missed while the process was down (within
`misfire_grace_seconds`) is started when the process starts, unless that date's run finished.
SIGTERM/SIGINT: the run in hand finishes its batch, is left resumable, and the process exits.
Every 30 seconds it also makes the pending rule-set activations whose time has come.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from api.nightly.run import RunError, StopFlag, start_run
from api.settings import Settings

log = logging.getLogger("credo.scheduler")


def cron_trigger(expression: str, timezone: str) -> CronTrigger:
    """A trigger from a 5-field crontab line, or 6 fields with seconds first."""
    fields = expression.split()
    tz = ZoneInfo(timezone)
    if len(fields) == 5:
        return CronTrigger.from_crontab(expression, timezone=tz)
    if len(fields) == 6:
        second, minute, hour, day, month, dow = fields
        return CronTrigger(
            second=second,
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=dow,
            timezone=tz,
        )
    raise ValueError(f"scheduler.cron {expression!r}: expected 5 fields (or 6 with seconds)")


def missed_fire_time(trigger: CronTrigger, now: datetime, grace_seconds: float) -> datetime | None:
    """The latest fire time within the grace period before `now`, if any."""
    start = now - timedelta(seconds=grace_seconds)
    fire, latest = trigger.get_next_fire_time(None, start), None
    while fire is not None and fire <= now:
        latest = fire
        fire = trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))
    return latest


def nightly_job(settings: Settings, stop: StopFlag, fire_time: datetime | None = None) -> None:
    """One scheduled run: as_of is the fire time's date in the scheduler's timezone."""
    from storage.db import connect

    tz = ZoneInfo(settings.scheduler.timezone)
    as_of = (fire_time or datetime.now(tz)).astimezone(tz).date()
    connect(settings.database_url)

    def claimed(run, status: str) -> None:
        if status != "finished":
            log.info(
                "run %s of %s: %s", run.run_id, as_of, "resume" if status == "resume" else "start"
            )

    try:
        result, status = start_run(settings, as_of, False, "scheduler", stop=stop, on_claim=claimed)
        if status == "finished":
            log.info("run of %s already finished (%s)", as_of, result["run_id"])
            return
        report = result.get("report") or {}
        log.info(
            "run %s of %s: %s, %s customers, %s errors, %s reminders without a message",
            result["run_id"],
            as_of,
            result["state"],
            report.get("customers_evaluated"),
            report.get("errors_count"),
            report.get("message_errors_count", 0),
        )
    except RunError as exc:
        log.error("run of %s not started: %s", as_of, exc)
    except Exception:
        log.exception("run of %s failed", as_of)


ACTIVATIONS_SECONDS = 30  # how often pending activations are looked at (api.rollout)


def activations_job(settings: Settings) -> None:
    """Make the pending activations whose time has come, so the rule sets' state and history
    show them even when no API worker and no run looks (those make them too)."""
    from api.rollout import activate_due
    from storage.db import connect

    try:
        connect(settings.database_url)
        for made in activate_due():
            log.info("rule set %s version %s activated as scheduled", made["kind"], made["version"])
    except Exception:
        log.exception("pending activations not made")


def run_scheduler(settings: Settings, stop_event: threading.Event | None = None) -> None:
    """Block until SIGTERM/SIGINT (or `stop_event`), firing runs on the configured cron."""
    conf = settings.scheduler
    trigger = cron_trigger(conf.cron, conf.timezone)
    stop, done = StopFlag(), stop_event or threading.Event()

    def on_signal(signum, frame) -> None:  # noqa: ARG001
        log.info("%s: stopping after the batch in hand", signal.Signals(signum).name)
        stop.stopped = True
        done.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    scheduler = BackgroundScheduler(timezone=ZoneInfo(conf.timezone))
    scheduler.add_job(
        nightly_job,
        trigger,
        args=(settings, stop),
        id="nightly",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=conf.misfire_grace_seconds,
    )
    scheduler.add_job(
        activations_job,
        "interval",
        seconds=ACTIVATIONS_SECONDS,
        args=(settings,),
        id="activations",
        max_instances=1,
        coalesce=True,
    )
    now = datetime.now(ZoneInfo(conf.timezone))
    missed = missed_fire_time(trigger, now, conf.misfire_grace_seconds)
    if missed is not None:
        log.info("catching up the run due at %s", missed.isoformat())
        scheduler.add_job(nightly_job, args=(settings, stop, missed), id="catch-up")
    scheduler.start()
    log.info(
        "scheduler started: cron %r in %s; next run %s",
        conf.cron,
        conf.timezone,
        scheduler.get_job("nightly").next_run_time,
    )
    try:
        done.wait()
    finally:
        stop.stopped = True
        scheduler.shutdown(wait=True)
        log.info("scheduler stopped")
