"""`flask scheduler run-once`, the APScheduler configuration, and the job wrappers."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click
import pytest

from residents_app.scheduler import cli as scheduler_cli
from residents_app.scheduler.models import JobRun

from .conftest import BACK, build_outage_scenario


def test_parse_now():
    assert scheduler_cli.parse_now("2026-11-12T10:00:00+08:00") == datetime(2026, 11, 12, 2, 0, tzinfo=UTC)
    assert scheduler_cli.parse_now("2026-11-12T10:00:00") == datetime(2026, 11, 12, 2, 0, tzinfo=UTC)  # Beijing
    assert scheduler_cli.parse_now("2026-11-12T02:00:00Z") == datetime(2026, 11, 12, 2, 0, tzinfo=UTC)
    with pytest.raises(click.BadParameter, match="不是 ISO 8601"):
        scheduler_cli.parse_now("下周一")


def test_run_once_prints_what_it_did(app, db, factory):
    s = build_outage_scenario(factory)
    result = app.test_cli_runner().invoke(args=["scheduler", "run-once", "--now", "2026-11-12T10:00:00+08:00"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output.strip().splitlines()[-1])
    assert out["now"] == BACK.isoformat() and out["status"] == "ok"
    assert out["summary"] == {"round_opened": 1, "round_closed": 2, "publicity_ended": 2,
                              "publicity_notice_queued": 1}
    assert out["send"] == {"sent": s.unit_count, "failed": 0, "retry": 0}
    bad = app.test_cli_runner().invoke(args=["scheduler", "run-once", "--now", "tomorrow"])
    assert bad.exit_code == 2 and "不是 ISO 8601" in bad.output


def test_scheduler_jobs_are_configured_for_catch_up(app):
    sched = scheduler_cli.build_scheduler(app)
    jobs = {j.id: j for j in sched.get_jobs()}
    assert set(jobs) == {"tick", "send_outbox"}
    for job in jobs.values():
        assert job.misfire_grace_time is None
        assert job.coalesce is True
        assert job.max_instances == 1
        assert job.trigger.interval.total_seconds() == 60
    assert jobs["tick"].func is scheduler_cli.run_tick_job


def test_job_wrappers_use_the_clock_and_record_runs(app, db, factory):
    build_outage_scenario(factory)
    run = scheduler_cli.run_tick_job(app, clock=lambda: BACK)
    assert run["summary"]["publicity_ended"] == 2 and run["now"] == BACK.isoformat()
    sent = scheduler_cli.run_send_job(app, clock=lambda: BACK)
    assert sent["summary"] == {"sent": 5, "failed": 0, "retry": 0}
    jobs = [r.job for r in db.session.query(JobRun).order_by(JobRun.id)]
    assert jobs == ["tick", "send_outbox"]


def test_create_app_starts_no_scheduler(app):
    import threading

    names = [t.name for t in threading.enumerate()]
    assert not any("APScheduler" in n or "apscheduler" in n.lower() for n in names)
    assert "scheduler" in app.cli.commands and set(app.cli.commands["scheduler"].commands) == {"run", "run-once"}
