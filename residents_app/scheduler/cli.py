"""`flask scheduler run` (the scheduler process) and `flask scheduler run-once [--now ISO]`.

The scheduler is its own process, never started by create_app: under gunicorn every worker would
start one. See docs/SCHEDULER.md for running it beside gunicorn with systemd.
"""

from __future__ import annotations

import json
import logging
import signal
import time
from datetime import UTC, datetime

import click
from flask import current_app
from flask.cli import AppGroup

from residents_app.core.calendar import BEIJING
from residents_app.db import utcnow

log = logging.getLogger(__name__)

cli = AppGroup("scheduler", help="定时任务进程：开启/结束表决、结束公示、关闭认缴窗口、发送提醒。")

TICK_SECONDS = 60


def parse_now(value: str | None) -> datetime:
    """ISO 8601; without an offset the time is read as Beijing time."""
    if not value:
        return utcnow()
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"“{value}”不是 ISO 8601 时间，例如 2026-10-13T00:00:00+08:00",
                                 param_hint="--now") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=BEIJING)
    return moment.astimezone(UTC)


def run_tick_job(app, clock=utcnow):
    """The APScheduler job: one app context and one tick for the current time."""
    from residents_app.extensions import db
    from residents_app.scheduler.jobs import tick

    with app.app_context():
        try:
            return _as_dict(tick(clock()))
        finally:
            db.session.remove()


def _as_dict(run) -> dict:
    """A JobRun as plain data (the session is gone once the job returns)."""
    return {"job": run.job, "now": run.now.isoformat(), "status": run.status, "summary": run.summary,
            "actions": run.actions, "worker": run.worker}


def run_send_job(app, clock=utcnow):
    from residents_app.extensions import db
    from residents_app.scheduler.jobs import send_outbox

    with app.app_context():
        try:
            return _as_dict(send_outbox(clock()))
        finally:
            db.session.remove()


def build_scheduler(app, clock=utcnow):
    """A BlockingScheduler with the tick and the send job every minute.

    misfire_grace_time=None: a run delayed by a busy machine still runs; coalesce=True: several
    missed runs become one (the tick itself catches up on everything overdue, in order).
    """
    from apscheduler.schedulers.blocking import BlockingScheduler

    sched = BlockingScheduler(timezone=UTC)
    opts = {"misfire_grace_time": None, "coalesce": True, "max_instances": 1, "replace_existing": True}
    sched.add_job(run_tick_job, "interval", seconds=TICK_SECONDS, args=[app, clock], id="tick", name="tick", **opts)
    sched.add_job(run_send_job, "interval", seconds=TICK_SECONDS, args=[app, clock], id="send_outbox",
                  name="send_outbox", **opts)
    return sched


@cli.command("run")
def run_cmd():
    """Run the scheduler in the foreground (catch up first, then every minute)."""
    app = current_app._get_current_object()
    sched = build_scheduler(app)
    stopping = []

    def _stop(signum, frame):
        log.info("scheduler: signal %s, shutting down", signum)
        stopping.append(signum)
        if sched.running:
            sched.shutdown(wait=True)

    signal.signal(signal.SIGTERM, _stop)
    run = run_tick_job(app)  # catch-up after downtime: everything overdue, in order of due time
    click.echo(f"启动补跑完成：{run['status']} {json.dumps(run['summary'], ensure_ascii=False)}")
    run_send_job(app)
    if stopping:
        return
    log.info("scheduler started; tick every %s s", TICK_SECONDS)
    try:
        sched.start()
    except (KeyboardInterrupt, SystemExit):
        pass


@cli.command("run-once")
@click.option("--now", "now_text", default=None, help="ISO 8601 time to act for (default: now). Without an "
              "offset, Beijing time.")
@click.option("--no-send", is_flag=True, help="Queue reminders but do not send the outbox.")
@click.option("--skip-advisory-lock", is_flag=True, hidden=True,
              help="Diagnostics only: rely on row locks alone (used by the concurrency test).")
@click.option("--not-before", type=float, default=None, hidden=True,
              help="Diagnostics only: wait until this Unix time (lets a test start two processes together).")
def run_once_cmd(now_text: str | None, no_send: bool, skip_advisory_lock: bool, not_before: float | None):
    """One tick (and one send) for NOW, then exit. Prints the run as JSON."""
    from residents_app.scheduler.jobs import send_outbox, tick

    now = parse_now(now_text)
    if not_before is not None:
        delay = not_before - time.time()
        if 0 < delay < 30:
            time.sleep(delay)
    run = tick(now, use_advisory_lock=not skip_advisory_lock)
    out = {"job": "tick", "now": now.isoformat(), "status": run.status, "summary": run.summary,
           "actions": run.actions, "worker": run.worker}
    if not no_send:
        out["send"] = send_outbox(now).summary
    click.echo(json.dumps(out, ensure_ascii=False))
