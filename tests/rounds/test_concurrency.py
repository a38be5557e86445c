"""Two (or eight) ballots for the same unit at the same instant: one counted, the others changes.

Real commits from real threads, each with its own connection (live_app), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from residents_app.audit.models import AuditEvent
from residents_app.extensions import db as _db
from residents_app.rounds import services as svc
from residents_app.rounds.models import Ballot, CurrentBallot
from tests.conftest import NOW, Factory


@pytest.mark.parametrize("deferred", [False, True], ids=["chain-in-transaction", "pending-then-sealer-thread"])
def test_simultaneous_casts_for_one_unit_count_exactly_once(live_app, deferred, monkeypatch):
    """Synchronous: each cast appends to the chain under its lock. Deferred (what the views do): each cast
    commits its event to audit_pending without the lock and wakes this process's sealer thread."""
    from residents_app.audit import sealer
    from residents_app.audit.services import pending_count
    from residents_app.audit.verify import verify_chain

    monkeypatch.setitem(live_app.config, "AUDIT_SEALER", "thread")
    monkeypatch.setitem(live_app.config, "AUDIT_DEFER_ON_SQLITE", True)  # the same mechanism on both databases
    with live_app.app_context():
        estate = Factory(_db).estate(buildings={"1幢": [("101", "80.00"), ("102", "70.00")]})
        rnd = svc.create_round(estate.id, svc.RoundInput(kind="general", title="并发", opens_at=NOW,
                                                         closes_at=NOW + timedelta(days=1)), NOW)
        svc.open_round(rnd.id, NOW, None)
        unit = estate.buildings[0].units[0]
        other = estate.buildings[0].units[1]
        ids = (rnd.id, unit.id, unit.ownerships[0].owner_id, other.id, other.ownerships[0].owner_id)
        chain = estate.id
        _db.session.commit()
        _db.session.remove()
    round_id, unit_id, owner_id, other_id, other_owner = ids
    n = 8
    barrier = threading.Barrier(n + 1)
    errors, receipts = [], []

    def worker(i):
        with live_app.app_context():
            try:
                barrier.wait()
                target, who = (other_id, other_owner) if i == n else (unit_id, owner_id)
                b = svc.cast_ballot(round_id, target, who, "agree" if i % 2 else "disagree", NOW + timedelta(hours=1),
                                    defer_audit=deferred)
                receipts.append(b.receipt_code)
                _db.session.commit()
                if deferred:
                    sealer.after_commit()
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(repr(exc))
            finally:
                _db.session.remove()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(1, n + 1)]
    for t in threads:
        t.start()
    barrier.wait()
    for t in threads:
        t.join(30)
    assert errors == []
    assert len(set(receipts)) == n
    with live_app.app_context():
        statuses = _db.session.execute(sa.select(Ballot.status, sa.func.count()).where(
            Ballot.round_id == round_id, Ballot.unit_id == unit_id).group_by(Ballot.status)).all()
        assert dict(statuses) == {"counted": 1, "superseded": n - 2}
        current = _db.session.get(CurrentBallot, (round_id, unit_id))
        assert _db.session.get(Ballot, current.ballot_id).status == "counted"
        assert _db.session.get(CurrentBallot, (round_id, other_id)) is not None
        t = svc.compute_tally(round_id)
        assert (t.figures.voted_count, t.figures.total_count) == (2, 2)
        _db.session.remove()
    assert sealer.wait_idle(live_app)
    with live_app.app_context():
        # Every cast is on the chain exactly once, each with its receipt; nothing left pending.
        cast_events = _db.session.execute(sa.select(AuditEvent.data).where(
            AuditEvent.chain == chain, AuditEvent.kind == "ballot.cast")).scalars().all()
        assert sorted(d["receipt"] for d in cast_events) == sorted(receipts)
        assert pending_count() == 0
        assert verify_chain(chain).ok
        _db.session.remove()


def test_two_schedulers_closing_at_once_close_once(live_app):
    from residents_app.rounds.models import RoundResult

    with live_app.app_context():
        estate = Factory(_db).estate(buildings={"1幢": [("101", "80.00")]})
        rnd = svc.create_round(estate.id, svc.RoundInput(kind="general", title="并发结束", opens_at=NOW,
                                                         closes_at=NOW + timedelta(days=1)), NOW)
        svc.open_round(rnd.id, NOW, None)
        round_id = rnd.id
        _db.session.commit()
        _db.session.remove()
    barrier = threading.Barrier(4)
    results, errors = [], []

    def worker():
        with live_app.app_context():
            try:
                barrier.wait()
                results.append(svc.close_round(round_id, NOW + timedelta(days=1), "system:scheduler"))
                _db.session.commit()
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(repr(exc))
            finally:
                _db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert sorted(results) == [False, False, False, True]
    with live_app.app_context():
        assert _db.session.execute(sa.select(sa.func.count()).select_from(RoundResult)).scalar_one() == 1
        _db.session.remove()
