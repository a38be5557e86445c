"""`flask scheduler run` (the scheduler process) and `flask scheduler run-once [--now ISO]`.

The scheduler is its own process, never started by create_app: under gunicorn every worker would
start one. See docs/SCHEDULER.md for running it beside gunicorn with systemd.
"""

from __future__ import annotations

import json
import logging
import os
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


def _standby(leader) -> dict | None:
    """The job's result when this process is not the leader (leader.py), else None."""
    if leader is None or leader.held():
        return None
    return {"job": "standby", "now": utcnow().isoformat(), "status": "standby", "summary": {}, "actions": [],
            "worker": ""}


def run_tick_job(app, clock=utcnow, leader=None):
    """The APScheduler job: one app context and one tick for the current time (only while leader)."""
    from residents_app.extensions import db
    from residents_app.scheduler.jobs import tick

    with app.app_context():
        try:
            return _standby(leader) or _as_dict(tick(clock()))
        finally:
            db.session.remove()


def _as_dict(run) -> dict:
    """A JobRun as plain data (the session is gone once the job returns)."""
    return {"job": run.job, "now": run.now.isoformat(), "status": run.status, "summary": run.summary,
            "actions": run.actions, "worker": run.worker}


def run_send_job(app, clock=utcnow, leader=None):
    from residents_app.extensions import db
    from residents_app.scheduler.jobs import send_outbox

    with app.app_context():
        try:
            return _standby(leader) or _as_dict(send_outbox(clock()))
        finally:
            db.session.remove()


def tick_seconds() -> float:
    """SCHEDULER_TICK_SECONDS (default 60): how often the jobs run."""
    return float(os.environ.get("SCHEDULER_TICK_SECONDS", "") or TICK_SECONDS)


def build_scheduler(app, clock=utcnow, leader=None):
    """A BlockingScheduler with the tick and the send job every minute.

    misfire_grace_time=None: a run delayed by a busy machine still runs; coalesce=True: several
    missed runs become one (the tick itself catches up on everything overdue, in order).
    """
    from apscheduler.schedulers.blocking import BlockingScheduler

    sched = BlockingScheduler(timezone=UTC)
    opts = {"misfire_grace_time": None, "coalesce": True, "max_instances": 1, "replace_existing": True}
    every = tick_seconds()
    sched.add_job(run_tick_job, "interval", seconds=every, args=[app, clock, leader], id="tick", name="tick", **opts)
    sched.add_job(run_send_job, "interval", seconds=every, args=[app, clock, leader], id="send_outbox",
                  name="send_outbox", **opts)
    return sched


@cli.command("run")
def run_cmd():
    """Run the scheduler in the foreground (catch up first, then every minute). With several app nodes each may
    run one: the leader lock (scheduler/leader.py) lets one of them act, the others stand by."""
    from residents_app.extensions import db
    from residents_app.scheduler.leader import STANDBY_POLL_SECONDS, LeaderLock

    app = current_app._get_current_object()
    leader = LeaderLock(db.engine)
    sched = build_scheduler(app, leader=leader)
    stopping = []

    def _stop(signum, frame):
        log.info("scheduler: signal %s, shutting down", signum)
        stopping.append(signum)
        if sched.running:
            sched.shutdown(wait=True)

    signal.signal(signal.SIGTERM, _stop)
    try:
        if not leader.held():
            log.info("scheduler: another process is the leader; standing by")
            while not stopping and not leader.held():
                time.sleep(STANDBY_POLL_SECONDS)
            if stopping:
                return
        run = run_tick_job(app, leader=leader)  # catch-up after downtime: everything overdue, in order of due time
        click.echo(f"启动补跑完成：{run['status']} {json.dumps(run['summary'], ensure_ascii=False)}")
        run_send_job(app, leader=leader)
        if stopping:
            return
        log.info("scheduler started; tick every %s s", tick_seconds())
        try:
            sched.start()
        except (KeyboardInterrupt, SystemExit):
            pass
    finally:
        with app.app_context():
            leader.release()


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
