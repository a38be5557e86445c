"""A closed round with one ballot of every kind, shared by the desk, report, dashboard and receipt tests."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest

from residents_app.audit import db_guards
from residents_app.formatting import to_local
from residents_app.rounds import ballots

PDF_BYTES = b"%PDF-1.4\n% scan\n"


def build_voted_round(db, factory, now):
    """A closed willingness round over 6 units, one of every kind of ballot, and its publicity.

    1幢-101 88.50 online agree · 1幢-102 92.30 online agree · 1幢-201 88.50 paper agree (confirmed)
    1幢-202 92.30 online agree, changed to disagree 30 minutes before the close
    2幢-101 120.00 proxy agree (confirmed) · 2幢-102 75.25 paper disagree, never confirmed (does not count)
    An owner is added to 1幢-101 two days after the roll froze.
    """
    from residents_app.publicity.services import post_publicity
    from residents_app.registry.services import add_owner
    from residents_app.rounds import services as rs

    office = factory.street_office(code="VRS")
    estate = factory.estate(office=office, code="VR1", name="鹿城花园", buildings={
        "1幢": [("101", "88.50"), ("102", "92.30"), ("201", "88.50"), ("202", "92.30")],
        "2幢": [("101", "120.00"), ("102", "75.25")],
    })
    c1 = factory.user("committee", estate=estate, username="vr_c1")
    c2 = factory.user("committee", estate=estate, username="vr_c2")
    street = factory.user("street", office=office, username="vr_street")
    units = {u.label: u for b in estate.buildings for u in b.units}
    closes = now + timedelta(days=7)
    rnd = rs.create_round(estate.id, rs.RoundInput(kind="willingness", title="外立面及屋面改造意愿征求",
                                                   opens_at=now, closes_at=closes), now, c1)
    assert rs.open_round(rnd.id, now, c1)

    def owner(label):
        return units[label].owners[0].id

    online = {}
    online["1幢-101"] = ballots.cast_ballot(rnd.id, units["1幢-101"].id, owner("1幢-101"), "agree",
                                            now + timedelta(hours=1))
    online["1幢-102"] = ballots.cast_ballot(rnd.id, units["1幢-102"].id, owner("1幢-102"), "agree",
                                            now + timedelta(hours=2))
    scan = ballots.store_file(rnd.id, "paper_scan", PDF_BYTES, "application/pdf", now, c1)
    paper = ballots.enter_paper_ballot(rnd.id, units["1幢-201"].id, "agree", scan, now + timedelta(hours=3), c1)
    ballots.confirm_paper_ballot(paper.id, now + timedelta(hours=3, minutes=5), c2)
    mandate_file = ballots.store_file(rnd.id, "mandate", PDF_BYTES + b"mandate", "application/pdf", now, c1)
    mandate = ballots.record_mandate(rnd.id, units["2幢-101"].id, owner("2幢-101"), "王受托", "13900000000",
                                mandate_file, now + timedelta(hours=4), c1)
    proxy = ballots.cast_proxy_ballot(mandate.id, "agree", now + timedelta(hours=4), c1)
    ballots.confirm_proxy_ballot(proxy.id, now + timedelta(hours=4, minutes=5), c2)
    first_202 = ballots.cast_ballot(rnd.id, units["1幢-202"].id, owner("1幢-202"), "agree", now + timedelta(days=1))
    last_202 = ballots.cast_ballot(rnd.id, units["1幢-202"].id, owner("1幢-202"), "disagree",
                              closes - timedelta(minutes=30))
    pending_scan = ballots.store_file(rnd.id, "paper_scan", PDF_BYTES + b"2", "application/pdf", now, c1)
    ballots.enter_paper_ballot(rnd.id, units["2幢-102"].id, "disagree", pending_scan, now + timedelta(hours=5), c1)
    add_owner(estate.id, units["1幢-101"].id, name="新业主", phone="13711112222", actor="user:0:test",
              now=now + timedelta(days=2))
    assert rs.close_round(rnd.id, closes, None)
    posted_at = closes + timedelta(hours=1)  # posted on the day it is entered (a real clock may cross midnight)
    pub = post_publicity(estate, subject_type="round_result", subject_id=rnd.id, title="意愿征求结果公示",
                         notice_text="经统计，本次征求意见通过。", posted_on=to_local(posted_at).date(), working_days=5,
                         actor="user:0:test", now=posted_at)
    db.session.flush()
    return SimpleNamespace(
        id=rnd.id, estate_id=estate.id, estate_code=estate.code, estate_name=estate.name, office_id=office.id,
        closes=closes, c1=c1, c2=c2, street=street, scan_id=scan.id, mandate_file_id=mandate_file.id,
        receipts={"1幢-101": online["1幢-101"].receipt_code, "first_202": first_202.receipt_code,
                  "last_202": last_202.receipt_code},
        unit_ids={k: u.id for k, u in units.items()}, publicity_id=pub.id,
    )


def build_open_round(voted_round, opens, closes, title="进行中的表决"):
    """1幢-101 agree +1h (changed to disagree +4h), 1幢-102 agree +2h, 1幢-202 disagree +3h."""
    from residents_app.extensions import db
    from residents_app.registry.models import Unit
    from residents_app.rounds import ballots
    from residents_app.rounds import services as rs

    rnd = rs.create_round(voted_round.estate_id, rs.RoundInput(kind="general", matter_item=7, title=title,
                                                               opens_at=opens, closes_at=closes), opens, voted_round.c1)
    rs.open_round(rnd.id, opens, voted_round.c1)

    def cast(label, choice, hours):
        unit = db.session.get(Unit, voted_round.unit_ids[label])
        ballots.cast_ballot(rnd.id, unit.id, unit.owners[0].id, choice, opens + timedelta(hours=hours))

    cast("1幢-101", "agree", 1)
    cast("1幢-102", "agree", 2)
    cast("1幢-202", "disagree", 3)
    cast("1幢-101", "disagree", 4)
    return rnd


@pytest.fixture
def voted_round(db, factory, now):
    return build_voted_round(db, factory, now)


@pytest.fixture
def tamper(db):
    """Run Core statements against audit_event with the append-only guard lifted (this test's transaction)."""

    def run(*stmts):
        conn = db.session.connection()
        with db_guards.allow_writes(conn):
            for stmt in stmts:
                conn.execute(stmt)
        db.session.expire_all()

    return run
