"""The hot path of casting: which statements it runs, the client hashes in the audit event, the session checks."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy import event

from residents_app.audit.models import AuditEvent, AuditPending
from residents_app.audit.verify import verify_chain
from residents_app.db import utcnow
from residents_app.oversight.round_facts import round_flags
from residents_app.rounds import ballots, links
from residents_app.rounds.models import Ballot, Round

UA = "Mozilla/5.0 (iPhone) MicroMessenger/8.0"


def _identify(client, token, unit):
    owner = unit.owners[0]
    resp = client.post(f"/api/ballot/{token}/identity", json={"name": owner.name, "phone_last4": owner.phone[-4:]})
    assert resp.status_code == 200, resp.get_json()


def _cast_event(db, ballot_id) -> AuditEvent:
    return db.session.execute(sa.select(AuditEvent).where(
        AuditEvent.kind == "ballot.cast", AuditEvent.subject_id == str(ballot_id))).scalar_one()


def test_client_fingerprint_is_hmac_sha256_of_the_secret_first_16_hex(app):
    # Reference values from `printf %s VALUE | openssl dgst -sha256 -hmac test-secret`, first 16 hex digits.
    with app.app_context():
        fingerprint = ballots.client_fingerprint
        assert fingerprint("10.1.2.3", UA) == {"ip_hash": "f9ce19a8350c73e9", "ua_hash": "d0efc3a9eee446c0"}
        assert fingerprint("10.1.2.3", UA, secret_key="other") != fingerprint("10.1.2.3", UA)
        # Nothing to hash, no key (an empty User-Agent must not make every such phone one "device").
        assert ballots.client_fingerprint("10.1.2.3", "") == {"ip_hash": "f9ce19a8350c73e9"}
        assert ballots.client_fingerprint(None, None) == {}


def test_api_cast_records_client_hashes_never_the_raw_values(client, db, live_round, link_for, units):
    rnd = live_round(kind="general", matter_item=7)
    tokens = link_for()
    client.environ_base["REMOTE_ADDR"] = "10.1.2.3"
    _identify(client, tokens["1幢-101"], units["1幢-101"])
    resp = client.post(f"/api/ballot/{tokens['1幢-101']}/cast", json={"round_id": rnd.id, "choice": "agree"},
                       headers={"User-Agent": UA})
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    ev = _cast_event(db, body["ballot_id"])
    assert ev.data["ip_hash"] == "f9ce19a8350c73e9" and ev.data["ua_hash"] == "d0efc3a9eee446c0"
    assert "10.1.2.3" not in str(ev.data) and "iPhone" not in str(ev.data)
    # The receipt is the random code written into the entry, which the sealed chain then commits to.
    assert ev.data["receipt"] == body["receipt_code"] == db.session.get(Ballot, body["ballot_id"]).receipt_code
    assert len(body["receipt_code"]) == 20 and int(body["receipt_code"], 16) >= 0


def test_three_units_from_one_phone_raise_the_burst_flag(client, db, live_round, link_for, units):
    rnd = live_round(kind="general", matter_item=7)
    tokens = link_for()
    client.environ_base["REMOTE_ADDR"] = "10.9.9.9"
    for label in ("1幢-101", "1幢-102", "2幢-201"):
        _identify(client, tokens[label], units[label])
        resp = client.post(f"/api/ballot/{tokens[label]}/cast", json={"round_id": rnd.id, "choice": "agree"},
                           headers={"User-Agent": UA})
        assert resp.status_code == 201, resp.get_json()
    flags = [f for f in round_flags(rnd) if f.kind == "burst"]
    assert len(flags) == 1
    assert flags[0].unit_labels == ["1幢-101", "1幢-102", "2幢-201"]
    ip_hash = ballots.client_fingerprint("10.9.9.9", UA)["ip_hash"]
    assert flags[0].detail.startswith(f"3 户在 10 分钟内从同一来源（{ip_hash[:8]}…）投票")


def test_service_cast_without_client_and_paper_ballots_carry_no_hashes(db, make_round, units, now):
    rnd = make_round(kind="general", matter_item=7)
    unit = units["1幢-103"]
    b = ballots.cast_ballot(rnd.id, unit.id, unit.owners[0].id, "disagree", now, client=None)
    assert set(_cast_event(db, b.id).data) == {"round_id", "unit_id", "choice", "channel", "items", "cast_at",
                                               "receipt"}


def test_cast_runs_only_these_statements(client, db, live_round, link_for, units, monkeypatch):
    """The first cast of a round: one read (session + round + roll), then the writes; later casts: the checks
    inside the ballot's insert. All through castpath._run; no SQLAlchemy statement before the commit (no lazy
    load, no reload of the ballot)."""
    from residents_app.rounds import castpath

    rnd = live_round(kind="general", matter_item=7)
    tokens = link_for()
    _identify(client, tokens["1幢-101"], units["1幢-101"])
    engine = db.session.get_bind()
    pg = engine.dialect.name == "postgresql"
    raw, orm = [], []
    real_run = castpath._run

    def spy(cursor, name, sql, params):
        raw.append(name)
        real_run(cursor, name, sql, params)

    def collect(conn, cursor, statement, parameters, context, executemany):
        words = statement.split()
        if words[0].upper() not in ("SAVEPOINT", "RELEASE", "ROLLBACK", "BEGIN", "COMMIT"):
            orm.append(" ".join(words[:3]))

    monkeypatch.setattr(castpath, "_run", spy)
    url, round_id, estate_id = f"/api/ballot/{tokens['1幢-101']}/cast", rnd.id, rnd.estate_id
    event.listen(engine, "before_cursor_execute", collect)
    try:
        first = client.post(url, json={"round_id": round_id, "choice": "agree"})
        first_raw, raw[:] = list(raw), []
        # A change (second cast) takes the same path, and the earlier ballot is marked superseded.
        resp = client.post(url, json={"round_id": round_id, "choice": "disagree"})
    finally:
        event.remove(engine, "before_cursor_execute", collect)
    assert first.status_code == 201 and resp.status_code == 201, resp.get_json()
    # PostgreSQL: one statement for the three inserts (the event to audit_pending); the supersede only when the
    # unit had a counted ballot; after the commit the sealer (inline in tests) moves the event onto the chain.
    # SQLite: the event straight onto the chain in the same transaction (it holds the only write lock anyway).
    if pg:
        # The second cast: the round has been seen open, so one statement checks and writes (PG_CAST_ONE).
        assert (first_raw, raw) == (["read", "write"], ["cast", "supersede"])
        sealer = ["SELECT pg_advisory_xact_lock(7301, %(chain)s)", "SELECT audit_event.seq, audit_event.hash",
                  "SELECT audit_pending.id, audit_pending.chain,", "WITH gone AS"]  # moved in one statement
        assert orm == sealer + sealer
    else:
        # The second cast: the round has been seen open, so the checks are the WHERE of the ballot's insert.
        assert first_raw == ["read", "ballot", "current", "count", "supersede", "pending?", "head", "append"]
        assert raw == ["cast", "current", "count", "supersede", "pending?", "head", "append"]
        assert orm == []
    db.session.expire_all()
    old, new = (db.session.get(Ballot, first.get_json()["ballot_id"]),
                db.session.get(Ballot, resp.get_json()["ballot_id"]))
    assert (old.status, new.status, new.choice) == ("superseded", "counted", "disagree")
    assert db.session.execute(sa.select(sa.func.count()).select_from(AuditPending)).scalar_one() == 0
    assert verify_chain(estate_id).ok
    # A check that fails in the one statement (the link was revoked meanwhile): nothing written, and the checked
    # path says why.
    raw[:] = []
    links.revoke_link(units["1幢-101"].id, utcnow())
    db.session.commit()
    revoked = client.post(url, json={"round_id": round_id, "choice": "agree"})
    assert revoked.status_code == 404 and revoked.get_json()["code"] == "link_invalid"
    assert raw == ["cast", "read"]
    assert db.session.execute(sa.select(sa.func.count()).select_from(Ballot).where(
        Ballot.round_id == round_id)).scalar_one() == 2


def test_cast_session_checks(client, db, live_round, link_for, units):
    rnd = live_round(kind="general", matter_item=7)
    tokens = link_for()
    _identify(client, tokens["1幢-101"], units["1幢-101"])
    # Signed in for 1幢-101, casting through another unit's link: identity required for that unit.
    other = client.post(f"/api/ballot/{tokens['1幢-102']}/cast", json={"round_id": rnd.id, "choice": "agree"})
    assert other.status_code == 401 and other.get_json()["code"] == "identity_required"
    unknown = client.post("/api/ballot/not-a-token/cast", json={"round_id": rnd.id, "choice": "agree"})
    assert unknown.status_code == 404 and unknown.get_json()["code"] == "link_invalid"
    # The link is revoked after signing in: the session ends, the link is refused.
    links.revoke_link(units["1幢-101"].id, utcnow())
    db.session.commit()
    revoked = client.post(f"/api/ballot/{tokens['1幢-101']}/cast", json={"round_id": rnd.id, "choice": "agree"})
    assert revoked.status_code == 404 and revoked.get_json()["code"] == "link_invalid"
    assert db.session.execute(sa.select(sa.func.count()).select_from(Ballot).where(
        Ballot.round_id == rnd.id)).scalar_one() == 0


def test_cast_body_is_the_documented_schema_dump_without_a_cookie(client, db, live_round, link_for, units):
    """The cast answer is serialised by hand (hot path): it must equal CastResultSchema's dump of the ballot,
    and casting must not rewrite the session cookie."""
    from residents_app.rounds.schemas import CastResultSchema

    rnd = live_round(kind="general", matter_item=7)
    tokens = link_for()
    _identify(client, tokens["1幢-101"], units["1幢-101"])
    resp = client.post(f"/api/ballot/{tokens['1幢-101']}/cast", json={"round_id": rnd.id, "choice": "agree"})
    assert resp.status_code == 201, resp.get_json()
    assert "Set-Cookie" not in resp.headers
    body = resp.get_json()
    db.session.expire_all()
    ballot = db.session.get(Ballot, body["ballot_id"])
    assert body == CastResultSchema().dump(ballot)
    assert set(body) == {"ballot_id", "round_id", "choice", "channel", "cast_at", "receipt_code"}
    assert (body["round_id"], body["choice"], body["channel"]) == (rnd.id, "agree", "online")
    # Unknown fields are still refused with the one error shape.
    bad = client.post(f"/api/ballot/{tokens['1幢-101']}/cast", json={"round_id": rnd.id, "choice": "agree", "x": 1})
    assert bad.status_code == 422
    assert bad.get_json()["code"] == "validation_failed" and "x" in bad.get_json()["errors"]["json"]


def test_a_round_closed_after_its_first_cast_refuses_the_next(client, db, live_round, link_for, units):
    """The one-statement path (PostgreSQL) knows the round's frozen options, never its status or window: those
    are read by the statement itself. Closed meanwhile: 409, nothing written."""
    rnd = live_round(kind="general", matter_item=7)
    tokens = link_for()
    _identify(client, tokens["1幢-101"], units["1幢-101"])
    url, round_id = f"/api/ballot/{tokens['1幢-101']}/cast", rnd.id
    assert client.post(url, json={"round_id": round_id, "choice": "agree"}).status_code == 201
    # The close time passes (by the server's clock; no job has run: the status is still "open").
    db.session.execute(sa.update(Round).where(Round.id == round_id).values(closes_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    late = client.post(url, json={"round_id": round_id, "choice": "disagree"})
    assert late.status_code == 409 and late.get_json()["code"] == "vote_window_closed"
    assert [b.choice for b in ballots.ballot_history(round_id)] == ["agree"]
    # An invalid choice for the known round: refused by the checked path with the field named.
    _identify(client, tokens["1幢-102"], units["1幢-102"])
    bad = client.post(f"/api/ballot/{tokens['1幢-102']}/cast", json={"round_id": round_id, "choice": "maybe"})
    assert bad.status_code == 409 and bad.get_json()["code"] == "vote_window_closed"


def test_the_cast_paths_driver_errors_are_raised_as_sqlalchemys(db):
    """The one-statement cast runs on the driver's cursor: its errors come out as SQLAlchemy's (a server gone is
    then ops/faults.py's 503, not an unknown error's 500), the driver's error kept as .orig."""
    import pytest

    from residents_app.rounds import castpath

    cursor = castpath._cursor(db.session.connection())
    driver = castpath._driver_error(cursor)
    assert driver is not None and driver.__module__.split(".")[0] in ("psycopg", "sqlite3")
    with pytest.raises(sa.exc.DBAPIError) as caught:
        castpath._run(cursor, "cast", "SELECT no_such_column FROM ballot", {})
    assert isinstance(caught.value.orig, driver)
    assert caught.value.statement == "SELECT no_such_column FROM ballot"
    assert caught.value.connection_invalidated is False
    # Anything that is not a driver's error passes through unchanged.
    class NotADriver:
        def execute(self, sql, params):
            raise ValueError("not a driver's error")

    with pytest.raises(ValueError, match="not a driver's error"):
        castpath._run(NotADriver(), "cast", "SELECT 1", {})
