"""Two real scheduler processes (`flask scheduler run-once`) on one database act once per window.

On PostgreSQL they meet the advisory lock (and, with it disabled, the row locks); on SQLite every
transaction is BEGIN IMMEDIATE, so the re-check of each window under the write lock decides.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from residents_app.audit.models import AuditEvent
from residents_app.extensions import db as _db
from residents_app.notify.models import OutboxMessage
from residents_app.publicity.models import Publicity
from residents_app.rounds.models import Round, RoundResult
from residents_app.scheduler.models import JobRun
from tests.conftest import Factory

from .conftest import BACK, build_outage_scenario

ROOT = Path(__file__).resolve().parents[2]


def _env(database_url: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAPP_TEST")}
    env.update({"DATABASE_URL": database_url, "SECRET_KEY": "test-secret", "FLASK_APP": "residents_app",
                "PYTHONPATH": str(ROOT)})
    return env


@pytest.mark.postgres_only  # meaningful with PostgreSQL's locks; runs on SQLite too (BEGIN IMMEDIATE)
@pytest.mark.parametrize("locking", ["advisory", "row_locks_only"])
def test_two_scheduler_processes_act_once(live_app, database_url, locking):
    with live_app.app_context():
        s = build_outage_scenario(Factory(_db))
        _db.session.remove()
    cmd = [sys.executable, "-m", "flask", "scheduler", "run-once", "--now", BACK.isoformat(), "--no-send",
           "--not-before", str(time.time() + 3.0)]
    if locking == "row_locks_only":
        cmd.append("--skip-advisory-lock")
    procs = [subprocess.Popen(cmd, cwd=ROOT, env=_env(database_url), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        outputs.append(json.loads(out.strip().splitlines()[-1]))
    acted = Counter((a["kind"], a["id"]) for o in outputs for a in o["actions"])
    assert acted == Counter({("round_opened", s.r_draft): 1, ("round_closed", s.r_early): 1,
                             ("round_closed", s.r_late): 1, ("publicity_ended", s.p_early): 1,
                             ("publicity_ended", s.p_late): 1, ("publicity_notice_queued", s.p_current): 1})
    assert all("error" not in a for o in outputs for a in o["actions"])
    assert len({o["worker"] for o in outputs}) == 2  # two processes
    with live_app.app_context():
        q = _db.session.execute
        closed = Counter(q(sa.select(AuditEvent.subject_id).where(AuditEvent.kind == "round.closed")).scalars())
        assert closed == Counter({str(s.r_early): 1, str(s.r_late): 1})
        opened = Counter(q(sa.select(AuditEvent.subject_id).where(AuditEvent.kind == "round.opened")).scalars())
        assert opened[str(s.r_draft)] == 1
        done = Counter(q(sa.select(AuditEvent.subject_id).where(AuditEvent.kind == "publicity.completed")).scalars())
        assert done == Counter({str(s.p_early): 1, str(s.p_late): 1})
        assert q(sa.select(sa.func.count()).select_from(RoundResult)).scalar_one() == 2
        assert q(sa.select(sa.func.count()).select_from(OutboxMessage)).scalar_one() == s.unit_count
        assert q(sa.select(sa.func.count()).select_from(JobRun).where(JobRun.job == "tick")).scalar_one() == 2
        assert dict(q(sa.select(Round.id, Round.status)).all()) == {
            s.r_early: "closed", s.r_late: "closed", s.r_draft: "open"}
        assert q(sa.select(Publicity.status).where(Publicity.id == s.p_current)).scalar_one() == "posted"
        statuses = sorted(o["status"] for o in outputs)
        if locking == "advisory" and _db.engine.dialect.name == "postgresql":
            assert statuses in (["ok", "ok"], ["ok", "skipped"])
        else:
            assert statuses == ["ok", "ok"]
        _db.session.remove()


def test_scheduler_process_catches_up_on_start_and_stops_on_sigterm(live_app, database_url):
    """`flask scheduler run` after downtime: the first tick runs at once, before the first interval."""
    import signal

    with live_app.app_context():
        s = build_outage_scenario(Factory(_db))
        _db.session.remove()
    with subprocess.Popen([sys.executable, "-m", "flask", "scheduler", "run"], cwd=ROOT, env=_env(database_url),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            line = proc.stdout.readline()  # blocks until the catch-up tick is done
            assert line.startswith("启动补跑完成：ok "), line or proc.stderr.read()
            summary = json.loads(line.split(" ", 1)[1])
            # The real clock is past every window of the scenario (all of November 2026 is over by then).
            assert summary["round_closed"] == 2 and summary["publicity_ended"] == 3
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    with live_app.app_context():
        statuses = dict(_db.session.execute(sa.select(Publicity.id, Publicity.status)).all())
        assert statuses == {s.p_early: "completed", s.p_late: "completed", s.p_current: "completed"}
        _db.session.remove()
