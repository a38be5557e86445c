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
from residents_app.rounds import ballots as ballots_svc
from residents_app.rounds import services as svc
from residents_app.rounds import tally
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
    round_id, chain, ((unit_id, owner_id), (other_id, other_owner)) = _open_round_with_two_units(live_app)
    n = 8
    barrier = threading.Barrier(n + 1)
    errors, receipts = [], []

    def worker(i):
        with live_app.app_context():
            try:
                barrier.wait()
                target, who = (other_id, other_owner) if i == n else (unit_id, owner_id)
                b = ballots_svc.cast_ballot(round_id, target, who, "agree" if i % 2 else "disagree",
                                            NOW + timedelta(hours=1), defer_audit=deferred)
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
        t = tally.compute_tally(round_id)
        assert (t.figures.voted_count, t.figures.total_count) == (2, 2)
        # The stored counters moved once per cast, in each cast's own transaction: they equal a recount (issue 19).
        from residents_app.rounds.counters import check_counters

        assert check_counters(round_ids=[round_id]) == []
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
        rnd = svc.create_round(estate.id, svc.RoundInput(kind="general", matter_item=7, title="并发结束", opens_at=NOW,
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


def _open_round_with_two_units(live_app):
    """An open round (real commits) over an estate of two units: (round id, estate id, [(unit id, owner id)])."""
    with live_app.app_context():
        estate = Factory(_db).estate(buildings={"1幢": [("101", "80.00"), ("102", "70.00")]})
        rnd = svc.create_round(estate.id, svc.RoundInput(kind="general", matter_item=7, title="并发", opens_at=NOW,
                                                         closes_at=NOW + timedelta(days=1)), NOW)
        svc.open_round(rnd.id, NOW, None)
        ids = (rnd.id, estate.id, [(u.id, u.ownerships[0].owner_id) for u in estate.buildings[0].units])
        _db.session.commit()
        _db.session.remove()
    return ids


def _in_thread(live_app, fn, hold: threading.Event | None, out: dict, key: str):
    """Run fn() in its own app context (own connection), keep the transaction open until `hold` is set, commit."""
    def run():
        with live_app.app_context():
            try:
                out[key] = fn()
                out[key + "_done"] = True
                if hold is not None:
                    hold.wait(10)
                _db.session.commit()
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                _db.session.rollback()
                out[key] = exc
            finally:
                _db.session.remove()
    t = threading.Thread(target=run)
    t.start()
    return t


def test_a_close_waits_for_the_cast_in_flight_and_counts_it(live_app):
    """A cast that passed the window check just before the close time and has not committed yet: the closing
    job waits for it (PostgreSQL: the cast holds the round row FOR KEY SHARE against close_round's FOR UPDATE;
    SQLite: the cast holds the write lock), so the stored result includes that ballot."""
    round_id, _, ((unit_id, owner_id), _) = _open_round_with_two_units(live_app)
    closes = NOW + timedelta(days=1)
    out: dict = {}
    release_cast = threading.Event()
    cast = _in_thread(live_app, lambda: ballots_svc.cast_ballot(round_id, unit_id, owner_id, "agree",
                                                        closes - timedelta(milliseconds=1)).id,
                      release_cast, out, "cast")
    for _ in range(500):
        if out.get("cast_done") or isinstance(out.get("cast"), Exception):
            break
        threading.Event().wait(0.01)
    assert out.get("cast_done"), out
    close = _in_thread(live_app, lambda: svc.close_round(round_id, closes, "system:scheduler"), None, out, "close")
    close.join(0.5)
    assert close.is_alive()  # waiting for the cast's transaction
    release_cast.set()
    cast.join(10)
    close.join(10)
    assert out["close"] is True
    with live_app.app_context():
        from residents_app.rounds.models import RoundResult

        result = _db.session.get(RoundResult, round_id)
        assert (result.tally["figures"]["voted_count"], result.tally["figures"]["agree_count"]) == (1, 1)
        _db.session.remove()


def test_a_cast_that_arrives_during_the_close_is_refused(live_app):
    """The close holds the round (not yet committed) when a cast that began before the close time arrives: the
    cast waits, then sees the round closed and is refused (409), nothing stored."""
    round_id, _, ((unit_id, owner_id), _) = _open_round_with_two_units(live_app)
    closes = NOW + timedelta(days=1)
    out: dict = {}
    release_close = threading.Event()
    close = _in_thread(live_app, lambda: svc.close_round(round_id, closes, "system:scheduler"), release_close,
                       out, "close")
    for _ in range(500):
        if out.get("close_done") or isinstance(out.get("close"), Exception):
            break
        threading.Event().wait(0.01)
    assert out.get("close") is True

    def late_cast():
        # What the view does: the session's round read and checks, then the write (window checked by `now`).
        return ballots_svc.cast_ballot(round_id, unit_id, owner_id, "agree", closes - timedelta(milliseconds=1)).id

    cast = _in_thread(live_app, late_cast, None, out, "cast")
    cast.join(0.5)
    release_close.set()
    close.join(10)
    cast.join(10)
    assert getattr(out["cast"], "code", None) == "vote_window_closed", out["cast"]
    with live_app.app_context():
        assert _db.session.execute(sa.select(sa.func.count()).select_from(Ballot).where(
            Ballot.round_id == round_id)).scalar_one() == 0
        _db.session.remove()
