"""The scheduler's leader lock (scheduler/leader.py): one process leads, the others stand by and take over."""

from __future__ import annotations

import sqlalchemy as sa

from residents_app.extensions import db as _db
from residents_app.scheduler import cli as scheduler_cli
from residents_app.scheduler.leader import LEADER_LOCK_KEY, LeaderLock


def test_one_leads_the_other_stands_by_and_takes_over_when_the_leader_lets_go(app):
    with app.app_context():
        first, second = LeaderLock(_db.engine), LeaderLock(_db.engine)
        try:
            if _db.engine.dialect.name != "postgresql":  # one machine, one scheduler: nothing to take
                assert (first.held(), second.held(), first.conn, second.conn) == (True, True, None, None)
                return
            assert (first.held(), second.held()) == (True, False)
            assert first.held() is True  # still ours: the same connection
            first.release()
            assert (second.held(), first.held()) == (True, False)
        finally:
            first.release()
            second.release()


def test_a_leader_whose_lock_connection_died_takes_the_lock_again_or_stands_by(app):
    with app.app_context():
        if _db.engine.dialect.name != "postgresql":
            assert LeaderLock(_db.engine).held() is True
            return
        first, second = LeaderLock(_db.engine), LeaderLock(_db.engine)
        try:
            assert first.held() is True
            pid = first.conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
            first.conn.commit()
            with _db.engine.connect() as admin:  # a database restart, for that one connection
                admin.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})
                admin.commit()
            assert second.held() is True  # the server let go of the lock with the connection
            assert first.held() is False and first.conn is None  # noticed; stands by, never two leaders
            second.release()
            assert first.held() is True
            with _db.engine.connect() as c:
                holders = c.execute(sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                            "AND objid = :k AND granted AND database = (SELECT oid FROM pg_database "
                                            "WHERE datname = current_database())"), {"k": LEADER_LOCK_KEY}).scalar_one()
            assert holders == 1
        finally:
            first.release()
            second.release()


def test_a_standby_runs_no_job(app, monkeypatch):
    class Standby:
        def held(self):
            return False

    ran = []
    monkeypatch.setattr("residents_app.scheduler.jobs.tick", lambda now: ran.append(now))
    out = scheduler_cli.run_tick_job(app, leader=Standby())
    assert (out["status"], ran) == ("standby", [])
    assert scheduler_cli.run_send_job(app, leader=Standby())["status"] == "standby"


def test_the_tick_interval_is_a_setting(app, monkeypatch):
    monkeypatch.setenv("SCHEDULER_TICK_SECONDS", "5")
    jobs = {j.id: j for j in scheduler_cli.build_scheduler(app).get_jobs()}
    assert {k: j.trigger.interval.total_seconds() for k, j in jobs.items()} == {"tick": 5.0, "send_outbox": 5.0}
