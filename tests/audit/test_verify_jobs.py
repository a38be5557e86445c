"""`flask audit verify --jobs N` (issue 19 item 5): the chains (one per estate) and each estate's extra checks in N
worker processes; the same lines, in the same order, and the same exit code as one process.

The workers see only committed data, so these tests use a database of their own (a SQLite file, or a scratch
PostgreSQL database with RAPP_TEST_DB=postgresql), committed and thrown away afterwards.

Three estates (1幢 101 100.00 m², 102 80.00 m²), each with an opened round and ballots on its chain.
"""

from __future__ import annotations

import contextlib
import os
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from residents_app import create_app
from residents_app.audit import db_guards
from residents_app.audit.models import AuditEvent
from residents_app.audit.parallel import verify_chains
from residents_app.audit.verify import chains_present, verify_chain
from residents_app.extensions import db as _db
from residents_app.rounds.models import RoundCount
from tests.conftest import PG_ADMIN, TEST_DB, Factory

T0 = datetime(2026, 8, 20, 2, 0, tzinfo=UTC)


@contextlib.contextmanager
def _own_database(tmp_path):
    if TEST_DB != "postgresql":
        yield f"sqlite:///{tmp_path / 'jobs.db'}"
        return
    import psycopg
    from psycopg import sql

    name = f"rapp_test_jobs_{os.getpid()}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def world(tmp_path):
    """An app on its own database with three estates' chains, committed. Yields (app, estate ids)."""
    from residents_app.rounds import ballots
    from residents_app.rounds import services as svc

    with _own_database(tmp_path) as url:
        app = create_app({"TESTING": True, "AUDIT_SEALER": "inline", "SQLALCHEMY_DATABASE_URI": url,
                          "SECRET_KEY": "test-secret", "SERVER_NAME": None})
        with app.app_context():
            _db.create_all()
            db_guards.install(_db.engine)
            factory = Factory(_db)
            estates = []
            for i in range(3):
                estate = factory.estate(code=f"JOB{i}", buildings={"1幢": [("101", "100.00"), ("102", "80.00")]})
                rnd = svc.create_round(estate.id, svc.RoundInput(
                    kind="willingness", title=f"改不改{i}", opens_at=T0, closes_at=T0 + timedelta(days=14)), T0)
                svc.open_round(rnd.id, T0, "system:test")
                for k, b in enumerate(estate.buildings[0].units[: i + 1]):
                    ballots.cast_ballot(rnd.id, b.id, b.ownerships[0].owner_id, "agree", T0 + timedelta(hours=k))
                estates.append(estate.id)
            _db.session.commit()
            _db.session.remove()
        try:
            yield app, estates
        finally:
            with app.app_context():
                _db.session.remove()
                _db.engine.dispose()


def _verify(app, *args):
    return app.test_cli_runner().invoke(args=["audit", "verify", *args])


def test_jobs_give_the_same_output_as_one_process(world):
    app, estates = world
    one, two = _verify(app), _verify(app, "--jobs", "2")
    assert (one.exit_code, two.exit_code) == (0, 0), (one.output, two.output, repr(two.exception))
    assert two.output == one.output
    # round.created, round.opened, one ballot per voter (1, 2 and 2 of the 2 units): 3, 4 and 4 entries.
    assert [line.split("：")[1].split("，")[0] for line in one.output.splitlines() if line.startswith("OK    链")] \
        == ["3 条", "4 条", "4 条"]
    assert "校验通过：3 条链全部完好" in two.output
    with app.app_context():
        assert chains_present() == estates
        assert verify_chains(estates, jobs=2) == [verify_chain(c) for c in estates]


def test_a_broken_chain_and_a_counter_problem_are_named_the_same_with_jobs(world):
    app, estates = world
    with app.app_context():
        target = _db.session.execute(sa.select(AuditEvent.id).where(
            AuditEvent.chain == estates[1], AuditEvent.seq == 3)).scalar_one()
        conn = _db.session.connection()
        with db_guards.allow_writes(conn):
            conn.execute(sa.update(AuditEvent).where(AuditEvent.id == target).values(actor="user:9:改过"))
        _db.session.execute(sa.update(RoundCount).where(RoundCount.choice == "agree")
                            .values(units=RoundCount.units + 1))
        _db.session.commit()
        _db.session.remove()
    one, two = _verify(app), _verify(app, "--jobs", "2")
    assert (one.exit_code, two.exit_code) == (1, 1)
    assert two.output == one.output
    assert f"BROKEN 链 {estates[1]}（JOB1 " in one.output and "seq=3" in one.output
    # The counters of the three estates' rounds, each named, in estate order.
    named = [line for line in one.output.splitlines() if "round_count_mismatch" in line]
    assert [int(line.split("链 ")[1].split("（")[0]) for line in named] == estates
    assert "校验失败：1 条链有问题；3 处数据与日志不一致" in one.output


def test_jobs_must_be_positive(world):
    app, _ = world
    result = _verify(app, "--jobs", "0")
    assert result.exit_code == 2
